"""Headline facts of a pg_stat_statements delta (:func:`forensics.analysis.statements.delta`): the
statements that took the time, the ones that got slower, and whether the delta can be trusted."""

from __future__ import annotations

import pandas as pd

from .statements import COLLECTOR


def application(delta: pd.DataFrame) -> pd.DataFrame:
    """The delta without our own snapshot statements (:data:`forensics.analysis.statements.COLLECTOR`)."""
    if delta.empty or "query" not in delta:
        return delta
    return delta[~delta["query"].fillna("").str.contains(COLLECTOR, regex=True)]


def _short(query, n: int = 300) -> str:
    return " ".join(str(query).split())[:n]


def top_statements(top: pd.DataFrame) -> list[dict]:
    """``queryid, query, total_ms, calls, mean_ms`` per statement (window deltas)."""
    out = []
    for r in top.itertuples():
        out.append({"queryid": int(r.queryid), "query": _short(r.query), "total_ms": round(float(r.total_exec_time), 3),
                    "calls": int(r.calls), "mean_ms": round(float(r.mean_exec_time), 3)
                    if pd.notna(r.mean_exec_time) else None})
    return out


def regressed_statements(regressed: pd.DataFrame) -> list[dict]:
    """``queryid, query, calls, mean_ms_before, mean_ms, ratio, excess_ms`` per regressed statement."""
    out = []
    for r in regressed.itertuples():
        out.append({"queryid": int(r.queryid), "query": _short(r.query), "calls": int(r.calls),
                    "mean_ms_before": round(float(r.mean_exec_time_before), 4),
                    "mean_ms": round(float(r.mean_exec_time), 4), "ratio": round(float(r.ratio), 1),
                    "excess_ms": round(float(r.excess_time), 3)})
    return out


def stats_reset_or_evicted(delta: pd.DataFrame) -> bool:
    """True when the delta is not the whole truth: pg_stat_statements was reset between the snapshots,
    entries were deallocated (``pg_stat_statements.max`` reached), or rows were evicted or re-created."""
    a = delta.attrs
    if a.get("stats_reset") or a.get("dealloc_delta"):
        return True
    return bool(len(delta)) and bool(delta["evicted"].any() or delta["reset_suspected"].any())
