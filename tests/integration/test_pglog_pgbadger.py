"""The project's PostgreSQL log reader against pgbadger (Debian's package, ``make pgbadger``) on the real
logs in ../shared/data/real/postgres_logs: every count within 5 % and the same top five statements by total
time. Written and tuned on quellog's stderr log and pgbadger's RDS log (TUNING); reported on quellog's
csvlog and pgbadger's plain stderr log with another prefix (HELD_OUT), which played no part in writing the
reader. CloudNativePG's and Cloud SQL's JSON logs are read by the project but not by pgbadger 12 (no
comparison possible); they are covered by tests/unit/test_pglog_reader.py."""

from __future__ import annotations

import pytest

from forensics.pglog import extract, reader

from .pgbadger_compare import HELD_OUT, LOGS, PGBADGER, ROOT, TUNING, our_top, pgbadger_counts, pgbadger_top, \
    run_pgbadger, within

pytestmark = [
    pytest.mark.skipif(PGBADGER is None, reason="pgbadger is not installed (make pgbadger: Debian's package, needs "
                                                "root and apt-get)"),
    pytest.mark.skipif(not ROOT.exists(), reason=f"the real PostgreSQL logs are not at {ROOT}"),
]


@pytest.fixture(scope="module", params=[*TUNING, *HELD_OUT],
                ids=[f"tuning:{n}" for n in TUNING] + [f"held-out:{n}" for n in HELD_OUT])
def both(request, tmp_path_factory):
    fmt, prefix, args = LOGS[request.param]
    path = ROOT / request.param
    report = run_pgbadger(path, args, tmp_path_factory.mktemp("pgbadger") / "report.json")
    entries = reader.parse(path.read_bytes(), fmt, prefix)
    frames = extract.analyse(entries)
    return request.param, entries, frames, report


def test_every_count_within_five_percent_of_pgbadger(both):
    name, entries, frames, report = both
    ours, theirs = extract.summary_counts(entries, frames), pgbadger_counts(report)
    table = "\n".join(f"  {k:22} ours {ours[k]:>14,.1f}  pgbadger {v:>14,.1f}" for k, v in theirs.items())
    print(f"\n{name}\n{table}")
    off = {k: (ours[k], v) for k, v in theirs.items() if not within(ours[k], v)}
    assert not off, f"{name}: counts off by more than 5 %: {off}"
    assert ours["queries"] > 0  # every log compared holds timed statements


def test_same_top_five_statements_by_total_time(both):
    name, _, frames, report = both
    ours, theirs = our_top(frames["statements"]), pgbadger_top(report)
    assert [q for q, _ in ours] == [q for q, _ in theirs], f"{name}:\n{ours}\n{theirs}"
    assert all(within(a, b, 0.01) for (_, a), (_, b) in zip(ours, theirs))
