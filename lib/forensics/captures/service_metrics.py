"""CloudWatch metrics of the environment's services over the context window."""

from __future__ import annotations

from ..sources import cloudwatch, elasticache
from ..sources import queues as queue_source
from .core import metrics

metrics("alb_metrics", ["alb"], lambda inc: cloudwatch.alb_queries(
    inc.env["alb"]["load_balancer"], inc.env["alb"].get("target_group"), latency_stats=("Average", "Maximum")),
    doc="ALB requests, 5xx (target and ELB), latency average and maximum, healthy/unhealthy hosts.")
metrics("alb_latency_percentiles", ["alb"], lambda inc: [
    q for q in cloudwatch.alb_queries(inc.env["alb"]["load_balancer"], latency_stats=("p50", "p95", "p99"))
    if q.metric == "TargetResponseTime"],
    doc="TargetResponseTime p50/p95/p99, apart: a source that cannot serve percentiles must not cost the rest.")
metrics("rds_metrics", ["rds"], lambda inc: cloudwatch.rds_queries(inc.env["rds"]["instance"]),
        doc="RDS connections, CPU, memory, storage, IOPS, latency.")


def _ecs_queries(inc):
    ecs = inc.env["ecs"]
    many = len(ecs["services"]) > 1
    return [q for i, svc in enumerate(ecs["services"])
            for q in cloudwatch.ecs_queries(ecs["cluster"], svc, prefix=f"ecs{i}" if many else "ecs")]


metrics("ecs_metrics", ["ecs"], _ecs_queries, doc="ECS CPU and memory per service.")


def _replica_queries(inc):
    replica = inc.env["rds"].get("replica")
    if not replica:
        return []
    return [cloudwatch.MetricQuery("replica_lag", "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": replica},
                                   "Maximum", "replica lag (s)"),
            *[q for q in cloudwatch.rds_queries(replica, prefix="replica")
              if q.metric in ("CPUUtilization", "FreeStorageSpace")]]


metrics("rds_replica_metrics", ["rds"], _replica_queries,
        doc="The read replica's ReplicaLag (Maximum), CPU and free storage; empty when rds.replica is unset.")


def cache_nodes(inc) -> list[str]:
    """The environment's ElastiCache nodes, else the group's first two conventional node ids."""
    ec = inc.env["elasticache"]
    return list(ec.get("nodes") or [f"{ec['replication_group']}-001", f"{ec['replication_group']}-002"])


metrics("elasticache_metrics", ["elasticache"], lambda inc: elasticache.metric_queries(cache_nodes(inc)),
        doc="Per node: connections, engine CPU, memory, evictions, replication lag, hits and misses.")


def _queue_queries(inc):
    s = inc.env["queues"]
    return queue_source.depth_queries(s["namespace"], s["metric"], s["dimension"], s["names"])


metrics("queue_depth", ["queues"], _queue_queries, doc="Queue depth per queue.")
