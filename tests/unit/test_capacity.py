from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forensics.analysis import capacity as cap

AT = pd.Timestamp("2026-05-30T09:30:00Z")


def session(
    pid, app, state, blocked_by=(), xact_age=None, idle=None, query="SELECT 1", backend="client backend"
):
    return {
        "pid": pid,
        "application_name": app,
        "usename": "app",
        "client_addr": "10.0.0.1",
        "backend_type": backend,
        "state": state,
        "wait_event_type": "Lock" if blocked_by else None,
        "xact_start": AT - pd.Timedelta(seconds=xact_age) if xact_age is not None else pd.NaT,
        "state_change": AT - pd.Timedelta(seconds=idle) if idle is not None else pd.NaT,
        "xact_age_s": float(xact_age) if xact_age is not None else np.nan,
        "query_age_s": 1.0,
        "blocked_by": list(blocked_by),
        "query": query,
        "snapshot_at": AT,
    }


ACTIVITY = pd.DataFrame(
    [
        session(10, "api", "idle in transaction", xact_age=600, idle=590, query="UPDATE orders SET x=1"),
        session(11, "api", "active", blocked_by=[10], xact_age=30),
        session(12, "worker", "active", blocked_by=[11], xact_age=20),
        session(13, "api", "active", blocked_by=[10, 11], xact_age=10),
        session(14, "api", "idle"),
        session(15, "worker", "idle in transaction", xact_age=5, idle=4),
        session(16, "", "idle"),
        session(17, "forensics", "active"),
        session(18, None, None, backend="autovacuum launcher"),
    ]
)


def test_pool_capacity_and_headroom():
    assert cap.pool_capacity(5, 10, 4, 6) == 360
    assert cap.pool_capacity(5, 0, 1, 0) == 0
    with pytest.raises(ValueError):
        cap.pool_capacity(-1, 0, 1, 1)
    with pytest.raises(ValueError):
        cap.pool_capacity(1.5, 0, 1, 1)
    h = cap.headroom(max_connections=100, reserved=3, demand=360)
    assert h["usable"] == 97 and h["headroom"] == -263 and h["fits"] is False
    assert h["utilisation"] == pytest.approx(360 / 97)
    ok = cap.headroom(400, 3, 360)
    assert ok["fits"] is True and ok["headroom"] == 37


def test_by_state_app_counts_clients_only_most_first():
    t = cap.by_state_app(ACTIVITY)
    assert t["application_name"].tolist() == ["api", "worker", "(no application_name)"]
    api = t.iloc[0]
    assert api["total"] == 4 and api["active"] == 2 and api["idle in transaction"] == 1 and api["idle"] == 1
    assert "forensics" not in t["application_name"].tolist()
    assert t["total"].sum() == 7


def test_idle_in_transaction_oldest_first_with_ages():
    iit = cap.idle_in_transaction(ACTIVITY)
    assert iit["pid"].tolist() == [10, 15]
    assert iit.iloc[0]["xact_age_s"] == 600 and iit.iloc[0]["idle_s"] == pytest.approx(590)
    assert cap.idle_in_transaction(ACTIVITY, min_age_s=60)["pid"].tolist() == [10]


def test_blocking_tree_roots_and_depths():
    tree = cap.blocking_tree(ACTIVITY)
    assert list(tree.columns[:7]) == cap.TREE_COLUMNS
    assert tree["pid"].tolist() == [10, 11, 13, 12]
    by_pid = tree.set_index("pid")
    assert (tree["root_blocker"] == 10).all()
    assert by_pid.loc[10, "depth"] == 0 and by_pid.loc[10, "blocked_by"] == []
    assert by_pid.loc[10, "state"] == "idle in transaction"
    assert by_pid.loc[11, "depth"] == 1
    assert by_pid.loc[12, "depth"] == 2
    assert by_pid.loc[13, "depth"] == 1 and by_pid.loc[13, "blocked_by"] == [10, 11]
    assert by_pid.loc[12, "application_name"] == "worker"


@pytest.mark.parametrize("encode", [list, np.array, lambda v: "{" + ",".join(map(str, v)) + "}", str])
def test_blocked_by_encodings(encode):
    act = ACTIVITY.copy()
    act["blocked_by"] = [encode(v) for v in ACTIVITY["blocked_by"]]
    tree = cap.blocking_tree(act)
    assert tree["pid"].tolist() == [10, 11, 13, 12]


def test_blocking_tree_cycle_and_unknown_blocker_and_empty():
    act = pd.DataFrame(
        [
            session(21, "a", "active", blocked_by=[22]),
            session(22, "b", "active", blocked_by=[21]),
            session(30, "c", "active", blocked_by=[99]),  # blocker not in the snapshot
        ]
    )
    tree = cap.blocking_tree(act).set_index("pid")
    assert tree.loc[21, "root_blocker"] == 21 and tree.loc[21, "depth"] == 0
    assert tree.loc[22, "root_blocker"] == 21 and tree.loc[22, "depth"] == 1
    assert tree.loc[99, "depth"] == 0 and tree.loc[30, "root_blocker"] == 99
    assert pd.isna(tree.loc[99, "application_name"])
    nobody = cap.blocking_tree(ACTIVITY.assign(blocked_by=[[]] * len(ACTIVITY)))
    assert nobody.empty and list(nobody.columns) == cap.TREE_COLUMNS
    assert cap.blocking_tree(ACTIVITY.iloc[0:0]).empty
