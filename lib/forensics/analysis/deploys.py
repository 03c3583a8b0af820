"""ECS deployments gone wrong: which deployment failed, why its tasks stopped, what to roll back to.

Inputs are the change-event frames of :mod:`forensics.sources.aws_events` (``ecs_deployments``,
``ecs_stopped_tasks``). Pure functions; the ecs-deploy notebook calls them.
"""

from __future__ import annotations

import re

import pandas as pd

#: ECS's own words for a rollout that gave up (circuit breaker) or is stuck
FAILED_ROLLOUT = ("FAILED",)
_EXIT = re.compile(r"=(-?\d+)")


def stop_reason(row) -> str:
    """One task's stop reason as a short signature: ``stoppedReason``, the container's reason when it
    says more (``OutOfMemoryError: ...``) and the exit code(s): ``Essential container in task exited;
    OutOfMemoryError: Container killed due to memory usage [exit 137]``."""
    parts = [str(row.get("stopped_reason") or "no reason given")]
    reasons = row.get("container_reasons")
    if isinstance(reasons, str) and reasons:
        # "name: reason; name2: reason2" -> the reasons without container names
        parts += [r.split(": ", 1)[-1] for r in reasons.split("; ") if r]
    text = "; ".join(dict.fromkeys(parts))
    codes = _EXIT.findall(str(row.get("exit_codes") or ""))
    if codes:
        text += f" [exit {', '.join(dict.fromkeys(codes))}]"
    return text


def stop_reasons(stopped_tasks: pd.DataFrame, task_definition: str | None = None) -> dict[str, int]:
    """Stop reason -> number of stopped tasks (of ``task_definition`` when given), most first."""
    if stopped_tasks is None or stopped_tasks.empty:
        return {}
    sel = stopped_tasks
    if task_definition is not None:
        sel = sel[sel["task_definition"] == task_definition]
    counts = sel.apply(stop_reason, axis=1).value_counts() if len(sel) else pd.Series(dtype="int64")
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _failed_tasks_by_td(stopped_tasks: pd.DataFrame) -> pd.Series:
    if stopped_tasks is None or stopped_tasks.empty:
        return pd.Series(dtype="int64")
    codes = stopped_tasks["exit_codes"].fillna("").map(lambda s: [int(c) for c in _EXIT.findall(s)])
    bad = codes.map(lambda cs: any(c != 0 for c in cs)) | stopped_tasks["stop_code"].isin(
        ["EssentialContainerExited", "TaskFailedToStart"]) | stopped_tasks["stopped_reason"].fillna("").str.contains(
        "failed|exited|OutOfMemory|CannotPull", case=False, regex=True)
    return stopped_tasks[bad].groupby("task_definition").size()


def failed_deployment(deployments: pd.DataFrame, stopped_tasks: pd.DataFrame | None = None,
                      min_failed_tasks: int = 1) -> dict | None:
    """The most recent deployment that failed: rollout ``FAILED``, or tasks of its task definition
    failing (``failedTasks`` or stopped tasks with a non-zero exit / essential container exited) while
    it runs fewer tasks than desired. None when every deployment is healthy."""
    if deployments is None or deployments.empty:
        return None
    failing = _failed_tasks_by_td(stopped_tasks)
    rows = []
    for _, d in deployments.sort_values("timestamp", ascending=False).iterrows():
        stopped = int(failing.get(d["task_definition"], 0))
        failed = int(d["failed_tasks"]) if pd.notna(d.get("failed_tasks")) else 0
        short = (pd.notna(d.get("running_count")) and pd.notna(d.get("desired_count"))
                 and int(d["running_count"]) < int(d["desired_count"]))
        if d.get("rollout_state") in FAILED_ROLLOUT or (max(failed, stopped) >= min_failed_tasks and short):
            rows.append({"service": d["resource"], "task_definition": d["task_definition"], "deployment_id": d["id"],
                         "created_at": d["timestamp"], "status": d["status"], "rollout_state": d.get("rollout_state"),
                         "running": _int(d.get("running_count")), "desired": _int(d.get("desired_count")),
                         "failed_tasks": failed, "stopped_failing_tasks": stopped})
    return rows[0] if rows else None


def _int(v):
    return int(v) if v is not None and pd.notna(v) else None


def rollback_to(deployments: pd.DataFrame, failed: dict | None, stopped_tasks: pd.DataFrame | None = None
                ) -> str | None:
    """The task definition to roll back to: the same service's most recent other deployment that
    completed or still runs tasks, and whose tasks are not failing."""
    if failed is None or deployments is None or deployments.empty:
        return None
    failing = _failed_tasks_by_td(stopped_tasks)
    same = deployments[(deployments["resource"] == failed["service"])
                       & (deployments["task_definition"] != failed["task_definition"])]
    same = same[same["timestamp"].isna() | (same["timestamp"] <= failed["created_at"])]
    for _, d in same.sort_values("timestamp", ascending=False).iterrows():
        healthy = d.get("rollout_state") == "COMPLETED" or (pd.notna(d.get("running_count"))
                                                              and int(d["running_count"]) > 0)
        if healthy and int(failing.get(d["task_definition"], 0)) == 0:
            return str(d["task_definition"])
    return None


def stops_per_minute(stopped_tasks: pd.DataFrame) -> pd.DataFrame:
    """Stopped tasks per minute (rows) and stop reason (columns), for a chart."""
    if stopped_tasks is None or stopped_tasks.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    sel = stopped_tasks.dropna(subset=["timestamp"])
    reasons = sel.apply(stop_reason, axis=1)
    return pd.crosstab(sel["timestamp"].dt.floor("min"), reasons).astype("float64")
