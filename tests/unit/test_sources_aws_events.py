"""ECS/RDS change events without a server: paging and batching through botocore's Stubber on real
read-only clients (requests validated against the service models), frame shape, window rules."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.stub import ANY, Stubber

from forensics import _aws
from forensics.errors import SourceError
from forensics.sources import TS_DTYPE
from forensics.sources import aws_events as ev
from forensics.window import IncidentWindow

WINDOW = IncidentWindow("2026-05-30T09:00:00Z", "2026-05-30T10:00:00Z")
OFFLINE = {"region": "eu-west-1", "profile": None, "endpoint_url": "http://127.0.0.1:9"}
UTC = dt.UTC
ARN = "arn:aws:ecs:eu-west-1:123456789012"
_CLIENTS: dict = {}


def _client(service):
    if service not in _CLIENTS:
        _CLIENTS[service] = _aws.client(service, OFFLINE)
    return _CLIENTS[service]


def _t(h, m):
    return dt.datetime(2026, 5, 30, h, m, tzinfo=UTC)


def _task(i: int, stopped_at=None, group="service:api"):
    task = {"taskArn": f"{ARN}:task/c/{i:032x}", "taskDefinitionArn": f"{ARN}:task-definition/api:7",
            "group": group, "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
            "stoppedReason": "Essential container in task exited", "stopCode": "EssentialContainerExited",
            "containers": [{"name": "app", "exitCode": 137, "reason": "OutOfMemoryError: Container killed"},
                           {"name": "sidecar", "exitCode": 0}]}
    if stopped_at:
        task["stoppedAt"] = stopped_at
    return task


def test_stopped_tasks_pages_list_and_describes_in_batches_of_100():
    ecs = _client("ecs")
    arns = [_task(i)["taskArn"] for i in range(150)]
    with Stubber(ecs) as stub:
        listing = {"cluster": "c", "serviceName": "api", "desiredStatus": "STOPPED"}
        stub.add_response("list_tasks", {"taskArns": arns[:100], "nextToken": "n2"}, listing)
        stub.add_response("list_tasks", {"taskArns": arns[100:]}, {**listing, "nextToken": "n2"})
        stub.add_response("describe_tasks", {"tasks": [_task(i, _t(9, 30)) for i in range(100)],
                                             "failures": []}, {"cluster": "c", "tasks": arns[:100]})
        stub.add_response("describe_tasks", {"tasks": [_task(i, _t(9, 40)) for i in range(100, 150)],
                                             "failures": []}, {"cluster": "c", "tasks": arns[100:]})
        df = ev.ecs_stopped_tasks("c", ["api"], WINDOW, client=ecs)
        stub.assert_no_pending_responses()
    assert len(df) == 150
    assert list(df.columns[:5]) == ["timestamp", "source", "resource", "kind", "message"]
    row = df.iloc[0]
    assert (row["kind"], row["resource"], row["source"]) == ("task-stopped", "c/api", "ecs")
    assert row["stopped_reason"] == "Essential container in task exited"
    assert row["stop_code"] == "EssentialContainerExited"
    assert row["exit_codes"] == "app=137; sidecar=0"
    assert "OutOfMemoryError" in row["container_reasons"] and "OutOfMemoryError" in row["message"]
    assert row["task_definition"] == "api:7"
    assert str(df["timestamp"].dtype) == TS_DTYPE and df["timestamp"].is_monotonic_increasing


def test_stopped_tasks_outside_the_window_or_other_services_are_left_out():
    ecs = _client("ecs")
    tasks = [_task(0, _t(8, 59)), _task(1, _t(9, 0)), _task(2, _t(10, 0)),
             _task(3, _t(9, 5), "service:worker"), _task(4, None)]
    with Stubber(ecs) as stub:
        stub.add_response("list_tasks", {"taskArns": [t["taskArn"] for t in tasks]})
        stub.add_response("describe_tasks", {"tasks": tasks})
        df = ev.ecs_stopped_tasks("c", "api", WINDOW, client=ecs)
    assert [a[-1] for a in df["task_arn"]] == ["1", "4"]  # [start, end); no stop time: kept, NaT last
    assert df["timestamp"].isna().tolist() == [False, True]


def test_deployments_keep_the_ones_before_the_window():
    ecs = _client("ecs")
    deployments = [
        {"id": "ecs-svc/new", "status": "PRIMARY", "taskDefinition": f"{ARN}:task-definition/api:8",
         "createdAt": _t(8, 55), "updatedAt": _t(9, 10), "rolloutState": "IN_PROGRESS",
         "rolloutStateReason": "ECS deployment ecs-svc/new in progress.", "desiredCount": 4,
         "runningCount": 1, "pendingCount": 3, "failedTasks": 6},
        {"id": "ecs-svc/old", "status": "ACTIVE", "taskDefinition": f"{ARN}:task-definition/api:7",
         "createdAt": _t(6, 0), "rolloutState": "COMPLETED", "desiredCount": 4, "runningCount": 3},
        {"id": "ecs-svc/after", "status": "PRIMARY", "taskDefinition": f"{ARN}:task-definition/api:9",
         "createdAt": _t(10, 0), "rolloutState": "IN_PROGRESS"},
    ]
    with Stubber(ecs) as stub:
        stub.add_response("describe_services",
                          {"services": [{"serviceName": "api", "deployments": deployments}], "failures": []},
                          {"cluster": "c", "services": ["api"]})
        df = ev.ecs_deployments("c", ["api"], WINDOW, client=ecs)
    assert df["id"].tolist() == ["ecs-svc/old", "ecs-svc/new"]  # sorted by createdAt; after the window: out
    new = df.iloc[1]
    assert (new["task_definition"], new["status"]) == ("api:8", "PRIMARY")
    assert new["rollout_state"] == "IN_PROGRESS"
    assert "api:8" in new["message"] and "IN_PROGRESS" in new["message"] and "6 failed" in new["message"]
    assert new["failed_tasks"] == 6 and str(df["desired_count"].dtype) == "Int64"
    assert new["kind"] == "deployment" and new["resource"] == "c/api"


def test_describe_services_batches_of_ten_and_reports_missing_services():
    ecs = _client("ecs")
    names = [f"s{i}" for i in range(12)]
    with Stubber(ecs) as stub:
        stub.add_response("describe_services", {"services": [{"serviceName": n} for n in names[:10]]},
                          {"cluster": "c", "services": names[:10]})
        stub.add_response("describe_services", {"services": [{"serviceName": "s10"}], "failures": [
            {"arn": f"{ARN}:service/c/s11", "reason": "MISSING"}]}, {"cluster": "c", "services": names[10:]})
        with pytest.raises(SourceError, match="s11 .MISSING."):
            ev.ecs_service_events("c", names, WINDOW, client=ecs)
        stub.assert_no_pending_responses()


def test_service_events_in_window_only():
    ecs = _client("ecs")
    events = [{"id": "e3", "createdAt": _t(10, 1), "message": "late"},
              {"id": "e2", "createdAt": _t(9, 20), "message": "(service api) has reached a steady state."},
              {"id": "e1", "createdAt": _t(9, 10), "message": "(service api) has started 2 tasks"},
              {"id": "e0", "createdAt": _t(8, 0), "message": "early"}]
    with Stubber(ecs) as stub:
        stub.add_response("describe_services", {"services": [{"serviceName": "api", "events": events}]})
        df = ev.ecs_service_events("c", "api", WINDOW, client=ecs)
    assert df["event_id"].tolist() == ["e1", "e2"]
    assert set(df["kind"]) == {"service-event"}


def test_rds_events_paginate_and_filter_to_the_window():
    rds = _client("rds")
    e = {"SourceIdentifier": "db1", "SourceType": "db-instance",
         "EventCategories": ["failover", "availability"],
         "SourceArn": "arn:aws:rds:eu-west-1:123456789012:db:db1"}
    asked = {"SourceIdentifier": "db1", "SourceType": "db-instance", "StartTime": ANY, "EndTime": ANY}
    with Stubber(rds) as stub:
        stub.add_response("describe_events", {"Events": [
            {**e, "Message": "Multi-AZ failover started", "Date": _t(9, 12)}], "Marker": "m2"}, asked)
        stub.add_response("describe_events", {"Events": [
            {**e, "Message": "Multi-AZ failover completed", "Date": _t(9, 14)},
            {**e, "Message": "x", "Date": _t(11, 0)}]}, {**asked, "Marker": "m2"})
        df = ev.rds_events("db1", WINDOW, client=rds)
        stub.assert_no_pending_responses()
    assert df["message"].tolist() == ["Multi-AZ failover started", "Multi-AZ failover completed"]
    assert df["categories"].iloc[0] == "failover, availability"
    assert set(df["kind"]) == {"rds-event"} and set(df["resource"]) == {"db1"}


@pytest.mark.parametrize("fn, schema", [
    (lambda c: ev.ecs_deployments("c", [], WINDOW, client=c), ev.DEPLOYMENT_COLUMNS),
    (lambda c: ev.ecs_service_events("c", [], WINDOW, client=c), ev.SERVICE_EVENT_COLUMNS),
])
def test_empty_frames_have_contract_columns(fn, schema):
    df = fn(_client("ecs"))
    assert list(df.columns) == list(schema) and len(df) == 0
    assert str(df["timestamp"].dtype) == TS_DTYPE


def test_empty_stopped_tasks_and_rds_events():
    ecs, rds = _client("ecs"), _client("rds")
    with Stubber(ecs) as s1, Stubber(rds) as s2:
        s1.add_response("list_tasks", {"taskArns": []})
        s2.add_response("describe_events", {"Events": []})
        a = ev.ecs_stopped_tasks("c", ["api"], WINDOW, client=ecs)
        b = ev.rds_events("db1", WINDOW, client=rds)
    assert list(a.columns) == list(ev.STOPPED_TASK_COLUMNS) and a.empty
    assert list(b.columns) == list(ev.RDS_EVENT_COLUMNS) and b.empty
    assert str(a["stopped_at"].dtype) == TS_DTYPE
