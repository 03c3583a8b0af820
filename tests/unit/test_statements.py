from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forensics.analysis import statements as st

T0 = pd.Timestamp("2026-05-30T09:00:00Z")
T1 = pd.Timestamp("2026-05-30T09:10:00Z")


def snap(rows, at):
    frame = pd.DataFrame(
        rows,
        columns=[
            "queryid",
            "userid",
            "dbid",
            "query",
            "calls",
            "total_exec_time",
            "rows",
            "shared_blks_hit",
            "shared_blks_read",
        ],
    )
    frame["mean_exec_time"] = frame["total_exec_time"] / frame["calls"]
    frame["snapshot_at"] = at
    return frame


BEFORE = snap(
    [
        (1, 10, 5, "SELECT a", 100.0, 1000.0, 100.0, 50.0, 5.0),  # steady: 10 ms
        (2, 10, 5, "SELECT b", 10.0, 100.0, 10.0, 1.0, 1.0),  # regresses: 10 ms -> 100 ms
        (3, 10, 5, "SELECT c", 500.0, 5000.0, 0.0, 0.0, 0.0),  # evicted
        (4, 10, 5, "SELECT d", 1000.0, 9000.0, 1.0, 1.0, 1.0),  # reset: counters go backwards
        (1, 11, 5, "SELECT a", 7.0, 7.0, 7.0, 7.0, 7.0),  # same queryid, other user: separate key
    ],
    T0,
)
AFTER = snap(
    [
        (1, 10, 5, "SELECT a", 160.0, 1600.0, 160.0, 80.0, 6.0),
        (2, 10, 5, "SELECT b", 30.0, 2100.0, 30.0, 3.0, 9.0),
        (4, 10, 5, "SELECT d", 20.0, 200.0, 1.0, 1.0, 1.0),
        (5, 10, 5, "SELECT e", 4.0, 40000.0, 4.0, 0.0, 400.0),  # new
        (1, 11, 5, "SELECT a", 7.0, 7.0, 7.0, 7.0, 7.0),
    ],
    T1,
)


