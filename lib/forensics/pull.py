"""What notebooks call: ``pull.<name>(inc)`` for every capture declared in :mod:`forensics.captures`.

``pull.alb_metrics(inc)`` is ``inc.pull("alb_metrics")``: the frame is recorded with its API call or
query, served to every other notebook of the record, and replayable. Nothing here declares a capture;
:mod:`forensics.captures` does, once. The catalogue (:mod:`forensics.notebooks`) reads which captures a
notebook pulls from these calls in its cells.
"""

from __future__ import annotations

import functools

import pandas as pd

from . import captures, contracts

METRIC_COLUMNS = list(contracts.METRIC_COLUMNS)
LOG_COLUMNS = list(contracts.LOG_COLUMNS)
EVENT_COLUMNS = list(contracts.EVENT_COLUMNS)

#: The captures each of these helpers pulls (the catalogue counts them as the notebook's).
PULLS: dict[str, tuple[str, ...]] = {
    "all_change_events": captures.CHANGE_EVENT_CAPTURES + captures.JOB_EVENT_CAPTURES + ("crm_sync_logs",),
}


def all_change_events(inc) -> pd.DataFrame:
    """Every change-event capture the environment has the section for, and the jobs' change events when it
    declares jobs, merged and sorted."""
    from .analysis import timeline

    caps = [captures.get(n) for n in captures.CHANGE_EVENT_CAPTURES]
    frames = [inc.pull(c.name) for c in caps if not c.missing_sections(inc.env)]
    if inc.env.get("jobs"):
        frames.append(job_change_events(inc))
    if not captures.get("crm_sync_logs").missing_sections(inc.env):
        frames.append(crm_change_events(inc))
    return timeline.merge(*frames)


def crm_change_events(inc) -> pd.DataFrame:
    """Each CRM sync error class's first failure in the window, as change events
    (:func:`forensics.analysis.integrations.change_events` over the ``crm_sync_logs`` capture)."""
    from .analysis import integrations

    return integrations.change_events(integrations.by_class(integrations.failures(inc.pull("crm_sync_logs"))))


def job_change_events(inc) -> pd.DataFrame:
    """A job going silent (when its heartbeat became overdue) and a schedule's first failed invocation, as
    change events (:func:`forensics.analysis.jobs.change_events` over the job captures)."""
    from .analysis import jobs

    logs_frame, metric_frame = inc.pull("job_heartbeat_logs"), inc.pull("job_heartbeat_metrics")
    pulled = inc.captures["job_heartbeat_logs"].pulled_at if "job_heartbeat_logs" in inc.captures else None
    schedules = pd.concat([inc.pull("eventbridge_rules"), inc.pull("scheduler_schedules")], ignore_index=True)
    return jobs.change_events(inc.heartbeats, logs_frame, metric_frame, pulled, inc.pull("schedule_invocation_metrics"),
                              schedules, inc.window)


@functools.cache
def _puller(name: str):
    cap = captures.get(name)

    def pull(inc, **params) -> pd.DataFrame:
        return inc.pull(name, **params)

    pull.__name__ = pull.__qualname__ = name
    pull.__doc__ = cap.doc or f"The capture {name!r} ({cap.source}: {cap.api})."
    return pull


def __getattr__(name: str):
    if name in captures.CAPTURES:
        return _puller(name)
    raise AttributeError(f"module 'forensics.pull' has no capture {name!r} (declared in forensics.captures: "
                         f"{', '.join(sorted(captures.CAPTURES))})")


def __dir__():
    return sorted([*globals(), *captures.CAPTURES])
