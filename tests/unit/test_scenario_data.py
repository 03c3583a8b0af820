"""The pool-exhaustion scenario's planted data, computed without any server (Plan), and the pure
helpers of the moto extensions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forensics_sandbox import moto_ext as ext
from forensics_sandbox import scenarios
from forensics_sandbox.scenarios import common
from forensics_sandbox.scenarios import pool_exhaustion as pe

NOW = pd.Timestamp("2026-05-30T09:47:31Z")


@pytest.fixture(scope="module")
def plan():
    return pe.Plan(NOW, max_connections=40)


def _series(plan, namespace, name):
    pts = {}
    for item in plan.metrics[namespace]:
        if item["MetricName"] == name:
            ts = pd.Timestamp(item["Timestamp"]).tz_convert("UTC")
            pts[ts] = item.get("Value", item.get("Values"))
    return pd.Series(pts).sort_index()


def test_timeline_is_floored_and_relative_to_now():
    t = common.timeline(NOW)
    assert t["end"] == pd.Timestamp("2026-05-30T09:47:00Z")
    assert t["deploy"] == pd.Timestamp("2026-05-30T08:47:00Z")
    assert t["start"] == pd.Timestamp("2026-05-30T07:47:00Z")
    assert t["onset"] == pd.Timestamp("2026-05-30T08:52:00Z")


def test_registry_knows_the_scenario():
    assert "pool-exhaustion" in scenarios.names()
    assert scenarios.get("pool-exhaustion") is pe.play
    with pytest.raises(Exception, match="no sandbox scenario named 'nope'"):
        scenarios.get("nope")


def test_plan_is_deterministic():
    a, b = pe.Plan(NOW), pe.Plan(NOW)
    assert a.log_events == b.log_events
    assert a.ecs_events == b.ecs_events
    assert a.deployment_id == b.deployment_id
    assert [m["Value"] for m in a.metrics["AWS/RDS"]] == [m["Value"] for m in b.metrics["AWS/RDS"]]


def test_minutes_cover_the_window(plan):
    assert len(plan.minutes) == 120
    assert plan.minutes[0] == plan.t["start"] and plan.minutes[-1] == plan.t["end"] - pd.Timedelta("1min")
    requests = _series(plan, "AWS/ApplicationELB", "RequestCount")
    assert len(requests) == 120 and requests.between(1000, 1500).all()


def test_5xx_step_at_onset(plan):
    onset = plan.t["onset"]
    s = _series(plan, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count")
    assert (s[s.index < onset] <= 3).all() and (s[s.index < onset] > 0).all()  # zero minutes are absent
    after = s[s.index >= onset]
    assert len(after) == 55 and after.between(150, 400).all()
    assert onset in s.index
    elb = _series(plan, "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count")
    assert elb.index.min() == onset and elb.between(10, 99).all()


def test_latency_samples(plan):
    s = _series(plan, "AWS/ApplicationELB", "TargetResponseTime")
    assert all(len(v) == 12 for v in s)
    before = np.concatenate(s[s.index < plan.t["deploy"]].tolist())
    after = np.concatenate(s[s.index >= plan.t["onset"]].tolist())
    assert 0.05 < np.median(before) < 0.12
    assert after.min() >= 2 and after.max() <= 10


def test_connections_climb_to_max_by_onset(plan):
    s = _series(plan, "AWS/RDS", "DatabaseConnections")
    before = s[s.index < plan.t["deploy"]]
    assert before.between(10, 14).all()
    climb = s[(s.index >= plan.t["deploy"]) & (s.index <= plan.t["onset"])]
    assert climb.is_monotonic_increasing and climb.iloc[0] > before.iloc[-1]
    assert climb.iloc[-1] == 40 and (climb.iloc[:-1] < 40).all()
    assert (s[s.index >= plan.t["onset"]] == 40).all()


def test_queuepool_errors_only_after_onset_baseline_errors_before(plan):
    onset_ms = plan.t["onset"].value // 1_000_000
    events = [(ts, msg) for evs in plan.log_events.values() for ts, msg in evs]
    assert 3000 < len(events) < 20000
    pool = [ts for ts, msg in events if "QueuePool limit of size 5 overflow 10 reached" in msg]
    assert len(pool) > 500 and min(pool) >= onset_ms
    baseline = [ts for ts, msg in events if pe.BASELINE_ERROR in msg]
    assert any(ts < onset_ms for ts in baseline) and any(ts >= onset_ms for ts in baseline)
    # template-miner material: the same error behind many different request ids and paths
    lines = [msg for _, msg in events if "QueuePool limit" in msg and "failed after" in msg]
    assert len({m.split("[req=")[1][:12] for m in lines}) == len(lines)
    assert len({m.split("] ", 2)[2].split(" failed")[0] for m in lines}) > 50


def test_new_task_streams_start_after_deploy(plan):
    deploy_ms = plan.t["deploy"].value // 1_000_000
    for task in plan.tasks:
        events = plan.log_events.get(f"{pe.STREAM_PREFIX}/{task['id']}", [])
        if task["revision"] == pe.NEW_REVISION:
            assert events and events[0][0] >= deploy_ms
            assert events[0][1] == "INFO:     Started server process [1]"
        for a, b in zip(events, events[1:]):
            assert a[0] <= b[0]


def test_ecs_events_tell_the_deploy(plan):
    events = plan.ecs_events
    deploy = plan.t["deploy"]
    started = [e for e in events if "has started 2 tasks" in e["message"] and e["createdAt"] >= deploy]
    assert len(started) == 1 and started[0]["createdAt"] < plan.t["onset"]
    assert any("steady state" in e["message"] and plan.t["start"] <= e["createdAt"] < deploy for e in events)
    assert sum("has stopped 1 running tasks" in e["message"] for e in events) == 3
    assert len({e["id"] for e in events}) == len(events)


def test_task_definitions_differ_in_webhook_delivery(plan):
    def env(rev):
        return {e["name"]: e["value"] for e in plan.container_definition(rev)["environment"]}

    assert env(pe.PREVIOUS_REVISION)["WEBHOOK_DELIVERY"] == "queued"
    assert env(pe.NEW_REVISION)["WEBHOOK_DELIVERY"] == "inline"
    assert plan.container_definition(pe.NEW_REVISION)["image"] != plan.container_definition(
        pe.PREVIOUS_REVISION)["image"]


@pytest.mark.parametrize("values,p,expected", [
    ([], 99, None), ([5.0], 50, 5.0), (list(range(1, 101)), 99, 99), (list(range(1, 101)), 50, 50),
    (list(range(1, 13)), 99, 12), ([3, 1, 2], 0.1, 1),
])
def test_percentile_nearest_rank(values, p, expected):
    assert ext.percentile(values, p) == expected
