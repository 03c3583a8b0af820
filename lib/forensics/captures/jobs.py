"""Scheduled jobs: the declared heartbeats (log lines, metrics), EventBridge rules and Scheduler schedules,
and the schedules' invocation metrics. Whether a job went silent is analysis (forensics.analysis.jobs)."""

from __future__ import annotations

import pandas as pd

from .. import contracts
from ..sources import schedules
from ..sources.call import Call
from .core import LOGS, METRICS, Capture, declare, events, metrics

declare(Capture("job_heartbeat_logs", "logs", "FilterLogEvents",
                lambda inc: schedules.heartbeat_logs_call(inc.heartbeats, inc.heartbeat_window, aws=inc.aws),
                ("jobs.heartbeats",), schedules.HEARTBEAT_LOG_COLUMNS, LOGS,
                doc="Each job's heartbeat log lines (jobs.heartbeats with log_group and pattern) over the window "
                    "and, before it, two overdue spans of the slowest job."))
declare(Capture("job_heartbeat_metrics", "cloudwatch", "GetMetricData",
                lambda inc: schedules.heartbeat_metrics_call(inc.heartbeats, inc.heartbeat_window, aws=inc.aws),
                ("jobs.heartbeats",), contracts.METRIC_COLUMNS, METRICS,
                doc="Each job's heartbeat metric (jobs.heartbeats with metric), labelled with the job's name, over "
                    "the same span."))


def _jobs_section(inc) -> dict:
    return inc.env.get("jobs") or {}


def _rules_call(inc) -> Call:
    buses, prefix = _jobs_section(inc).get("event_buses"), _jobs_section(inc).get("rule_prefix")
    return Call(None, {"event_buses": buses or ["default"], "rule_prefix": prefix},
                lambda: schedules.eventbridge_rules(buses, prefix, aws=inc.aws))


def _schedules_call(inc) -> Call:
    groups = _jobs_section(inc).get("schedule_groups")
    return Call(None, {"groups": groups or "every group"},
                lambda: schedules.scheduler_schedules(groups, aws=inc.aws))


events("eventbridge_rules", "events:ListRules+ListTargetsByRule", ["jobs"], _rules_call,
       schedules.RULE_COLUMNS, source="schedules",
       doc="EventBridge rules with a schedule expression (state, targets) on the environment's buses.")
events("scheduler_schedules", "scheduler:ListSchedules+GetSchedule", ["jobs"], _schedules_call,
       schedules.RULE_COLUMNS, source="schedules",
       doc="EventBridge Scheduler schedules (expression, state, target) of the environment's groups.")


def schedule_frame(inc) -> pd.DataFrame:
    """The rules and the schedules in one frame."""
    return pd.concat([inc.pull("eventbridge_rules"), inc.pull("scheduler_schedules")], ignore_index=True)


metrics("schedule_invocation_metrics", ["jobs"], lambda inc: schedules.invocation_queries(schedule_frame(inc)),
        after=("eventbridge_rules", "scheduler_schedules"),
        doc="AWS/Events Invocations and FailedInvocations per scheduled rule; AWS/Scheduler attempts, target "
            "errors and dropped invocations per schedule group.")
