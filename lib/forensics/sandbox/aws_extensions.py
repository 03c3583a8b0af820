"""What the sandbox adds to its in-process moto server (moto 5.2.x), each piece small and tested.

moto cannot, through any AWS API, give resources a past (ECS deployments and service events, RDS
events), and it lacks a few read paths the notebooks use. The sandbox owns an in-process moto server,
so it sets those on the backend objects here. Nothing here touches forensic code: every result is
read back through plain boto3 against the server.

- :func:`isolate_account`: every request reaching *this* server is served from its own AWS account
  (moto's ``x-moto-account-id`` header, injected server-side). In-process moto servers share their
  backends; without this, two sandboxes (or a sandbox and a test's own moto server) in one process
  would mix their data.
- :func:`install` (idempotent, process-wide, additive only):
  - CloudWatch ``GetMetricData`` with percentile stats ``pNN`` / ``pNN.N`` (moto answers HTTP 500),
    computed from the raw samples by nearest rank;
  - RDS ``DescribeEvents`` honours ``StartTime`` / ``EndTime`` / ``Duration`` when given (moto
    ignores them) and returns events oldest first, as AWS does;
  - ELBv2 ``DescribeTargetHealth`` reports a state planted by :func:`set_target_health`;
  - CloudTrail ``LookupEvents`` (moto: not implemented) serves records fed by
    :func:`add_cloudtrail_events`: time range, one lookup attribute, newest first, paged by ``NextToken``;
  - ElastiCache ``DescribeEvents`` (moto: not implemented) serves events planted by
    :func:`add_elasticache_event`, filtered by source, type and time, oldest first, paged by ``Marker``;
  - CloudWatch ``DescribeAlarmHistory`` (moto: not implemented) serves state changes planted by
    :func:`add_alarm_history`: ``StartDate``/``EndDate``, ``HistoryItemType``, ``AlarmName``,
    ``AlarmTypes``, ``ScanBy``, paged by ``MaxRecords``/``NextToken``.
- :func:`set_task_stopped`: a stopped task's ``startedAt``/``stoppedAt``, ``stopCode``, exit code and
  container reason (moto's ``StopTask`` sets only ``stoppedReason``);
- :func:`set_service_history`: ECS deployments (``createdAt`` in the past, several deployments) and
  service events; :func:`add_rds_event`, :func:`backdate_rds_instance`; :func:`rekey_load_balancer` /
  :func:`rekey_target_group` give an ALB / target group a fixed ARN id (moto draws a random one).
- :func:`close_server` makes sure the listening socket is closed (werkzeug's serve_forever closes it
  on shutdown today; this keeps it so); :func:`drop_account` frees an account's data in every backend.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from typing import Any

ACCOUNT_HEADER = "HTTP_X_MOTO_ACCOUNT_ID"
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
_installed = False
_lock = threading.Lock()


# ---- server ---------------------------------------------------------------------------------------
def _wsgi_server(moto_server):
    inner = getattr(moto_server, "_server", None)  # forensics MotoServer -> ThreadedMotoServer
    server = getattr(inner, "_server", None)  # ThreadedMotoServer -> werkzeug BaseWSGIServer
    if server is None:
        raise RuntimeError("the moto server is not started")
    return server


def isolate_account(moto_server, account_id: str) -> None:
    """Serve every request that reaches ``moto_server`` from ``account_id``."""
    server = _wsgi_server(moto_server)
    app = server.app

    def with_account(environ, start_response):
        environ[ACCOUNT_HEADER] = account_id
        return app(environ, start_response)

    with_account.forensics_account_id = account_id  # type: ignore[attr-defined]
    server.app = with_account


def close_server(moto_server) -> None:
    """Close the listening socket after ``stop()`` (idempotent)."""
    inner = getattr(moto_server, "_server", None)
    server = getattr(inner, "_server", None)
    if server is not None:
        try:
            server.server_close()
        except OSError:
            pass


def backend(service: str, account_id: str, region: str):
    from moto.backends import get_backend

    return get_backend(service)[account_id][region]


def drop_account(account_id: str, services=("cloudwatch", "logs", "ecs", "rds", "elbv2", "ec2", "sts",
                                            "elasticache", "cloudtrail")) -> None:
    """Forget everything ``account_id`` holds in ``services`` (memory of a stopped sandbox)."""
    from moto.backends import get_backend

    for service in services:
        try:
            get_backend(service).pop(account_id, None)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass


# ---- process-wide patches -------------------------------------------------------------------------
def install() -> None:
    """Patch moto's classes once per process (additive: only what moto answered wrongly changes)."""
    global _installed
    with _lock:
        if _installed:
            return
        _install_percentiles()
        _install_rds_event_window()
        _install_target_health()
        _install_cloudtrail_lookup()
        _install_elasticache_events()
        _install_alarm_history()
        _installed = True


