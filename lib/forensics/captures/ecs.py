"""ECS deploys: the target groups behind the services, their targets' health and their host counts."""

from __future__ import annotations

from ..sources import ecs_health
from ..sources.call import Call
from .changes import ecs_services
from .core import events, metrics


def _target_groups_call(inc) -> Call:
    cluster, services = ecs_services(inc)
    return Call(None, {"cluster": cluster, "services": services, "field": "loadBalancers"},
                lambda: ecs_health.service_target_groups(cluster, services, aws=inc.aws))


def _target_health_call(inc) -> Call:
    arns = inc.pull("ecs_target_groups")["target_group_arn"].dropna().tolist()
    return Call(None, {"target_groups": arns}, lambda: ecs_health.target_health(arns, aws=inc.aws))


events("ecs_target_groups", "ecs:DescribeServices+elbv2:DescribeTargetGroups", ["ecs"], _target_groups_call,
       ecs_health.TARGET_GROUP_COLUMNS, doc="The target groups the services register into.")
events("ecs_target_health", "elbv2:DescribeTargetHealth", ["ecs"], _target_health_call,
       ecs_health.TARGET_HEALTH_COLUMNS, after=("ecs_target_groups",),
       doc="Each of those target groups' targets and their health now.")
metrics("ecs_target_group_metrics", ["ecs"],
        lambda inc: ecs_health.target_group_queries(inc.pull("ecs_target_groups")),
        after=("ecs_target_groups",), doc="HealthyHostCount / UnHealthyHostCount of every service's target group.")
