"""Scenario "ecs-deploy": a worker deployment whose tasks are OOM-killed; the previous revision was fine.

The story: at T0+20 min ``scr-worker-production`` (cluster ``scr-production``) starts rolling out task
definition ``scr-worker-production:8``, whose new PDF renderer needs more than the 1 GiB the task
definition gives it. Its tasks start, pass one health check, and are killed: four times by the kernel's
OOM killer (``OutOfMemoryError: Container killed due to memory usage``, exit 137), twice the essential
container exits with code 1 (a renderer crash) — ECS keeps replacing them, the deployment never
reaches a steady state. The worker's own target group (behind the internal ALB ``scr-internal-alb``)
reports its new targets unhealthy; ``:7`` keeps running its two tasks healthily (the older ACTIVE
deployment, rollout COMPLETED): the rollback candidate.

Times come from :func:`common.timeline` (the shared clock); nothing is planted before T0+20
except the steady history of ``:7``. Resources are the scenario's own: its VPC, internal ALB, target
group, task family and service (the cluster is shared and created only if missing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import moto_ext as ext
from .played import Played, register
from .common import ECS_CLUSTER, create_alb, WORKER_SERVICE, hex_id, incident_fields, put_metrics, timeline, uuid4

SEED = 20261126
CLUSTER = ECS_CLUSTER
SERVICE = FAMILY = WORKER_SERVICE
CONTAINER = "scr-worker"
GOOD, BAD = 7, 8
LB_NAME, LB_ID = "scr-internal-alb", "5b1e9d0c2a7f4e36"
TG_NAME, TG_ID = WORKER_SERVICE, "a41c7e9b3d2f6058"
LB_DIMENSION = f"app/{LB_NAME}/{LB_ID}"
TG_DIMENSION = f"targetgroup/{TG_NAME}/{TG_ID}"
OOM = "OutOfMemoryError: Container killed due to memory usage"
ESSENTIAL = "Essential container in task exited"


class Plan:
    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        self.rng = rng = np.random.default_rng(seed)
        self.deploy = t["deploy"] + pd.Timedelta(minutes=20)
        self.deployment_id = f"ecs-svc/{rng.integers(10**18, 9 * 10**18)}"
        self.previous_deployment_id = f"ecs-svc/{rng.integers(10**18, 9 * 10**18)}"
        self.previous_created = t["deploy"] - pd.Timedelta(days=2, hours=4, minutes=11)
        # (start offset from the deploy, lifetime, exit code, container reason)
        kills = [("40s", "3min 55s", 137, OOM), ("44s", "4min 20s", 137, OOM), ("5min 30s", "2min 10s", 1, None),
                 ("5min 50s", "3min 40s", 137, OOM), ("10min 5s", "2min 30s", 1, None), ("10min 20s", "4min 5s", 137, OOM)]
        self.failed = [{"id": hex_id(rng, 32), "started": self.deploy + pd.Timedelta(a),
                        "stopped": self.deploy + pd.Timedelta(a) + pd.Timedelta(life), "exit": code, "reason": reason}
                       for a, life, code, reason in kills]
        # :7 replaced one task (a normal scale-in) at T0-20: stops with exit 0, not a failure
        self.scaled_in = {"id": hex_id(rng, 32), "started": self.previous_created + pd.Timedelta("50s"),
                          "stopped": t["deploy"] - pd.Timedelta(minutes=20)}
        self.minutes = m = pd.date_range(t["start"], t["end"], freq="min", inclusive="left")
        n = len(m)
        unhealthy = np.zeros(n)
        for x in self.failed:  # unhealthy from 90 s after start until stopped
            unhealthy += ((m >= x["started"] + pd.Timedelta("90s")) & (m < x["stopped"])).astype(float)
        self.unhealthy = unhealthy
        self.healthy = np.full(n, 2.0)
        mem = 48 + rng.normal(0, 1.5, n)
        alive_bad = np.zeros(n)
        for x in self.failed:
            alive_bad += ((m >= x["started"]) & (m < x["stopped"])).astype(float)
        self.mem_max = np.round(np.where(alive_bad > 0, rng.uniform(96, 100, n), mem + 6), 2)
        self.mem_avg = np.round(np.where(alive_bad > 0, (mem * 2 + 98 * alive_bad) / (2 + alive_bad), mem), 2)
        self.cpu = np.round(22 + rng.normal(0, 2, n) + 30 * (alive_bad > 0), 2)
        self.events = self._events()

    def _events(self) -> list[dict]:
        svc = f"(service {SERVICE})"
        rows = [(self.previous_created + pd.Timedelta("7min"), f"{svc} (deployment {self.previous_deployment_id}) "
                 "deployment completed."),
                (self.t["start"] + pd.Timedelta("2min 3s"), f"{svc} has reached a steady state."),
                (self.deploy + pd.Timedelta("20s"), f"{svc} has started 2 tasks: (task {self.failed[0]['id']}) "
                 f"(task {self.failed[1]['id']}).")]
        for x in self.failed:
            rows += [(x["stopped"] - pd.Timedelta("50s"), f"{svc} (task {x['id']}) (port 8080) is unhealthy in "
                      f"(target-group {TG_DIMENSION}) due to (reason Request timed out)."),
                     (x["stopped"] + pd.Timedelta("2s"), f"{svc} has stopped 1 running tasks: (task {x['id']}).")]
        for x in self.failed[2:]:
            rows.append((x["started"] - pd.Timedelta("20s"), f"{svc} has started 1 tasks: (task {x['id']})."))
        return [{"id": uuid4(self.rng), "createdAt": ts, "message": msg} for ts, msg in sorted(rows)]


def _ensure_cluster(ecs) -> None:
    if not [c for c in ecs.describe_clusters(clusters=[CLUSTER]).get("clusters", []) if c.get("status") == "ACTIVE"]:
        ecs.create_cluster(clusterName=CLUSTER)


def load(sb, plan: Plan) -> dict:
    lb_arn, tg_arn, subnets, sg = create_alb(sb, cidr="10.40", lb=(LB_NAME, LB_ID), tg=(TG_NAME, TG_ID),
                                             port=8080, health_check_path="/healthz")
    elb, elb_backend = sb.client("elbv2"), sb.backend("elbv2")
    targets = ["10.40.1.17", "10.40.2.54", "10.40.1.88"]
    elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": ip, "Port": 8080} for ip in targets])
    ext.set_target_health(elb_backend, tg_arn, targets[2], "unhealthy", "Target.Timeout", "Request timed out")

    cw = sb.client("cloudwatch")
    tg_dims = [{"Name": "TargetGroup", "Value": TG_DIMENSION}, {"Name": "LoadBalancer", "Value": LB_DIMENSION}]
    ecs_dims = [{"Name": "ClusterName", "Value": CLUSTER}, {"Name": "ServiceName", "Value": SERVICE}]
    items = []
    for i, ts in enumerate(plan.minutes):
        when = ts.to_pydatetime()
        items += [{"MetricName": "UnHealthyHostCount", "Dimensions": tg_dims, "Timestamp": when,
                   "Value": float(plan.unhealthy[i]), "Unit": "Count"},
                  {"MetricName": "HealthyHostCount", "Dimensions": tg_dims, "Timestamp": when,
                   "Value": float(plan.healthy[i]), "Unit": "Count"}]
    put_metrics(cw, "AWS/ApplicationELB", items)
    items = []
    for i, ts in enumerate(plan.minutes):
        when = ts.to_pydatetime()
        items += [{"MetricName": "MemoryUtilization", "Dimensions": ecs_dims, "Timestamp": when, "Unit": "Percent",
                   "StatisticValues": {"SampleCount": 2, "Sum": float(plan.mem_avg[i]) * 2,
                                       "Minimum": float(plan.mem_avg[i]) * 2 - float(plan.mem_max[i]),
                                       "Maximum": float(plan.mem_max[i])}},
                  {"MetricName": "CPUUtilization", "Dimensions": ecs_dims, "Timestamp": when, "Unit": "Percent",
                   "Value": float(plan.cpu[i])}]
    put_metrics(cw, "AWS/ECS", items)

    ecs = sb.client("ecs")
    _ensure_cluster(ecs)
    for revision in range(1, BAD + 1):
        memory = 1024
        # no awsvpc network mode: moto 5.2's RunTask fails on it (ENI without private_dns_name)
        ecs.register_task_definition(family=FAMILY, cpu="512",
                                     memory=str(memory), containerDefinitions=[{
                                         "name": CONTAINER, "essential": True, "memory": memory,
                                         "image": f"{sb.account_id}.dkr.ecr.{sb.region}.amazonaws.com/scr-worker:"
                                                  f"2026.11.{10 + revision:02d}-r{revision}",
                                         "environment": [{"name": "PDF_RENDERER",
                                                          "value": "chromium" if revision >= BAD else "wkhtmltopdf"}],
                                         "portMappings": [{"containerPort": 8080}]}])
    net = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "DISABLED"}}
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=f"{FAMILY}:{BAD}", desiredCount=2,
                       launchType="FARGATE", networkConfiguration=net,
                       loadBalancers=[{"targetGroupArn": tg_arn, "containerName": CONTAINER, "containerPort": 8080}],
                       deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100,
                                                "deploymentCircuitBreaker": {"enable": False, "rollback": False}})
    backend = sb.backend("ecs")
    stopped = [(x, f"{FAMILY}:{BAD}", x["exit"], x["reason"], ESSENTIAL, "EssentialContainerExited")
               for x in plan.failed]
    stopped.append((plan.scaled_in, f"{FAMILY}:{GOOD}", 0, None,
                    f"Scaling activity initiated by (deployment {plan.previous_deployment_id})", "ServiceSchedulerInitiated"))
    for x, td, code, reason, why, stop_code in stopped:
        arn = ecs.run_task(cluster=CLUSTER, taskDefinition=td, group=f"service:{SERVICE}", launchType="FARGATE",
                           startedBy=plan.deployment_id)["tasks"][0]["taskArn"]
        ecs.stop_task(cluster=CLUSTER, task=arn, reason=why)
        ext.set_task_stopped(backend, CLUSTER, arn, started_at=x["started"], stopped_at=x["stopped"],
                             stop_code=stop_code, exit_code=code, container_reason=reason)
    region, acct = sb.region, sb.account_id
    td_arn = f"arn:aws:ecs:{region}:{acct}:task-definition/{FAMILY}:"
    last = max(e["createdAt"] for e in plan.events)
    deployments = [
        {"id": plan.deployment_id, "status": "PRIMARY", "taskDefinition": td_arn + str(BAD), "desiredCount": 2,
         "runningCount": 0, "pendingCount": 1, "failedTasks": len(plan.failed), "createdAt": plan.deploy,
         "updatedAt": last, "launchType": "FARGATE", "rolloutState": "IN_PROGRESS",
         "rolloutStateReason": f"ECS deployment {plan.deployment_id} in progress."},
        {"id": plan.previous_deployment_id, "status": "ACTIVE", "taskDefinition": td_arn + str(GOOD),
         "desiredCount": 2, "runningCount": 2, "pendingCount": 0, "failedTasks": 0,
         "createdAt": plan.previous_created, "updatedAt": plan.previous_created + pd.Timedelta("7min"),
         "launchType": "FARGATE", "rolloutState": "COMPLETED",
         "rolloutStateReason": f"ECS deployment {plan.previous_deployment_id} completed."},
    ]
    ext.set_service_history(backend, CLUSTER, SERVICE, deployments=deployments, events=plan.events,
                            created_at=plan.t["deploy"] - pd.Timedelta(days=180), running_count=2, pending_count=1)
    return {"target_group_arn": tg_arn, "load_balancer_arn": lb_arn}


def oom_key() -> str:
    return f"{ESSENTIAL}; {OOM} [exit 137]"


@register("ecs-deploy")
def play(sb) -> Played:
    plan = Plan(sb.now)
    aws = load(sb, plan)
    t = plan.t
    truth = {
        "scenario": "ecs-deploy", "cluster": CLUSTER, "service": SERVICE, "deploy_time": plan.deploy,
        "deployment_id": plan.deployment_id, "failed_task_definition": f"{FAMILY}:{BAD}",
        "rollback_to": f"{FAMILY}:{GOOD}",
        "stop_reasons": {oom_key(): sum(x["exit"] == 137 for x in plan.failed),
                         f"{ESSENTIAL} [exit 1]": sum(x["exit"] == 1 for x in plan.failed)},
        "unhealthy_peak": float(plan.unhealthy.max()), "target_group": TG_DIMENSION, "load_balancer": LB_DIMENSION,
        "target_group_arn": aws["target_group_arn"],
    }
    incident = incident_fields("SANDBOX-ECS-DEPLOY", f"{SERVICE} deploy of :{BAD} crash-looping", "P2", t)
    resources = {"ecs": {"cluster": CLUSTER, "services": [SERVICE]}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan", "SERVICE", "oom_key"]