def percentile(values, p: float):
    """Nearest-rank percentile of ``values`` (``None`` when there are none)."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(data)))
    return data[min(rank, len(data)) - 1]


def _install_percentiles() -> None:
    from moto.cloudwatch.models import Statistics

    original = Statistics.get_statistics_for_type
    if getattr(original, "forensics_patched", False):
        return

    def get_statistics_for_type(self, stat: str):
        m = _PERCENTILE.match(stat or "")
        if m:
            return percentile(self.metric_single_values_list, float(m.group(1)))
        return original(self, stat)

    get_statistics_for_type.forensics_patched = True  # type: ignore[attr-defined]
    Statistics.get_statistics_for_type = get_statistics_for_type


def _utc(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:  # moto stamps naive UTC (utcnow())
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _install_rds_event_window() -> None:
    from moto.rds.models import RDSBackend

    original = RDSBackend.describe_events
    if getattr(original, "forensics_patched", False):
        return

    def describe_events(self, source_identifier=None, source_type=None, start_time=None, end_time=None,
                        duration=None, event_categories=None, **kwargs):
        events = original(self, source_identifier=source_identifier, source_type=source_type, **kwargs)
        start, end = _utc(start_time), _utc(end_time)
        if duration is not None and start is None:
            end = end or dt.datetime.now(dt.timezone.utc)
            start = end - dt.timedelta(minutes=int(duration))
        elif duration is not None and end is None:
            end = start + dt.timedelta(minutes=int(duration))
        if start is not None:
            events = [e for e in events if _utc(e.date) >= start]
        if end is not None:
            events = [e for e in events if _utc(e.date) <= end]
        if event_categories:
            wanted = set(event_categories)
            events = [e for e in events if wanted & set(e.event_categories)]
        return sorted(events, key=lambda e: _utc(e.date))

    describe_events.forensics_patched = True  # type: ignore[attr-defined]
    RDSBackend.describe_events = describe_events


def _install_target_health() -> None:
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    original = FakeTargetGroup.health_for
    if getattr(original, "forensics_patched", False):
        return

    def health_for(self, target, ec2_backend):
        planted = getattr(self, "forensics_health", {}).get(target["Id"])
        if planted is not None and target["Id"] in self.targets:
            state, reason, description = planted
            port = self.targets[target["Id"]].get("Port", self.port)
            return FakeHealthStatus(target["Id"], port, self.health_check_port, state, reason, description)
        return original(self, target, ec2_backend)

    health_for.forensics_patched = True  # type: ignore[attr-defined]
    FakeTargetGroup.health_for = health_for


def _install_elasticache_events() -> None:
    from moto.core.responses import ActionResult
    from moto.elasticache.responses import ElastiCacheResponse

    if getattr(getattr(ElastiCacheResponse, "describe_events", None), "forensics_patched", False):
        return

    def describe_events(self):
        events = list(getattr(self.elasticache_backend, "forensics_events", []))
        return ActionResult(elasticache_events_page(
            events, source_identifier=self._get_param("SourceIdentifier"),
            source_type=self._get_param("SourceType"), start_time=self._get_param("StartTime"),
            end_time=self._get_param("EndTime"), duration=self._get_int_param("Duration"),
            max_records=self._get_int_param("MaxRecords"), marker=self._get_param("Marker")))

    describe_events.forensics_patched = True  # type: ignore[attr-defined]
    ElastiCacheResponse.describe_events = describe_events


def elasticache_events_page(events: list[dict], *, source_identifier=None, source_type=None, start_time=None,
                            end_time=None, duration=None, max_records=None, marker=None) -> dict:
    """One ``DescribeEvents`` page of ``events`` (dicts in the API's shape), as ElastiCache serves it:
    oldest first, ``Duration`` minutes back from ``EndTime`` (or now) when no ``StartTime``, at most
    ``MaxRecords`` (20..100, default 100) per page, ``Marker`` naming the next page."""
    start, end = _utc(start_time), _utc(end_time)
    if duration is not None and start is None:
        end = end or dt.datetime.now(dt.timezone.utc)
        start = end - dt.timedelta(minutes=int(duration))
    selected = [e for e in events
                if (source_identifier is None or e["SourceIdentifier"] == source_identifier)
                and (source_type is None or e["SourceType"] == source_type)
                and (start is None or _utc(e["Date"]) >= start) and (end is None or _utc(e["Date"]) <= end)]
    selected.sort(key=lambda e: _utc(e["Date"]))
    size = min(max(int(max_records or 100), 20), 100)
    first = int(marker) if marker else 0
    page = selected[first:first + size]
    out: dict[str, Any] = {"Events": page}
    if first + size < len(selected):
        out["Marker"] = str(first + size)
    return out


def _install_cloudtrail_lookup() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse

    if getattr(getattr(CloudTrailResponse, "lookup_events", None), "forensics_patched", False):
        return

    def lookup_events(self):
        import json

        page = cloudtrail_lookup_page(
            list(getattr(self.cloudtrail_backend, "forensics_events", [])),
            lookup_attributes=self._get_param("LookupAttributes"), start_time=self._get_param("StartTime"),
            end_time=self._get_param("EndTime"), max_results=self._get_param("MaxResults"),
            next_token=self._get_param("NextToken"))
        return json.dumps(page)

    lookup_events.forensics_patched = True  # type: ignore[attr-defined]
    CloudTrailResponse.lookup_events = lookup_events


#: LookupEvents attribute keys and the record field each one matches
_CLOUDTRAIL_ATTRIBUTES = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName",
                          "EventSource", "AccessKeyId")


def cloudtrail_event(record: dict) -> dict:
    """A CloudTrail record (as delivered to S3) -> one ``LookupEvents`` event, as CloudTrail serves it."""
    import json

    ident = record.get("userIdentity") or {}
    issuer = ((ident.get("sessionContext") or {}).get("sessionIssuer") or {})
    arn = ident.get("arn") or ""
    username = ident.get("userName") or (arn.rsplit("/", 1)[-1] if ident.get("type") == "AssumedRole" else None) \
        or issuer.get("userName") or ident.get("invokedBy")
    resources = [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")} for r in record.get("resources") or []]
    out = {"EventId": record["eventID"], "EventName": record["eventName"],
           "ReadOnly": str(bool(record.get("readOnly"))).lower(), "EventTime": _utc(record["eventTime"]).timestamp(),
           "EventSource": record.get("eventSource"), "Resources": resources,
           "CloudTrailEvent": json.dumps(record, sort_keys=True)}
    if ident.get("accessKeyId"):
        out["AccessKeyId"] = ident["accessKeyId"]
    if username:
        out["Username"] = username
    return out


def cloudtrail_lookup_page(records: list[dict], *, lookup_attributes=None, start_time=None, end_time=None,
                           max_results=None, next_token=None) -> dict:
    """One ``LookupEvents`` page over ``records`` (CloudTrail records), as CloudTrail serves it: newest
    first, ``StartTime`` <= EventTime <= ``EndTime``, at most one lookup attribute, ``MaxResults`` 1..50
    (default 50), ``NextToken`` naming the next page."""
    from moto.core.exceptions import JsonRESTError

    attrs = list(lookup_attributes or [])
    if len(attrs) > 1:
        raise JsonRESTError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    size = int(max_results or 50)
    if not 1 <= size <= 50:
        raise JsonRESTError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
    start, end = _epoch_utc(start_time), _epoch_utc(end_time)
    if start is not None and end is not None and start > end:
        raise JsonRESTError("InvalidTimeRangeException", "StartTime must be before EndTime.")
    events = [cloudtrail_event(r) for r in records]
    if attrs:
        key, value = attrs[0].get("AttributeKey"), attrs[0].get("AttributeValue")
        if key not in _CLOUDTRAIL_ATTRIBUTES:
            raise JsonRESTError("InvalidLookupAttributesException", f"Invalid attribute key {key!r}.")
        if key in ("ResourceType", "ResourceName"):
            field = key
            events = [e for e in events if any(r.get(field) == value for r in e["Resources"])]
        else:
            events = [e for e in events if str(e.get(key)) == str(value)]
    events = [e for e in events if (start is None or e["EventTime"] >= start.timestamp())
              and (end is None or e["EventTime"] <= end.timestamp())]
    events.sort(key=lambda e: (e["EventTime"], e["EventId"]), reverse=True)
    first = int(next_token) if next_token else 0
    out: dict[str, Any] = {"Events": events[first:first + size]}
    if first + size < len(events):
        out["NextToken"] = str(first + size)
    return out


def _epoch_utc(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    return _utc(value)


def add_cloudtrail_events(cloudtrail_backend, records: list[dict]) -> None:
    """Feed CloudTrail records (dicts as delivered to S3) to ``LookupEvents`` of this account/region."""
    cloudtrail_backend.__dict__.setdefault("forensics_events", []).extend(records)


# ---- planting a past ------------------------------------------------------------------------------
def _aware(ts) -> dt.datetime:
    """pandas/datetime -> aware UTC datetime (what moto's serializers format correctly)."""
    if hasattr(ts, "to_pydatetime"):
        ts = ts.to_pydatetime()
    return _utc(ts)


def set_service_history(ecs_backend, cluster: str, service: str, *, deployments: list[dict[str, Any]],
                        events: list[dict[str, Any]], created_at=None, running_count: int | None = None,
                        pending_count: int | None = None) -> None:
    """Give an ECS service its deployments and events as describe_services returns them.

    ``deployments``: dicts in the API's shape (``id``, ``status``, ``taskDefinition``, ``createdAt``...);
    ``events``: dicts ``{id, createdAt, message}``. Events are served newest first, as ECS does.
    """
    svc = ecs_backend.services[f"{cluster}:{service}"]
    svc.deployments = [{k: (_aware(v) if k in ("createdAt", "updatedAt") else v) for k, v in d.items()}
                       for d in deployments]
    svc.events = sorted(({"id": e["id"], "createdAt": _aware(e["createdAt"]), "message": e["message"]}
                         for e in events), key=lambda e: e["createdAt"], reverse=True)
    if created_at is not None:
        svc.createdAt = _aware(created_at)
    if running_count is not None:
        svc.running_count = running_count
    if pending_count is not None:
        svc.pending_count = pending_count


class _RdsEvent:
    """Duck-typed like moto.rds.models.Event (what the serializer reads)."""

    def __init__(self, source_identifier, source_type, source_arn, message, categories, date):
        self.source_identifier = source_identifier
        self.source_type = source_type
        self.source_arn = source_arn
        self.message = message
        self.event_categories = list(categories)
        self.date = _aware(date)


def add_rds_event(rds_backend, instance_id: str, message: str, categories, date) -> None:
    db = rds_backend.databases[instance_id]
    rds_backend.events.append(_RdsEvent(instance_id, "db-instance", db.arn, message, categories, date))


def backdate_rds_instance(rds_backend, instance_id: str, created) -> None:
    """The instance and the events moto stamped at creation move to ``created``."""
    db = rds_backend.databases[instance_id]
    when = _aware(created)
    db.created = when
    db.instance_create_time = when
    for i, e in enumerate(e for e in rds_backend.events if e.source_identifier == instance_id):
        e.date = when + dt.timedelta(seconds=i)


def rekey_load_balancer(elbv2_backend, arn: str, lb_id: str) -> str:
    """Give a load balancer a fixed id (the last part of its ARN and of its CloudWatch dimension)."""
    return _rekey(elbv2_backend, elbv2_backend.load_balancers, arn, lb_id)


def rekey_target_group(elbv2_backend, arn: str, tg_id: str) -> str:
    """Give a target group a fixed id (the last part of its ARN and of its CloudWatch dimension)."""
    return _rekey(elbv2_backend, elbv2_backend.target_groups, arn, tg_id)


def _rekey(elbv2_backend, store: dict, arn: str, new_id: str) -> str:
    obj = store.pop(arn)
    new_arn = arn.rsplit("/", 1)[0] + "/" + new_id
    obj.arn = new_arn
    store[new_arn] = obj
    _retag(elbv2_backend, arn, new_arn)
    return new_arn


def _retag(elbv2_backend, old: str, new: str) -> None:
    tagging = getattr(elbv2_backend, "tagging_service", None)
    tags = getattr(tagging, "tags", None)
    if isinstance(tags, dict) and old in tags:
        tags[new] = tags.pop(old)


def set_target_health(elbv2_backend, target_group_arn: str, target_id: str, state: str,
                      reason: str | None = None, description: str | None = None) -> None:
    """What describe_target_health reports for a registered target (``healthy`` clears it)."""
    tg = elbv2_backend.target_groups[target_group_arn]
    planted = tg.__dict__.setdefault("forensics_health", {})
    if state == "healthy":
        planted.pop(target_id, None)
    else:
        planted[target_id] = (state, reason, description)


def add_elasticache_event(elasticache_backend, source_identifier: str, source_type: str, message: str,
                          date) -> None:
    """An event ``DescribeEvents`` returns (``source_type``: replication-group, cache-cluster...)."""
    planted = elasticache_backend.__dict__.setdefault("forensics_events", [])
    planted.append({"SourceIdentifier": source_identifier, "SourceType": source_type, "Message": message,
                    "Date": _aware(date)})


def set_task_stopped(ecs_backend, cluster: str, task_arn: str, *, started_at, stopped_at, stop_code: str,
                     exit_code: int | None = None, container_reason: str | None = None) -> None:
    """Give a task stopped with ``stop_task`` what ECS reports and moto leaves out: ``startedAt``,
    ``stoppingAt``/``stoppedAt`` in the past, ``stopCode`` and its container's exit code and reason."""
    task = next(t for arn, t in ecs_backend.tasks[cluster].items() if arn == task_arn or t.task_arn == task_arn)
    task.started_at = _aware(started_at)
    task.stopping_at = _aware(stopped_at) - dt.timedelta(seconds=1)
    task.stopped_at = _aware(stopped_at)
    task.stop_code = stop_code
    for c in task.containers:
        c.last_status = "STOPPED"
        c.exitCode = exit_code
        if container_reason:
            c.reason = container_reason


# ---- CloudWatch alarm history ---------------------------------------------------------------------
def _install_alarm_history() -> None:
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    if getattr(getattr(CloudWatchResponse, "describe_alarm_history", None), "forensics_patched", False):
        return

    def describe_alarm_history(self):
        params = self._get_params()
        return ActionResult(alarm_history_page(
            list(getattr(self.cloudwatch_backend, "forensics_alarm_history", [])),
            alarm_name=params.get("AlarmName"), alarm_types=params.get("AlarmTypes"),
            history_item_type=params.get("HistoryItemType"), start_date=params.get("StartDate"),
            end_date=params.get("EndDate"), max_records=params.get("MaxRecords"),
            next_token=params.get("NextToken"), scan_by=params.get("ScanBy")))

    describe_alarm_history.forensics_patched = True  # type: ignore[attr-defined]
    CloudWatchResponse.describe_alarm_history = describe_alarm_history


def alarm_history_page(items: list[dict], *, alarm_name=None, alarm_types=None, history_item_type=None,
                       start_date=None, end_date=None, max_records=None, next_token=None, scan_by=None) -> dict:
    """One ``DescribeAlarmHistory`` page of ``items`` (AlarmHistoryItem dicts), as CloudWatch serves it:
    metric alarms only unless ``AlarmTypes`` says otherwise, ``StartDate`` <= Timestamp <= ``EndDate``,
    newest first unless ``ScanBy=TimestampAscending``, ``MaxRecords`` 1..100 (default 100)."""
    from moto.cloudwatch.exceptions import InvalidParameterValue

    size = int(max_records or 100)
    if not 1 <= size <= 100:
        raise InvalidParameterValue("MaxRecords must be between 1 and 100.")
    if scan_by not in (None, "TimestampDescending", "TimestampAscending"):
        raise InvalidParameterValue(f"Invalid ScanBy {scan_by!r}.")
    types = set(alarm_types or ["MetricAlarm"])
    start, end = _epoch_utc(start_date), _epoch_utc(end_date)
    selected = [i for i in items
                if (alarm_name is None or i["AlarmName"] == alarm_name) and i["AlarmType"] in types
                and (history_item_type is None or i["HistoryItemType"] == history_item_type)
                and (start is None or i["Timestamp"] >= start) and (end is None or i["Timestamp"] <= end)]
    selected.sort(key=lambda i: (i["Timestamp"], i["AlarmName"]), reverse=scan_by != "TimestampAscending")
    first = int(next_token) if next_token else 0
    out: dict[str, Any] = {"AlarmHistoryItems": selected[first:first + size]}
    if first + size < len(selected):
        out["NextToken"] = str(first + size)
    return out


def add_alarm_history(cloudwatch_backend, alarm_name: str, old_state: str, new_state: str, date, *,
                      reason: str, reason_data: dict | None = None, alarm_type: str = "MetricAlarm") -> dict:
    """A ``StateUpdate`` history item ``DescribeAlarmHistory`` returns (shaped as CloudWatch writes it).
    When the alarm exists (``put_metric_alarm``) and this is its latest change, ``describe_alarms``
    shows the same state, reason and time."""
    import json

    when = _aware(date)
    item = {"AlarmName": alarm_name, "AlarmType": alarm_type, "Timestamp": when, "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {old_state} to {new_state}",
            "HistoryData": json.dumps({
                "version": "1.0",
                "oldState": {"stateValue": old_state},
                "newState": {"stateValue": new_state, "stateReason": reason,
                             **({"stateReasonData": reason_data} if reason_data else {})}})}
    cloudwatch_backend.__dict__.setdefault("forensics_alarm_history", []).append(item)
    alarm = getattr(cloudwatch_backend, "alarms", {}).get(alarm_name)
    if alarm is not None and (getattr(alarm, "forensics_state_at", None) is None or alarm.forensics_state_at <= when):
        alarm.forensics_state_at = when
        alarm.state_value = new_state
        alarm.state_reason = reason
        alarm.state_reason_data = json.dumps(reason_data or {})
        alarm.state_updated_timestamp = when
    return item
