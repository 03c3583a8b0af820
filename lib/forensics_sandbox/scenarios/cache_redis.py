"""Scenario "cache-redis": the Redis primary runs out of memory and fails over; the API sees "transport closed".

The story: from T0+25 min the replication group ``scr-production-redis`` is under memory pressure
(evictions and engine CPU climb, misses rise, replication lag on the replica grows); at T0+35 min the
primary ``-001`` fails and ElastiCache promotes ``-002`` (DescribeEvents: failover started/completed,
node recovery). Client connections drop on ``-001`` and move to ``-002``. The API logs
``RuntimeError: transport closed`` (and redis-py connection/read-only errors) from T0+35 min, a burst
for three minutes then a trickle, in its own stream of ``/ecs/scr-api-production``.

Times come from :func:`common.timeline` (the shared clock); nothing is planted before T0+25,
so the pool-exhaustion story (onset T0+5) is untouched when both play in one sandbox.
"""

from __future__ import annotations

import random
import uuid

import numpy as np
import pandas as pd

from .. import moto_ext as ext
from .played import Played, register
from .common import API_LOG_GROUP, API_STREAM_PREFIX, MIN, app_log_line, epoch_ms, hex_id, incident_fields, \
    put_logs, put_metrics, timeline

SEED = 20261124
GROUP = "scr-production-redis"
PRIMARY, REPLICA = f"{GROUP}-001", f"{GROUP}-002"
LOG_GROUP = API_LOG_GROUP
STREAM = f"{API_STREAM_PREFIX}/7f3c2a91d04e4b6a9e1f05c2b8d7a613"
TRANSPORT_CLOSED = "RuntimeError: transport closed"


class Plan:
    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        self.pressure = t["deploy"] + pd.Timedelta(minutes=25)
        self.failover = t["deploy"] + pd.Timedelta(minutes=35)
        self.rng = rng = np.random.default_rng(seed)
        self.minutes = m = pd.date_range(t["start"], t["end"], freq="min", inclusive="left")
        n = len(m)
        pressure = (m >= self.pressure) & (m < self.failover)
        down = (m >= self.failover) & (m < self.failover + 4 * MIN)
        after = m >= self.failover
        s = {}
        conns1 = np.round(180 + rng.normal(0, 3, n))
        conns1[down] = 0
        conns1[after & ~down] = np.round(11 + rng.normal(0, 1, int((after & ~down).sum())))
        conns2 = np.round(12 + rng.normal(0, 1, n))
        k = np.clip((m - self.failover) / MIN, 0, 3)
        conns2[after] = np.round(12 + (170 - 12) * (k[after] / 3) + rng.normal(0, 3, int(after.sum())))
        s["CurrConnections"] = {PRIMARY: conns1, REPLICA: conns2}
        cpu1 = 14 + rng.normal(0, 1.5, n)
        cpu1[pressure] = rng.uniform(72, 94, int(pressure.sum()))
        cpu1[down] = np.nan
        cpu1[after & ~down] = 6 + rng.normal(0, 1, int((after & ~down).sum()))
        cpu2 = 5 + rng.normal(0, 0.8, n)
        cpu2[after] = 38 + rng.normal(0, 3, int(after.sum()))
        s["EngineCPUUtilization"] = {PRIMARY: np.round(cpu1, 2), REPLICA: np.round(cpu2, 2)}
        ev1 = np.zeros(n)
        ev1[pressure] = rng.integers(220, 650, int(pressure.sum()))
        ev1[down] = np.nan
        ev2 = np.zeros(n)
        ev2[after] = rng.integers(20, 90, int(after.sum()))
        s["Evictions"] = {PRIMARY: ev1, REPLICA: ev2}
        hits = np.round(9000 + rng.normal(0, 250, n))
        misses = np.round(600 + rng.normal(0, 40, n))
        misses[pressure] = rng.integers(2500, 4200, int(pressure.sum()))
        h1, h2 = hits.copy(), np.zeros(n)
        m1, m2 = misses.copy(), np.zeros(n)
        h1[after], m1[after] = 0, 0
        h2[after] = np.round(7000 + rng.normal(0, 300, int(after.sum())))
        m2[after] = np.round(1800 + rng.normal(0, 100, int(after.sum())))
        h1[down], m1[down] = np.nan, np.nan
        s["CacheHits"] = {PRIMARY: h1, REPLICA: h2}
        s["CacheMisses"] = {PRIMARY: m1, REPLICA: m2}
        lag2 = np.round(np.abs(rng.normal(0.02, 0.01, n)), 3)
        lag2[pressure] = np.round(rng.uniform(4, 18, int(pressure.sum())), 2)
        lag2[after] = np.nan  # a primary publishes no ReplicationLag
        lag1 = np.full(n, np.nan)
        lag1[after & ~down] = np.round(np.abs(rng.normal(0.3, 0.1, int((after & ~down).sum()))), 3)
        s["ReplicationLag"] = {PRIMARY: lag1, REPLICA: lag2}
        mem = 62 + np.clip((m - self.pressure) / MIN + 8, 0, 8) * 4.6 + rng.normal(0, 0.4, n)
        mem1 = np.where(pressure, np.minimum(mem, 99.7), 62 + rng.normal(0, 0.4, n))
        mem1[after] = 35 + rng.normal(0, 0.5, int(after.sum()))
        mem1[down] = np.nan
        mem2 = np.where(after, 71 + rng.normal(0, 0.5, n), mem1 - 0.3)
        mem2[down] = 70
        s["DatabaseMemoryUsagePercentage"] = {PRIMARY: np.round(mem1, 2), REPLICA: np.round(mem2, 2)}
        self.series = s
        self.events = [
            (t["deploy"] - pd.Timedelta("52min 11s"), REPLICA, "cache-cluster",
             f"Snapshot succeeded for snapshot with ID 'automatic.{REPLICA}-{(t['deploy'] - pd.Timedelta(days=1)):%Y-%m-%d-%H-%M}'"),
            (self.failover + pd.Timedelta("4s"), GROUP, "replication-group",
             f"Failover from primary node {PRIMARY} to replica node {REPLICA} started"),
            (self.failover + pd.Timedelta("41s"), GROUP, "replication-group",
             f"Failover from primary node {PRIMARY} to replica node {REPLICA} completed"),
            (self.failover + pd.Timedelta("1min 10s"), PRIMARY, "cache-cluster", "Recovering cache nodes 0001"),
            (self.failover + pd.Timedelta("3min 52s"), PRIMARY, "cache-cluster", "Finished recovery for cache nodes 0001"),
            (self.failover + pd.Timedelta("4min 5s"), PRIMARY, "cache-cluster", "Cache node 0001 restarted"),
        ]
        self.log_events = self._logs(seed)

    def _logs(self, seed: int) -> list[tuple[int, str]]:
        r = random.Random(seed + 3)
        out = []
        start = self.failover + pd.Timedelta("2s")
        end = self.t["end"]
        minute = start
        while minute < end:
            burst = minute < self.failover + 3 * MIN
            n = r.randint(18, 30) if burst else r.choice((0, 0, 1, 1, 2))
            for _ in range(n):
                ts = minute + pd.Timedelta(milliseconds=r.randrange(60_000))
                if ts >= end:
                    continue
                ms = epoch_ms(ts)
                rid = hex_id(r, 12)
                kind = r.random()
                if kind < 0.7:
                    key = f"session:{uuid.UUID(int=r.getrandbits(128)).hex[:16]}"
                    msg = app_log_line(ms, "ERROR", "scr.api.cache", rid, f"cache GET {key} failed: {TRANSPORT_CLOSED}")
                elif kind < 0.9:
                    msg = app_log_line(ms, "ERROR", "scr.api.cache", rid, "redis.exceptions.ConnectionError: "
                                       "Error 104 while writing to socket. Connection reset by peer.")
                else:
                    msg = app_log_line(ms, "ERROR", "scr.api.ratelimit", rid, "redis.exceptions.ReadOnlyError: "
                                       "You can't write against a read only replica.")
                out.append((ms, msg))
            minute += MIN
        return sorted(out)


