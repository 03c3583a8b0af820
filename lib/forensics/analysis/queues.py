"""Queue backlogs: depth per queue, how fast it drains, when it will be empty; failing task signatures.

- :func:`depth` — the long metrics frame of :func:`forensics.sources.queues.depth_queries` as a wide
  frame, one column per queue (the query label).
- :func:`peak_depth` — ``{queue: max depth}``.
- :func:`drain_rate` — net change per minute over the last ``lookback`` of a depth series (least squares
  slope): negative means draining.
- :func:`drain_eta_minutes` — minutes until the queue is empty at that rate (0 when already empty,
  ``inf`` when it is not draining).
- :func:`task_failures` — Celery worker lines ``Task <name>[<id>] raised unexpected: <Exc>(...)`` and
  ``Task <name>[<id>] retry: ...`` grouped by task, outcome and exception.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

TASK_LINE = re.compile(
    r"Task (?P<task>[\w.]+)\[(?P<id>[0-9a-fA-F-]{8,})\] (?:(?P<raised>raised unexpected)|(?P<retry>retry)"
    r"|(?P<failed>failed))\b:?\s*(?:Retry in \S+:\s*)?(?P<exc>[A-Za-z_][\w.]*)?")
FAILURE_COLUMNS = ["task", "outcome", "exception", "count", "tasks", "first_seen", "last_seen"]


def depth(metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics is None or not len(metrics):
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))
    wide = metrics.pivot_table(index="timestamp", columns="label", values="value", aggfunc="last").sort_index()
    wide.columns = pd.Index([str(c) for c in wide.columns], name=None)
    return wide.astype("float64")


def peak_depth(wide: pd.DataFrame) -> dict[str, float]:
    return {str(q): float(wide[q].max()) for q in wide.columns if wide[q].notna().any()}


def drain_rate(series: pd.Series, lookback: str | pd.Timedelta = "10min") -> float | None:
    """Messages per minute (slope of a least-squares line) over the last ``lookback``; None with < 3 points."""
    s = series.dropna().sort_index()
    if not len(s):
        return None
    s = s[s.index >= s.index[-1] - pd.Timedelta(lookback)]
    if len(s) < 3:
        return None
    minutes = (s.index - s.index[0]) / pd.Timedelta(minutes=1)
    slope = np.polyfit(np.asarray(minutes, dtype=float), s.to_numpy(dtype=float), 1)[0]
    return float(slope)


def drain_eta_minutes(series: pd.Series, lookback: str | pd.Timedelta = "10min") -> float | None:
    """Minutes until empty at the recent rate: 0 if empty, ``inf`` if not draining, None if unknown."""
    s = series.dropna().sort_index()
    if not len(s):
        return None
    current = float(s.iloc[-1])
    if current <= 0:
        return 0.0
    rate = drain_rate(s, lookback)
    if rate is None:
        return None
    if rate >= -1e-9:
        return math.inf
    return current / -rate


def backlog_onset(wide: pd.DataFrame, baseline=None) -> dict[str, pd.Timestamp]:
    """Per queue, when its depth started to grow (first sustained upward departure)."""
    from . import onset

    out = {}
    for q in wide.columns:
        s = wide[q].dropna()
        if len(s) >= 5:
            t = onset.first_onset(s, baseline=baseline, direction="up", min_delta=10.0)
            if t is not None:
                out[str(q)] = t
    return out


def task_failures(log_events: pd.DataFrame) -> pd.DataFrame:
    """Failed/retried tasks from worker logs: ``[task, outcome, exception, count, tasks, first_seen,
    last_seen]``, most frequent first. ``tasks`` counts distinct task ids."""
    rows = []
    if log_events is not None and len(log_events):
        for ts, msg in zip(log_events["timestamp"], log_events["message"].astype(str)):
            m = TASK_LINE.search(msg)
            if not m:
                continue
            outcome = "raised" if m.group("raised") else "retry" if m.group("retry") else "failed"
            rows.append((m.group("task"), outcome, m.group("exc") or "", m.group("id"), ts))
    if not rows:
        out = pd.DataFrame({c: pd.Series(dtype="object") for c in FAILURE_COLUMNS})
        return out.astype({"count": "int64", "tasks": "int64"})
    df = pd.DataFrame(rows, columns=["task", "outcome", "exception", "id", "timestamp"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    g = df.groupby(["task", "outcome", "exception"], sort=False)
    out = pd.DataFrame({"count": g.size(), "tasks": g["id"].nunique(), "first_seen": g["timestamp"].min(),
                        "last_seen": g["timestamp"].max()}).reset_index()
    out = out.sort_values(["count", "first_seen", "task"], ascending=[False, True, True], kind="stable")
    return out[FAILURE_COLUMNS].reset_index(drop=True)


def failing_tasks(failures: pd.DataFrame) -> list[dict]:
    """Per task: failures (raised), retries, the main exception and first seen; worst first."""
    if failures is None or not len(failures):
        return []
    out = []
    for task, part in failures.groupby("task", sort=False):
        exc = part.sort_values("count", ascending=False)["exception"].iloc[0]
        out.append({"task": str(task),
                    "failures": int(part.loc[part["outcome"] != "retry", "count"].sum()),
                    "retries": int(part.loc[part["outcome"] == "retry", "count"].sum()),
                    "exception": str(exc) or None, "first_seen": pd.Timestamp(part["first_seen"].min())})
    return sorted(out, key=lambda r: (-(r["failures"] + r["retries"]), r["task"]))
