"""End to end on the moto server, as a user runs it (`forensics run --only api-errors`): a migration run as a
one-off ECS task (RunTask, group ``family:api-migrate``) three minutes before the 5xx onset, the service's last
deployment forty minutes before it. api-errors names the one-off task as the suspected change, not the
deployment; the environment has no CloudTrail and no logs section, and that costs the finding nothing (those
sources are not configured: their findings alone are unknown).

Real moto, real ECS calls (ListTasks/DescribeTasks through the `ecs_one_off_tasks` capture); the times moto cannot
give a task or a service through any API are set on its backend (``moto_ext``), as the sandbox does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]


@pytest.fixture(scope="module")
def migration(moto_server, tmp_path_factory):
    from forensics_sandbox import moto_ext as ext
    from forensics_sandbox.scenarios.common import create_alb, put_metrics

    tag = uuid.uuid4().hex[:8]
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=5)
    start = end - pd.Timedelta(minutes=90)
    onset = end - pd.Timedelta(minutes=40)
    deployed, migrated = onset - pd.Timedelta(minutes=40), onset - pd.Timedelta(minutes=3)

    lb_id, tg_id = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    create_alb(moto_server, cidr="10.71", lb=(f"sc-{tag}", lb_id), tg=(f"sc-{tag}", tg_id), port=8000)
    lb = f"app/sc-{tag}/{lb_id}"
    dims = [{"Name": "LoadBalancer", "Value": lb}]
    items = []
    for i, minute in enumerate(pd.date_range(start - pd.Timedelta(minutes=30), end, freq="1min")):
        requests = 600 + (i % 7) * 10
        errors = 3 + i % 3 if minute < onset else 180 + i % 11  # a handful a minute, then a third of them
        items += [{"MetricName": "RequestCount", "Dimensions": dims, "Timestamp": minute.to_pydatetime(),
                   "Value": float(requests), "Unit": "Count"},
                  {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Timestamp": minute.to_pydatetime(),
                   "Value": float(errors), "Unit": "Count"}]
    put_metrics(moto_server.client("cloudwatch"), "AWS/ApplicationELB", items)

    ecs, cluster = moto_server.client("ecs"), f"sc-{tag}"
    ecs.create_cluster(clusterName=cluster)
    td = {family: ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": family, "image": f"example/{family}:7", "memory": 512, "essential": True}])["taskDefinition"]
        ["taskDefinitionArn"] for family in ("api", "api-migrate")}
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition="api:1", desiredCount=1)
    backend = moto_server.backend("ecs")
    ext.set_service_history(backend, cluster, "api", deployments=[
        {"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": td["api"], "desiredCount": 1, "runningCount": 1,
         "pendingCount": 0, "failedTasks": 0, "createdAt": deployed, "updatedAt": deployed + pd.Timedelta("4min"),
         "launchType": "EC2", "rolloutState": "COMPLETED", "rolloutStateReason": "ECS deployment ecs-svc/1 completed."}],
        events=[{"id": "e1", "createdAt": deployed + pd.Timedelta("5min"),
                 "message": "(service api) has reached a steady state."}], created_at=deployed - pd.Timedelta(days=30))
    # the migration: RunTask's default group is family:api-migrate; and a service's task stopped later (no change)
    for family, group, started in (("api-migrate", None, migrated), ("api", "service:api", onset + pd.Timedelta("8min"))):
        arn = ecs.run_task(cluster=cluster, taskDefinition=f"{family}:1", launchType="FARGATE",
                           **({"group": group} if group else {}))["tasks"][0]["taskArn"]
        ecs.stop_task(cluster=cluster, task=arn, reason="Essential container in task exited")
        ext.set_task_stopped(backend, cluster, arn, started_at=started, stopped_at=started + pd.Timedelta("2min"),
                             stop_code="EssentialContainerExited", exit_code=0)

    d = tmp_path_factory.mktemp("suspected-change")
    (d / "env.yaml").write_text(textwrap.dedent(f"""\
        name: suspected-change-test
        aws: {{region: {moto_server.region}, profile: null, endpoint_url: "{moto_server.endpoint_url}"}}
        alb: {{load_balancer: "{lb}"}}
        ecs: {{cluster: "{cluster}", services: [api]}}
    """))
    (d / "incident.yaml").write_text(textwrap.dedent(f"""\
        incident: INC-MIGRATION
        title: 5xx after a migration
        severity: P2
        environment: {d / 'env.yaml'}
        window: {{start: "{start.isoformat()}", end: "{end.isoformat()}"}}
    """))
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "run", str(d / "incident.yaml"), "--only", "api-errors",
                           "--out", str(d / "evidence")], capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 1: a configured source left empty is named
    record = Path(proc.stdout.strip().splitlines()[-1])
    return {"findings": json.loads((record / "findings.json").read_text())["api-errors"], "record": record,
            "onset": onset, "migrated": migrated, "deployed": deployed}


def test_a_one_off_task_just_before_the_onset_is_the_suspected_change(migration):
    f = migration["findings"]
    assert f["status"] == "ok", f
    assert abs(pd.Timestamp(f["onset"]) - migration["onset"]) <= pd.Timedelta(minutes=2), f["onset"]
    change = f["suspected_change"]
    assert change is not None and "suspected_change" not in f["unknown"], f
    assert change["kind"] == "task-run", change
    assert pd.Timestamp(change["time"]) == migration["migrated"]
    assert "api-migrate:1" in change["message"] and change["resource"] == "family:api-migrate"


def test_the_deployment_and_the_one_off_task_are_both_in_the_record(migration):
    record = migration["record"]
    tasks = pd.read_parquet(record / "data" / "ecs_one_off_tasks.parquet")
    assert tasks["group"].tolist() == ["family:api-migrate"]  # the service's own task is not a one-off
    assert tasks["kind"].tolist() == ["task-run"] and tasks["timestamp"].tolist() == [migration["migrated"]]
    deployments = pd.read_parquet(record / "data" / "ecs_deployments.parquet")
    assert deployments["timestamp"].tolist() == [migration["deployed"]]
    # CloudTrail is not configured: not pulled, nothing unknown for it
    manifest = json.loads((record / "manifest.json").read_text())
    assert "cloudtrail_events" not in {c["name"] for c in manifest["captures"]}
