"""Redis (ElastiCache) health from the per-node metrics frame of :func:`forensics.sources.elasticache.metric_queries`.

- :func:`by_node` — ``{metric: wide frame (index timestamp, one column per node)}``.
- :func:`hit_rate` — hits / (hits + misses) per timestamp over all nodes (NaN where no lookups).
- :func:`health_onsets` — the first sustained departure of each health signal: connections dropping,
  engine CPU, evictions, replication lag or misses rising; :func:`first_health_onset` the earliest.
- :func:`error_summary` — app log lines matching Redis failures (``transport closed``,
  ``ConnectionError``...): count, first and last seen, per minute.
"""

from __future__ import annotations

import re

import pandas as pd

from . import onset as onset_mod

#: metric -> (direction of trouble, min_delta in the metric's units)
SIGNALS = {
    "CurrConnections": ("down", 5.0),
    "EngineCPUUtilization": ("up", 10.0),
    "Evictions": ("up", 10.0),
    "ReplicationLag": ("up", 1.0),
    "CacheMisses": ("up", 50.0),
}
REDIS_ERROR = re.compile(
    r"transport closed|redis\.exceptions\.\w+|ConnectionResetError|Connection (?:reset|refused|closed) by|"
    r"READONLY You can't write against a read only replica|LOADING Redis is loading", re.I)


def _metric(label: str) -> str:
    return str(label).rsplit(" ", 1)[-1]


def _node(label: str) -> str:
    return str(label).rsplit(" ", 1)[0]


def by_node(metrics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The long metrics frame split into one wide frame per metric (columns: nodes)."""
    out: dict[str, pd.DataFrame] = {}
    if metrics is None or not len(metrics):
        return out
    df = metrics.assign(metric=metrics["label"].map(_metric), node=metrics["label"].map(_node))
    for metric, part in df.groupby("metric", sort=False):
        wide = part.pivot_table(index="timestamp", columns="node", values="value", aggfunc="last").sort_index()
        wide.columns = pd.Index([str(c) for c in wide.columns], name=None)
        out[str(metric)] = wide.astype("float64")
    return out


def hit_rate(nodes: dict[str, pd.DataFrame]) -> pd.Series:
    hits = nodes.get("CacheHits", pd.DataFrame()).sum(axis=1, min_count=1)
    misses = nodes.get("CacheMisses", pd.DataFrame()).sum(axis=1, min_count=1)
    hits, misses = hits.align(misses, join="outer")
    total = hits.fillna(0) + misses.fillna(0)
    rate = hits.fillna(0) / total.where(total > 0)
    rate.name = "hit_rate"
    return rate.astype("float64")


def health_onsets(nodes: dict[str, pd.DataFrame], baseline=None) -> pd.DataFrame:
    """``[metric, node, start, direction, peak, baseline]``, earliest first; ``baseline`` as in
    :func:`forensics.analysis.onset.find_onsets` (e.g. the context period before the window)."""
    rows = []
    for metric, (direction, min_delta) in SIGNALS.items():
        wide = nodes.get(metric)
        if wide is None:
            continue
        for node in wide.columns:
            series = wide[node].dropna()
            if len(series) < 5:
                continue
            ep = onset_mod.find_onsets(series, baseline=baseline, direction=direction, min_delta=min_delta,
                                       min_duration=2)
            if ep.empty:
                continue
            first = ep.sort_values("start").iloc[0]
            rows.append({"metric": metric, "node": node, "start": first["start"], "direction": direction,
                         "peak": float(first["peak"]), "baseline": float(first["baseline"])})
    out = pd.DataFrame(rows, columns=["metric", "node", "start", "direction", "peak", "baseline"])
    if len(out):
        out["start"] = pd.to_datetime(out["start"], utc=True)
    return out.sort_values(["start", "metric", "node"], kind="stable").reset_index(drop=True)


def first_health_onset(onsets: pd.DataFrame) -> pd.Timestamp | None:
    return pd.Timestamp(onsets["start"].min()) if len(onsets) else None


def redis_errors(log_events: pd.DataFrame) -> pd.DataFrame:
    """The log events that are Redis client failures."""
    if log_events is None or not len(log_events):
        return log_events.iloc[0:0] if log_events is not None else pd.DataFrame()
    return log_events[log_events["message"].astype(str).str.contains(REDIS_ERROR)].reset_index(drop=True)


def error_summary(errors: pd.DataFrame) -> dict | None:
    """``{count, first_seen, last_seen, peak_per_minute, example}`` of Redis failure lines; None if none."""
    if errors is None or not len(errors):
        return {"count": 0, "first_seen": None, "last_seen": None, "peak_per_minute": 0, "example": None}
    ts = pd.to_datetime(errors["timestamp"], utc=True)
    per_min = ts.dt.floor("min").value_counts()
    first = errors.loc[ts.idxmin(), "message"]
    match = REDIS_ERROR.search(str(first))
    return {"count": int(len(errors)), "first_seen": ts.min(), "last_seen": ts.max(),
            "peak_per_minute": int(per_min.max()), "example": match.group(0) if match else str(first)[:200]}


def per_minute(errors: pd.DataFrame) -> pd.Series:
    if errors is None or not len(errors):
        return pd.Series(dtype="float64", name="errors")
    ts = pd.to_datetime(errors["timestamp"], utc=True).dt.floor("min")
    return ts.value_counts().sort_index().astype("float64").rename("errors")
