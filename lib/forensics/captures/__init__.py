"""Every capture a notebook can ask for, declared once: name, source, API or named query, the environment
sections it needs, the one call it makes (run and recorded alike), its columns, defaults and volatility.

A notebook reads ``pull.<name>(inc)`` (or ``inc.pull(name)``); the session looks the name up here
(:func:`get`), and :func:`call_for` interprets what it needs: a capture whose sections are absent is
recorded as needing them and fails with a one-line reason. Otherwise the capture builds one
:class:`~forensics.sources.call.Call` from the incident, which the capture store runs and records
(redacted, served to every notebook, replayable). The runner builds the run's plan from the captures the
selected notebooks pull (:func:`plan`; the notebooks' lists are read from their cells by
:mod:`forensics.notebooks`), most volatile first (RFC 3227; :func:`volatile`).

The machinery is :mod:`.core`; the declarations live one module per domain, imported below in the order
they are planned within one volatility. How to declare a capture: docs/captures.md.
"""

from __future__ import annotations

from ..sources.call import Call, failing
from .core import (COUNTERS, LIVE, LOGS, METRICS, TABLES, CAPTURES, Capture, call_for, declare, events, get,
                   log_events, metrics, plan, postgres_query, sections_lacking, volatile)

# The declarations, by domain (each module declares its captures when imported).
from . import postgres, service_metrics, logs, changes, cloudtrail, ecs, tables, audit, alb  # noqa: E402,I001
from . import jobs, log_volume, backups, certificates, pg_log  # noqa: E402,I001
from . import integrations  # noqa: E402,I001

#: The captures this package declares (a prefetch process can pull them; one declared at run time, in a notebook
#: or a test, exists only in the process that declared it).
PACKAGED: frozenset[str] = frozenset(CAPTURES)

#: Captures of change events, merged by :func:`forensics.pull.all_change_events` into one timeline (with the
#: jobs' events, which are analysis of the job captures: forensics.analysis.jobs.change_events).
CHANGE_EVENT_CAPTURES: tuple[str, ...] = (
    "ecs_deployments", "ecs_service_events", "ecs_stopped_tasks", "ecs_one_off_tasks", "rds_events",
    "rds_replica_events", "elasticache_events", "cloudtrail_events", "alarm_history", "rds_snapshots", "backup_jobs",
    "acm_certificates")
#: What the jobs' change events are computed from (pulled by all_change_events when jobs is configured).
JOB_EVENT_CAPTURES: tuple[str, ...] = (
    "job_heartbeat_logs", "job_heartbeat_metrics", "schedule_invocation_metrics", "eventbridge_rules",
    "scheduler_schedules")

__all__ = ["CAPTURES", "CHANGE_EVENT_CAPTURES", "COUNTERS", "JOB_EVENT_CAPTURES", "LIVE", "LOGS", "METRICS", "PACKAGED",
           "TABLES",
           "Call", "Capture", "call_for", "declare", "events", "failing", "get", "log_events", "metrics", "plan",
           "postgres_query", "sections_lacking", "volatile", "alb", "audit", "backups", "certificates", "changes",
           "cloudtrail", "ecs", "integrations", "jobs", "log_volume", "logs", "postgres", "service_metrics", "tables"]
