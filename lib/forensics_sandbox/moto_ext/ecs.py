"""ECS: a service's deployments and events in the past, and what a stopped task reports.

moto cannot give a service a history through any API (``createdAt`` is now, one deployment, no
events), and its ``StopTask`` sets only ``stoppedReason``: these set the rest on the backend objects.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .times import aware


def set_service_history(ecs_backend, cluster: str, service: str, *, deployments: list[dict[str, Any]],
                        events: list[dict[str, Any]], created_at=None, running_count: int | None = None,
                        pending_count: int | None = None) -> None:
    """Give an ECS service its deployments and events as describe_services returns them.

    ``deployments``: dicts in the API's shape (``id``, ``status``, ``taskDefinition``, ``createdAt``...);
    ``events``: dicts ``{id, createdAt, message}``. Events are served newest first, as ECS does.
    """
    svc = ecs_backend.services[f"{cluster}:{service}"]
    svc.deployments = [{k: (aware(v) if k in ("createdAt", "updatedAt") else v) for k, v in d.items()}
                       for d in deployments]
    svc.events = sorted(({"id": e["id"], "createdAt": aware(e["createdAt"]), "message": e["message"]}
                         for e in events), key=lambda e: e["createdAt"], reverse=True)
    if created_at is not None:
        svc.createdAt = aware(created_at)
    if running_count is not None:
        svc.running_count = running_count
    if pending_count is not None:
        svc.pending_count = pending_count


def set_task_stopped(ecs_backend, cluster: str, task_arn: str, *, started_at, stopped_at, stop_code: str,
                     exit_code: int | None = None, container_reason: str | None = None) -> None:
    """Give a task stopped with ``stop_task`` what ECS reports and moto leaves out: ``startedAt``,
    ``stoppingAt``/``stoppedAt`` in the past, ``stopCode`` and its container's exit code and reason."""
    task = next(t for arn, t in ecs_backend.tasks[cluster].items() if arn == task_arn or t.task_arn == task_arn)
    task.started_at = aware(started_at)
    task.stopping_at = aware(stopped_at) - dt.timedelta(seconds=1)
    task.stopped_at = aware(stopped_at)
    task.stop_code = stop_code
    for c in task.containers:
        c.last_status = "STOPPED"
        c.exitCode = exit_code
        if container_reason:
            c.reason = container_reason
