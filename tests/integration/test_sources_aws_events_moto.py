"""ECS and RDS change events against the sandbox's moto server. Resources are created with boto3;
what no AWS API can set (a deployment's past, service events, a stop time) is set on moto's
in-process backend objects, as the sandbox does (shared/notes/sandbox-facts.md)."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from forensics.errors import SourceError
from forensics.sources import TS_DTYPE
from forensics.sources import aws_events as ev
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox


def _now():
    return pd.Timestamp.now(tz="UTC")


@pytest.fixture
def cluster(moto_server):
    """A fresh cluster with task definitions api:1 and api:2 (a unique family) and a service ``api``."""
    ecs = moto_server.client("ecs")
    name = f"c-{uuid.uuid4().hex[:8]}"
    family = f"api-{uuid.uuid4().hex[:6]}"
    ecs.create_cluster(clusterName=name)
    for image in ("app:1", "app:2"):
        ecs.register_task_definition(family=family, containerDefinitions=[
            {"name": "app", "image": image, "memory": 256, "essential": True}])
    ecs.create_service(cluster=name, serviceName="api", taskDefinition=f"{family}:1", desiredCount=2)
    ecs.create_service(cluster=name, serviceName="worker", taskDefinition=f"{family}:1", desiredCount=1)
    return {"name": name, "family": family, "ecs": ecs}


def _service(moto_server, cluster, service="api"):
    return moto_server.backend("ecs").services[f"{cluster['name']}:{service}"]


def test_deployment_created_through_boto3(cluster, aws_env):
    window = IncidentWindow(_now() - pd.Timedelta(minutes=10), _now() + pd.Timedelta(minutes=1))
    df = ev.ecs_deployments(cluster["name"], ["api"], window, aws=aws_env)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["kind"], row["source"], row["resource"]) == ("deployment", "ecs", f"{cluster['name']}/api")
    assert row["task_definition"] == f"{cluster['family']}:1" and row["status"] == "PRIMARY"
    assert f"{cluster['family']}:1" in row["message"] and row["rollout_state"] in row["message"]
    assert str(df["timestamp"].dtype) == TS_DTYPE and window.contains(row["timestamp"])


def test_deployment_before_the_window_is_kept(moto_server, cluster, aws_env):
    now = _now()
    svc = _service(moto_server, cluster)
    current = dict(svc.deployments[0])
    arn = current["taskDefinition"]
    svc.deployments = [
        {**current, "id": "ecs-svc/new", "taskDefinition": arn.replace(":1", ":2"), "status": "PRIMARY",
         "createdAt": (now - pd.Timedelta(minutes=40)).to_pydatetime(), "rolloutState": "IN_PROGRESS",
         "failedTasks": 4},
        {**current, "id": "ecs-svc/old", "status": "ACTIVE", "rolloutState": "COMPLETED",
         "createdAt": (now - pd.Timedelta(days=3)).to_pydatetime()},
    ]
    window = IncidentWindow(now - pd.Timedelta(minutes=30), now)  # the deploy started 10 min before it
    df = ev.ecs_deployments(cluster["name"], "api", window, aws=aws_env)
    assert df["id"].tolist() == ["ecs-svc/old", "ecs-svc/new"]
    new = df.iloc[1]
    assert new["task_definition"] == f"{cluster['family']}:2" and new["rollout_state"] == "IN_PROGRESS"
    assert new["failed_tasks"] == 4 and "4 failed tasks" in new["message"]
    earlier = IncidentWindow(now - pd.Timedelta(hours=2), now - pd.Timedelta(hours=1))
    assert ev.ecs_deployments(cluster["name"], "api", earlier, aws=aws_env)["id"].tolist() == ["ecs-svc/old"]
    assert len(ev.ecs_deployments(cluster["name"], "api", aws=aws_env)) == 2  # no window: all of them


def test_service_events_in_the_window(moto_server, cluster, aws_env):
    now = _now()
    svc = _service(moto_server, cluster)
    svc.events = [
        {"id": "e3", "createdAt": (now - pd.Timedelta(minutes=2)).to_pydatetime(),
         "message": "(service api) has reached a steady state."},
        {"id": "e2", "createdAt": (now - pd.Timedelta(minutes=20)).to_pydatetime(),
         "message": "(service api) (task 1) failed container health checks."},
        {"id": "e1", "createdAt": (now - pd.Timedelta(hours=5)).to_pydatetime(), "message": "old"},
    ]
    window = IncidentWindow(now - pd.Timedelta(minutes=30), now)
    df = ev.ecs_service_events(cluster["name"], ["api", "worker"], window, aws=aws_env)
    assert df["event_id"].tolist() == ["e2", "e3"]
    assert set(df["kind"]) == {"service-event"} and set(df["resource"]) == {f"{cluster['name']}/api"}
    assert str(df["timestamp"].dtype) == TS_DTYPE


def test_moto_services_have_no_events(cluster, aws_env):
    window = IncidentWindow(_now() - pd.Timedelta(hours=1), _now())
    df = ev.ecs_service_events(cluster["name"], ["api"], window, aws=aws_env)
    assert df.empty and list(df.columns) == list(ev.SERVICE_EVENT_COLUMNS)


def test_missing_service_is_a_source_error(cluster, aws_env):
    with pytest.raises(SourceError, match="not found: nope"):
        ev.ecs_deployments(cluster["name"], ["api", "nope"], aws=aws_env)


def test_stopped_tasks_with_reasons_across_describe_batches(moto_server, cluster, aws_env):
    ecs = cluster["ecs"]
    td = f"{cluster['family']}:2"

    def run(n, group):
        arns = []
        while n:
            k = min(n, 10)
            arns += [t["taskArn"] for t in ecs.run_task(cluster=cluster["name"], taskDefinition=td, count=k,
                                                        group=group, launchType="FARGATE")["tasks"]]
            n -= k
        return arns

    api = run(110, "service:api")
    worker = run(2, "service:worker")
    running = run(2, "service:api")
    for i, arn in enumerate(api):
        ecs.stop_task(cluster=cluster["name"], task=arn, reason=f"Essential container in task exited #{i}")
    for arn in worker:
        ecs.stop_task(cluster=cluster["name"], task=arn, reason="Scaling activity")
    # what ECS records and moto does not: a stop time, a stop code, the container's exit
    tasks = moto_server.backend("ecs").tasks[cluster["name"]]  # task ARN -> moto Task
    now = _now()
    for task_arn, task in tasks.items():
        if task_arn == api[0]:
            task.stopped_at = (now - pd.Timedelta(minutes=3)).to_pydatetime()
            task.stop_code = "EssentialContainerExited"
            task.containers[0].exitCode = 137
            task.containers[0].reason = "OutOfMemoryError: Container killed due to memory usage"
        elif task_arn == api[1]:
            task.stopped_at = (now - pd.Timedelta(hours=3)).to_pydatetime()  # before the window

    window = IncidentWindow(now - pd.Timedelta(minutes=30), now)
    df = ev.ecs_stopped_tasks(cluster["name"], ["api"], window, aws=aws_env)
    assert len(df) == 109  # 110 stopped api tasks, one outside the window; no worker, no running task
    assert set(df["task_arn"]) == set(api) - {api[1]}
    assert not set(df["task_arn"]) & set(worker + running)
    reasons = dict(zip(df["task_arn"], df["stopped_reason"], strict=True))
    assert reasons[api[57]] == "Essential container in task exited #57"
    assert set(df["kind"]) == {"task-stopped"} and set(df["resource"]) == {f"{cluster['name']}/api"}
    assert set(df["task_definition"]) == {td}
    first = df.iloc[0]  # the one with a stop time sorts first; the rest have none in moto (NaT)
    assert first["task_arn"] == api[0] and first["stop_code"] == "EssentialContainerExited"
    assert "app=137" in first["exit_codes"] and "OutOfMemoryError" in first["message"]
    assert df["timestamp"].iloc[1:].isna().all()
    assert str(df["timestamp"].dtype) == TS_DTYPE

    everything = ev.ecs_stopped_tasks(cluster["name"], None, window, aws=aws_env)  # whole cluster
    assert set(worker) <= set(everything["task_arn"])


def test_rds_events(moto_server, aws_env):
    db = f"db-{uuid.uuid4().hex[:8]}"
    moto_server.client("rds").create_db_instance(
        DBInstanceIdentifier=db, Engine="postgres", DBInstanceClass="db.t3.micro", MasterUsername="u",
        MasterUserPassword="sandbox-not-a-secret", AllocatedStorage=20)
    window = IncidentWindow(_now() - pd.Timedelta(minutes=5), _now() + pd.Timedelta(minutes=1))
    df = ev.rds_events(db, window, aws=aws_env)
    assert "DB instance created" in df["message"].tolist()
    assert set(df["kind"]) == {"rds-event"} and set(df["resource"]) == {db} and set(df["source"]) == {"rds"}
    assert df["timestamp"].is_monotonic_increasing and str(df["timestamp"].dtype) == TS_DTYPE
    assert "creation" in df["categories"].tolist()
    yesterday = IncidentWindow(_now() - pd.Timedelta(days=1, hours=1), _now() - pd.Timedelta(days=1))
    quiet = ev.rds_events(db, yesterday, aws=aws_env)
    assert quiet.empty and list(quiet.columns) == list(ev.RDS_EVENT_COLUMNS)
