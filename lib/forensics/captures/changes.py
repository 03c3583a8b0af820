"""Change events: ECS deployments, service events and stopped tasks, RDS and ElastiCache events, alarm history."""

from __future__ import annotations

from ..sources import _empty, aws_events, cloudwatch, elasticache
from ..sources.call import Call
from .core import events
from .service_metrics import cache_nodes


def ecs_services(inc):
    return inc.env["ecs"]["cluster"], inc.env["ecs"]["services"]


def _ecs_call(inc, read, fields: dict) -> Call:
    cluster, services = ecs_services(inc)
    window = inc.window
    return Call(None, {"cluster": cluster, "services": services, **fields, **window.as_dict()},
                lambda: read(cluster, services, window, aws=inc.aws))


events("ecs_deployments", "ecs:DescribeServices", ["ecs"],
       lambda inc: _ecs_call(inc, aws_events.ecs_deployments, {"field": "deployments"}),
       aws_events.DEPLOYMENT_COLUMNS, doc="ECS deployments (task definition, rollout state, created/updated).")
events("ecs_service_events", "ecs:DescribeServices", ["ecs"],
       lambda inc: _ecs_call(inc, aws_events.ecs_service_events, {"field": "events"}),
       aws_events.SERVICE_EVENT_COLUMNS, doc="ECS service events in the window.")
events("ecs_stopped_tasks", "ecs:ListTasks+DescribeTasks", ["ecs"],
       lambda inc: _ecs_call(inc, aws_events.ecs_stopped_tasks, {"desiredStatus": "STOPPED"}),
       aws_events.STOPPED_TASK_COLUMNS, doc="Tasks stopped in the window, with their stop codes and reasons.")


def _one_off_call(inc) -> Call:
    cluster = inc.env["ecs"]["cluster"]
    window = inc.context_window  # a migration started just before the window can be what broke it
    return Call(None, {"cluster": cluster, "group": "not service:*", **window.as_dict()},
                lambda: aws_events.ecs_one_off_tasks(cluster, window, aws=inc.aws))


events("ecs_one_off_tasks", "ecs:ListTasks+DescribeTasks", ["ecs"], _one_off_call, aws_events.STOPPED_TASK_COLUMNS,
       doc="The cluster's tasks no service started (RunTask: a migration, a backfill), stopped or running, started "
           "in the context window; dated by their start (kind task-run).")


def _rds_events_call(instance: str | None, inc, optional: bool = False) -> Call:
    window = inc.window
    if optional and not instance:  # no replica configured: an empty answer, no call
        return Call(None, {"SourceIdentifier": None, **window.as_dict()},
                    lambda: _empty(aws_events.RDS_EVENT_COLUMNS))
    return Call(None, {"SourceIdentifier": instance, **window.as_dict()},
                lambda: aws_events.rds_events(instance, window, aws=inc.aws))


events("rds_events", "rds:DescribeEvents", ["rds"],
       lambda inc: _rds_events_call(inc.env["rds"]["instance"], inc),
       aws_events.RDS_EVENT_COLUMNS, doc="RDS events of the instance in the window.")
events("rds_replica_events", "rds:DescribeEvents", ["rds"],
       lambda inc: _rds_events_call(inc.env["rds"].get("replica"), inc, optional=True),
       aws_events.RDS_EVENT_COLUMNS, doc="RDS events of the read replica; empty when rds.replica is unset.")
events("elasticache_events", "elasticache:DescribeEvents", ["elasticache"],
       lambda inc: elasticache.events_call(inc.env["elasticache"]["replication_group"], cache_nodes(inc),
                                           inc.context_window, aws=inc.aws),
       None, doc="ElastiCache events of the group and its nodes (failovers are kind 'failover').")


def _group_call(inc) -> Call:
    group = inc.env["elasticache"]["replication_group"]
    return Call(None, {"ReplicationGroupId": group}, lambda: elasticache.replication_group(group, aws=inc.aws))


events("elasticache_group", "elasticache:DescribeReplicationGroups", ["elasticache"], _group_call,
       None, doc="The replication group's nodes and their roles now.")
events("alarm_history", "cloudwatch:DescribeAlarmHistory", ["aws"],
       lambda inc: cloudwatch.alarm_history_call(inc.context_window, aws=inc.aws),
       cloudwatch.ALARM_HISTORY_COLUMNS, source="cloudwatch",
       doc="Every alarm state change (StateUpdate) over the context window.")
