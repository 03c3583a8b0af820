"""Scenario "pool-exhaustion": the API's database connection pool is exhausted after a deploy.

The story (what an on-call engineer finds): at T0 the service ``scr-api-production`` starts rolling
out task definition ``:42``, which delivers partner webhooks *inline*, inside the request's database
transaction. Each slow webhook call leaves a connection idle in transaction; five minutes later
(the onset) the pools are empty, requests wait 30 s for a connection and fail with SQLAlchemy's
``QueuePool limit of size 5 overflow 10 reached``, the old task still running gets "remaining
connection slots are reserved", ALB 5xx jump from a handful to hundreds a minute, latency from
~80 ms to seconds, RDS DatabaseConnections sits at max_connections, health checks fail and ECS
replaces new tasks, so the rollout never completes. Meanwhile a reporting job runs a slow
unindexed ``ILIKE`` over ``orders`` and a worker's balance update waits on a row lock held by one of
the API's idle transactions.

Times: end = now floored to the minute; T0 = end - 60 min; data from T0 - 60 min; window = [T0 - 30 min, end];
onset = T0 + 5 min. Everything random comes from one seeded generator, so two plays with the same
``now`` plant the same data.

Realism notes: the ALB publishes ``HTTPCode_*`` counts only for minutes that had such responses
(a minute without a 5xx has no datapoint, as in CloudWatch); ``TargetResponseTime`` has 12 samples
per minute so percentiles mean something; ECS service events are newest first.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from ... import moto_ext as ext
from ...workload import create_schema, reset_statements, Workload
from ..common import (
    ACCESS_LOG_BUCKET, ACCESS_LOG_PREFIX, bucket_for, ECS_CLUSTER, incident_fields, LB_DIMENSION, LB_ID,
    LB_NAME, PG_LOG_GROUP, put_logs, put_metrics, RDS_INSTANCE,
)
from ..played import Played, register
from .evidence import access_log_lines, pg_log_lines
from .names import (  # re-exported: the scenario's names
    ACCESS_LOG_PER_MINUTE, ALARM_5XX, ALARM_CONNECTIONS, API_APP, BASELINE_ERROR, CONTAINER,
    FAILING_ENDPOINT, FAMILY, HOLDER_SQL, IDLE_TX_SQL, IMAGE_REPO, LOG_GROUP, N_IDLE_API,
    N_IDLE_IN_TX_SELECT, N_IDLE_WORKER, N_WAITERS, NEW_REVISION, PG_SLOTS_FATAL, PREVIOUS_REVISION,
    QUEUEPOOL_ERROR, REPORTS_APP, SEED, SERVICE, SLOTS_ERROR, SLOW_MARKER, SLOW_PARAMS, SLOW_SQL,
    STREAM_PREFIX, TG_DIMENSION, TG_ID, TG_NAME, WAITER_SQL, WORKER_APP,
)
from .plan import Plan


# ---- loading ----------------------------------------------------------------------------------------
def load_aws(sb, plan: Plan) -> dict:
    """Put the plan into the sandbox's moto server; returns what the truth needs from AWS."""
    t = plan.t
    # CloudWatch
    cw = sb.client("cloudwatch")
    for namespace, items in plan.metrics.items():
        put_metrics(cw, namespace, items, batch=150)

    # Logs
    n_events = put_logs(sb.client("logs"), LOG_GROUP, plan.log_events)
    pg_log = pg_log_lines(plan)
    put_logs(sb.client("logs"), PG_LOG_GROUP, pg_log)
    # ALB access logs, delivered to S3 as the load balancer would
    from ...s3_evidence import put_alb_logs

    requests = access_log_lines(plan)
    put_alb_logs(sb.client("s3"), bucket_for(ACCESS_LOG_BUCKET, sb.account_id), ACCESS_LOG_PREFIX, sb.account_id, sb.region, LB_DIMENSION,
                 requests)

    # EC2 network + ALB + target group
    ec2 = sb.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{sb.region}{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    alb_sg = ec2.create_security_group(GroupName="scr-production-alb", Description="ALB", VpcId=vpc)["GroupId"]
    task_sg = ec2.create_security_group(GroupName="scr-api-production", Description="API tasks",
                                        VpcId=vpc)["GroupId"]
    elb = sb.client("elbv2")
    lb_arn = elb.create_load_balancer(Name=LB_NAME, Subnets=subnets, SecurityGroups=[alb_sg], Scheme="internet-facing",
                                      Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    elb_backend = sb.backend("elbv2")
    lb_arn = ext.rekey_load_balancer(elb_backend, lb_arn, LB_ID)
    tg_arn = elb.create_target_group(Name=TG_NAME, Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip",
                                     HealthCheckPath="/health", HealthCheckIntervalSeconds=30,
                                     HealthyThresholdCount=2, UnhealthyThresholdCount=3,
                                     Matcher={"HttpCode": "200"})["TargetGroups"][0]["TargetGroupArn"]
    tg_arn = ext.rekey_target_group(elb_backend, tg_arn, TG_ID)
    elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    current = [x for x in plan.tasks if x["stopped"] is None]
    elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": x["ip"], "Port": 8000} for x in current])
    ext.set_target_health(elb_backend, tg_arn, plan.task("new4")["ip"], "unhealthy", "Target.FailedHealthChecks",
                          "Health checks failed with these codes: [503]")

    # ECS
    ecs = sb.client("ecs")
    ecs.create_cluster(clusterName=ECS_CLUSTER)
    for revision in range(1, NEW_REVISION + 1):
        ecs.register_task_definition(family=FAMILY, containerDefinitions=[plan.container_definition(revision)],
                                     requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="1024",
                                     memory="2048",
                                     executionRoleArn=f"arn:aws:iam::{plan.account_id}:role/scr-api-execution")
    net = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [task_sg], "assignPublicIp": "DISABLED"}}
    ecs.create_service(cluster=ECS_CLUSTER, serviceName=SERVICE, taskDefinition=f"{FAMILY}:{NEW_REVISION}",
                       desiredCount=2, launchType="FARGATE", networkConfiguration=net,
                       loadBalancers=[{"targetGroupArn": tg_arn, "containerName": CONTAINER, "containerPort": 8000}],
                       deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100,
                                                "deploymentCircuitBreaker": {"enable": False, "rollback": False}})
    new_td, old_td = plan.task_definition_arn(NEW_REVISION), plan.task_definition_arn(PREVIOUS_REVISION)
    common = {"launchType": "FARGATE", "platformVersion": "1.4.0", "platformFamily": "Linux",
              "networkConfiguration": net, "pendingCount": 0}
    last_event = max(e["createdAt"] for e in plan.ecs_events)
    deployments = [
        {**common, "id": plan.deployment_id, "status": "PRIMARY", "taskDefinition": new_td, "desiredCount": 2,
         "runningCount": 2, "failedTasks": 2, "createdAt": t["deploy"], "updatedAt": last_event,
         "rolloutState": "IN_PROGRESS", "rolloutStateReason": f"ECS deployment {plan.deployment_id} in progress."},
        {**common, "id": plan.previous_deployment_id, "status": "ACTIVE", "taskDefinition": old_td,
         "desiredCount": 1, "runningCount": 1, "failedTasks": 0, "createdAt": plan.previous_created,
         "updatedAt": t["deploy"] + pd.Timedelta("3min 2s"), "rolloutState": "COMPLETED",
         "rolloutStateReason": f"ECS deployment {plan.previous_deployment_id} completed."},
    ]
    ext.set_service_history(sb.backend("ecs"), ECS_CLUSTER, SERVICE, deployments=deployments,
                            events=plan.ecs_events, created_at=t["deploy"] - pd.Timedelta(days=212),
                            running_count=3, pending_count=0)

    # RDS
    rds = sb.client("rds")
    rds.create_db_instance(DBInstanceIdentifier=RDS_INSTANCE, DBInstanceClass="db.t4g.medium", Engine="postgres",
                           EngineVersion="15.7", AllocatedStorage=200, StorageType="gp3", DBName="app",
                           MasterUsername="scr_admin", MasterUserPassword="sandbox-not-a-secret",  # noqa: S106
                           MultiAZ=True, BackupRetentionPeriod=7, PreferredBackupWindow="03:00-03:30")
    rds_backend = sb.backend("rds")
    ext.backdate_rds_instance(rds_backend, RDS_INSTANCE, t["deploy"] - pd.Timedelta(days=403, hours=5))
    backup = t["start"] + pd.Timedelta("8min 12s")
    ext.add_rds_event(rds_backend, RDS_INSTANCE, "Backing up DB instance", ["backup"], backup)
    ext.add_rds_event(rds_backend, RDS_INSTANCE, "Finished DB instance backup", ["backup"],
                      backup + pd.Timedelta("11min 37s"))
    # CloudWatch alarms (moto keeps no alarm history: the state changes are planted)
    cw_backend = sb.backend("cloudwatch")
    for a in plan.alarms:
        cw.put_metric_alarm(AlarmName=a["name"], AlarmDescription=a["description"], Namespace=a["namespace"],
                            MetricName=a["metric"], Dimensions=a["dimensions"], Statistic=a["statistic"],
                            Period=60, EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=a["threshold"],
                            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
                            AlarmActions=[f"arn:aws:sns:{plan.region}:{plan.account_id}:scr-oncall-pager"])
        stamp = a["breach"].strftime("%d/%m/%y %H:%M:%S")
        reason = (f"Threshold Crossed: 1 out of the last 1 datapoints [{a['value']} ({stamp})] was greater than "
                  f"or equal to the threshold ({a['threshold']}) (minimum 1 datapoint for OK -> ALARM transition).")
        ext.add_alarm_history(cw_backend, a["name"], "OK", "ALARM", a["time"], reason=reason, reason_data={
            "version": "1.0", "queryDate": a["time"].strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "startDate": a["breach"].strftime("%Y-%m-%dT%H:%M:%S.000+0000"), "statistic": a["statistic"],
            "period": 60, "recentDatapoints": [a["value"]], "threshold": a["threshold"],
            "evaluatedDatapoints": [{"timestamp": a["breach"].strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                                     "sampleCount": 1.0, "value": a["value"]}]})
    return {"load_balancer_arn": lb_arn, "target_group_arn": tg_arn, "log_events": n_events,
            "pg_connection_refusals": sum(PG_SLOTS_FATAL in line for _, line in next(iter(pg_log.values()))),
            "access_log_requests": len(requests),
            "new_task_definition_arn": new_td, "previous_task_definition_arn": old_td}


