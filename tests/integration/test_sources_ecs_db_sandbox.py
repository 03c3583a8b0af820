"""The ecs-deploy and db-health sources against the session sandbox (moto + PostgreSQL): target groups
found through DescribeServices, target health, stopped tasks with their planted stop times and exit codes
(moto_ext.set_task_stopped, read back through boto3), alembic's version table and enum types."""

from __future__ import annotations

import pandas as pd
import pytest

from forensics.sources import aws_events, ecs_health, pg_schema, postgres
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def env(sandbox):
    return sandbox.environment


def test_service_target_groups_and_health(env, sandbox):
    truth = sandbox.truth_for("ecs-deploy")
    tgs = ecs_health.service_target_groups(truth["cluster"], [truth["service"]], aws=env["aws"])
    assert tgs[["service", "target_group", "load_balancer"]].values.tolist() == [
        [truth["service"], truth["target_group"], truth["load_balancer"]]]
    health = ecs_health.target_health(tgs["target_group_arn"], aws=env["aws"])
    assert sorted(health["state"].tolist()) == ["healthy", "healthy", "unhealthy"]
    queries = ecs_health.target_group_queries(tgs)
    assert [q.metric for q in queries] == ["UnHealthyHostCount", "HealthyHostCount"]
    assert ecs_health.dimension("arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/a/b") == "app/a/b"


def test_stopped_tasks_carry_stop_times_and_exit_codes(env, sandbox):
    truth = sandbox.truth_for("ecs-deploy")
    t = sandbox.truth
    window = IncidentWindow(t["window_start"], t["window_end"])
    stopped = aws_events.ecs_stopped_tasks(truth["cluster"], [truth["service"]], window, aws=env["aws"])
    bad = stopped[stopped["task_definition"] == truth["failed_task_definition"]]
    assert len(bad) == 6 and bad["timestamp"].notna().all()
    assert (bad["timestamp"] >= truth["deploy_time"]).all()
    assert set(bad["exit_codes"]) == {"scr-worker=137", "scr-worker=1"}
    assert (bad["stop_code"] == "EssentialContainerExited").all()
    assert bad["container_reasons"].fillna("").str.contains("OutOfMemoryError").sum() == 4


def test_alembic_version_and_enums(env, sandbox):
    truth = sandbox.truth_for("db-health")
    with postgres.connect(env["postgres"]) as conn:
        alembic = pg_schema.alembic_version(conn)
        assert alembic["version_num"].tolist() == [truth["alembic_current"]] and alembic["table_exists"].all()
        missing = pg_schema.alembic_version(conn, "no_such_version_table")
        assert missing["table_exists"].tolist() == [False] and missing["version_num"].isna().all()
        enums = pg_schema.enums(conn)
    values = enums[enums["type"] == "invoice_status"]["value"].tolist()
    assert values == ["draft", "open", "paid", "void"]
    assert isinstance(enums["sort_order"].dtype, type(pd.Series([1.0]).dtype))
