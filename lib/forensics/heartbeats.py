"""The jobs' declared heartbeats (the environment's ``jobs.heartbeats``): parsed and validated.

A job's heartbeat is what it leaves behind each time it runs: a log line (``log_group`` + literal
``pattern``) or a metric datapoint above zero (``metric``), expected every ``period`` (``90s``, ``5m``,
``1h``, ``1d`` or seconds) with ``tolerance`` periods of slack (default 0.5). Read by the parameter check,
the heartbeat captures (:mod:`forensics.sources.schedules`) and the jobs analysis; it imports none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from . import defaults

DEFAULT_TOLERANCE = defaults.JOB_TOLERANCE

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days)?\s*$", re.I)
_UNIT_S = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600,
           "d": 86400, "day": 86400, "days": 86400}

def period_seconds(value) -> int:
    """``"5m"`` / ``"90s"`` / ``"1h"`` / ``"1d"`` / a number of seconds -> seconds (a positive int)."""
    if isinstance(value, bool):
        raise ValueError(f"period must be a duration such as 5m, 1h or 1d, not {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _PERIOD.match(str(value))
        if not m:
            raise ValueError(f"period must be a duration such as 90s, 5m, 1h or 1d, not {value!r}")
        seconds = float(m.group(1)) * _UNIT_S[(m.group(2) or "s").lower()]
    if seconds < 1:
        raise ValueError(f"period must be at least one second, not {value!r}")
    return int(round(seconds))


@dataclass(frozen=True)
class Heartbeat:
    """One job's expected sign of life."""

    name: str
    period_s: int
    tolerance: float = DEFAULT_TOLERANCE
    log_group: str | None = None
    pattern: str | None = None
    metric: Mapping | None = field(default=None, hash=False)

    @property
    def overdue_after(self) -> pd.Timedelta:
        """How long after a run the next one counts as missing."""
        return pd.Timedelta(seconds=self.period_s * (1 + self.tolerance))

    @property
    def source(self) -> str:
        return "logs" if self.log_group else "metric"

    def describe(self) -> str:
        if self.log_group:
            return f"log {self.log_group}: {self.pattern!r}"
        m = self.metric or {}
        dims = ",".join(f"{k}={v}" for k, v in (m.get("dimensions") or {}).items())
        return f"metric {m.get('namespace')}/{m.get('name')}{{{dims}}}"


def heartbeats(section: Mapping | None) -> list[Heartbeat]:
    """The ``jobs.heartbeats`` of an environment, validated: ValueError naming the entry and the field."""
    out: list[Heartbeat] = []
    names: set[str] = set()
    for i, item in enumerate((section or {}).get("heartbeats") or []):
        where = f"jobs.heartbeats.{i}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} must be a mapping with name, period and log_group+pattern or metric")
        unknown = sorted(set(item) - {"name", "period", "tolerance", "log_group", "pattern", "metric"})
        if unknown:
            raise ValueError(f"{where}: unknown field {unknown[0]} (known: log_group, metric, name, pattern, "
                             "period, tolerance)")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}.name must be a job name")
        if name in names:
            raise ValueError(f"{where}.name {name!r} is declared twice")
        names.add(name)
        if "period" not in item:
            raise ValueError(f"{where}.period is missing (the job's expected interval, e.g. 5m)")
        period = period_seconds(item["period"])
        tol = item.get("tolerance", DEFAULT_TOLERANCE)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0:
            raise ValueError(f"{where}.tolerance must be a number of periods >= 0, not {tol!r}")
        log_group, pattern, metric = item.get("log_group"), item.get("pattern"), item.get("metric")
        if bool(log_group) == bool(metric):
            raise ValueError(f"{where} needs either log_group (with pattern) or metric, not both or neither")
        if log_group and not (isinstance(log_group, str) and isinstance(pattern, str) and pattern.strip()):
            raise ValueError(f"{where}: log_group needs a pattern (literal text every run logs)")
        if metric is not None:
            if not isinstance(metric, Mapping) or not metric.get("namespace") or not metric.get("name"):
                raise ValueError(f"{where}.metric needs namespace and name (dimensions and stat optional)")
            dims = metric.get("dimensions") or {}
            if not isinstance(dims, Mapping):
                raise ValueError(f"{where}.metric.dimensions must be a mapping of name to value")
        out.append(Heartbeat(name, period, float(tol), log_group, pattern, dict(metric) if metric else None))
    return out


def longest_overdue(beats: Iterable[Heartbeat]) -> pd.Timedelta:
    """How long the slowest job may be silent before it counts as missing (0 when no job is declared)."""
    return max((b.overdue_after for b in beats), default=pd.Timedelta(0))
