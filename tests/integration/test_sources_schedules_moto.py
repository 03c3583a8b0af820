"""Scheduled jobs against a real moto server on loopback: EventBridge rules (schedules only, with targets),
Scheduler schedules (GetSchedule for the expression), heartbeat log lines and metrics, and the read-only
client refusing a write."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from forensics.errors import ReadOnlyViolation
from forensics.sources import TS_DTYPE, _aws_client, cloudwatch, schedules
from forensics.heartbeats import longest_overdue
from forensics.window import IncidentWindow, heartbeat_span

pytestmark = pytest.mark.sandbox


def test_scheduled_rules_with_targets_and_scheduler_schedules(moto_server, aws_env):
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    ev = moto_server.client("events")
    ev.put_rule(Name=f"{prefix}export", ScheduleExpression="rate(15 minutes)", State="ENABLED")
    ev.put_targets(Rule=f"{prefix}export", Targets=[{"Id": "1", "Arn": "arn:aws:lambda:eu-west-1:1:function:f"}])
    ev.put_rule(Name=f"{prefix}weekly", ScheduleExpression="cron(0 6 ? * MON *)", State="DISABLED")
    ev.put_rule(Name=f"{prefix}pattern", EventPattern='{"source": ["aws.ecs"]}')
    rules = schedules.eventbridge_rules(None, prefix, aws=aws_env)
    assert rules["name"].tolist() == [f"{prefix}export", f"{prefix}weekly"]  # the pattern rule is no schedule
    assert rules["period_s"].tolist()[0] == 900 and pd.isna(rules["period_s"].tolist()[1])
    assert rules["targets"].tolist()[0] == "arn:aws:lambda:eu-west-1:1:function:f"
    assert rules["state"].tolist() == ["ENABLED", "DISABLED"] and set(rules["kind"]) == {schedules.RULE}

    group = f"g{uuid.uuid4().hex[:6]}"
    sch = moto_server.client("scheduler")
    sch.create_schedule_group(Name=group)
    sch.create_schedule(Name="digest", GroupName=group, ScheduleExpression="rate(1 day)",
                        FlexibleTimeWindow={"Mode": "OFF"},
                        Target={"Arn": "arn:aws:lambda:eu-west-1:1:function:d", "RoleArn": "arn:aws:iam::1:role/r"})
    found = schedules.scheduler_schedules([group], aws=aws_env)
    assert found[["name", "group", "schedule_expression", "period_s", "targets"]].values.tolist() == [
        ["digest", group, "rate(1 day)", 86400, "arn:aws:lambda:eu-west-1:1:function:d"]]

    with pytest.raises(ReadOnlyViolation):
        _aws_client("events", aws_env).put_rule(Name="x", ScheduleExpression="rate(1 minute)")


def test_heartbeat_lines_and_metrics(moto_server, aws_env):
    now = pd.Timestamp.now(tz="UTC").floor("min")
    group, job = f"/t/{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:6]}"
    logs = moto_server.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    times = [now - pd.Timedelta(minutes=m) for m in (50, 40, 30)]
    events = [{"timestamp": int(t.value // 10**6), "message": f"INFO _maybe_sweep completed tenants={i}"}
              for i, t in enumerate(times)]
    events.insert(1, {"timestamp": int((times[0] + pd.Timedelta(minutes=1)).value // 10**6),
                      "message": "ERROR _maybe_sweep failed tenant_id=7"})
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)
    cw = moto_server.client("cloudwatch")
    cw.put_metric_data(Namespace="T/Jobs", MetricData=[
        {"MetricName": "Done", "Dimensions": [{"Name": "Job", "Value": job}], "Timestamp": t.to_pydatetime(),
         "Value": 1.0} for t in times[:2]])
    beats = schedules.heartbeats({"heartbeats": [
        {"name": "sweep", "log_group": group, "pattern": "_maybe_sweep completed", "period": "10m"},
        {"name": job, "metric": {"namespace": "T/Jobs", "name": "Done", "dimensions": {"Job": job}}, "period": "10m"}]})
    window = heartbeat_span(IncidentWindow(now - pd.Timedelta(minutes=20), now), "30min", longest_overdue(beats))
    lines = schedules.heartbeat_logs(beats, window, aws=aws_env)
    assert len(lines) == 3 and set(lines["job"]) == {"sweep"} and str(lines["timestamp"].dtype) == TS_DTYPE
    assert lines["timestamp"].tolist() == times
    metric = cloudwatch.get_metric_data(schedules.heartbeat_metric_queries(beats), window,
                                        schedules.heartbeat_metric_period(window), aws=aws_env)
    assert set(metric["label"]) == {job} and metric["value"].sum() == 2
