"""Connection capacity: how many connections the application can open against how many the server
takes, and who holds them now (pg_stat_activity with ``blocked_by`` = ``pg_blocking_pids``).

The usual pool-exhaustion arithmetic: every worker process has its own SQLAlchemy pool, so the
application can open ``(pool_size + max_overflow) x workers_per_task x tasks`` connections, and a
deploy that doubles the tasks (old and new running side by side) doubles that demand.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

import numpy as np
import pandas as pd

OWN_APPLICATION = "forensics"
UNNAMED = "(no application_name)"
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
TREE_COLUMNS = ["pid", "blocked_by", "root_blocker", "depth", "application_name", "state", "query"]


def _count(value, what: str) -> int:
    if value is None or isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, not {value!r}")
    return int(value)


def pool_capacity(pool_size: int, max_overflow: int, workers_per_task: int, tasks: int) -> int:
    """The most connections the application can hold at once."""
    return (
        (_count(pool_size, "pool_size") + _count(max_overflow, "max_overflow"))
        * _count(workers_per_task, "workers_per_task")
        * _count(tasks, "tasks")
    )


def headroom(max_connections: int, reserved: int, demand: int) -> dict:
    """Whether ``demand`` fits under ``max_connections`` less the ``reserved`` slots (superuser and
    ``reserved_connections``, plus whatever other clients need): ``usable``, ``headroom`` (negative
    = short by that many), ``utilisation`` (demand / usable) and ``fits``."""
    max_connections = _count(max_connections, "max_connections")
    reserved = _count(reserved, "reserved")
    demand = _count(demand, "demand")
    usable = max(max_connections - reserved, 0)
    return {
        "max_connections": max_connections,
        "reserved": reserved,
        "usable": usable,
        "demand": demand,
        "headroom": usable - demand,
        "utilisation": demand / usable if usable else float("inf"),
        "fits": demand <= usable,
    }


def _clients(activity: pd.DataFrame, exclude_apps: Iterable[str]) -> pd.DataFrame:
    sel = activity
    if "backend_type" in sel:
        sel = sel[sel["backend_type"].fillna("client backend") == "client backend"]
    if "application_name" in sel:
        sel = sel[~sel["application_name"].fillna("").isin(list(exclude_apps))]
    return sel


def _app(frame: pd.DataFrame) -> pd.Series:
    if "application_name" not in frame:
        return pd.Series(UNNAMED, index=frame.index)
    return frame["application_name"].astype("string").fillna("").replace("", UNNAMED)


def by_state_app(activity: pd.DataFrame, exclude_apps: Iterable[str] = (OWN_APPLICATION,)) -> pd.DataFrame:
    """Client connections per application (rows, most first) and state (columns), with ``total``.
    Our own forensic session is left out."""
    sel = _clients(activity, exclude_apps)
    if sel.empty:
        return pd.DataFrame(
            {"application_name": pd.Series(dtype="string"), "total": pd.Series(dtype="int64")}
        )
    state = sel["state"].astype("string").fillna("(unknown)") if "state" in sel else "(unknown)"
    table = pd.crosstab(_app(sel), state)
    table.columns = [str(c) for c in table.columns]
    table["total"] = table.sum(axis=1)
    table.index.name = "application_name"
    table = table.reset_index()
    table["application_name"] = table["application_name"].astype("string")
    table = table.sort_values(["total", "application_name"], ascending=[False, True], kind="stable")
    return table[
        ["application_name", "total", *[c for c in table.columns if c not in ("application_name", "total")]]
    ].reset_index(drop=True)


def idle_in_transaction(
    activity: pd.DataFrame, min_age_s: float = 0, exclude_apps: Iterable[str] = (OWN_APPLICATION,)
) -> pd.DataFrame:
    """Sessions idle inside an open transaction (they hold a connection, and their locks and
    snapshot) for at least ``min_age_s`` of transaction age, oldest first. ``idle_s`` is how long
    since their last statement ended (``snapshot_at - state_change``)."""
    sel = _clients(activity, exclude_apps)
    if "state" not in sel:
        return sel.iloc[0:0]
    sel = sel[sel["state"].isin(IDLE_IN_TRANSACTION)].copy()
    if "xact_age_s" not in sel and {"xact_start", "snapshot_at"} <= set(sel.columns):
        sel["xact_age_s"] = (
            pd.to_datetime(sel["snapshot_at"], utc=True) - pd.to_datetime(sel["xact_start"], utc=True)
        ).dt.total_seconds()
    if {"state_change", "snapshot_at"} <= set(sel.columns):
        sel["idle_s"] = (
            pd.to_datetime(sel["snapshot_at"], utc=True) - pd.to_datetime(sel["state_change"], utc=True)
        ).dt.total_seconds()
    if "xact_age_s" in sel:
        sel = sel[sel["xact_age_s"].fillna(0) >= min_age_s]
        sel = sel.sort_values("xact_age_s", ascending=False, kind="stable")
    wanted = [
        "pid",
        "application_name",
        "usename",
        "client_addr",
        "state",
        "xact_age_s",
        "idle_s",
        "xact_start",
        "state_change",
        "query",
    ]
    return sel[[c for c in wanted if c in sel.columns]].reset_index(drop=True)


def _pids(value) -> list[int]:
    """``pg_blocking_pids`` as it arrives: a list, a numpy array (parquet), '{1,2}' or '[1, 2]'."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text or text in ("{}", "[]"):
            return []
        if text.startswith("{"):
            return [int(p) for p in text.strip("{}").split(",") if p.strip()]
        return [int(p) for p in ast.literal_eval(text)]
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [int(p) for p in value if p is not None and not pd.isna(p)]
    if pd.isna(value):
        return []
    return [int(value)]


