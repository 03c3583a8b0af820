"""ElastiCache (Redis): the replication group's nodes, its events, and the CloudWatch queries per node.

- :func:`replication_group` — ``DescribeReplicationGroups``: one row per member node
  ``[replication_group, node, role, status, automatic_failover, multi_az, engine_version, node_type]``.
- :func:`events` — ``DescribeEvents`` (paginated by ``Marker``) for the group and each node, in the
  change-event contract ``[timestamp, source, resource, kind, message]``; ``kind`` is ``failover`` for
  failover/promotion messages, ``elasticache-event`` otherwise. ElastiCache keeps events 14 days.
- :func:`metric_queries` — ``AWS/ElastiCache`` per ``CacheClusterId``: CurrConnections,
  EngineCPUUtilization, Evictions, CacheHits, CacheMisses, ReplicationLag, DatabaseMemoryUsagePercentage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from .. import contracts
from ..window import IncidentWindow
from . import _as_list, _aws_client, _aws_errors, _typed
from .call import Call
from .cloudwatch import MetricQuery

SOURCE = "elasticache"
NAMESPACE = "AWS/ElastiCache"
EVENT_COLUMNS = {**contracts.EVENT_COLUMNS,
                 "source_type": "str"}
NODE_COLUMNS = {"replication_group": "str", "node": "str", "role": "str", "status": "str",
                "automatic_failover": "str", "multi_az": "str", "node_type": "str"}
#: (metric, stat, short id) pulled per node
NODE_METRICS = (
    ("CurrConnections", "Maximum", "conns"),
    ("EngineCPUUtilization", "Maximum", "engine_cpu"),
    ("Evictions", "Sum", "evictions"),
    ("CacheHits", "Sum", "hits"),
    ("CacheMisses", "Sum", "misses"),
    ("ReplicationLag", "Maximum", "replication_lag"),
    ("DatabaseMemoryUsagePercentage", "Maximum", "memory_pct"),
)
_FAILOVER = re.compile(r"failover|promot|primary", re.I)


def node_id_slug(node: str) -> str:
    """A node id as a metric-query id fragment (``scr-production-redis-001`` -> ``n001``, else a slug)."""
    m = re.search(r"-(\d{3,4})$", node)
    return f"n{m.group(1)}" if m else "n_" + re.sub(r"[^a-zA-Z0-9]+", "_", node).strip("_").lower()


def metric_queries(nodes: Iterable[str]) -> list[MetricQuery]:
    """One query per node and metric; ids ``<metric>_<node slug>`` (``conns_n001``), labels ``<node> <metric>``."""
    out = []
    for node in _as_list(list(nodes), "nodes"):
        slug = node_id_slug(node)
        for metric, stat, short in NODE_METRICS:
            out.append(MetricQuery(f"{short}_{slug}", NAMESPACE, metric, {"CacheClusterId": node}, stat,
                                   f"{node} {metric}"))
    return out


def replication_group(group: str, *, aws: dict | None = None, client=None, config=None) -> pd.DataFrame:
    """The group's member nodes with their role (primary/replica) and status."""
    ec = _aws_client("elasticache", aws, client, config)
    rows = []
    with _aws_errors(SOURCE, f"DescribeReplicationGroups for {group}"):
        groups = ec.describe_replication_groups(ReplicationGroupId=group).get("ReplicationGroups") or []
    for g in groups:
        roles = {}
        for ng in g.get("NodeGroups") or []:
            for m in ng.get("NodeGroupMembers") or []:
                roles[m.get("CacheClusterId")] = m.get("CurrentRole")
        for node in g.get("MemberClusters") or list(roles):
            rows.append({"replication_group": g.get("ReplicationGroupId"), "node": node,
                         "role": roles.get(node), "status": g.get("Status"),
                         "automatic_failover": g.get("AutomaticFailover"), "multi_az": g.get("MultiAZ"),
                         "node_type": g.get("CacheNodeType")})
    return _typed(pd.DataFrame(rows), NODE_COLUMNS)


def events_call(group: str, nodes: Iterable[str], window: IncidentWindow, *, aws: dict | None = None) -> Call:
    """:func:`events` as one :class:`~forensics.sources.call.Call`: one DescribeEvents per group and node."""
    nodes = _as_list(list(nodes), "nodes")
    return Call(None, {"api": "elasticache:DescribeEvents",
                       "calls": [{"SourceIdentifier": group, "SourceType": "replication-group"}]
                       + [{"SourceIdentifier": n, "SourceType": "cache-cluster"} for n in nodes],
                       **window.as_dict()},
                lambda: events(group, nodes, window, aws=aws))


def events(group: str, nodes: Iterable[str], window: IncidentWindow, *, aws: dict | None = None, client=None,
           config=None) -> pd.DataFrame:
    """Events of the replication group and of each node in ``window``, oldest first."""
    ec = _aws_client("elasticache", aws, client, config)
    rows = []
    targets = [(group, "replication-group")] + [(n, "cache-cluster") for n in _as_list(list(nodes), "nodes")]
    for ident, stype in targets:
        args = {"SourceIdentifier": ident, "SourceType": stype, "StartTime": window.start.to_pydatetime(),
                "EndTime": window.end.to_pydatetime()}
        with _aws_errors(SOURCE, f"DescribeEvents for {ident}"):
            for page in ec.get_paginator("describe_events").paginate(**args):
                for e in page.get("Events") or []:
                    date = e.get("Date")
                    if date is None or not window.contains(pd.Timestamp(date)):
                        continue
                    msg = e.get("Message") or ""
                    rows.append({"timestamp": date, "source": "elasticache",
                                 "resource": e.get("SourceIdentifier") or ident,
                                 "kind": contracts.FAILOVER if _FAILOVER.search(msg) else contracts.ELASTICACHE_EVENT,
                                 "message": msg, "source_type": e.get("SourceType") or stype})
    df = _typed(pd.DataFrame(rows), EVENT_COLUMNS)
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)
