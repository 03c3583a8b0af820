"""Headline facts about a PostgreSQL server from its captured views (pg_stat_activity, settings,
pg_stat_statements) and RDS metrics. Pure functions on frames; the notebooks call them."""

from __future__ import annotations

import pandas as pd

from .. import contracts
from . import statements as stmts

#: Our own sessions: never count them as the holder or as the slow statement.
OWN_APPLICATION = contracts.APPLICATION_NAME
UNNAMED = "(no application_name)"


def client_sessions(activity: pd.DataFrame) -> pd.DataFrame:
    """Client backends other than our own forensic session."""
    if activity.empty:
        return activity
    sel = activity
    if "backend_type" in sel:
        sel = sel[sel["backend_type"].fillna("client backend") == "client backend"]
    if "application_name" in sel:
        sel = sel[sel["application_name"].fillna("") != OWN_APPLICATION]
    return sel


def top_holder(activity: pd.DataFrame) -> str | None:
    """The application_name holding the most connections (ties: the one with more idle in transaction)."""
    sel = client_sessions(activity)
    if sel.empty:
        return None
    apps = sel["application_name"].fillna("").replace("", UNNAMED)
    iit = (sel["state"] == "idle in transaction").groupby(apps).sum()
    counts = apps.value_counts()
    ranked = sorted(counts.index, key=lambda a: (-counts[a], -iit.get(a, 0), a))
    return ranked[0]


def count_by(frame: pd.DataFrame, column: str) -> dict:
    if frame.empty or column not in frame:
        return {}
    return {str(k): int(v) for k, v in frame[column].fillna("").replace("", UNNAMED).value_counts().items()}


def limits(settings: pd.DataFrame) -> dict:
    """max_connections and the reserve from a pg_settings capture (one row)."""
    if settings.empty:
        return {}
    row = settings.iloc[0]
    out = {}
    for key in ("max_connections", "superuser_reserved_connections"):
        if key in row and pd.notna(row[key]):
            out[key] = int(row[key])
    if "max_connections" in out:
        out["usable_connections"] = out["max_connections"] - out.get("superuser_reserved_connections", 0)
    return out


def metric_series(metrics: pd.DataFrame, metric_id: str) -> pd.Series:
    """One metric of a long metrics frame as a UTC-indexed Series (empty if absent)."""
    if metrics.empty:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"), name=metric_id)
    sel = metrics[metrics["id"] == metric_id]
    return pd.Series(sel["value"].to_numpy(dtype=float), index=pd.DatetimeIndex(sel["timestamp"]),
                     name=metric_id).sort_index()


def first_reaching(series: pd.Series, level: float | None) -> pd.Timestamp | None:
    """The first timestamp at which ``series`` reaches ``level`` (None if it never does or no level):
    when a connection count hit the pool's ceiling, the moment a diagnosis orders against its effects."""
    if level is None or series is None or series.empty:
        return None
    hit = series[series >= level]
    return pd.Timestamp(hit.index.min()) if len(hit) else None


def root_blockers(tree: pd.DataFrame) -> list[dict]:
    """The sessions at the root of blocking chains, with how many sessions wait behind each."""
    if tree is None or tree.empty or "root_blocker" not in tree:
        return []
    waiting = tree[tree["depth"] > 0]
    out = []
    for root, group in waiting.groupby("root_blocker"):
        head = tree[tree["pid"] == root]
        out.append({
            "pid": int(root),
            "application_name": head["application_name"].iloc[0] if len(head) else None,
            "state": head["state"].iloc[0] if len(head) else None,
            "waiting": int(len(group)),
        })
    return sorted(out, key=lambda r: -r["waiting"])


def slow_statements(statements: pd.DataFrame, activity: pd.DataFrame | None = None,
                    min_mean_ms: float = 100.0, limit: int = 10) -> pd.DataFrame:
    """Application statements averaging ``min_mean_ms`` or more, most time spent first
    (:func:`forensics.analysis.statements.by_time_spent`, the ranking every notebook uses; pass its
    output or a raw snapshot), then active queries running longer than that right now which
    pg_stat_statements has not listed."""
    cols = ["query", "source", "calls", "mean_exec_time", "total_exec_time", "queryid"]
    rows = []
    if statements is not None and not statements.empty:
        # the collector's own statements are kind "collector" (what they read, or who ran them): never
        # filtered by a word in the text - an application's culprit may well call pg_sleep
        ranked = statements if "kind" in statements else stmts.by_time_spent(statements)
        source = ranked.attrs.get("source", stmts.SOURCE_PSS)
        for _, r in stmts.slow(ranked, n=limit, min_mean_ms=min_mean_ms).iterrows():
            rows.append({"query": r["query"], "source": source, "calls": int(r["calls"]),
                         "mean_exec_time": float(r["mean_exec_time"]), "total_exec_time": float(r["total_exec_time"]),
                         "queryid": int(r["queryid"]) if pd.notna(r.get("queryid")) else None})
    if activity is not None and not activity.empty:
        act = client_sessions(activity)
        act = act[(act["state"] == "active") & (act["query_age_s"] * 1000 >= min_mean_ms)]
        for _, r in act.sort_values("query_age_s", ascending=False).iterrows():
            if not any(_same_statement(r["query"], x["query"]) for x in rows):
                rows.append({"query": r["query"], "source": f"running now ({r['query_age_s']:.1f} s, pid {r['pid']})",
                             "calls": None, "mean_exec_time": None, "total_exec_time": None, "queryid": None})
    out = pd.DataFrame(rows, columns=cols)
    # an identifier, not a quantity: exact Int64 (a None among ints would make it float: 8.579878e+18)
    out["queryid"] = pd.array([r["queryid"] for r in rows], dtype="Int64")
    return out


def _same_statement(literal_query: str, normalised: str) -> bool:
    """pg_stat_activity shows literals, pg_stat_statements shows $1: compare their first words."""
    a = " ".join(str(literal_query).split()[:6]).lower()
    b = " ".join(str(normalised).split()[:6]).lower()
    return a == b