def load(sb, plan: Plan) -> None:
    ec = sb.client("elasticache")
    ec.create_replication_group(ReplicationGroupId=GROUP, ReplicationGroupDescription="scr production cache",
                                Engine="redis", EngineVersion="7.1", CacheNodeType="cache.r7g.large",
                                NumCacheClusters=2, AutomaticFailoverEnabled=True, MultiAZEnabled=True)
    backend = sb.backend("elasticache")
    for ts, ident, stype, message in plan.events:
        ext.add_elasticache_event(backend, ident, stype, message, ts)
    cw = sb.client("cloudwatch")
    items = []
    for metric, per_node in plan.series.items():
        for node, values in per_node.items():
            for m, v in zip(plan.minutes, values):
                if np.isnan(v):
                    continue
                items.append({"MetricName": metric, "Dimensions": [{"Name": "CacheClusterId", "Value": node}],
                              "Timestamp": m.to_pydatetime(), "Value": float(v)})
    put_metrics(cw, "AWS/ElastiCache", items)
    put_logs(sb.client("logs"), LOG_GROUP, {STREAM: plan.log_events})


@register("cache-redis")
def play(sb) -> Played:
    plan = Plan(sb.now)
    load(sb, plan)
    t = plan.t
    errors = [ts for ts, msg in plan.log_events if TRANSPORT_CLOSED in msg]
    truth = {
        "scenario": "cache-redis", "replication_group": GROUP, "primary": PRIMARY, "replica": REPLICA,
        "onset": plan.pressure, "failover_time": plan.failover,
        "failover_events": [m for _, _, _, m in plan.events if "Failover" in m],
        "transport_closed_events": len(errors),
        "first_transport_closed": pd.Timestamp(min(errors), unit="ms", tz="UTC"),
        "redis_error_events": len(plan.log_events), "log_group": LOG_GROUP,
    }
    incident = incident_fields("SANDBOX-CACHE-REDIS", "Redis failover: API errors 'transport closed'", "P2", t)
    resources = {"elasticache": {"replication_group": GROUP, "nodes": [PRIMARY, REPLICA]},
                 "logs": {"app": [LOG_GROUP]}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan", "GROUP", "PRIMARY", "REPLICA"]