def blocking_tree(activity: pd.DataFrame) -> pd.DataFrame:
    """Every session in a blocking chain: the blocked ones and those blocking them.

    ``root_blocker`` is the session at the head of the chain (itself blocked by no one: usually an
    idle-in-transaction holder), ``depth`` 0 for a root, 1 for its direct waiters, and so on. A
    session waiting on several follows its lowest blocking pid. A cycle (a deadlock caught before
    PostgreSQL broke it) is rooted at its lowest pid. Sorted by root, depth, pid.
    """
    if activity is None or activity.empty or "blocked_by" not in activity:
        out = pd.DataFrame({c: pd.Series(dtype="object") for c in TREE_COLUMNS})
        return out.astype({"pid": "int64", "root_blocker": "int64", "depth": "int64"})
    frame = activity.drop_duplicates("pid", keep="last").set_index("pid", drop=False)
    blockers = {int(pid): sorted(set(_pids(v))) for pid, v in zip(frame["pid"], frame["blocked_by"])}
    blockers = {pid: b for pid, b in blockers.items() if b}
    involved = set(blockers) | {b for bs in blockers.values() for b in bs}

    def chain(pid: int) -> tuple[int, int]:
        seen: list[int] = []
        node = pid
        while node in blockers and node not in seen:
            seen.append(node)
            node = blockers[node][0]
        if node in seen:  # a cycle: root it at its lowest pid, depth = steps from pid to it
            root = min(seen[seen.index(node) :])
            return root, seen.index(root)
        return node, len(seen)

    rows = []
    for pid in sorted(involved):
        root, depth = chain(pid)
        info = frame.loc[pid] if pid in frame.index else None
        row = {
            "pid": pid,
            "blocked_by": blockers.get(pid, []),
            "root_blocker": root,
            "depth": depth,
            "application_name": None if info is None else info.get("application_name"),
            "state": None if info is None else info.get("state"),
            "query": None if info is None else info.get("query"),
        }
        for extra in ("usename", "wait_event_type", "wait_event", "xact_age_s", "query_age_s"):
            if info is not None and extra in info.index:
                row[extra] = info.get(extra)
        rows.append(row)
    if not rows:
        return blocking_tree(activity.iloc[0:0])
    out = pd.DataFrame(rows)
    out = out.sort_values(["root_blocker", "depth", "pid"], kind="stable").reset_index(drop=True)
    return out.astype({"pid": "int64", "root_blocker": "int64", "depth": "int64"})