def row(d, queryid, userid=10):
    sel = d[(d["queryid"] == queryid) & (d["userid"] == userid)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_delta_counts_and_mean_in_window():
    d = st.delta(BEFORE, AFTER)
    a = row(d, 1)
    assert a["calls"] == 60 and a["total_exec_time"] == 600 and a["rows"] == 60
    assert a["shared_blks_hit"] == 30 and a["shared_blks_read"] == 1
    assert a["mean_exec_time"] == pytest.approx(10.0)
    assert a["calls_per_s"] == pytest.approx(60 / 600)
    assert not (a["new"] or a["evicted"] or a["reset_suspected"])
    b = row(d, 2)
    assert b["mean_exec_time"] == pytest.approx(2000 / 20) and b["mean_exec_time_before"] == pytest.approx(10)
    other_user = row(d, 1, userid=11)
    assert other_user["calls"] == 0 and np.isnan(other_user["mean_exec_time"])
    assert d.attrs["seconds"] == 600 and d.attrs["stats_reset"] is False


def test_flags_new_evicted_reset():
    d = st.delta(BEFORE, AFTER)
    new = row(d, 5)
    assert new["new"] and new["calls"] == 4 and new["total_exec_time"] == 40000
    gone = row(d, 3)
    assert gone["evicted"] and np.isnan(gone["calls"]) and gone["query"] == "SELECT c"
    reset = row(d, 4)
    assert reset["reset_suspected"]
    # Never a negative delta: the counts since the reset (a lower bound).
    assert reset["calls"] == 20 and reset["total_exec_time"] == 200
    assert (d["calls"].dropna() >= 0).all()
    assert any("backwards" in w for w in d.attrs["warnings"])
    assert any("evicted" in w for w in d.attrs["warnings"])


def test_stats_reset_and_dealloc_flagged_at_frame_level():
    d = st.delta(
        BEFORE,
        AFTER,
        {"stats_reset": "2026-05-01T00:00:00Z", "dealloc": 3},
        pd.DataFrame([{"stats_reset": pd.Timestamp("2026-05-30T09:05:00Z"), "dealloc": 7.0}]),
    )
    assert d.attrs["stats_reset"] is True
    assert d.attrs["stats_reset_at"].startswith("2026-05-30T09:05:00")
    assert d.attrs["dealloc_delta"] == 4
    # Across a reset, every surviving row is "since the reset", flagged, and equal to the after counts.
    a = row(d, 1)
    assert a["reset_suspected"] and a["calls"] == 160
    assert len(d.attrs["warnings"]) >= 2


def test_no_reset_no_dealloc_growth():
    info = {"stats_reset": "2026-05-01T00:00:00Z", "dealloc": 3}
    d = st.delta(BEFORE, AFTER, info, dict(info))
    assert d.attrs["stats_reset"] is False and d.attrs["dealloc_delta"] == 0


def test_top_by_total_time_skips_evicted():
    d = st.delta(BEFORE, AFTER)
    t = st.top(d, n=3)
    assert list(t["queryid"]) == [5, 2, 1]
    assert 3 not in st.top(d, n=10)["queryid"].tolist()
    assert st.top(d, n=1, by="shared_blks_read")["queryid"].iloc[0] == 5


def test_regressed():
    d = st.delta(BEFORE, AFTER)
    r = st.regressed(d, BEFORE, factor=2.0)
    assert r["queryid"].tolist() == [2]
    assert r["ratio"].iloc[0] == pytest.approx(10.0)
    assert r["excess_time"].iloc[0] == pytest.approx(20 * (100 - 10))
    assert st.regressed(d, factor=11.0).empty
    # Without ``before`` the cumulative mean before comes from the delta frame.
    assert st.regressed(d)["queryid"].tolist() == [2]


def test_toplevel_is_part_of_the_key_when_captured():
    b = BEFORE.assign(toplevel=True)
    a = pd.concat([AFTER.assign(toplevel=True), AFTER.head(1).assign(toplevel=False)], ignore_index=True)
    d = st.delta(b, a)
    assert "toplevel" in d.columns
    assert len(d[(d["queryid"] == 1) & (d["userid"] == 10)]) == 2


def test_real_export_against_itself_is_all_zero(shared_data):
    path = next((shared_data / "pg_stat_statements").rglob("*.csv"), None)
    if path is None:
        pytest.skip("no pg_stat_statements export")
    frame = pd.read_csv(path)
    if not {"queryid", "calls", "total_exec_time"} <= set(frame.columns):
        pytest.skip("export without the needed columns")
    d = st.delta(frame, frame)
    assert (d["calls"] == 0).all() and not d["new"].any() and not d["reset_suspected"].any()


# --- ranking by time spent: the measured failure of issue 9 ------------------------------------------

RECON = "SELECT o.id FROM orders o LEFT JOIN ledger l ON l.order_id = o.id WHERE l.id IS NULL AND o.day = $1"
CREATE_DB = "CREATE DATABASE reports_copy"
BULK_LOAD = "INSERT INTO ledger (order_id, amount) SELECT g, $1 FROM generate_series($2, $3) g"


def _incident_snapshots():
    """Before: the reconciliation scan is quick and rare. In the window it runs 400 times at ~0.45 s a
    call (180 s); a one-off CREATE DATABASE took 200 s and a bulk INSERT ... generate_series 250 s."""
    before = snap(
        [
            (11, 10, 5, RECON, 50.0, 500.0, 50.0, 0.0, 0.0),
            (12, 10, 5, "SELECT * FROM orders WHERE id = $1", 90000.0, 9000.0, 90000.0, 0.0, 0.0),
            (13, 10, 5, "SHOW default_transaction_read_only", 5.0, 0.5, 5.0, 0.0, 0.0),
        ],
        T0,
    )
    after = snap(
        [
            (11, 10, 5, RECON, 450.0, 500.0 + 400 * 450.0, 450.0, 0.0, 0.0),
            (12, 10, 5, "SELECT * FROM orders WHERE id = $1", 100000.0, 10000.0, 100000.0, 0.0, 0.0),
            (13, 10, 5, "SHOW default_transaction_read_only", 6.0, 0.6, 6.0, 0.0, 0.0),
            (14, 10, 1, CREATE_DB, 1.0, 200000.0, 0.0, 0.0, 0.0),
            (15, 10, 5, BULK_LOAD, 1.0, 250000.0, 5000000.0, 0.0, 0.0),
            (16, 10, 5, "VACUUM ANALYZE ledger", 1.0, 30000.0, 0.0, 0.0, 0.0),
        ],
        T1,
    )
    return before, after


def test_kind_tells_one_off_statements_from_the_application():
    assert st.kind(RECON) == "application"
    assert st.kind("/* controller=recon */ " + RECON) == "application"
    assert st.kind(CREATE_DB) == "utility"
    assert st.kind("alter table orders add column x int") == "utility"
    assert st.kind("COPY ledger FROM STDIN") == "utility"
    assert st.kind(BULK_LOAD) == "bulk load"
    assert st.kind("INSERT INTO ledger (order_id) SELECT id FROM orders WHERE day = $1") == "application"
    assert st.kind("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY") == "collector"
    assert st.kind("SELECT * FROM pg_stat_statements") == "collector"
    assert st.kind("BEGIN") == st.kind("UPDATE orders SET paid = true WHERE id = $1") == "application"


def test_one_off_ddl_and_bulk_load_do_not_outrank_the_repeated_slow_scan_in_the_window():
    before, after = _incident_snapshots()
    ranked = st.by_time_spent(after, before)
    slow = st.slow(ranked)
    assert slow.iloc[0]["query"] == RECON
    assert slow.iloc[0]["calls"] == 400 and slow.iloc[0]["mean_exec_time"] == pytest.approx(450.0)
    assert not slow["query"].isin([CREATE_DB, BULK_LOAD, "VACUUM ANALYZE ledger"]).any()
    assert "SHOW default_transaction_read_only" not in set(slow["query"])
    apart = st.one_offs(ranked)
    assert list(apart["query"]) == [BULK_LOAD, CREATE_DB, "VACUUM ANALYZE ledger"]
    assert "between the two pg_stat_statements snapshots" in ranked.attrs["ranking"]


def test_one_snapshot_ranks_by_total_time_since_reset_and_says_so():
    _, after = _incident_snapshots()
    ranked = st.by_time_spent(after, info_after={"stats_reset": "2026-05-30T08:00:00Z", "dealloc": 0})
    slow = st.slow(ranked, min_mean_ms=100)
    assert list(slow["query"]) == [RECON]
    # without the one-off filter the CREATE DATABASE and the bulk load would come first
    assert list(ranked["query"][:2]) == [BULK_LOAD, CREATE_DB]
    assert "since pg_stat_statements was last reset (2026-05-30T08:00:00+00:00)" in ranked.attrs["ranking"]
    assert "not limited to the incident window" in ranked.attrs["ranking"]


def test_evicted_statements_are_never_ranked():
    ranked = st.by_time_spent(AFTER, BEFORE)
    assert 3 not in set(st.slow(ranked)["queryid"])
    assert list(st.slow(ranked, n=2)["queryid"]) == [5, 2]


def test_postmortem_names_the_statement_the_notebooks_rank_first():
    from forensics import postmortem
    from forensics.analysis import db, query_perf

    before, after = _incident_snapshots()
    ranked = st.by_time_spent(after, before)
    single = st.by_time_spent(after)
    findings = {
        "slow-queries": {"status": "ok", "top_statements": query_perf.top_statements(st.slow(ranked)),
                         "top_statements_ranking": ranked.attrs["ranking"]},
        "db-connections": {"status": "ok", "slow_statements": db.slow_statements(single)["query"].tolist(),
                           "slow_statements_ranking": single.attrs["ranking"]},
    }
    assert findings["db-connections"]["slow_statements"][0] == RECON
    lines = [line for line in postmortem._root_cause({}, findings) if "Slow statement" in line]
    assert len(lines) == 1 and RECON[:60] in lines[0] and "400 calls" in lines[0]
    assert "between the two pg_stat_statements snapshots" in lines[0]
    assert not any("top_statements" in line for line in postmortem._root_cause({}, findings))
    del findings["slow-queries"]
    (line,) = [line for line in postmortem._root_cause({}, findings) if "Slow statement" in line]
    assert RECON[:60] in line and "since pg_stat_statements was last reset" in line
