"""What every scenario shares: the platform's resource names, the clock, id and time helpers, loading.

Scenarios import from here and from the package (``Played``, ``register``), never from each other:
each one reads on its own, and two scenarios that name the same resource name it from here.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pandas as pd

# ---- the platform every scenario runs on (the environment file's values) ---------------------------------
ECS_CLUSTER = "scr-production"
API_SERVICE = "scr-api-production"
API_LOG_GROUP = f"/ecs/{API_SERVICE}"
#: the API's log streams: ``{prefix}/{task id}`` (awslogs-stream-prefix ``ecs``, container ``scr-api``)
API_STREAM_PREFIX = "ecs/scr-api"
WORKER_SERVICE = "scr-worker-production"
WORKER_LOG_GROUP = f"/ecs/{WORKER_SERVICE}"
RDS_INSTANCE = "scr-production-postgres"
#: the application name schema changes run under in pg_stat_activity
MIGRATIONS_APP = "scr-migrations"
#: PostgreSQL's own log, as RDS exports it to CloudWatch Logs
PG_LOG_GROUP = f"/aws/rds/instance/{RDS_INSTANCE}/postgresql"
#: the load balancer in front of the API and where it delivers its access logs
LB_NAME = "scr-production-alb"
LB_ID = "4361f80389f5693e"
LB_DIMENSION = f"app/{LB_NAME}/{LB_ID}"
ACCESS_LOG_BUCKET = "scr-production-alb-logs"
ACCESS_LOG_PREFIX = "scr-api"


def bucket_for(base: str, account_id: str) -> str:
    """S3 bucket names are global, across accounts, in AWS and in moto: a sandbox names its buckets after its
    account (as many teams do), so two sandboxes in one process never ask for the same name."""
    return f"{base}-{account_id}"

MIN = pd.Timedelta(minutes=1)


# ---- the shared clock -----------------------------------------------------------------------------------
def timeline(now: pd.Timestamp) -> dict[str, pd.Timestamp]:
    """The times every scenario plants around: ``end`` (now floored to the minute), ``deploy`` (T0 =
    end - 60 min), ``start`` (data from T0 - 60 min), ``window_start`` (T0 - 30 min) and ``onset`` (T0 + 5 min)."""
    end = now.floor("min")
    t0 = end - pd.Timedelta(minutes=60)
    # Data from T0-60 min; the incident window from T0-30 min, so the notebooks' context padding
    # (30 min before the window) shows a real baseline outside the shaded window.
    return {"end": end, "deploy": t0, "start": t0 - pd.Timedelta(minutes=60),
            "window_start": t0 - pd.Timedelta(minutes=30), "onset": t0 + pd.Timedelta(minutes=5)}


def incident_fields(name: str, title: str, severity: str, t: dict[str, pd.Timestamp]) -> dict:
    """A scenario's incident fields, its window [``window_start``, ``end``] of :func:`timeline` ``t``."""
    return {"incident": name, "title": title, "severity": severity,
            "window": {"start": iso(t["window_start"]), "end": iso(t["end"])}}


# ---- times ----------------------------------------------------------------------------------------------
def iso(ts: pd.Timestamp) -> str:
    """ISO-8601 in UTC to the second, ending in Z."""
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(ts: pd.Timestamp) -> int:
    """Epoch milliseconds (what CloudWatch Logs stamps events with)."""
    return int(ts.value // 1_000_000)


def log_time(at_ms: int) -> str:
    """``2026-11-23 18:04:05,123``: epoch milliseconds as Python's logging writes a time (UTC)."""
    stamp = dt.datetime.fromtimestamp(at_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp},{at_ms % 1000:03d}"


def app_log_line(at_ms: int, level: str, logger: str, request_id: str, message: str) -> str:
    """One line of the scr applications' log format (Python logging: time, level, logger, request id)."""
    return f"{log_time(at_ms)} {level:<5} [{logger}] [req={request_id}] {message}"


# ---- ids (drawn from a scenario's seeded generator: a numpy Generator or a random.Random) ------------------
def hex_id(rng, n: int) -> str:
    """``n`` hex digits."""
    if isinstance(rng, random.Random):
        return f"{rng.getrandbits(4 * n):0{n}x}"
    return rng.bytes((n + 1) // 2).hex()[:n]


def uuid4(rng) -> str:
    """A version-4 UUID."""
    if isinstance(rng, random.Random):
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


# ---- loading into the sandbox's moto server -------------------------------------------------------------
#: PutLogEvents takes at most 10,000 events per call; 5,000 keeps requests small.
LOG_BATCH = 5000
#: PutMetricData takes at most 1,000 metrics per call
METRIC_BATCH = 500


def ensure_log_group(logs, name: str, retention: int = 30) -> None:
    """Create a log group (with a retention policy, as real ones have) unless another scenario did."""
    try:
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass


def put_logs(logs, group: str, streams: dict[str, list[tuple[int, str]]]) -> int:
    """Write ``{stream: [(epoch ms, message), ...]}`` into ``group``; returns the number of events."""
    ensure_log_group(logs, group)
    n = 0
    for stream, events in streams.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        for i in range(0, len(events), LOG_BATCH):
            chunk = events[i:i + LOG_BATCH]
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": ts, "message": msg} for ts, msg in chunk])
            n += len(chunk)
    return n


def put_metrics(cloudwatch, namespace: str, items: list[dict], batch: int = METRIC_BATCH) -> None:
    """``PutMetricData`` of ``items`` (MetricData entries) into ``namespace``, ``batch`` at a time."""
    for i in range(0, len(items), batch):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[i:i + batch])


def create_alb(sb, *, cidr: str, lb: tuple[str, str], tg: tuple[str, str], port: int, scheme: str = "internal",
               health_check_path: str = "/health") -> tuple[str, str, list[str], str]:
    """A VPC with two subnets, an application load balancer ``lb = (name, id)`` and a target group
    ``tg = (name, id)`` forwarded to from port 80, both re-keyed to the given ids so their CloudWatch
    dimensions (``app/name/id``, ``targetgroup/name/id``) are the scenario's constants. Returns the load
    balancer's ARN, the target group's ARN, the subnets and the security group. ``cidr`` is the VPC's /16 prefix, ``"10.40"``."""
    from .. import moto_ext as ext

    ec2 = sb.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=f"{cidr}.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.{i}.0/24", AvailabilityZone=f"{sb.region}{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    sg = ec2.create_security_group(GroupName=f"{lb[0]}-sg", Description="ALB", VpcId=vpc)["GroupId"]
    elb, backend = sb.client("elbv2"), sb.backend("elbv2")
    lb_arn = elb.create_load_balancer(Name=lb[0], Subnets=subnets, SecurityGroups=[sg], Scheme=scheme,
                                      Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    lb_arn = ext.rekey_load_balancer(backend, lb_arn, lb[1])
    tg_arn = elb.create_target_group(Name=tg[0], Protocol="HTTP", Port=port, VpcId=vpc, TargetType="ip",
                                     HealthCheckPath=health_check_path)["TargetGroups"][0]["TargetGroupArn"]
    tg_arn = ext.rekey_target_group(backend, tg_arn, tg[1])
    elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    return lb_arn, tg_arn, subnets, sg


def copy_rows(conn, table: str, columns: list[str], rows, index_on: str = "created_at") -> None:
    """``COPY`` ``rows`` (tuples in ``columns``' order; pandas Timestamps as they are) into ``table``, then an
    index on ``index_on``, as the application's time-ranged queries have."""
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(tuple(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in row))
    conn.execute(f"CREATE INDEX {table}_{index_on}_idx ON {table} ({index_on})")
