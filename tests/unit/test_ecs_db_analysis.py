"""deploys (failed deployment, stop reasons, rollback), dbhealth (storage, lag, alembic, enums) and
query_perf (delta flags) on hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forensics.analysis import dbhealth, deploys, query_perf, statements

T = pd.Timestamp("2026-11-23T18:00:00Z")


def _deployments():
    return pd.DataFrame([
        {"timestamp": T, "resource": "c/worker", "id": "d-new", "task_definition": "worker:8", "status": "PRIMARY",
         "rollout_state": "IN_PROGRESS", "running_count": 0, "desired_count": 2, "failed_tasks": 3},
        {"timestamp": T - pd.Timedelta(days=2), "resource": "c/worker", "id": "d-old", "task_definition": "worker:7",
         "status": "ACTIVE", "rollout_state": "COMPLETED", "running_count": 2, "desired_count": 2, "failed_tasks": 0},
        {"timestamp": T - pd.Timedelta(hours=1), "resource": "c/api", "id": "d-api", "task_definition": "api:42",
         "status": "PRIMARY", "rollout_state": "IN_PROGRESS", "running_count": 2, "desired_count": 2,
         "failed_tasks": 2},
    ])


def _stopped():
    oom = "scr-worker: OutOfMemoryError: Container killed due to memory usage"
    rows = [("worker:8", "Essential container in task exited", "EssentialContainerExited", "scr-worker=137", oom)] * 2
    rows += [("worker:8", "Essential container in task exited", "EssentialContainerExited", "scr-worker=1", None)]
    rows += [("worker:7", "Scaling activity initiated by (deployment d-old)", "ServiceSchedulerInitiated",
              "scr-worker=0", None)]
    return pd.DataFrame([{"timestamp": T + pd.Timedelta(minutes=i), "task_definition": td, "stopped_reason": why,
                          "stop_code": code, "exit_codes": ex, "container_reasons": cr}
                         for i, (td, why, code, ex, cr) in enumerate(rows)])


def test_failed_deployment_is_the_worker_not_the_api_running_at_desired():
    failed = deploys.failed_deployment(_deployments(), _stopped())
    assert failed["task_definition"] == "worker:8" and failed["deployment_id"] == "d-new"
    assert failed["stopped_failing_tasks"] == 3 and failed["running"] == 0


def test_no_failed_deployment_when_all_run_at_desired():
    d = _deployments().iloc[1:]
    assert deploys.failed_deployment(d, _stopped().iloc[3:]) is None
    assert deploys.failed_deployment(pd.DataFrame(), None) is None


def test_rollout_failed_counts_even_at_desired():
    d = _deployments().iloc[[2]].assign(rollout_state="FAILED")
    assert deploys.failed_deployment(d)["task_definition"] == "api:42"


def test_stop_reasons_by_reason_and_exit_code_for_one_task_definition():
    reasons = deploys.stop_reasons(_stopped(), "worker:8")
    assert reasons == {"Essential container in task exited; OutOfMemoryError: Container killed due to memory usage "
                       "[exit 137]": 2, "Essential container in task exited [exit 1]": 1}
    assert sum(deploys.stop_reasons(_stopped()).values()) == 4
    assert deploys.stop_reasons(pd.DataFrame()) == {}


def test_rollback_to_the_previous_healthy_task_definition():
    failed = deploys.failed_deployment(_deployments(), _stopped())
    assert deploys.rollback_to(_deployments(), failed, _stopped()) == "worker:7"
    # the only other deployment failing too: nothing safe to roll back to
    bad = _stopped().assign(task_definition="worker:7", exit_codes="scr-worker=137")
    assert deploys.rollback_to(_deployments(), failed, pd.concat([_stopped(), bad])) is None
    assert deploys.rollback_to(_deployments(), None) is None


def test_stops_per_minute():
    per = deploys.stops_per_minute(_stopped())
    assert per.to_numpy().sum() == 4 and per.index.tz is not None


def _series(values, start=T, freq="min"):
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq=freq))


def test_storage_hours_to_full_from_a_linear_fall():
    hours = np.arange(120) / 60
    free = _series((30 - 6 * hours) * 2**30)
    out = dbhealth.storage_hours_to_full(free)
    last = 30 - 6 * hours[-1]
    assert out["hours_to_full"] == pytest.approx(last / 6, rel=0.01)
    assert out["rate_gib_per_hour"] == pytest.approx(-6, rel=0.01)
    assert out["full_at"] > free.index[-1]


def test_storage_not_falling_or_too_short_has_no_eta():
    assert dbhealth.storage_hours_to_full(_series(np.full(60, 50.0 * 2**30)))["hours_to_full"] is None
    assert dbhealth.storage_hours_to_full(_series([3.0, 2.0, 1.0]))["hours_to_full"] is None
    assert dbhealth.storage_hours_to_full(pd.Series(dtype=float))["free_gib_now"] is None


def test_lag_peak():
    out = dbhealth.lag_peak(_series([0.5, 80, 412, 90, 1]))
    assert out["peak_s"] == 412 and out["at"] == T + pd.Timedelta(minutes=2) and out["above_60s_minutes"] == 3
    assert dbhealth.lag_peak(pd.Series(dtype=float))["peak_s"] is None


def test_schema_at_head():
    alembic = pd.DataFrame({"version_num": ["abc"], "table": ["alembic_version"], "table_exists": [True]})
    assert dbhealth.schema_at_head(alembic, "abc")["at_head"] is True
    behind = dbhealth.schema_at_head(alembic, "def")
    assert behind == {"at_head": False, "current": "abc", "expected": "def", "table_exists": True}
    assert dbhealth.schema_at_head(alembic, None)["at_head"] is None
    missing = pd.DataFrame({"version_num": [None], "table": ["alembic_version"], "table_exists": [False]})
    assert dbhealth.schema_at_head(missing, "abc") == {"at_head": False, "current": None, "expected": "abc",
                                                       "table_exists": False}


def test_enum_drift_missing_unexpected_and_missing_type():
    enums = pd.DataFrame({"schema": ["public"] * 4, "type": ["status"] * 3 + ["kind"],
                          "value": ["a", "b", "legacy", "x"], "sort_order": [1.0, 2.0, 3.0, 1.0]})
    drift = dbhealth.enum_drift(enums, {"status": ["a", "b", "c"], "kind": ["x"], "public.gone": ["q"]})
    assert drift == {"status": {"missing": ["c"], "unexpected": ["legacy"]},
                     "public.gone": {"missing_type": True, "missing": ["q"], "unexpected": []}}
    assert dbhealth.enum_drift(enums, None) == {}


def _snap(rows, at):
    return pd.DataFrame([{"queryid": q, "userid": 10, "dbid": 5, "query": text, "calls": c, "total_exec_time": t,
                          "snapshot_at": pd.Timestamp(at)} for q, text, c, t in rows])


def test_query_perf_regressed_and_flags():
    before = _snap([(1, "SELECT * FROM invoices WHERE customer_id = $1", 10_000, 200.0),
                    (2, "SELECT * FROM pg_stat_statements", 3, 1.0)], T)
    after = _snap([(1, "SELECT * FROM invoices WHERE customer_id = $1", 10_010, 700.0),
                   (2, "SELECT * FROM pg_stat_statements", 4, 1.5)], T + pd.Timedelta(seconds=8))
    info = {"dealloc": 0, "stats_reset": T - pd.Timedelta(days=1)}
    d = query_perf.application(statements.delta(before, after, info, info))
    assert d["queryid"].tolist() == [1]
    top = query_perf.top_statements(statements.top(d))
    assert top == [{"queryid": 1, "query": "SELECT * FROM invoices WHERE customer_id = $1", "total_ms": 500.0,
                    "calls": 10, "mean_ms": 50.0}]
    reg = query_perf.regressed_statements(statements.regressed(d))
    assert reg[0]["queryid"] == 1 and reg[0]["ratio"] == 2500.0 and reg[0]["mean_ms_before"] == 0.02
    assert query_perf.stats_reset_or_evicted(d) is False
    reset = statements.delta(before, after, info, {"dealloc": 0, "stats_reset": T + pd.Timedelta(seconds=4)})
    assert query_perf.stats_reset_or_evicted(reset) is True
    evicted = statements.delta(before, after.iloc[[1]], {"dealloc": 0}, {"dealloc": 3})
    assert query_perf.stats_reset_or_evicted(evicted) is True
