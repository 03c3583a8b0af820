"""End to end: `forensics run --only cache-redis --only queue-backlog --only ai-cost` on the session sandbox
(every scenario in one sandbox) finds what the cache-redis, queue-backlog and ai-cost scenarios planted."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]
NOTEBOOKS = ("cache-redis", "queue-backlog", "ai-cost")


def test_cache_redis_finds_degradation_failover_and_app_errors(findings, sandbox):
    f, truth = findings["cache-redis"], sandbox.truth_for("cache-redis")
    assert f["status"] == "ok", f
    assert abs(pd.Timestamp(f["onset"]) - truth["onset"]) <= pd.Timedelta(minutes=2), (f["onset"], truth["onset"])
    failovers = f["failover_events"]
    assert [e["message"] for e in failovers] == truth["failover_events"]
    assert abs(pd.Timestamp(failovers[0]["time"]) - truth["failover_time"]) <= pd.Timedelta(minutes=1)
    errors = f["app_errors"]
    assert errors["count"] == truth["redis_error_events"]
    assert errors["example"] == "transport closed"
    assert abs(pd.Timestamp(errors["first_seen"]) - truth["first_transport_closed"]) < pd.Timedelta(seconds=1)


def test_queue_backlog_finds_queue_drain_time_and_failing_task(findings, sandbox):
    f, truth = findings["queue-backlog"], sandbox.truth_for("queue-backlog")
    assert f["status"] == "ok", f
    peak = f["peak_depth"]
    assert max(peak, key=peak.get) == truth["queue"] and peak[truth["queue"]] == truth["peak_depth"]
    assert set(f["backlog_onset"]) == {truth["queue"]}
    assert abs(pd.Timestamp(f["backlog_onset"][truth["queue"]]) - truth["backlog_start"]) <= pd.Timedelta(minutes=2)
    eta = f["drain_eta_minutes"][truth["queue"]]
    assert eta == pytest.approx(truth["drain_eta_minutes"], rel=0.25)
    top = f["failing_tasks"][0]
    assert top["task"] == truth["failing_task"] and top["exception"] == truth["exception"]
    assert top["failures"] > 0 and top["retries"] > top["failures"]
    assert truth["other_failing_task"] in [t["task"] for t in f["failing_tasks"]]
    assert f["deliveries_by_status"]["failed"] == truth["failed_deliveries"]


def test_ai_cost_finds_spend_spike_model_shift_and_orgs_over_budget(findings, sandbox):
    f, truth = findings["ai-cost"], sandbox.truth_for("ai-cost")
    assert f["status"] == "ok", f
    assert f["spend_rate_peak_usd_per_hour"] > 20 * truth["spend_per_hour_before"]
    shift = f["model_shift"]
    assert (shift["from"], shift["to"]) == (truth["from_model"], truth["to_model"])
    assert abs(pd.Timestamp(shift["at"]) - truth["shift_time"]) <= pd.Timedelta(minutes=2)
    assert shift["share_after"] > 0.7 and shift["cost_share_after"] > 0.9
    assert [o["org_name"] for o in f["orgs_over_90pct"]] == truth["orgs_over_90pct"]
    assert [o["org_name"] for o in f["orgs_over_budget"]] == truth["orgs_over_100pct"]
    assert any("RateLimitError" in s for s in f["provider_errors"])


def test_record_holds_the_new_captures(record):
    manifest = json.loads((record / "manifest.json").read_text())
    caps = {c["name"]: c for c in manifest["captures"]}
    for name in ("elasticache_metrics", "elasticache_events", "queue_depth", "worker_task_counts", "redis_error_kinds",
                 "provider_error_kinds", "failed_deliveries", "ai_calls", "ai_budgets"):
        assert name in caps and caps[name]["error"] is None, caps.get(name)
    args = caps["ai_calls"]["args"]
    assert args["parameters"]["table"] == "ai_task_logs" and "{table}" in args["text"]
