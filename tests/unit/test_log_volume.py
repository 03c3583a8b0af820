"""Logs at volume without a server: the Insights rendering of parameters, the slice plan, the fragments a
signature is counted by, and the volume scenario's plan."""

from __future__ import annotations

import pandas as pd
import pytest

from forensics import queries
from forensics.analysis import fragments, signatures
from forensics.queries import QueryError
from forensics_sandbox import insights
from forensics_sandbox.scenarios import volume
from forensics.sources import log_volume
from forensics.window import IncidentWindow

W = IncidentWindow(pd.Timestamp("2026-01-01T00:00Z"), pd.Timestamp("2026-01-01T03:00Z"))


def test_insights_values_are_quoted_and_cannot_end_their_literal():
    q = queries.load("log_signature_counts")
    text = q.insights({"match": "ERROR|a/b", "signatures": {"sig_0": ['say "hi"', "C:\\dir"], "sig_1": ["x|y"]}})
    assert "like /ERROR|a\\/b/" in text
    assert 'strcontains(@message, "say \\"hi\\"") * strcontains(@message, "C:\\\\dir")' in text
    parsed = insights.parse(text)  # the sandbox's engine reads it back as one query, no injected command
    assert [type(c).__name__ for c in parsed.commands] == ["Filter", "Stats"]
    with pytest.raises(QueryError, match="line break"):
        q.insights({"match": "ERROR", "signatures": {"sig_0": ["a\n| limit 1"]}})
    with pytest.raises(QueryError, match="not a lower-case identifier"):
        q.insights({"match": "ERROR", "signatures": {"x) as y, count(*": ["a"]}})
    with pytest.raises(QueryError, match="regex"):
        q.insights({"match": "(unclosed", "signatures": {"sig_0": ["a"]}})


def test_an_escaped_slash_stays_escaped():
    q = queries.load("log_events_per_minute")
    assert q.insights({"match": r"a\/b/c"}).startswith(r"filter @message like /a\/b\/c/")


def test_slices_spread_over_the_window_and_denser_at_the_onset():
    onset = pd.Timestamp("2026-01-01T02:00Z")
    plan = log_volume.slice_plan(W, onset, spread=24, near_onset=12, slice_s=10, onset_span="15min")
    starts = pd.to_datetime([s["start"] for s in plan], utc=True)
    ends = pd.to_datetime([s["end"] for s in plan], utc=True)
    assert (starts[1:] >= ends[:-1]).all(), "slices never overlap"
    assert starts.min() - W.start < pd.Timedelta("10min") and W.end - ends.max() < pd.Timedelta("10min")
    near = starts[(starts >= onset - pd.Timedelta("15min")) & (starts <= onset + pd.Timedelta("15min"))]
    assert len(near) >= 12 and len(plan) >= 30
    assert [s["slice"] for s in plan] == list(range(len(plan)))


def test_fragments_select_their_own_events_only():
    own = pd.Series([f"2026-01-01 00:00:0{i},1 ERROR [db] QueuePool limit of size 5 overflow 10 reached\n  at x"
                     for i in range(5)])
    other = pd.Series(["2026-01-01 00:00:01,1 ERROR [db] connection refused by server",
                       "2026-01-01 00:00:01,1 ERROR [db] QueuePool limit of size 5 is fine"])
    sig = signatures.assign(pd.concat([own, other], ignore_index=True))
    frags, cover, leak = fragments.fragments(sig[0], own, other)
    assert cover == 1.0 and leak == 0.0 and all("<*>" not in f and len(f) >= 3 for f in frags)


def test_fragments_never_hold_a_redaction_marker():
    s = "<*> ERROR token=[REDACTED:secret-pair:0a1b2c3d] refused by upstream"
    frags, _, _ = fragments.fragments(s, pd.Series(["x ERROR token=[REDACTED:secret-pair:0a1b2c3d] refused by upstream"]),
                                       pd.Series([], dtype=str))
    assert frags and not any("REDACTED" in f for f in frags)


