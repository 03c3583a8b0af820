"""Scenario "scheduled-jobs": the certification sweep stops, the backup export's schedule fails.

The story (runbook 000, *cert sweep stuck / not firing*): the API's scheduler loop runs ``_maybe_sweep``
every 5 minutes and logs ``_maybe_sweep completed`` for each pass. At T0+8 min one tenant's campaign
raises (a unique violation on ``cert_tasks``), the exception escapes the loop and the loop dies quietly:
no completed pass after T0+5, and the other tenants get no tasks either. Meanwhile the EventBridge rule
``scr-backup-export`` (rate 15 minutes, an ECS RunTask target) starts failing at T0+30 (its task
definition revision was deregistered by the deploy): ``FailedInvocations`` for every firing from then on,
and the export's own heartbeat metric (``SCR/Jobs JobCompleted``, Job=backup-export) stops after T0+15.

Healthy beside them: Celery beat's ``retention-purge`` (hourly) and ``invoice-reminders`` (every 15 min,
which skipped one beat at T0-15: a late run at T0, resumed since), a Scheduler schedule
``scr-invoice-digest`` (daily), and a weekly report rule that is DISABLED. An event-pattern rule is
there too: it is not a schedule and must be left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .played import Played, register
from .common import API_LOG_GROUP, epoch_ms, incident_fields, log_time, put_logs, put_metrics, timeline

SEED = 20261201
ACCOUNT = "123456789012"
REGION = "eu-west-1"
BEAT_LOG_GROUP = "/ecs/scr-beat-production"
SWEEP, REMINDERS, PURGE, EXPORT = "cert-sweep", "invoice-reminders", "retention-purge", "backup-export"
SWEEP_PATTERN = "_maybe_sweep completed"
EXPORT_RULE = "scr-backup-export"
REPORT_RULE = "scr-weekly-usage-report"
PATTERN_RULE = "scr-ecs-task-stopped"
DIGEST_SCHEDULE = "scr-invoice-digest"


def _line(ts: pd.Timestamp, level: str, logger: str, message: str) -> str:
    return f"{log_time(epoch_ms(ts))} {level:<5} [{logger}] {message}"


class Plan:
    """Every planted run, failure and datapoint, from ``now`` (no servers needed)."""

    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        rng = np.random.default_rng(seed)
        d = t["deploy"]
        jitter = lambda: pd.Timedelta(seconds=int(rng.integers(2, 40)))  # noqa: E731
        self.sweep_runs = [ts + jitter() for ts in pd.date_range(t["start"], d + pd.Timedelta(minutes=5), freq="5min")]
        self.sweep_failed_at = d + pd.Timedelta(minutes=8, seconds=12)
        self.reminder_runs = [ts + jitter() for ts in pd.date_range(t["start"], t["end"], freq="15min",
                                                                     inclusive="left")
                              if ts != d - pd.Timedelta(minutes=15)]
        self.late_reminder = next(r for r in self.reminder_runs if r >= d)
        self.purge_runs = [d - pd.Timedelta(minutes=50) + jitter(), d + pd.Timedelta(minutes=10) + jitter()]
        self.export_firings = list(pd.date_range(t["start"], t["end"], freq="15min", inclusive="left"))
        self.export_fail_from = d + pd.Timedelta(minutes=30)
        self.export_runs = [f + pd.Timedelta(minutes=4) for f in self.export_firings if f < self.export_fail_from]
        self.export_failures = [f for f in self.export_firings if f >= self.export_fail_from]

    def api_lines(self) -> list[tuple[int, str]]:
        out = []
        for i, ts in enumerate(self.sweep_runs):
            out.append((epoch_ms(ts), _line(ts, "INFO", "scr_api.scheduler",
                                       f"{SWEEP_PATTERN} tenants=12 campaigns=3 tasks_created={40 + i % 7} "
                                       f"duration_ms={850 + 37 * (i % 5)}")))
        f = self.sweep_failed_at
        out.append((epoch_ms(f), _line(f, "ERROR", "scr_api.scheduler",
                                  "_maybe_sweep failed tenant_id=t-0042 campaign_id=c-7f3a: "
                                  "psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "
                                  '"cert_tasks_campaign_id_identity_id_key"')))
        out.append((epoch_ms(f) + 4, _line(f + pd.Timedelta(milliseconds=4), "ERROR", "scr_api.scheduler",
                                      "scheduler loop exited: unhandled exception in _maybe_sweep")))
        return sorted(out)

    def beat_lines(self) -> list[tuple[int, str]]:
        out = [(epoch_ms(ts), _line(ts, "INFO", "celery.beat", "Scheduler: Sending due task invoice-reminders "
                                                          "(scr.tasks.send_invoice_reminders)"))
               for ts in self.reminder_runs]
        out += [(epoch_ms(ts), _line(ts, "INFO", "celery.beat", "Scheduler: Sending due task retention-purge "
                                                           "(scr.tasks.purge_expired_records)"))
                for ts in self.purge_runs]
        return sorted(out)

    def heartbeats(self) -> list[dict]:
        return [
            {"name": SWEEP, "log_group": API_LOG_GROUP, "pattern": SWEEP_PATTERN, "period": "5m"},
            {"name": REMINDERS, "log_group": BEAT_LOG_GROUP, "pattern": "Sending due task invoice-reminders",
             "period": "15m"},
            {"name": PURGE, "log_group": BEAT_LOG_GROUP, "pattern": "Sending due task retention-purge",
             "period": "1h"},
            {"name": EXPORT, "metric": {"namespace": "SCR/Jobs", "name": "JobCompleted",
                                        "dimensions": {"Job": EXPORT}, "stat": "Sum"}, "period": "15m"},
        ]


def load_aws(sb, plan: Plan) -> None:
    logs = sb.client("logs")
    put_logs(logs, API_LOG_GROUP, {"ecs/scr-api/scheduler-loop": plan.api_lines()})
    put_logs(logs, BEAT_LOG_GROUP, {"ecs/scr-beat/beat": plan.beat_lines()})

    ev = sb.client("events")
    ev.put_rule(Name=EXPORT_RULE, ScheduleExpression="rate(15 minutes)", State="ENABLED",
                Description="Hourly-ish export of the tenants' backups to S3 (ECS task)")
    ev.put_targets(Rule=EXPORT_RULE, Targets=[{
        "Id": "backup-export", "Arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/scr-production",
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/scr-events-run-task",
        "EcsParameters": {"TaskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/scr-backup-export:7"}}])
    ev.put_rule(Name=REPORT_RULE, ScheduleExpression="cron(0 6 ? * MON *)", State="DISABLED",
                Description="Weekly usage report")
    ev.put_rule(Name=PATTERN_RULE, EventPattern='{"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"]}',
                State="ENABLED")
    sb.client("scheduler").create_schedule(
        Name=DIGEST_SCHEDULE, ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:scr-invoice-digest",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/scr-scheduler"})

    cw = sb.client("cloudwatch")
    rule = [{"Name": "RuleName", "Value": EXPORT_RULE}]
    events = [{"MetricName": "Invocations", "Dimensions": rule, "Timestamp": f.to_pydatetime(), "Value": 1.0,
               "Unit": "Count"} for f in plan.export_firings]
    events += [{"MetricName": "FailedInvocations", "Dimensions": rule, "Timestamp": f.to_pydatetime(), "Value": 1.0,
                "Unit": "Count"} for f in plan.export_failures]
    digest_at = plan.t["deploy"] - pd.Timedelta(minutes=40)
    events_sched = [{"MetricName": "InvocationAttemptCount", "Dimensions": [{"Name": "ScheduleGroup", "Value": "default"}],
                     "Timestamp": digest_at.to_pydatetime(), "Value": 1.0, "Unit": "Count"}]
    done = [{"MetricName": "JobCompleted", "Dimensions": [{"Name": "Job", "Value": EXPORT}],
             "Timestamp": r.to_pydatetime(), "Value": 1.0, "Unit": "Count"} for r in plan.export_runs]
    for namespace, items in (("AWS/Events", events), ("AWS/Scheduler", events_sched), ("SCR/Jobs", done)):
        put_metrics(cw, namespace, items)


@register("scheduled-jobs")
def play(sb) -> Played:
    plan = Plan(sb.now)
    load_aws(sb, plan)
    t = plan.t
    minute = lambda ts: ts.floor("min")  # noqa: E731 - metric datapoints are per minute
    truth = {
        "scenario": "scheduled-jobs",
        "silent": {SWEEP: plan.sweep_runs[-1], EXPORT: minute(plan.export_runs[-1])},
        "periods_min": {SWEEP: 5, EXPORT: 15},
        "healthy": [PURGE, REMINDERS],
        "late_run": {"job": REMINDERS, "run": plan.late_reminder},
        "sweep_failed_at": plan.sweep_failed_at,
        "failed_rule": EXPORT_RULE, "failed_invocations": len(plan.export_failures),
        "first_failed": plan.export_failures[0], "disabled_rule": REPORT_RULE,
        "pattern_rule": PATTERN_RULE, "schedule": DIGEST_SCHEDULE,
    }
    incident = incident_fields("SANDBOX-SCHEDULED-JOBS", "Certification sweep not firing; backup export failing",
                               "P3", t)
    resources = {"jobs": {"heartbeats": plan.heartbeats(), "rule_prefix": "scr-"}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan"]
