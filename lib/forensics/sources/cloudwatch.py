"""CloudWatch metrics through ``GetMetricData``: a long frame ``[timestamp, id, label, value, stat, unit]``.

One ``GetMetricData`` call carries up to :data:`MAX_QUERIES_PER_CALL` queries and ``NextToken`` is
followed, so a notebook's whole set of series costs ``ceil(n / 500)`` calls plus pages — never one
call per metric.

The request window is the incident window aligned outwards to the period (CloudWatch buckets
datapoints at multiples of the period; an unaligned start would shift every bucket). So the first
row may be the bucket that *contains* the window start.

``unit`` on a :class:`MetricQuery` is sent as ``MetricStat.Unit``, which makes CloudWatch return only
datapoints published in that unit: leave it ``None`` unless you mean that filter. The frame's
``unit`` column is that unit, else the documented unit of the well-known AWS metric
(:data:`KNOWN_UNITS`), else null — GetMetricData itself does not return units.

Percentile statistics (``p99``, ``tm90``...) are computed by real CloudWatch; the moto sandbox
answers them with HTTP 500. :func:`get_metric_data` turns that into a :class:`SourceError` saying so;
use :func:`split_percentiles` to pull percentiles as their own capture so the other series survive.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from .. import contracts
from ..errors import SourceError
from ..window import IncidentWindow, iso
from . import TS_DTYPE, _aws_client, _aws_errors, _chunks, _empty, _typed, _utc
from .call import Call

SOURCE = "cloudwatch"
API = "cloudwatch:GetMetricData"
#: GetMetricData accepts at most 500 MetricDataQuery structures per call.
MAX_QUERIES_PER_CALL = 500
#: CloudWatch's rule for a MetricDataQuery Id.
ID_RE = re.compile(r"^[a-z][a-zA-Z0-9_]*$")
ID_MAX_LEN = 255
#: Periods below a minute that CloudWatch accepts (high-resolution metrics); otherwise multiples of 60.
HIGH_RES_PERIODS = (1, 5, 10, 20, 30)
#: Percentile and other extended statistics (p99, p99.9, tm90, wm99, tc90, ts90, PR(..), TM(..), IQM).
_PERCENTILE_RE = re.compile(r"^(p\d|tm|wm|tc|ts|pr\(|iqm)", re.I)

COLUMNS = contracts.METRIC_COLUMNS

#: Documented units of the metrics the standard query sets pull (namespace, metric) -> unit.
KNOWN_UNITS: dict[tuple[str, str], str] = {
    ("AWS/ApplicationELB", "RequestCount"): "Count",
    ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"): "Count",
    ("AWS/ApplicationELB", "HTTPCode_Target_4XX_Count"): "Count",
    ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"): "Count",
    ("AWS/ApplicationELB", "TargetResponseTime"): "Seconds",
    ("AWS/ApplicationELB", "UnHealthyHostCount"): "Count",
    ("AWS/ApplicationELB", "HealthyHostCount"): "Count",
    ("AWS/RDS", "DatabaseConnections"): "Count",
    ("AWS/RDS", "CPUUtilization"): "Percent",
    ("AWS/RDS", "FreeableMemory"): "Bytes",
    ("AWS/RDS", "ReadLatency"): "Seconds",
    ("AWS/RDS", "WriteLatency"): "Seconds",
    ("AWS/RDS", "FreeStorageSpace"): "Bytes",
    ("AWS/ECS", "CPUUtilization"): "Percent",
    ("AWS/ECS", "MemoryUtilization"): "Percent",
}


@dataclass(frozen=True)
class MetricQuery:
    """One series: ``metric`` in ``namespace`` with ``dimensions``, aggregated by ``stat``.

    ``id`` must match ``^[a-z][a-zA-Z0-9_]*$`` (CloudWatch's rule) and be unique in a request.
    """

    id: str
    namespace: str
    metric: str
    dimensions: Mapping[str, str]
    stat: str
    label: str | None = None
    unit: str | None = None

    def __hash__(self):  # dimensions is a dict; hash its items
        return hash((self.id, self.namespace, self.metric, tuple(sorted(self.dimensions.items())),
                     self.stat, self.label, self.unit))

    @property
    def is_percentile(self) -> bool:
        return is_percentile(self.stat)

    def to_api(self, period: int) -> dict:
        """The ``MetricDataQuery`` structure for this series."""
        stat = {
            "Metric": {
                "Namespace": self.namespace,
                "MetricName": self.metric,
                "Dimensions": [{"Name": str(k), "Value": str(v)} for k, v in self.dimensions.items()],
            },
            "Period": int(period),
            "Stat": self.stat,
        }
        if self.unit:
            stat["Unit"] = self.unit
        q = {"Id": self.id, "MetricStat": stat, "ReturnData": True}
        if self.label:
            q["Label"] = self.label
        return q

    @property
    def display_unit(self) -> str | None:
        if self.unit:
            return self.unit
        if self.stat == "SampleCount":
            return "Count"
        return KNOWN_UNITS.get((self.namespace, self.metric))


def is_percentile(stat: str) -> bool:
    """True for extended statistics (p99, tm90, ...) — the ones the moto sandbox cannot compute."""
    return bool(_PERCENTILE_RE.match(str(stat)))


def split_percentiles(queries: Iterable[MetricQuery]) -> tuple[list[MetricQuery], list[MetricQuery]]:
    """``(plain, percentile)`` queries, so percentiles can be pulled as a separate capture."""
    queries = list(queries)
    return [q for q in queries if not q.is_percentile], [q for q in queries if q.is_percentile]


def validate(queries: Iterable[MetricQuery], period: int | None = None) -> list[MetricQuery]:
    """Check ids (pattern, length, uniqueness) and period before any call; ``ValueError`` otherwise."""
    queries = list(queries)
    seen: set[str] = set()
    for q in queries:
        if not isinstance(q, MetricQuery):
            raise ValueError(f"not a MetricQuery: {q!r}")
        if not isinstance(q.id, str) or not ID_RE.match(q.id) or len(q.id) > ID_MAX_LEN:
            raise ValueError(f"metric query id {q.id!r} is invalid: CloudWatch requires ^[a-z][a-zA-Z0-9_]*$ "
                             f"(at most {ID_MAX_LEN} characters)")
        if q.id in seen:
            raise ValueError(f"metric query id {q.id!r} is used twice; ids must be unique in a request")
        seen.add(q.id)
        if not q.namespace or not q.metric or not q.stat:
            raise ValueError(f"metric query {q.id!r} needs a namespace, a metric and a stat")
    if period is not None and (not isinstance(period, int) or isinstance(period, bool) or period <= 0
                               or (period not in HIGH_RES_PERIODS and period % 60)):
        raise ValueError(f"period {period!r} is invalid: 1, 5, 10, 20, 30 or a multiple of 60 seconds")
    return queries


def _aligned(window: IncidentWindow, period: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    freq = pd.Timedelta(seconds=period)
    return window.start.floor(freq), window.end.ceil(freq)


def metric_data_call(queries: Iterable[MetricQuery], window: IncidentWindow, period: int | None = None, *,
                     aws: dict | None = None, api: str | None = None) -> Call:
    """:func:`get_metric_data` as one :class:`~forensics.sources.call.Call`: the API, its arguments (aligned
    range, the queries as sent), the period and the number of requests."""
    queries = list(queries)
    period = int(period or window.period())
    start, end = _aligned(window, period)
    args = {
        "api": API,
        "args": {
            "StartTime": iso(start),
            "EndTime": iso(end),
            "ScanBy": "TimestampAscending",
            "MetricDataQueries": [q.to_api(period) for q in queries],
        },
        "period": period,
        "calls": max(1, math.ceil(len(queries) / MAX_QUERIES_PER_CALL)) if queries else 0,
    }

    return Call(api, args, lambda: get_metric_data(queries, window, period, aws=aws))


def _percentile_hint(batch: list[MetricQuery]):
    stats = sorted({q.stat for q in batch if q.is_percentile})

    def hint(exc):
        # a timeout or a connection error has no response (its .response is None)
        status = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if stats and isinstance(status, int) and status >= 500:
            return (f"the request includes percentile statistics ({', '.join(stats)}), which the moto "
                    "sandbox cannot compute (it answers HTTP 500 once such a series has data); pull "
                    "percentiles as a separate capture (cloudwatch.split_percentiles)")
        return None

    return hint


def get_metric_data(queries: Iterable[MetricQuery], window: IncidentWindow, period: int | None = None, *,
                    aws: dict | None = None, client=None, config=None) -> pd.DataFrame:
    """Every series of ``queries`` over ``window`` at ``period`` seconds (default ``window.period()``).

    Returns the long frame ``[timestamp, id, label, value, stat, unit]``, rows in query order then
    ascending time. ``attrs``: ``period``, ``calls`` (GetMetricData requests made), ``status``
    (id -> StatusCode when not ``Complete``), ``messages`` (any Messages CloudWatch returned).

    ``client``: a ready client (tests pass one with a botocore Stubber); otherwise a read-only client
    from the environment's ``aws`` section, with ``config`` (a botocore Config, e.g. fewer attempts).
    """
    queries = validate(queries)
    period = period if period is not None else window.period()
    validate([], period)
    if not queries:
        out = _empty(COLUMNS)
        out.attrs.update(period=period, calls=0, status={}, messages=[])
        return out
    start, end = _aligned(window, period)
    cw = _aws_client("cloudwatch", aws, client, config)

    by_id = {q.id: q for q in queries}
    values: dict[str, list] = {q.id: [] for q in queries}
    stamps: dict[str, list] = {q.id: [] for q in queries}
    labels: dict[str, str] = {}
    status: dict[str, str] = {}
    messages: list[str] = []
    calls = 0
    for batch in _chunks(queries, MAX_QUERIES_PER_CALL):
        request = {
            "MetricDataQueries": [q.to_api(period) for q in batch],
            "StartTime": start.to_pydatetime(),
            "EndTime": end.to_pydatetime(),
            "ScanBy": "TimestampAscending",
        }
        token = None
        while True:
            kwargs = dict(request, NextToken=token) if token else request
            with _aws_errors(SOURCE, "GetMetricData", _percentile_hint(batch)):
                resp = cw.get_metric_data(**kwargs)
            calls += 1
            for m in resp.get("Messages") or []:
                messages.append(f"{m.get('Code')}: {m.get('Value')}")
            for r in resp.get("MetricDataResults") or []:
                rid = r.get("Id")
                if rid not in by_id:
                    raise SourceError(SOURCE, f"GetMetricData returned an id that was not asked for: {rid!r}")
                stamps[rid].extend(r.get("Timestamps") or [])
                values[rid].extend(r.get("Values") or [])
                if r.get("Label"):
                    labels.setdefault(rid, r["Label"])
                code = r.get("StatusCode") or "Complete"
                if code != "Complete":
                    status[rid] = code
                elif rid in status and status[rid] == "PartialData":
                    del status[rid]  # the next page completed it
                for m in r.get("Messages") or []:
                    messages.append(f"{rid}: {m.get('Code')}: {m.get('Value')}")
            token = resp.get("NextToken")
            if not token:
                break

    parts = []
    for q in queries:
        n = len(values[q.id])
        if len(stamps[q.id]) != n:
            raise SourceError(SOURCE, f"GetMetricData returned {len(stamps[q.id])} timestamps for {n} values "
                                      f"in series {q.id!r}")
        if not n:
            continue
        parts.append(pd.DataFrame({
            "timestamp": _utc(pd.Series(stamps[q.id], dtype="object")),
            "id": q.id,
            "label": labels.get(q.id) or q.label or f"{q.metric} {q.stat}",
            "value": pd.Series(values[q.id], dtype="float64"),
            "stat": q.stat,
            "unit": q.display_unit,
        }))
    if parts:
        out = pd.concat(parts, ignore_index=True)
        order = {q.id: i for i, q in enumerate(queries)}
        out = (out.assign(_o=out["id"].map(order)).sort_values(["_o", "timestamp"], kind="stable")
               .drop(columns="_o").drop_duplicates(["id", "timestamp"], keep="last").reset_index(drop=True))
        out = _typed(out, COLUMNS)
    else:
        out = _empty(COLUMNS)
    out.attrs.update(period=period, calls=calls, status=status, messages=messages)
    return out


def wide(frame: pd.DataFrame) -> pd.DataFrame:
    """The long metrics frame pivoted: index ``timestamp`` (UTC), one column per ``id`` (query order)."""
    ids = list(dict.fromkeys(frame["id"].tolist())) if len(frame) else []
    if not ids:
        return pd.DataFrame(index=pd.DatetimeIndex([], dtype=TS_DTYPE, name="timestamp"))
    dedup = frame.drop_duplicates(["timestamp", "id"], keep="last")
    out = dedup.pivot(index="timestamp", columns="id", values="value").sort_index()
    out = out[ids]
    out.columns = pd.Index([str(c) for c in out.columns], name=None)
    return out.astype("float64")


# ---- standard query sets --------------------------------------------------------------------------
def _slug(text: str) -> str:
    s = re.sub(r"[^a-zA-Z0-9]+", "_", str(text)).strip("_").lower()
    return s or "x"


def _id(prefix: str | None, name: str) -> str:
    qid = f"{prefix}_{name}" if prefix else name
    if not ID_RE.match(qid):
        raise ValueError(f"prefix {prefix!r} makes an invalid metric query id {qid!r}")
    return qid


def alb_queries(load_balancer: str, target_group: str | None = None,
                latency_stats: Iterable[str] = ("Average", "p50", "p95", "p99"),
                *, prefix: str | None = None) -> list[MetricQuery]:
    """The ALB's traffic, errors and latency; with ``target_group``, its healthy/unhealthy host counts.

    ``load_balancer`` / ``target_group`` are the dimension values (``app/<name>/<id>``,
    ``targetgroup/<name>/<id>``). Ids: requests, target_5xx, elb_5xx, target_4xx, latency_<stat>,
    unhealthy_hosts, healthy_hosts (each ``<prefix>_...`` when ``prefix`` is given).
    """
    ns = "AWS/ApplicationELB"
    lb = {"LoadBalancer": load_balancer}
    q = [
        MetricQuery(_id(prefix, "requests"), ns, "RequestCount", lb, "Sum", "requests"),
        MetricQuery(_id(prefix, "target_5xx"), ns, "HTTPCode_Target_5XX_Count", lb, "Sum", "target 5xx"),
        MetricQuery(_id(prefix, "elb_5xx"), ns, "HTTPCode_ELB_5XX_Count", lb, "Sum", "ELB 5xx"),
        MetricQuery(_id(prefix, "target_4xx"), ns, "HTTPCode_Target_4XX_Count", lb, "Sum", "target 4xx"),
    ]
    for stat in latency_stats:
        name = "avg" if stat == "Average" else _slug(stat)
        q.append(MetricQuery(_id(prefix, f"latency_{name}"), ns, "TargetResponseTime", lb, stat,
                             f"latency {stat}"))
    if target_group:
        tg = {"TargetGroup": target_group, "LoadBalancer": load_balancer}
        q += [
            MetricQuery(_id(prefix, "unhealthy_hosts"), ns, "UnHealthyHostCount", tg, "Maximum",
                        "unhealthy hosts"),
            MetricQuery(_id(prefix, "healthy_hosts"), ns, "HealthyHostCount", tg, "Maximum",
                        "healthy hosts"),
        ]
    return q


def rds_queries(instance: str, *, prefix: str | None = "db") -> list[MetricQuery]:
    """The RDS instance's connections, CPU, memory, latency and storage (ids ``db_...`` by default)."""
    ns = "AWS/RDS"
    d = {"DBInstanceIdentifier": instance}
    return [
        MetricQuery(_id(prefix, "connections"), ns, "DatabaseConnections", d, "Maximum", "DB connections"),
        MetricQuery(_id(prefix, "cpu"), ns, "CPUUtilization", d, "Average", "DB CPU %"),
        MetricQuery(_id(prefix, "freeable_memory"), ns, "FreeableMemory", d, "Minimum", "DB freeable memory"),
        MetricQuery(_id(prefix, "read_latency"), ns, "ReadLatency", d, "Average", "DB read latency"),
        MetricQuery(_id(prefix, "write_latency"), ns, "WriteLatency", d, "Average", "DB write latency"),
        MetricQuery(_id(prefix, "free_storage"), ns, "FreeStorageSpace", d, "Minimum", "DB free storage"),
    ]


def ecs_queries(cluster: str, service: str, *, prefix: str | None = "ecs") -> list[MetricQuery]:
    """The ECS service's CPU and memory utilisation, Average and Maximum (ids ``ecs_cpu_avg``...).

    Several services in one request need distinct prefixes (e.g. ``prefix="api"``).
    """
    ns = "AWS/ECS"
    d = {"ClusterName": cluster, "ServiceName": service}
    out = []
    for metric, short in (("CPUUtilization", "cpu"), ("MemoryUtilization", "mem")):
        for stat, s in (("Average", "avg"), ("Maximum", "max")):
            out.append(MetricQuery(_id(prefix, f"{short}_{s}"), ns, metric, d, stat,
                                   f"{service} {short} {stat}"))
    return out


# ---- alarm history (DescribeAlarmHistory) ---------------------------------------------------------
#: The change-event contract plus the alarm's name and the state it moved to.
ALARM_HISTORY_COLUMNS = {**contracts.EVENT_COLUMNS,
                         "alarm_name": "str", "new_state": "str", "alarm_type": "str"}
ALARM_TYPES = ("MetricAlarm", "CompositeAlarm")


def _new_state(history_data) -> str | None:
    """``newState.stateValue`` of a StateUpdate's ``HistoryData`` JSON (``None`` when absent/unparsable)."""
    import json

    if not history_data:
        return None
    try:
        data = json.loads(history_data)
    except (TypeError, ValueError):
        return None
    state = (data.get("newState") or {}) if isinstance(data, dict) else {}
    value = state.get("stateValue") if isinstance(state, dict) else None
    return str(value) if value else None


def alarm_history_call(window: IncidentWindow, alarm_names: Iterable[str] | None = None, *,
                       aws: dict | None = None) -> Call:
    """:func:`alarm_history` as one :class:`~forensics.sources.call.Call`."""
    from . import _as_list

    args: dict = {"HistoryItemType": "StateUpdate", "AlarmTypes": list(ALARM_TYPES),
                  "StartDate": iso(window.start), "EndDate": iso(window.end), "ScanBy": "TimestampAscending"}
    names = _as_list(alarm_names, "alarm_names")
    if names:
        args["AlarmNames"] = names
    return Call(None, {"api": "cloudwatch:DescribeAlarmHistory", "args": args},
                lambda: alarm_history(window, aws=aws, alarm_names=names or None))


def alarm_history(window: IncidentWindow, *, aws: dict | None = None, client=None, config=None,
                  alarm_names: Iterable[str] | None = None) -> pd.DataFrame:
    """Alarm state changes in ``window`` (``DescribeAlarmHistory``, ``HistoryItemType=StateUpdate``).

    Change-event frame ``[timestamp, source="cloudwatch", resource=<alarm name>, kind="alarm",
    message=<HistorySummary>, alarm_name, new_state, alarm_type]``, oldest first. ``new_state`` is
    ``newState.stateValue`` of the item's ``HistoryData`` when present. ``alarm_names``: only these alarms
    (one paginated call each; the API takes one name); otherwise every metric and composite alarm.
    CloudWatch keeps alarm history for 30 days.
    """
    from . import _as_list

    names = _as_list(alarm_names, "alarm_names")
    cw = _aws_client("cloudwatch", aws, client, config)
    base = {"HistoryItemType": "StateUpdate", "AlarmTypes": list(ALARM_TYPES),
            "StartDate": window.start.to_pydatetime(), "EndDate": window.end.to_pydatetime(),
            "ScanBy": "TimestampAscending"}
    rows = []
    for name in names or [None]:
        args = dict(base, AlarmName=name) if name else base
        with _aws_errors(SOURCE, f"DescribeAlarmHistory{f' for {name}' if name else ''}"):
            for page in cw.get_paginator("describe_alarm_history").paginate(**args):
                for item in page.get("AlarmHistoryItems") or []:
                    when = item.get("Timestamp")
                    if when is None or not window.contains(pd.Timestamp(when)):
                        continue
                    alarm = item.get("AlarmName")
                    rows.append({"timestamp": when, "source": SOURCE, "resource": alarm, "kind": contracts.ALARM,
                                 "message": item.get("HistorySummary"), "alarm_name": alarm,
                                 "new_state": _new_state(item.get("HistoryData")),
                                 "alarm_type": item.get("AlarmType")})
    if not rows:
        return _empty(ALARM_HISTORY_COLUMNS)
    out = _typed(pd.DataFrame(rows), ALARM_HISTORY_COLUMNS)
    return (out.drop_duplicates(["timestamp", "alarm_name", "message"])
            .sort_values(["timestamp", "alarm_name"], kind="stable").reset_index(drop=True))