def start_workload(cluster) -> tuple[Workload, dict]:
    """Tables, then pg_stat_statements_reset(), then the sessions of the incident."""
    create_schema(cluster)
    reset_statements(cluster)
    w = Workload(cluster)
    try:
        holder = w.idle_in_transaction(API_APP, HOLDER_SQL, (1299, 1))
        rng = np.random.default_rng(SEED + 1)
        for acct in rng.choice(np.arange(2, 51), N_IDLE_IN_TX_SELECT, replace=False):
            w.idle_in_transaction(API_APP, IDLE_TX_SQL, (int(acct), 50))
        w.idle(API_APP, N_IDLE_API)
        w.idle(WORKER_APP, N_IDLE_WORKER)
        waiters = [w.blocked(WORKER_APP, WAITER_SQL, (5000 + i, 1)) for i in range(N_WAITERS)]
        # A pause between runs: a report job, not a spinning core (the machine runs the notebooks too).
        slow = w.loop(REPORTS_APP, SLOW_SQL, SLOW_PARAMS, pause=1.0)
        w.wait_ready()
    except BaseException:
        w.stop()
        raise
    counts: dict[str, int] = {}
    for s in w.sessions:
        counts[s.app] = counts.get(s.app, 0) + 1
    return w, {"lock_holder_pid": holder.pid, "blocked_pids": [s.pid for s in waiters], "slow_pid": slow.pid,
               "sessions_by_app": counts}


