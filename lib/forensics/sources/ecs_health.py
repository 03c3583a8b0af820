"""What stands behind an ECS service's health: the target groups it registers into and their targets.

- :func:`service_target_groups` — ``DescribeServices`` (``loadBalancers``) then ``DescribeTargetGroups``:
  one row per (service, target group) with the CloudWatch dimension values (``targetgroup/<name>/<id>``
  and the ALB's ``app/<name>/<id>``), so the target group's ``UnHealthyHostCount`` can be pulled without
  naming it in the environment file.
- :func:`target_health` — ``DescribeTargetHealth`` per target group, now (not a history).
- :func:`target_group_queries` — ``HealthyHostCount`` / ``UnHealthyHostCount`` (Maximum) per target group.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from . import _as_list, _aws_client, _aws_errors, _chunks, _empty, _typed
from .aws_events import SERVICES_PER_CALL, _describe_services
from .cloudwatch import MetricQuery, _slug

TARGET_GROUP_COLUMNS = {"service": "str", "target_group_arn": "str", "target_group": "str",
                        "load_balancer": "str", "container_name": "str", "container_port": "Int64"}
TARGET_HEALTH_COLUMNS = {"target_group": "str", "target_id": "str", "port": "Int64", "state": "str",
                         "reason": "str", "description": "str"}
#: DescribeTargetGroups takes at most 20 ARNs per call
TARGET_GROUPS_PER_CALL = 20


def dimension(arn: str | None) -> str | None:
    """``arn:aws:elasticloadbalancing:...:targetgroup/name/id`` -> ``targetgroup/name/id``;
    ``...:loadbalancer/app/name/id`` -> ``app/name/id`` (the CloudWatch dimension values)."""
    if not arn:
        return None
    tail = str(arn).split(":", 5)[-1]
    return tail.split("loadbalancer/", 1)[1] if tail.startswith("loadbalancer/") else tail


def service_target_groups(cluster: str, services: str | Iterable[str], *, aws: dict | None = None,
                          ecs_client=None, elbv2_client=None, config=None) -> pd.DataFrame:
    """One row per target group a service registers its tasks into (services without a load balancer
    have none)."""
    names = _as_list(services, "services")
    if not names:
        return _empty(TARGET_GROUP_COLUMNS)
    ecs = _aws_client("ecs", aws, ecs_client, config)
    rows = []
    for batch in _chunks(names, SERVICES_PER_CALL):
        for svc in _describe_services(ecs, cluster, batch):
            for lb in svc.get("loadBalancers") or []:
                if lb.get("targetGroupArn"):
                    rows.append({"service": svc.get("serviceName"), "target_group_arn": lb["targetGroupArn"],
                                 "target_group": dimension(lb["targetGroupArn"]),
                                 "container_name": lb.get("containerName"),
                                 "container_port": lb.get("containerPort")})
    if not rows:
        return _empty(TARGET_GROUP_COLUMNS)
    elb = _aws_client("elbv2", aws, elbv2_client, config)
    arns = list(dict.fromkeys(r["target_group_arn"] for r in rows))
    lbs: dict[str, str | None] = {}
    for batch in _chunks(arns, TARGET_GROUPS_PER_CALL):
        with _aws_errors("elbv2", "DescribeTargetGroups"):
            resp = elb.describe_target_groups(TargetGroupArns=batch)
        for tg in resp.get("TargetGroups") or []:
            first = (tg.get("LoadBalancerArns") or [None])[0]
            lbs[tg["TargetGroupArn"]] = dimension(first)
    for r in rows:
        r["load_balancer"] = lbs.get(r["target_group_arn"])
    return _typed(pd.DataFrame(rows), TARGET_GROUP_COLUMNS)


def target_health(target_group_arns: Iterable[str], *, aws: dict | None = None, client=None,
                  config=None) -> pd.DataFrame:
    """Every registered target's state now (healthy, unhealthy, draining...), per target group."""
    elb = _aws_client("elbv2", aws, client, config)
    rows = []
    for arn in dict.fromkeys(target_group_arns):
        with _aws_errors("elbv2", f"DescribeTargetHealth for {dimension(arn)}"):
            resp = elb.describe_target_health(TargetGroupArn=arn)
        for d in resp.get("TargetHealthDescriptions") or []:
            target, health = d.get("Target") or {}, d.get("TargetHealth") or {}
            rows.append({"target_group": dimension(arn), "target_id": target.get("Id"), "port": target.get("Port"),
                         "state": health.get("State"), "reason": health.get("Reason"),
                         "description": health.get("Description")})
    return _typed(pd.DataFrame(rows), TARGET_HEALTH_COLUMNS) if rows else _empty(TARGET_HEALTH_COLUMNS)


def target_group_queries(target_groups: pd.DataFrame) -> list[MetricQuery]:
    """Healthy and unhealthy host counts of each (target group, load balancer) row; ids
    ``<service>_unhealthy`` / ``<service>_healthy`` (slugged)."""
    out: list[MetricQuery] = []
    seen = set()
    for r in target_groups.itertuples():
        if not r.load_balancer or (r.target_group, r.load_balancer) in seen:
            continue
        seen.add((r.target_group, r.load_balancer))
        prefix = "tg_" + _slug(r.service)
        dims = {"TargetGroup": r.target_group, "LoadBalancer": r.load_balancer}
        out += [MetricQuery(f"{prefix}_unhealthy", "AWS/ApplicationELB", "UnHealthyHostCount", dims, "Maximum",
                            f"{r.service} unhealthy hosts"),
                MetricQuery(f"{prefix}_healthy", "AWS/ApplicationELB", "HealthyHostCount", dims, "Maximum",
                            f"{r.service} healthy hosts")]
    return out
