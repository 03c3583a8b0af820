"""Scheduled jobs: their declared heartbeats, EventBridge scheduled rules, EventBridge Scheduler schedules.

The environment's section::

    jobs:
      heartbeats:                      # what each job leaves behind when it runs, and how often it should
        - {name: cert-sweep, log_group: /ecs/scr-api, pattern: "_maybe_sweep completed", period: 5m}
        - {name: backup-export, metric: {namespace: SCR/Jobs, name: JobCompleted,
                                         dimensions: {Job: backup-export}, stat: Sum}, period: 15m}
      event_buses: [default]           # buses whose scheduled rules are read (default: default)
      rule_prefix: scr-                # only rules whose name starts with this
      schedule_groups: [default]       # EventBridge Scheduler groups (default: every group)

A log heartbeat's ``pattern`` is literal text every run writes (sent as a quoted CloudWatch term, and
re-applied client-side); a metric heartbeat is a datapoint above zero. ``period`` is ``90s``, ``5m``,
``1h``, ``1d`` or seconds; ``tolerance`` (default 0.5) is how late, in periods, a run may be before it
counts as missing.

Frames: :data:`RULE_COLUMNS` (rules and schedules, one row each, ``kind`` tells which) and the log
events of :mod:`forensics.sources.logs` with a ``job`` column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from .. import contracts, defaults
from ..window import IncidentWindow
from . import _aws_client, _aws_errors, _empty, _typed
from . import logs as logs_src
from .cloudwatch import MetricQuery

SOURCE = "schedules"
#: One row per EventBridge rule with a schedule, or per EventBridge Scheduler schedule.
RULE_COLUMNS: dict[str, str] = {"name": "str", "kind": "str", "group": "str", "schedule_expression": "str",
                                "period_s": "Int64", "state": "str", "targets": "str", "description": "str",
                                "arn": "str"}
HEARTBEAT_LOG_COLUMNS: dict[str, str] = {**contracts.LOG_COLUMNS, "job": "str"}
RULE, SCHEDULE = "eventbridge-rule", "scheduler-schedule"
DEFAULT_TOLERANCE = defaults.JOB_TOLERANCE

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days)?\s*$", re.I)
_UNIT_S = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600,
           "d": 86400, "day": 86400, "days": 86400}
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.I)
_RATE_S = {"minute": 60, "hour": 3600, "day": 86400}


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


def rate_seconds(expression: str | None) -> int | None:
    """``rate(5 minutes)`` -> 300; ``cron(...)``/``at(...)`` -> None (no fixed period)."""
    m = _RATE.match(str(expression or "").strip())
    if not m:
        return None
    return int(m.group(1)) * _RATE_S[m.group(2).lower().rstrip("s")]


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


def lookback(beats: Iterable[Heartbeat], window: IncidentWindow, context: str | pd.Timedelta) -> IncidentWindow:
    """The window to read heartbeats over: the incident window, with before it the context or two
    overdue spans of the slowest job (so a daily job's last run before the window is seen)."""
    longest = max((b.overdue_after for b in beats), default=pd.Timedelta(0))
    return window.padded(before=max(pd.Timedelta(context), 2 * longest))


def _literal_pattern(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def heartbeat_log_description(beats: Iterable[Heartbeat], window: IncidentWindow) -> dict:
    beats = [b for b in beats if b.log_group]
    return {"api": logs_src.API, "jobs": [{"job": b.name, "log_group": b.log_group,
                                           "filterPattern": _literal_pattern(b.pattern)} for b in beats],
            "window": window.as_dict()}


def heartbeat_logs(beats: Iterable[Heartbeat], window: IncidentWindow, *, aws: dict | None = None,
                   max_events: int = 50_000, client=None) -> pd.DataFrame:
    """The log events that are the jobs' heartbeats in ``window`` (``job`` tells whose)."""
    frames = []
    truncated = False
    for b in beats:
        if not b.log_group:
            continue
        df = logs_src.filter_log_events(b.log_group, window, _literal_pattern(b.pattern), aws=aws,
                                        max_events=max_events, client_regex=re.escape(b.pattern), client=client)
        truncated |= bool(df.attrs.get("truncated"))
        frames.append(df.assign(job=b.name))
    if not frames or not any(len(f) for f in frames):
        out = _empty(HEARTBEAT_LOG_COLUMNS)
    else:
        out = _typed(pd.concat([f for f in frames if len(f)], ignore_index=True), HEARTBEAT_LOG_COLUMNS)
        out = out.sort_values(["timestamp", "job"], kind="stable").reset_index(drop=True)
    out.attrs["truncated"] = truncated
    return out


def _id(prefix: str, name: str, i: int) -> str:
    slug = re.sub(r"[^a-zA-Z0-9]+", "_", name).strip("_").lower() or "x"
    return f"{prefix}{i}_{slug}"[:200]


def heartbeat_metric_queries(beats: Iterable[Heartbeat]) -> list[MetricQuery]:
    """One query per metric heartbeat; its label is the job's name."""
    out = []
    for i, b in enumerate(beats):
        if not b.metric:
            continue
        m = b.metric
        out.append(MetricQuery(_id("hb", b.name, i), str(m["namespace"]), str(m["name"]),
                               {str(k): str(v) for k, v in (m.get("dimensions") or {}).items()},
                               str(m.get("stat") or "Sum"), label=b.name))
    return out


def heartbeat_metric_period(window: IncidentWindow) -> int:
    """60 s while a minute's resolution fits in a request (CloudWatch keeps it 15 days), else the window's."""
    return 60 if window.duration <= pd.Timedelta(days=7) else window.period()


# ---- EventBridge ------------------------------------------------------------------------------------------
def eventbridge_rules(event_buses: Iterable[str] | None = None, prefix: str | None = None, *,
                      aws: dict | None = None, client=None) -> pd.DataFrame:
    """Every rule with a ``ScheduleExpression`` on ``event_buses`` (default: the default bus), with its
    targets (``ListRules`` + ``ListTargetsByRule``, paginated). Event-pattern rules are not jobs: left out."""
    ev = _aws_client("events", aws, client)
    rows = []
    for bus in list(event_buses or ["default"]):
        args = {"EventBusName": bus, **({"NamePrefix": prefix} if prefix else {})}
        with _aws_errors(SOURCE, f"ListRules on bus {bus}"):
            rules = [r for page in ev.get_paginator("list_rules").paginate(**args) for r in page.get("Rules") or []]
        for r in rules:
            expr = r.get("ScheduleExpression")
            if not expr:
                continue
            with _aws_errors(SOURCE, f"ListTargetsByRule for {r['Name']}"):
                targets = [t.get("Arn") for page in ev.get_paginator("list_targets_by_rule").paginate(
                    Rule=r["Name"], EventBusName=bus) for t in page.get("Targets") or []]
            rows.append({"name": r["Name"], "kind": RULE, "group": bus, "schedule_expression": expr,
                         "period_s": rate_seconds(expr), "state": r.get("State"),
                         "targets": ", ".join(t for t in targets if t) or None,
                         "description": r.get("Description"), "arn": r.get("Arn")})
    return _typed(pd.DataFrame(rows), RULE_COLUMNS) if rows else _empty(RULE_COLUMNS)


def scheduler_schedules(groups: Iterable[str] | None = None, *, aws: dict | None = None,
                        client=None) -> pd.DataFrame:
    """EventBridge Scheduler schedules (``ListSchedules`` + ``GetSchedule`` for the expression) of
    ``groups`` (default: every group)."""
    sch = _aws_client("scheduler", aws, client)
    rows = []
    wanted = list(groups or [None])
    for group in wanted:
        args = {"GroupName": group} if group else {}
        with _aws_errors(SOURCE, f"ListSchedules{' in ' + group if group else ''}"):
            listed = [s for page in sch.get_paginator("list_schedules").paginate(**args)
                      for s in page.get("Schedules") or []]
        for s in listed:
            g = s.get("GroupName") or group or "default"
            with _aws_errors(SOURCE, f"GetSchedule {g}/{s['Name']}"):
                full = sch.get_schedule(Name=s["Name"], GroupName=g)
            expr = full.get("ScheduleExpression")
            rows.append({"name": s["Name"], "kind": SCHEDULE, "group": g, "schedule_expression": expr,
                         "period_s": rate_seconds(expr), "state": full.get("State") or s.get("State"),
                         "targets": (full.get("Target") or s.get("Target") or {}).get("Arn"),
                         "description": full.get("Description"), "arn": full.get("Arn") or s.get("Arn")})
    return _typed(pd.DataFrame(rows), RULE_COLUMNS) if rows else _empty(RULE_COLUMNS)


#: EventBridge's per-rule metrics, and Scheduler's per-group ones, that tell whether a schedule ran.
RULE_METRICS = ("Invocations", "FailedInvocations")
SCHEDULER_METRICS = ("InvocationAttemptCount", "TargetErrorCount", "InvocationDroppedCount")


def invocation_queries(schedules: pd.DataFrame) -> list[MetricQuery]:
    """``AWS/Events`` Invocations/FailedInvocations per rule (dimension RuleName; rules on another bus also
    carry EventBusName) and ``AWS/Scheduler`` counts per schedule group; labels ``<name> <metric>``."""
    out: list[MetricQuery] = []
    if schedules is None or not len(schedules):
        return out
    rules = schedules[schedules["kind"] == RULE]
    for i, r in enumerate(rules.itertuples()):
        dims = {"RuleName": r.name}
        if r.group and r.group != "default":
            dims = {"EventBusName": r.group, "RuleName": r.name}
        for metric in RULE_METRICS:
            out.append(MetricQuery(_id("ev", f"{r.name}_{metric}", i), "AWS/Events", metric, dims, "Sum",
                                   label=f"{r.name} {metric}"))
    groups = sorted(set(schedules.loc[schedules["kind"] == SCHEDULE, "group"].dropna()))
    for i, g in enumerate(groups):
        for metric in SCHEDULER_METRICS:
            out.append(MetricQuery(_id("sch", f"{g}_{metric}", i), "AWS/Scheduler", metric,
                                   {"ScheduleGroup": g}, "Sum", label=f"{g} {metric}"))
    return out