@register("pool-exhaustion")
def play(sb) -> Played:
    # The PostgreSQL side waits on the server most of the time, the AWS side is Python: run them together.
    with ThreadPoolExecutor(1, thread_name_prefix="sandbox-pg") as pool:
        pg_future = pool.submit(lambda: start_workload(sb.cluster))
        try:
            plan = Plan(sb.now, max_connections=sb.max_connections, account_id=sb.account_id, region=sb.region)
            aws = load_aws(sb, plan)
        except BaseException:
            try:
                pg_future.result()[0].stop()
            except BaseException:  # noqa: BLE001 - the first error is the one to report
                pass
            raise
        workload, pg = pg_future.result()
    t = plan.t
    queuepool = [(ts, msg) for events in plan.log_events.values() for ts, msg in events if "QueuePool limit" in msg]
    truth = {
        "scenario": "pool-exhaustion",
        "data_start": t["start"], "window_start": t["window_start"], "window_end": t["end"], "deploy_time": t["deploy"], "onset": t["onset"],
        "deployment_id": plan.deployment_id, "previous_deployment_id": plan.previous_deployment_id,
        "new_task_definition": f"{FAMILY}:{NEW_REVISION}", "previous_task_definition": f"{FAMILY}:{PREVIOUS_REVISION}",
        "new_task_definition_arn": aws["new_task_definition_arn"],
        "previous_task_definition_arn": aws["previous_task_definition_arn"],
        "max_connections": sb.cluster.max_connections,
        "idle_in_transaction_app": API_APP, "idle_in_transaction_count": N_IDLE_IN_TX_SELECT + 1,
        "top_holder": API_APP, "sessions_by_app": pg["sessions_by_app"],
        "slow_statement": SLOW_MARKER, "slow_app": REPORTS_APP, "slow_pid": pg["slow_pid"],
        "blocked_app": WORKER_APP, "blocker_app": API_APP,
        "lock_holder_pid": pg["lock_holder_pid"], "blocked_pids": pg["blocked_pids"],
        "error_signature": "QueuePool limit of size 5 overflow 10 reached",
        "baseline_error_signature": BASELINE_ERROR,
        "first_error_time": pd.Timestamp(min(ts for ts, _ in queuepool), unit="ms", tz="UTC"),
        "queuepool_error_events": len(queuepool), "log_events": aws["log_events"],
        "log_group": LOG_GROUP, "load_balancer": LB_DIMENSION, "target_group": TG_DIMENSION,
        "load_balancer_arn": aws["load_balancer_arn"], "target_group_arn": aws["target_group_arn"],
        "ecs_cluster": ECS_CLUSTER, "ecs_service": SERVICE, "rds_instance": RDS_INSTANCE,
        "old_tasks": [x["id"] for x in plan.tasks if x["revision"] == PREVIOUS_REVISION],
        "new_tasks": [x["id"] for x in plan.tasks if x["revision"] == NEW_REVISION],
        "alarms": {a["name"]: {"state": "ALARM", "time": a["time"], "metric": a["metric"]} for a in plan.alarms},
        "failing_endpoint": FAILING_ENDPOINT, "access_log_requests": aws["access_log_requests"],
        "pg_log_group": PG_LOG_GROUP, "pg_connection_refusals": aws["pg_connection_refusals"],
    }
    incident = incident_fields("SANDBOX-POOL-EXHAUSTION",
                               f"scr-api 5xx spike and timeouts after deploy of {FAMILY}:{NEW_REVISION}", "P1", t)
    resources = {
        "alb": {"load_balancer": LB_DIMENSION, "target_group": TG_DIMENSION,
                "access_logs": {"bucket": bucket_for(ACCESS_LOG_BUCKET, sb.account_id), "prefix": ACCESS_LOG_PREFIX}},
        "ecs": {"cluster": ECS_CLUSTER, "services": [SERVICE]},
        "rds": {"instance": RDS_INSTANCE},
        "logs": {"app": [LOG_GROUP]},
    }
    return Played(truth=truth, incident=incident, resources=resources, workloads=[workload])


__all__ = ["play", "Plan", "load_aws", "start_workload", "access_log_lines", "pg_log_lines"]
