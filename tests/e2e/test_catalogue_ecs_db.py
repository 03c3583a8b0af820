"""End to end: `forensics run --only ecs-deploy --only slow-queries --only db-health` on the session sandbox
(every scenario in one sandbox) finds what the ecs-deploy, slow-queries and db-health scenarios planted."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]
NOTEBOOKS = ("ecs-deploy", "slow-queries", "db-health")


def test_ecs_deploy_finds_the_failed_deployment_its_stop_reasons_and_the_rollback(findings, sandbox):
    f, truth = findings["ecs-deploy"], sandbox.truth_for("ecs-deploy")
    assert f["status"] == "ok", f
    failed = f["failed_deployment"]
    assert failed["task_definition"] == truth["failed_task_definition"]
    assert failed["deployment_id"] == truth["deployment_id"]
    assert failed["service"] == f"{truth['cluster']}/{truth['service']}"
    assert failed["running"] == 0 and failed["failed_tasks"] == sum(truth["stop_reasons"].values())
    assert f["stop_reasons"] == truth["stop_reasons"]
    assert any("OutOfMemoryError" in r and "exit 137" in r for r in f["stop_reasons"])
    assert f["rollback_to"] == truth["rollback_to"]


def test_slow_queries_finds_the_regressed_lookup_and_the_billing_blocker(findings, sandbox):
    f, truth = findings["slow-queries"], sandbox.truth_for("slow-queries")
    assert f["status"] == "ok", f
    mine = [r for r in f["regressed"] if truth["statement"] in r["query"]]
    assert mine, f["regressed"]
    assert mine[0]["ratio"] >= 10 and mine[0]["calls"] >= 1
    assert mine[0]["ratio"] == max(r["ratio"] for r in f["regressed"]), "the lost index is the worst regression"
    top = [s for s in f["top_statements"] if truth["statement"] in s["query"]]
    assert top and top[0]["calls"] >= 1 and top[0]["total_ms"] > 0 and isinstance(top[0]["queryid"], int)
    assert f["stats_reset_or_evicted"] is truth["stats_reset_or_evicted"]
    blocker = next(b for b in f["blockers"] if b["pid"] == truth["blocker_pid"])
    assert blocker["application_name"] == truth["blocker_app"] and blocker["waiting"] >= 1
    # the endless slow loop runs at the lowest priority (the one-off fast history before it does not)
    assert os.getpriority(os.PRIO_PROCESS, truth["lookup_pid"]) == 19


def test_db_health_finds_storage_lag_events_and_schema_drift(findings, sandbox):
    f, truth = findings["db-health"], sandbox.truth_for("db-health")
    assert f["status"] == "ok", f
    assert f["storage_hours_to_full"] == pytest.approx(truth["storage_hours_to_full"], rel=0.1)
    assert f["replica_lag_peak_s"] == pytest.approx(truth["replica_lag_peak_s"])
    assert {e["message"] for e in f["rds_events"]} >= set(truth["rds_event_messages"])
    schema = f["schema_at_head"]
    assert schema["at_head"] is False
    assert (schema["current"], schema["expected"]) == (truth["alembic_current"], truth["alembic_head"])
    assert {k: v["missing"] for k, v in f["enum_drift"].items()} == truth["enum_missing"]


def test_record_holds_the_new_captures(record):
    manifest = json.loads((record / "manifest.json").read_text())
    caps = {c["name"]: c for c in manifest["captures"]}
    for name in ("ecs_target_groups", "ecs_target_health", "ecs_target_group_metrics", "ecs_stopped_tasks",
                 "pg_statements_after", "pg_statements_info_after", "rds_replica_metrics", "rds_replica_events",
                 "pg_alembic_version", "pg_enums"):
        assert name in caps and caps[name]["error"] is None, caps.get(name)
    assert caps["ecs_stopped_tasks"]["rows"] >= 7
    assert caps["pg_statements_after"]["pulled_at"] > caps["pg_statements"]["pulled_at"]
