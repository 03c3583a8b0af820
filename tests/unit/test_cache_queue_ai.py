"""Analysis of cache-redis, queue-backlog and ai-cost; table identifiers; the ElastiCache DescribeEvents handler."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from forensics.analysis import ai, cache, queues
from forensics.sources.elasticache import metric_queries
from forensics.sources.queues import depth_queries

T0 = pd.Timestamp("2026-11-23T18:00:00Z")
MINUTES = pd.date_range(T0, periods=120, freq="min")


def _long(series: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"timestamp": MINUTES, "id": f"x{i}", "label": label, "value": v, "stat": "Maximum",
                                    "unit": None}) for i, (label, v) in enumerate(series.items())], ignore_index=True)


# ---- queues -------------------------------------------------------------------------------------------
def test_drain_eta_from_a_draining_series():
    s = pd.Series(np.r_[np.zeros(60), np.arange(1, 41) * 100.0, 4000 - np.arange(1, 21) * 50.0], index=MINUTES)
    assert queues.drain_rate(s) == pytest.approx(-50.0)
    assert queues.drain_eta_minutes(s) == pytest.approx(3000 / 50)
    growing = pd.Series(np.arange(120) * 3.0, index=MINUTES)
    assert math.isinf(queues.drain_eta_minutes(growing))
    assert queues.drain_eta_minutes(pd.Series([5.0, 0.0], index=MINUTES[:2])) == 0.0
    assert queues.drain_eta_minutes(pd.Series(dtype=float)) is None


def test_depth_peak_and_backlog_onset_only_on_the_growing_queue():
    rng = np.random.default_rng(1)
    webhooks = np.r_[rng.normal(5, 2, 70).clip(0), np.arange(1, 51) * 80.0]
    wide = queues.depth(_long({"default": rng.normal(20, 4, 120), "webhooks": webhooks}))
    assert list(wide.columns) == ["default", "webhooks"]
    assert queues.peak_depth(wide)["webhooks"] == 4000.0
    onsets = queues.backlog_onset(wide, baseline=(MINUTES[0], MINUTES[60]))
    assert set(onsets) == {"webhooks"} and abs(onsets["webhooks"] - MINUTES[70]) <= pd.Timedelta("2min")


def test_task_failures_from_celery_lines():
    lines = [
        "[2026-11-23 18:10:01,001: INFO/ForkPoolWorker-1] Task scr.tasks.deliver_webhook[0f8e3c2a-1b2c-4d5e-8f90-"
        "123456789abc] retry: Retry in 60s: ReadTimeout(ReadTimeoutError(\"...\"))",
        "[2026-11-23 18:11:01,001: ERROR/ForkPoolWorker-2] Task scr.tasks.deliver_webhook[1f8e3c2a-1b2c-4d5e-8f90-"
        "123456789abc] raised unexpected: ReadTimeout(ReadTimeoutError(\"...\"))",
        "[2026-11-23 18:12:01,001: INFO/ForkPoolWorker-2] Task scr.tasks.deliver_webhook[2f8e3c2a-1b2c-4d5e-8f90-"
        "123456789abc] retry: Retry in 60s: ReadTimeout(...)",
        "[2026-11-23 18:13:01,001: ERROR/ForkPoolWorker-3] Task scr.tasks.enforce_retention[3f8e3c2a-1b2c-4d5e-8f90-"
        "123456789abc] raised unexpected: OperationalError('canceling statement due to statement timeout')",
        "[2026-11-23 18:13:02,001: INFO/ForkPoolWorker-3] Task scr.tasks.deliver_webhook[4f8e3c2a-1b2c-4d5e-8f90-"
        "123456789abc] succeeded in 0.2s: None",
    ]
    logs = pd.DataFrame({"timestamp": MINUTES[:5], "message": lines})
    f = queues.task_failures(logs)
    assert f["count"].sum() == 4
    top = queues.failing_tasks(f)
    assert top[0] == {"task": "scr.tasks.deliver_webhook", "failures": 1, "retries": 2, "exception": "ReadTimeout",
                      "first_seen": MINUTES[0]}
    assert top[1]["task"] == "scr.tasks.enforce_retention" and top[1]["exception"] == "OperationalError"
    assert queues.failing_tasks(queues.task_failures(logs.iloc[4:])) == []


def test_depth_queries_ids():
    q = depth_queries("SCR/Celery", "QueueDepth", "Queue", ["default", "web-hooks"])
    assert [x.id for x in q] == ["q_default", "q_web_hooks"] and q[1].dimensions == {"Queue": "web-hooks"}
    with pytest.raises(ValueError):
        depth_queries("N", "M", "Q", ["a-b", "a_b"])


# ---- cache --------------------------------------------------------------------------------------------
def test_cache_onsets_hit_rate_and_errors():
    rng = np.random.default_rng(2)
    n1, n2 = "redis-001", "redis-002"
    ev = np.r_[np.zeros(80), rng.integers(200, 600, 40)]
    conns = np.r_[180 + rng.normal(0, 2, 90), np.zeros(30)]
    hits, misses = np.full(120, 900.0), np.r_[np.full(80, 100.0), np.full(40, 900.0)]
    frame = _long({f"{n1} Evictions": ev, f"{n1} CurrConnections": conns, f"{n1} CacheHits": hits,
                   f"{n1} CacheMisses": misses, f"{n2} CurrConnections": np.full(120, 10.0) + rng.normal(0, 1, 120)})
    nodes = cache.by_node(frame)
    assert list(nodes["CurrConnections"].columns) == [n1, n2]
    on = cache.health_onsets(nodes, baseline=(MINUTES[0], MINUTES[30]))
    assert cache.first_health_onset(on) == MINUTES[80]
    assert set(zip(on["metric"], on["node"])) >= {("Evictions", n1), ("CurrConnections", n1)}
    rate = cache.hit_rate(nodes)
    assert rate.iloc[0] == pytest.approx(0.9) and rate.iloc[-1] == pytest.approx(0.5)
    logs = pd.DataFrame({"timestamp": MINUTES[90:93], "message": [
        "ERROR [scr.api.cache] cache GET k failed: RuntimeError: transport closed",
        "ERROR [scr_api.db] QueuePool limit of size 5 overflow 10 reached",
        "ERROR redis.exceptions.ConnectionError: Error 104 while writing to socket."]})
    errors = cache.redis_errors(logs)
    summary = cache.error_summary(errors)
    assert summary["count"] == 2 and summary["example"] == "transport closed" and summary["first_seen"] == MINUTES[90]
    assert cache.error_summary(errors.iloc[0:0])["count"] == 0


def test_metric_queries_per_node():
    q = metric_queries(["scr-production-redis-001", "other"])
    assert "conns_n001" in {x.id for x in q} and "conns_n_other" in {x.id for x in q}
    assert {x.dimensions["CacheClusterId"] for x in q} == {"scr-production-redis-001", "other"}


# ---- ai -----------------------------------------------------------------------------------------------
def _calls() -> pd.DataFrame:
    rows = []
    for i, m in enumerate(MINUTES):
        if i < 60:
            rows.append((m, "1", "mini", "openai", "success", 10.0, 0.01))
        else:
            rows.append((m, "1", "mini", "openai", "error", 8.0, 0.0))
            rows.append((m, "1", "mini", "openai", "success", 2.0, 0.002))
            rows.append((m, "2", "opus", "anthropic", "success", 8.0, 0.8))
    return pd.DataFrame(rows, columns=["minute", "org_id", "model", "provider", "status", "calls", "cost_usd"])


def test_spend_rate_and_model_shift():
    calls = _calls()
    rate = ai.spend_rate(calls, "15min")
    assert rate.iloc[0] == pytest.approx(0.01 * 60) and rate.max() == pytest.approx(0.802 * 60)
    shift = ai.model_shift(calls, baseline=(MINUTES[0], MINUTES[30]))
    assert (shift["from"], shift["to"], shift["at"]) == ("mini", "opus", MINUTES[60])
    assert shift["share_before"] == 0.0 and shift["share_after"] == pytest.approx(0.8)
    assert shift["cost_share_after"] == pytest.approx(0.8 / 0.802)
    share = ai.error_share(calls, by="provider")
    assert share["openai"].iloc[-1] == pytest.approx(0.8) and share["anthropic"].iloc[-1] == 0.0
    assert ai.model_shift(calls.iloc[:60], baseline=(MINUTES[0], MINUTES[30])) is None


def test_orgs_over_and_provider_errors():
    budgets = pd.DataFrame({"org_id": ["1", "2", "3"], "org_name": ["A", None, "C"], "monthly_budget_usd": [10.0] * 3,
                            "spend_mtd_usd": [11.0, 9.2, 3.0], "share": [1.1, 0.92, 0.3]})
    assert [(o["org_id"], o["org_name"]) for o in ai.orgs_over(budgets)] == [("1", "A"), ("2", None)]
    logs = pd.DataFrame({"timestamp": MINUTES[:3], "message": [
        "WARNING provider openai failed (openai.RateLimitError: Error code: 429); falling back to claude-3-opus",
        "ERROR fallback failed: anthropic.APIStatusError: overloaded - {...}", "INFO ok"]})
    pe = ai.provider_errors(logs)
    assert dict(zip(pe["signature"], pe["count"])) == {"openai.RateLimitError": 1,
                                                       "anthropic.APIStatusError: overloaded": 1}


# ---- tables -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["ai_task_logs; DROP TABLE x", "a.b.c", "", "1abc", 'x"y'])
def test_table_identifier_refuses_anything_but_names(bad):
    from forensics.queries import QueryError, load

    with pytest.raises(QueryError, match="not a table name"):
        load("ai_calls").sql({"table": bad, "start": "2026-01-01T00:00Z", "end": "2026-01-01T01:00Z"})


def test_table_sql_quotes_identifiers():
    from forensics.queries import load

    window = {"start": "2026-01-01T00:00Z", "end": "2026-01-01T01:00Z"}
    text, bound = load("ai_calls").sql({"table": "app.ai_task_logs", **window})
    assert 'FROM "app"."ai_task_logs" l' in text.as_string(None)
    assert set(bound) == {"start", "end"}  # values are bound, never spliced into the text
    text, _ = load("failed_deliveries").sql({"table": "webhook_deliveries", **window})
    assert '"webhook_deliveries"' in text.as_string(None)


def test_params_refuse_a_bad_table_name(tmp_path):
    from forensics.errors import ParamsError
    from forensics.params import load_environment

    env = tmp_path / "e.yaml"
    base = ("name: t\naws: {region: eu-west-1}\nalb: {load_balancer: app/x/1}\necs: {cluster: c, services: [s]}\n"
            "rds: {instance: db}\nlogs: {app: [/g]}\n")
    env.write_text(base + "ai: {logs_table: ai_task_logs, budgets_table: ai_budgets}\n")
    assert load_environment(env)["ai"]["logs_table"] == "ai_task_logs"
    env.write_text(base + "ai: {logs_table: 'ai_task_logs where 1=1'}\n")
    with pytest.raises(ParamsError, match="ai.logs_table"):
        load_environment(env)


# ---- moto ElastiCache DescribeEvents ------------------------------------------------------------------
def test_elasticache_events_page_filters_sorts_and_pages():
    from forensics_sandbox.moto_ext import elasticache_events_page

    now = dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.timezone.utc)
    events = [{"SourceIdentifier": "rg" if i % 2 else "rg-001", "SourceType": "replication-group" if i % 2 else
               "cache-cluster", "Message": f"m{i}", "Date": now - dt.timedelta(minutes=i)} for i in range(50)]
    page = elasticache_events_page(events, max_records=20)
    assert len(page["Events"]) == 20 and page["Marker"] == "20"
    assert page["Events"][0]["Message"] == "m49"  # oldest first
    last = elasticache_events_page(events, max_records=20, marker="40")
    assert len(last["Events"]) == 10 and "Marker" not in last
    only = elasticache_events_page(events, source_identifier="rg", source_type="replication-group",
                                   start_time=now - dt.timedelta(minutes=10), end_time=now)
    assert [e["Message"] for e in only["Events"]] == ["m9", "m7", "m5", "m3", "m1"]
    assert len(elasticache_events_page(events, duration=5, end_time=now)["Events"]) == 6


def test_elasticache_describe_events_through_the_moto_server(moto_server, aws_env):
    from forensics_sandbox import moto_ext as ext
    from forensics.sources import elasticache
    from forensics.window import IncidentWindow

    ext.install()
    backend = ext.backend("elasticache", "123456789012", moto_server.region)
    now = pd.Timestamp.now(tz="UTC").floor("min")
    backend.__dict__.pop("forensics_events", None)
    for i in range(130):
        ext.add_elasticache_event(backend, "rg-test", "replication-group", f"Failover {i} completed" if i == 7 else
                                  f"event {i}", now - pd.Timedelta(minutes=i))
    ext.add_elasticache_event(backend, "rg-test-001", "cache-cluster", "Recovering cache nodes 0001", now)
    window = IncidentWindow(now - pd.Timedelta(minutes=200), now + pd.Timedelta(minutes=1))
    df = elasticache.events("rg-test", ["rg-test-001"], window, aws=aws_env)
    assert len(df) == 131 and df["timestamp"].is_monotonic_increasing
    assert df.loc[df["kind"] == "failover", "message"].tolist() == ["Failover 7 completed"]
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]"
