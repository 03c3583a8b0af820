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