def test_volume_plan_rates_onset_and_late_secrets():
    now = pd.Timestamp("2026-06-08T12:00:30Z")
    plan = volume.Plan(now, factor=0.05)
    t = plan.t
    assert t["onset"] - t["start"] == pd.Timedelta(hours=2) and t["end"] - t["start"] == pd.Timedelta(hours=3)
    pool, hook = plan.per_minute("queuepool"), plan.per_minute("webhook")
    assert pool[pool.index < t["onset"]].sum() == 0
    assert pool[pool.index >= t["onset"]].mean() == pytest.approx(120 * 60 * 0.05, rel=0.05)
    assert hook.mean() == pytest.approx(40 * 60 * 0.05, rel=0.05)
    lines = [e for _, batch in plan.batches() for e in batch]
    assert len(lines) == len(plan.ts) + sum(len(v) for v in plan.secrets.values())
    for kind, items in plan.secrets.items():
        value = items[0][1]
        leaked = [e["timestamp"] for e in lines if value in e["message"]]
        assert len(leaked) == len(items) and min(leaked) >= int((t["end"] - pd.Timedelta("20min")).value // 10**6)


def test_pg_log_categories_are_one_parse_regex_whose_matches_classify_back():
    """Every pattern of pglog_patterns.yaml is in the one regex the category counts parse with, and the text
    it captures from a line of each category is classified as that category again."""
    import re

    from forensics.captures import log_volume as log_volume_captures
    from forensics.analysis import log_counts, pglog
    from forensics_sandbox.s3_evidence import rds_log_line

    extract = log_volume_captures.pglog_extract()
    q = queries.load("log_match_counts")
    assert insights.parse(q.insights({"extract": extract}))  # the sandbox's engine reads the query as sent
    python = re.compile(re.sub(r"\(\?<(?=\w)", "(?P<", extract))
    at = pd.Timestamp("2026-01-01T00:00Z")
    samples = {"connection_exhaustion": "sorry, too many clients already", "deadlock": "deadlock detected",
               "lock_timeout": 'could not obtain lock on relation "orders"',
               "lock_waits": "process 81 acquired ShareLock on transaction 9 after 1200.5 ms",
               "authentication_failure": 'role "ghost" does not exist',
               "checkpoint_pressure": "checkpoints are occurring too frequently (8 seconds apart)"}
    for category, message in samples.items():
        hit = python.search(rds_log_line(at, "ERROR", message)).group("hit")
        assert log_counts.categorized(pd.DataFrame({"hit": [hit]}))["category"].iloc[0] == category
    assert python.search(rds_log_line(at, "ERROR", 'relation "x" does not exist')) is None
    assert len(pglog.CATEGORIES) == 7


def test_a_named_group_is_a_regex_parameter_and_a_bad_one_is_refused():
    q = queries.load("log_match_counts")
    assert "(?<hit>a|b)" in q.insights({"extract": "(?i)(?<hit>a|b)"})
    with pytest.raises(QueryError, match="regex"):
        q.insights({"extract": "(?<hit>a|b"})


def test_slices_are_packed_while_their_span_holds_few_events():
    slices = log_volume.slice_plan(W, pd.Timestamp("2026-01-01T02:00Z"), spread=24, near_onset=12, slice_s=10,
                                   onset_span="15min")
    minutes = pd.date_range(W.start, W.end, freq="1min", inclusive="left")
    quiet = pd.DataFrame({"minute": minutes, "log_group": "g", "events": 10.0})
    assert log_volume.pack_slices(slices, None) == [[s] for s in slices]
    assert log_volume.pack_slices(slices, quiet.iloc[:0]) == [[s] for s in slices]
    cut = quiet.copy()
    cut.attrs["truncated"] = True  # counts cut at the row limit are no guide
    assert log_volume.pack_slices(slices, cut) == [[s] for s in slices]
    # 180 minutes x 10 events: the whole window in one query
    assert log_volume.pack_slices(slices, quiet, max_events=5000) == [slices]
    # a burst minute of 10,000 events: the slices touching it read alone, the others still packed
    burst = quiet.copy()
    hot = pd.Timestamp(slices[30]["start"]).floor("min")
    burst.loc[burst["minute"] == hot, "events"] = 10_000.0
    packed = log_volume.pack_slices(slices, burst, max_events=5000)
    assert [s for g in packed for s in g] == slices  # every slice once, in order
    assert [slices[30]] in packed  # the slice in the burst is read alone (its cap binds)
    for g in packed:  # no packed span covers the burst
        if len(g) > 1:
            assert not pd.Timestamp(g[0]["start"]).floor("min") <= hot < pd.Timestamp(g[-1]["end"])
    assert len(packed) < 6
