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
from collections.abc import Iterable

import pandas as pd

from .. import contracts
from ..heartbeats import Heartbeat, heartbeats, period_seconds  # noqa: F401 - the section's parser, re-exported
from ..window import IncidentWindow
from . import _aws_client, _aws_errors, _empty, _typed
from . import logs as logs_src
from .call import Call
from .cloudwatch import MetricQuery, metric_data_call

SOURCE = "schedules"
#: One row per EventBridge rule with a schedule, or per EventBridge Scheduler schedule.
RULE_COLUMNS: dict[str, str] = {"name": "str", "kind": "str", "group": "str", "schedule_expression": "str",
                                "period_s": "Int64", "state": "str", "targets": "str", "description": "str",
                                "arn": "str"}
HEARTBEAT_LOG_COLUMNS: dict[str, str] = {**contracts.LOG_COLUMNS, "job": "str"}
RULE, SCHEDULE = "eventbridge-rule", "scheduler-schedule"
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.I)
_RATE_S = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str | None) -> int | None:
    """``rate(5 minutes)`` -> 300; ``cron(...)``/``at(...)`` -> None (no fixed period)."""
    m = _RATE.match(str(expression or "").strip())
    if not m:
        return None
    return int(m.group(1)) * _RATE_S[m.group(2).lower().rstrip("s")]


def _literal_pattern(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def heartbeat_logs_call(beats: Iterable[Heartbeat], window: IncidentWindow, *, aws: dict | None = None) -> Call:
    """:func:`heartbeat_logs` as one :class:`~forensics.sources.call.Call` (a FilterLogEvents per log job)."""
    beats = list(beats)
    logged = [b for b in beats if b.log_group]
    return Call(None, {"api": logs_src.API, "jobs": [{"job": b.name, "log_group": b.log_group,
                                                      "filterPattern": _literal_pattern(b.pattern)} for b in logged],
                       "window": window.as_dict()},
                lambda: heartbeat_logs(beats, window, aws=aws))


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


def heartbeat_metrics_call(beats: Iterable[Heartbeat], window: IncidentWindow, *, aws: dict | None = None) -> Call:
    """The metric heartbeats over ``window`` at :func:`heartbeat_metric_period`, as one GetMetricData call."""
    return metric_data_call(heartbeat_metric_queries(beats), window, heartbeat_metric_period(window), aws=aws)


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
