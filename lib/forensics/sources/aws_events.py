"""Change/timeline events from ECS and RDS: ``[timestamp, source, resource, kind, message, ...]``.

Every function returns the five contract columns first, then its own detail columns, sorted by
``timestamp``. ``resource`` is ``<cluster>/<service>`` for ECS and the instance id for RDS.

Limits of the APIs (and of the moto sandbox) worth knowing during an incident:

- ``DescribeServices`` lists only the service's *current* deployments (PRIMARY and ACTIVE ones, plus
  recently finished ones); it also keeps only the last 100 service events.
- ECS keeps stopped tasks visible for about an hour: pull them early (order of volatility). A one-off
  task (a migration run with RunTask) stopped longer ago than that is seen only in CloudTrail (``RunTask``).
- moto: ``ListTasks`` ignores ``serviceName`` (the tasks are filtered here by their ``group``,
  ``service:<name>``, which is harmless on real AWS); stopped tasks carry no ``stoppedAt`` (their
  ``timestamp`` is then NaT and they are kept: ECS cannot place them in time); services have no
  events and ``DescribeEvents`` only creation/backup events unless the sandbox adds some.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .. import contracts
from ..errors import SourceError
from ..window import IncidentWindow
from . import _as_list, _aws_client, _aws_errors, _chunks, _empty, _typed

BASE = contracts.EVENT_COLUMNS

DEPLOYMENT_COLUMNS = {**BASE, "id": "str", "task_definition": "str", "status": "str", "rollout_state": "str",
                      "rollout_state_reason": "str", "updated_at": "ts", "desired_count": "Int64",
                      "running_count": "Int64", "pending_count": "Int64", "failed_tasks": "Int64",
                      "task_definition_arn": "str"}
SERVICE_EVENT_COLUMNS = {**BASE, "event_id": "str"}
STOPPED_TASK_COLUMNS = {**BASE, "task_arn": "str", "task_definition": "str", "group": "str",
                        "stopped_reason": "str", "stop_code": "str", "exit_codes": "str",
                        "container_reasons": "str", "last_status": "str", "started_at": "ts",
                        "stopping_at": "ts", "stopped_at": "ts"}
RDS_EVENT_COLUMNS = {**BASE, "categories": "str", "source_type": "str", "source_arn": "str"}

#: DescribeServices takes at most 10 services; DescribeTasks at most 100 tasks.
SERVICES_PER_CALL = 10
TASKS_PER_CALL = 100


def _family_revision(task_definition_arn: str | None) -> str | None:
    """``arn:aws:ecs:...:task-definition/api:42`` -> ``api:42``."""
    if not task_definition_arn:
        return None
    return str(task_definition_arn).rsplit("/", 1)[-1]


def _frame(rows: list[dict], schema: dict) -> pd.DataFrame:
    if not rows:
        return _empty(schema)
    df = _typed(pd.DataFrame(rows), schema)
    return df.sort_values("timestamp", kind="stable", na_position="last").reset_index(drop=True)


def _describe_services(ecs, cluster: str, services: list[str]) -> list[dict]:
    found: list[dict] = []
    for batch in _chunks(services, SERVICES_PER_CALL):
        with _aws_errors("ecs", f"DescribeServices in cluster {cluster}"):
            resp = ecs.describe_services(cluster=cluster, services=batch)
        failures = resp.get("failures") or []
        if failures:
            what = ", ".join(f"{(f.get('arn') or '').rsplit('/', 1)[-1]} ({f.get('reason')})"
                             for f in failures)
            raise SourceError("ecs", f"DescribeServices in cluster {cluster}: not found: {what}")
        found += resp.get("services") or []
    return found


def ecs_deployments(cluster: str, services: str | Iterable[str], window: IncidentWindow | None = None, *,
                    aws: dict | None = None, client=None, config=None) -> pd.DataFrame:
    """One row per deployment the services list, kind ``deployment``, timestamp = ``createdAt``.

    With a ``window``, deployments created after its end are left out; deployments created *before*
    its start are kept on purpose — a deploy just before the incident is the classic culprit.
    """
    names = _as_list(services, "services")
    if not names:
        return _empty(DEPLOYMENT_COLUMNS)
    ecs = _aws_client("ecs", aws, client, config)
    rows = []
    for svc in _describe_services(ecs, cluster, names):
        name = svc.get("serviceName") or ""
        for d in svc.get("deployments") or []:
            created = d.get("createdAt")
            if window is not None and created is not None and pd.Timestamp(created) >= window.end:
                continue
            td = _family_revision(d.get("taskDefinition"))
            rollout = d.get("rolloutState")
            msg = f"{td} {d.get('status')} (deployment {d.get('id')})"
            if rollout:
                msg += f", rollout {rollout}"
            if d.get("rolloutStateReason"):
                msg += f" ({d['rolloutStateReason']})"
            msg += f"; running {d.get('runningCount')}/{d.get('desiredCount')}"
            if d.get("failedTasks"):
                msg += f", {d['failedTasks']} failed tasks"
            rows.append({
                "timestamp": created, "source": "ecs", "resource": f"{cluster}/{name}", "kind": contracts.DEPLOYMENT,
                "message": msg, "id": d.get("id"), "task_definition": td, "status": d.get("status"),
                "rollout_state": rollout, "rollout_state_reason": d.get("rolloutStateReason"),
                "updated_at": d.get("updatedAt"), "desired_count": d.get("desiredCount"),
                "running_count": d.get("runningCount"), "pending_count": d.get("pendingCount"),
                "failed_tasks": d.get("failedTasks"), "task_definition_arn": d.get("taskDefinition"),
            })
    return _frame(rows, DEPLOYMENT_COLUMNS)


def ecs_service_events(cluster: str, services: str | Iterable[str], window: IncidentWindow, *,
                       aws: dict | None = None, client=None, config=None) -> pd.DataFrame:
    """The services' event messages (``DescribeServices`` ``events``) in ``window``;
    kind ``service-event``."""
    names = _as_list(services, "services")
    if not names:
        return _empty(SERVICE_EVENT_COLUMNS)
    ecs = _aws_client("ecs", aws, client, config)
    rows = []
    for svc in _describe_services(ecs, cluster, names):
        name = svc.get("serviceName") or ""
        for e in svc.get("events") or []:
            created = e.get("createdAt")
            if created is None or not window.contains(pd.Timestamp(created)):
                continue
            rows.append({"timestamp": created, "source": "ecs", "resource": f"{cluster}/{name}",
                         "kind": contracts.SERVICE_EVENT, "message": e.get("message"), "event_id": e.get("id")})
    return _frame(rows, SERVICE_EVENT_COLUMNS)


def _task_row(cluster: str, task: dict) -> dict:
    group = task.get("group") or ""
    service = group.split(":", 1)[1] if group.startswith("service:") else None
    containers = task.get("containers") or []
    exit_codes = "; ".join(f"{c.get('name')}={c['exitCode']}" for c in containers
                           if c.get("exitCode") is not None)
    reasons = "; ".join(f"{c.get('name')}: {c['reason']}" for c in containers if c.get("reason"))
    ts = task.get("stoppedAt") or task.get("stoppingAt") or task.get("executionStoppedAt")
    td = _family_revision(task.get("taskDefinitionArn"))
    task_id = (task.get("taskArn") or "").rsplit("/", 1)[-1]
    msg = f"task {task_id[:12]} ({td}) stopped: {task.get('stoppedReason') or 'no reason given'}"
    if task.get("stopCode"):
        msg += f" [{task['stopCode']}]"
    if reasons:
        msg += f"; {reasons}"
    if exit_codes:
        msg += f"; exit codes {exit_codes}"
    return {
        "timestamp": ts, "source": "ecs", "resource": f"{cluster}/{service}" if service else cluster,
        "kind": contracts.TASK_STOPPED, "message": msg, "task_arn": task.get("taskArn"), "task_definition": td,
        "group": group or None, "stopped_reason": task.get("stoppedReason") or None,
        "stop_code": task.get("stopCode"), "exit_codes": exit_codes or None,
        "container_reasons": reasons or None,
        "last_status": task.get("lastStatus"), "started_at": task.get("startedAt"),
        "stopping_at": task.get("stoppingAt"), "stopped_at": task.get("stoppedAt"),
    }


def ecs_stopped_tasks(cluster: str, services: str | Iterable[str] | None, window: IncidentWindow, *,
                      aws: dict | None = None, client=None, config=None) -> pd.DataFrame:
    """Stopped tasks of the services (of the whole cluster when ``services`` is empty) whose stop
    time falls in ``window``; kind ``task-stopped``, with stopped_reason, stop_code, exit codes and
    container reasons. Tasks without any stop time (moto) are kept, timestamp NaT."""
    names = _as_list(services, "services")
    listings = [{"desiredStatus": "STOPPED", **({"serviceName": n} if n else {})} for n in names or [None]]
    groups = {f"service:{n}" for n in names}
    rows = []
    for task in _described_tasks(_aws_client("ecs", aws, client, config), cluster, listings):
        if groups and task.get("group") not in groups:
            continue
        row = _task_row(cluster, task)
        if row["timestamp"] is not None and not window.contains(pd.Timestamp(row["timestamp"])):
            continue
        rows.append(row)
    return _frame(rows, STOPPED_TASK_COLUMNS)


def _described_tasks(ecs, cluster: str, listings: list[dict]):
    """Every task ``ListTasks`` returns for each of ``listings`` (its filters), once, as ``DescribeTasks``
    describes it (``TASKS_PER_CALL`` at a time)."""
    arns: list[str] = []
    for args in listings:
        with _aws_errors("ecs", f"ListTasks in cluster {cluster}"):
            for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, **args):
                arns += page.get("taskArns") or []
    for batch in _chunks(list(dict.fromkeys(arns)), TASKS_PER_CALL):
        with _aws_errors("ecs", f"DescribeTasks in cluster {cluster}"):
            resp = ecs.describe_tasks(cluster=cluster, tasks=batch)
        yield from resp.get("tasks") or []


def ecs_one_off_tasks(cluster: str, window: IncidentWindow, *, aws: dict | None = None, client=None,
                      config=None) -> pd.DataFrame:
    """The cluster's tasks that no service started (``group`` not ``service:<name>``: RunTask's default is
    ``family:<name>``; a migration, a backfill, a script), stopped or still running, that started in
    ``window``; kind ``task-run``, timestamp = ``startedAt`` (else ``createdAt``: the change is when it
    began), with the stopped-task columns (a running task has no stop time). A task with no time at all
    (moto) is kept, timestamp NaT."""
    ecs = _aws_client("ecs", aws, client, config)
    rows = []
    for task in _described_tasks(ecs, cluster, [{"desiredStatus": "STOPPED"}, {"desiredStatus": "RUNNING"}]):
        if (task.get("group") or "").startswith("service:"):
            continue
        started = task.get("startedAt") or task.get("createdAt")
        if started is not None and not window.contains(pd.Timestamp(started)):
            continue
        row = _task_row(cluster, task)
        td = row["task_definition"]
        stopped = task.get("lastStatus") == "STOPPED"
        state = (f"stopped: {row['stopped_reason'] or 'no reason given'}" if stopped
                 else (task.get("lastStatus") or "running").lower())
        msg = f"one-off task {td} ({task.get('group') or 'no group'}), {state}"
        if row["exit_codes"]:
            msg += f"; exit codes {row['exit_codes']}"
        rows.append({**row, "timestamp": started, "resource": cluster, "kind": contracts.TASK_RUN,
                     "message": msg})
    return _frame(rows, STOPPED_TASK_COLUMNS)


def rds_events(instance: str, window: IncidentWindow, *, aws: dict | None = None, client=None,
               config=None) -> pd.DataFrame:
    """RDS events of the DB instance in ``window`` (``DescribeEvents``, paginated); kind ``rds-event``.

    RDS keeps events for 14 days.
    """
    rds = _aws_client("rds", aws, client, config)
    rows = []
    args = {"SourceIdentifier": instance, "SourceType": "db-instance",
            "StartTime": window.start.to_pydatetime(), "EndTime": window.end.to_pydatetime()}
    with _aws_errors("rds", f"DescribeEvents for {instance}"):
        for page in rds.get_paginator("describe_events").paginate(**args):
            for e in page.get("Events") or []:
                date = e.get("Date")
                if date is None or not window.contains(pd.Timestamp(date)):
                    continue
                rows.append({"timestamp": date, "source": "rds",
                             "resource": e.get("SourceIdentifier") or instance,
                             "kind": contracts.RDS_EVENT, "message": e.get("Message"),
                             "categories": ", ".join(e.get("EventCategories") or []) or None,
                             "source_type": e.get("SourceType"), "source_arn": e.get("SourceArn")})
    return _frame(rows, RDS_EVENT_COLUMNS)
