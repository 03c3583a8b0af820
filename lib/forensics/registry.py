"""Every capture a notebook can ask for, declared once: name, source, API or named query, the environment
sections it needs, how its arguments come from the incident, its columns, its defaults, its volatility.

A notebook reads ``pull.<name>(inc)`` (or ``inc.pull(name)``); :class:`~forensics.session.IncidentSession`
looks the name up here, checks the environment has what the capture needs, and hands the declared call,
arguments and columns to the capture store (recorded, redacted, served to every notebook, replayable).
The runner builds the run's plan from the captures the selected notebooks declare in their metadata
(:func:`plan`), most volatile first (RFC 3227).

Declaring a capture: one :func:`declare` call with a ``pull(inc, **params) -> DataFrame`` and a
``describe(inc, **params) -> dict`` (the arguments the manifest records). The kinds below
(:func:`metrics`, :func:`postgres_query`, :func:`log_events`, :func:`events`) write those for the
common shapes, so a new capture is a few lines of data, not a new function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import contracts, defaults, queries
from .sources import _empty, aws_events, cloudwatch, logs, postgres

#: Volatility ranks (lower is pulled first). What the live database shows is gone in seconds;
#: CloudWatch's fine-grained metrics expire in hours (1 s data after 3 h) and days; the rest stays.
LIVE = 1          # pg_stat_activity, pg_locks: gone when the session ends
COUNTERS = 2      # pg_stat_statements and settings: reset, evicted, or changed by a restart
METRICS = 3       # CloudWatch metrics: resolution drops with age
LOGS = 4          # log events, change events, trails: kept by their retention
TABLES = 5        # the application's own tables, schema, audit API: as durable as the database


@dataclass(frozen=True)
class Capture:
    name: str
    source: str
    api: str
    pull: Callable[..., pd.DataFrame]
    describe: Callable[..., dict]
    needs: tuple[str, ...] = ()
    columns: Mapping[str, str] | None = None
    volatility: int = LOGS
    query: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    doc: str = ""

    @property
    def volatile(self) -> bool:
        return self.volatility <= COUNTERS

    def missing_sections(self, env: Mapping) -> list[str]:
        """The sections (or ``section.key``) of :attr:`needs` the environment lacks."""
        return [s for s in self.needs if not _lookup(env, s)]


def _lookup(env: Mapping, dotted: str):
    value = env
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


CAPTURES: dict[str, Capture] = {}


def declare(capture: Capture) -> Capture:
    if capture.name in CAPTURES:
        raise ValueError(f"capture {capture.name!r} is declared twice")
    unknown = [a for a in capture.after if a not in CAPTURES]
    if unknown:
        raise ValueError(f"capture {capture.name!r} reads {unknown[0]!r}, which is not declared before it")
    if capture.query:
        queries.load(capture.query)  # a missing or malformed query file fails at import, not mid-incident
    CAPTURES[capture.name] = capture
    return capture


def get(name: str) -> Capture:
    try:
        return CAPTURES[name]
    except KeyError:
        raise KeyError(f"no capture named {name!r} (declared: {', '.join(sorted(CAPTURES))})") from None


def plan(names: Iterable[str], env: Mapping) -> tuple[list[Capture], dict[str, list[str]]]:
    """The run's plan: the named captures and those they read, deduplicated, most volatile first.
    Captures whose environment sections are absent are left out, with the sections they lack."""
    wanted: dict[str, Capture] = {}

    def add(name: str) -> None:
        cap = get(name)
        for dep in cap.after:
            add(dep)
        wanted.setdefault(name, cap)

    for n in names:
        add(n)
    skipped = {c.name: c.missing_sections(env) for c in wanted.values() if c.missing_sections(env)}
    order = list(CAPTURES)
    ready = [c for c in wanted.values() if c.name not in skipped]
    return sorted(ready, key=lambda c: (c.volatility, order.index(c.name))), skipped


# ---- kinds ------------------------------------------------------------------------------------------
def metrics(name: str, needs: Iterable[str], build: Callable, doc: str = "", **kw) -> Capture:
    """CloudWatch GetMetricData over the context window (the baseline before the incident included)."""

    def pull(inc):
        window = inc.context_window
        wanted = build(inc)
        if not wanted:  # nothing configured to ask for (e.g. no replica): an empty answer, no call
            return _empty(contracts.METRIC_COLUMNS)
        return cloudwatch.get_metric_data(wanted, window, window.period(), aws=inc.aws)

    def describe(inc):
        window = inc.context_window
        return cloudwatch.call_description(build(inc), window, window.period())

    return declare(Capture(name, "cloudwatch", "GetMetricData", pull, describe, tuple(needs),
                           contracts.METRIC_COLUMNS, METRICS, doc=doc, **kw))


def postgres_query(name: str, query: str, params: Callable | None = None, *, run: Callable | None = None,
                   needs: Iterable[str] = ("postgres",), volatility: int = TABLES, doc: str = "", **kw) -> Capture:
    """A named query (``queries/<query>.yaml``) on the session's read-only connection. ``params(inc)``
    gives the query's parameters from the incident; ``run(conn, inc)`` replaces the plain run where the
    source adds checks of its own (pg_stat_statements' hint, the blockers' pid lists)."""
    q = queries.load(query)

    def values(inc):
        return params(inc) if params else {}

    def pull(inc):
        conn = inc.pg()
        if run is not None:
            return run(conn, inc)
        text, bound = q.sql(values(inc))
        return postgres.run(conn, text, bound, schema=q.columns, what=name)

    def describe(inc):
        return {"database": inc.pg_target(), **q.record(values(inc))}

    return declare(Capture(name, "postgres", f"query:{query}", pull, describe, tuple(needs), q.columns,
                           volatility, query=query, doc=doc or q.description, **kw))


def log_events(name: str, needs: Iterable[str], groups: Callable, pattern: str, client_regex: str | None,
               doc: str = "", **kw) -> Capture:
    """FilterLogEvents over the context window, capped at ``max_events``."""

    def pull(inc, max_events=defaults.LOG_MAX_EVENTS):
        return logs.filter_log_events(groups(inc), inc.context_window, pattern, aws=inc.aws,
                                      max_events=max_events, client_regex=client_regex)

    def describe(inc, max_events=defaults.LOG_MAX_EVENTS):
        return logs.call_description(groups(inc), inc.context_window, pattern, max_events=max_events,
                                     client_regex=client_regex)

    return declare(Capture(name, "logs", "FilterLogEvents", pull, describe, tuple(needs), contracts.LOG_COLUMNS,
                           LOGS, params={"max_events": defaults.LOG_MAX_EVENTS}, doc=doc, **kw))


def events(name: str, api: str, needs: Iterable[str], pull: Callable, describe: Callable,
           columns: Mapping[str, str] | None = None, doc: str = "", **kw) -> Capture:
    """Change events (``contracts.EVENT_COLUMNS`` first) from an AWS API."""
    return declare(Capture(name, kw.pop("source", "aws-events"), api, pull, describe, tuple(needs),
                           columns or contracts.EVENT_COLUMNS, kw.pop("volatility", LOGS), doc=doc, **kw))


# ---- PostgreSQL: live views first (order of volatility) ------------------------------------------------
postgres_query("pg_activity", "pg_activity", run=lambda conn, inc: postgres.activity(conn), volatility=LIVE)
postgres_query("pg_locks", "pg_locks", run=lambda conn, inc: postgres.locks(conn), volatility=LIVE)
postgres_query("pg_statements", "pg_statements", run=lambda conn, inc: postgres.statements(conn),
               volatility=COUNTERS)
postgres_query("pg_statements_info", "pg_statements_info", run=lambda conn, inc: postgres.statements_info(conn),
               volatility=COUNTERS)
postgres_query("pg_settings", "pg_settings", run=lambda conn, inc: postgres.settings(conn), volatility=COUNTERS)


def _statements_after(conn, inc, wait_s=defaults.PG_STATEMENTS_SECOND_SNAPSHOT_WAIT_S):
    """Wait until ``wait_s`` after the first snapshot (never longer than ``wait_s`` from now), then snapshot."""
    import time

    first = inc.pull("pg_statements")
    elapsed = 0.0
    if len(first) and "snapshot_at" in first:
        elapsed = (pd.Timestamp.now(tz="UTC") - pd.to_datetime(first["snapshot_at"], utc=True).max()).total_seconds()
    time.sleep(min(max(wait_s - elapsed, 0.0), wait_s))
    return postgres.statements(conn)


def _pull_statements_after(inc, wait_s=defaults.PG_STATEMENTS_SECOND_SNAPSHOT_WAIT_S):
    return _statements_after(inc.pg(), inc, wait_s)


declare(Capture(
    "pg_statements_after", "postgres", "query:pg_statements", _pull_statements_after,
    lambda inc, wait_s=defaults.PG_STATEMENTS_SECOND_SNAPSHOT_WAIT_S: {
        "database": inc.pg_target(), **queries.load("pg_statements").record(), "after": "pg_statements",
        "wait_s": wait_s},
    ("postgres",), queries.load("pg_statements").columns, COUNTERS, query="pg_statements",
    params={"wait_s": defaults.PG_STATEMENTS_SECOND_SNAPSHOT_WAIT_S}, after=("pg_statements",),
    doc="A second pg_stat_statements snapshot, wait_s after the first: their delta is what the database did "
        "in between."))
postgres_query("pg_statements_info_after", "pg_statements_info",
               run=lambda conn, inc: postgres.statements_info(conn), volatility=COUNTERS,
               after=("pg_statements_after",))

# ---- CloudWatch metrics ---------------------------------------------------------------------------------
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


def _nodes(inc) -> list[str]:
    """The environment's ElastiCache nodes, else the group's first two conventional node ids."""
    ec = inc.env["elasticache"]
    return list(ec.get("nodes") or [f"{ec['replication_group']}-001", f"{ec['replication_group']}-002"])


def _elasticache():
    from .sources import elasticache

    return elasticache


metrics("elasticache_metrics", ["elasticache"], lambda inc: _elasticache().metric_queries(_nodes(inc)),
        doc="Per node: connections, engine CPU, memory, evictions, replication lag, hits and misses.")


def _queue_queries(inc):
    from .sources import queues as q

    s = inc.env["queues"]
    return q.depth_queries(s["namespace"], s["metric"], s["dimension"], s["names"])


metrics("queue_depth", ["queues"], _queue_queries, doc="Queue depth per queue.")

# ---- Logs -------------------------------------------------------------------------------------------------
log_events("app_error_logs", ["logs"], lambda inc: inc.env["logs"]["app"], logs.ERROR_PATTERN, logs.ERROR_REGEX,
           doc="Application error log events.")


def _worker_groups(inc):
    groups = inc.env["queues"].get("log_groups") or []
    if not groups:
        raise LookupError("the environment's queues section names no log_groups")
    return groups


def _queues():
    from .sources import queues

    return queues


log_events("worker_failure_logs", ["queues"], _worker_groups, _queues().TASK_FAILURE_PATTERN,
           _queues().TASK_FAILURE_REGEX, doc="Worker (Celery) task failures and retries.")

# ---- Change events ------------------------------------------------------------------------------------------


def _ecs(inc):
    return inc.env["ecs"]["cluster"], inc.env["ecs"]["services"]


events("ecs_deployments", "ecs:DescribeServices", ["ecs"],
       lambda inc: aws_events.ecs_deployments(*_ecs(inc), inc.window, aws=inc.aws),
       lambda inc: {"cluster": _ecs(inc)[0], "services": _ecs(inc)[1], "field": "deployments"},
       aws_events.DEPLOYMENT_COLUMNS, doc="ECS deployments (task definition, rollout state, created/updated).")
events("ecs_service_events", "ecs:DescribeServices", ["ecs"],
       lambda inc: aws_events.ecs_service_events(*_ecs(inc), inc.window, aws=inc.aws),
       lambda inc: {"cluster": _ecs(inc)[0], "services": _ecs(inc)[1], "field": "events", **inc.window.as_dict()},
       aws_events.SERVICE_EVENT_COLUMNS, doc="ECS service events in the window.")
events("ecs_stopped_tasks", "ecs:ListTasks+DescribeTasks", ["ecs"],
       lambda inc: aws_events.ecs_stopped_tasks(*_ecs(inc), inc.window, aws=inc.aws),
       lambda inc: {"cluster": _ecs(inc)[0], "services": _ecs(inc)[1], "desiredStatus": "STOPPED",
                    **inc.window.as_dict()},
       aws_events.STOPPED_TASK_COLUMNS, doc="Tasks stopped in the window, with their stop codes and reasons.")
events("rds_events", "rds:DescribeEvents", ["rds"],
       lambda inc: aws_events.rds_events(inc.env["rds"]["instance"], inc.window, aws=inc.aws),
       lambda inc: {"SourceIdentifier": inc.env["rds"]["instance"], **inc.window.as_dict()},
       aws_events.RDS_EVENT_COLUMNS, doc="RDS events of the instance in the window.")


def _replica_events(inc):
    replica = inc.env["rds"].get("replica")
    if not replica:
        return _empty(aws_events.RDS_EVENT_COLUMNS)
    return aws_events.rds_events(replica, inc.window, aws=inc.aws)


events("rds_replica_events", "rds:DescribeEvents", ["rds"], _replica_events,
       lambda inc: {"SourceIdentifier": inc.env["rds"].get("replica"), **inc.window.as_dict()},
       aws_events.RDS_EVENT_COLUMNS, doc="RDS events of the read replica; empty when rds.replica is unset.")
events("elasticache_events", "elasticache:DescribeEvents", ["elasticache"],
       lambda inc: _elasticache().events(inc.env["elasticache"]["replication_group"], _nodes(inc),
                                         inc.context_window, aws=inc.aws),
       lambda inc: _elasticache().call_description(inc.env["elasticache"]["replication_group"], _nodes(inc),
                                                   inc.context_window),
       None, doc="ElastiCache events of the group and its nodes (failovers are kind 'failover').")
events("elasticache_group", "elasticache:DescribeReplicationGroups", ["elasticache"],
       lambda inc: _elasticache().replication_group(inc.env["elasticache"]["replication_group"], aws=inc.aws),
       lambda inc: {"ReplicationGroupId": inc.env["elasticache"]["replication_group"]},
       None, doc="The replication group's nodes and their roles now.")
events("alarm_history", "cloudwatch:DescribeAlarmHistory", ["aws"],
       lambda inc: cloudwatch.alarm_history(inc.context_window, aws=inc.aws),
       lambda inc: cloudwatch.alarm_history_description(inc.context_window),
       cloudwatch.ALARM_HISTORY_COLUMNS, source="cloudwatch",
       doc="Every alarm state change (StateUpdate) over the context window.")


# ---- CloudTrail (security) ------------------------------------------------------------------------------------
def _ct_max(inc) -> int:
    return int((inc.env.get("cloudtrail") or {}).get("max_events") or defaults.CLOUDTRAIL_MAX_EVENTS)


def _ct_baseline(inc):
    return inc.baseline_window


def _cloudtrail():
    from .sources import cloudtrail

    return cloudtrail


def _trail(inc, window):
    """The trail's bucket when the environment names it (management and data events), else LookupEvents
    (management events of the last 90 days)."""
    ct = inc.env.get("cloudtrail") or {}
    if ct.get("bucket"):
        from .sources import cloudtrail_s3

        return cloudtrail_s3.trail_events(ct, window, aws=inc.aws)
    return _cloudtrail().lookup_events(window, aws=inc.aws, max_events=_ct_max(inc))


def _trail_args(inc, window):
    ct = inc.env.get("cloudtrail") or {}
    if ct.get("bucket"):
        from .sources import cloudtrail_s3

        return {"api": "s3:ListObjectsV2+GetObject", **cloudtrail_s3.call_description(ct, window)}
    return {"api": "cloudtrail:LookupEvents", **_cloudtrail().call_description(window, max_events=_ct_max(inc))}


for _name, _window, _doc in (
        ("cloudtrail_events", lambda inc: inc.window, "Every CloudTrail event in the window: management and data "
                                                      "events from the trail's bucket, else LookupEvents."),
        ("cloudtrail_baseline", _ct_baseline, "CloudTrail events of the baseline hours before the window: what "
                                              "'known' principals and source IPs means.")):
    events(_name, "cloudtrail:LookupEvents | s3 trail", ["cloudtrail"],
           (lambda w: lambda inc: _trail(inc, w(inc)))(_window),
           (lambda w: lambda inc: _trail_args(inc, w(inc)))(_window),
           _cloudtrail().RECORD_COLUMNS, source="cloudtrail", doc=_doc)


# ---- ECS deploys: target groups behind the services ----------------------------------------------------------
def _ecs_health():
    from .sources import ecs_health

    return ecs_health


events("ecs_target_groups", "ecs:DescribeServices+elbv2:DescribeTargetGroups", ["ecs"],
       lambda inc: _ecs_health().service_target_groups(*_ecs(inc), aws=inc.aws),
       lambda inc: {"cluster": _ecs(inc)[0], "services": _ecs(inc)[1], "field": "loadBalancers"},
       _ecs_health().TARGET_GROUP_COLUMNS, doc="The target groups the services register into.")


def _target_group_arns(inc) -> list[str]:
    return inc.pull("ecs_target_groups")["target_group_arn"].dropna().tolist()


events("ecs_target_health", "elbv2:DescribeTargetHealth", ["ecs"],
       lambda inc: _ecs_health().target_health(_target_group_arns(inc), aws=inc.aws),
       lambda inc: {"target_groups": _target_group_arns(inc)},
       _ecs_health().TARGET_HEALTH_COLUMNS, after=("ecs_target_groups",),
       doc="Each of those target groups' targets and their health now.")
metrics("ecs_target_group_metrics", ["ecs"],
        lambda inc: _ecs_health().target_group_queries(inc.pull("ecs_target_groups")),
        after=("ecs_target_groups",), doc="HealthyHostCount / UnHealthyHostCount of every service's target group.")


# ---- The application's tables, schema and audit API --------------------------------------------------------
def _window_params(inc) -> dict:
    w = inc.context_window
    return {"start": w.start, "end": w.end}


def _tables():
    from .sources import tables

    return tables


postgres_query("failed_deliveries", "failed_deliveries",
               lambda inc: {"table": inc.env["queues"]["failed_table"], **_window_params(inc)},
               run=lambda conn, inc: _tables().failed_deliveries(conn, inc.env["queues"]["failed_table"],
                                                                 inc.context_window),
               needs=("postgres", "queues"))
postgres_query("ai_calls", "ai_calls", lambda inc: {"table": inc.env["ai"]["logs_table"], **_window_params(inc)},
               run=lambda conn, inc: _tables().ai_calls_per_minute(conn, inc.env["ai"]["logs_table"],
                                                                   inc.context_window),
               needs=("postgres", "ai"))


def _budget_query(inc) -> str:
    return "ai_budgets_named" if inc.env["ai"].get("organizations_table") else "ai_budgets"


def _budget_params(inc) -> dict:
    ai = inc.env["ai"]
    out = {"logs_table": ai["logs_table"], "budgets_table": ai["budgets_table"], "as_of": inc.window.end}
    if ai.get("organizations_table"):
        out["organizations_table"] = ai["organizations_table"]
    return out


declare(Capture("ai_budgets", "postgres", "query:ai_budgets",
                lambda inc: _tables().ai_budget_use(inc.pg(), **_budget_params(inc)),
                lambda inc: {"database": inc.pg_target(),
                             **queries.load(_budget_query(inc)).record(_budget_params(inc))},
                ("postgres", "ai"), queries.load("ai_budgets").columns, TABLES, query="ai_budgets",
                doc="Month-to-date spend per organisation against its monthly budget "
                    "(query ai_budgets_named when the environment names an organisations table)."))


def _alembic(conn, inc):
    from .sources import pg_schema

    return pg_schema.alembic_version(conn, _alembic_table(inc))


def _alembic_table(inc) -> str:
    return (inc.env.get("schema") or {}).get("alembic_table") or "alembic_version"


postgres_query("pg_alembic_version", "pg_alembic_version", lambda inc: {"table": _alembic_table(inc)},
               run=_alembic, doc="alembic's version table (a missing table is an answer, not an error).")
postgres_query("pg_enums", "pg_enums")


def _audit():
    from .sources import audit

    return audit


def _audit_timeout(inc) -> float:
    return float(inc.env["audit"].get("timeout_s") or defaults.AUDIT_TIMEOUT_S)


def _audit_events(inc):
    a = inc.env["audit"]
    if a.get("export_file"):
        return _audit().read_export(a["export_file"], inc.window, a["tenants"])
    return _audit().audit_replay(a["base_url"], a["tenants"], inc.window, token_env=a["token_env"],
                                 timeout=_audit_timeout(inc))


def _audit_events_args(inc):
    a = inc.env["audit"]
    if a.get("export_file"):
        return {"file": a["export_file"], "tenants": a["tenants"], **inc.window.as_dict()}
    return _audit().call_description(a["base_url"], a["tenants"], inc.window, a["token_env"])


def _audit_verify(inc):
    a = inc.env["audit"]
    if a.get("export_file"):
        raise LookupError("audit.export_file is set: the application's verify-chain is not asked")
    return _audit().verify_chain_endpoint(a["base_url"], a["tenants"], token_env=a["token_env"],
                                          timeout=_audit_timeout(inc))


events("audit_events", "GET /api/v1/tenants/{tenant}/audit-replay", ["audit"], _audit_events, _audit_events_args,
       _audit().COLUMNS, source="audit", volatility=TABLES,
       doc="The tenants' audit events in the window (the application's audit-replay, or an export). The bearer "
           "token comes from the variable named by audit.token_env; neither is recorded.")
events("audit_verify", "GET /api/v1/tenants/{tenant}/verify-chain", ["audit"], _audit_verify,
       lambda inc: _audit().call_description(inc.env["audit"]["base_url"], inc.env["audit"]["tenants"], None,
                                             inc.env["audit"]["token_env"]),
       _audit().VERIFY_COLUMNS, source="audit", volatility=TABLES,
       doc="The application's own verify-chain verdict per tenant.")

# ---- Evidence outside CloudWatch: ALB access logs in S3, PostgreSQL's own log ----------------------------
def _alb_logs():
    from .sources import alb_logs

    return alb_logs


events("alb_access_logs", "s3:ListObjectsV2+GetObject", ["alb.access_logs"],
       lambda inc: _alb_logs().access_logs(inc.env["alb"], inc.context_window, aws=inc.aws),
       lambda inc: _alb_logs().call_description(inc.env["alb"], inc.context_window),
       _alb_logs().COLUMNS, source="alb_access_logs",
       doc="Every ALB request of the context window from the access logs in S3 (the files of the window only).")
events("alb_access_logs_baseline", "s3:ListObjectsV2+GetObject", ["alb.access_logs"],
       lambda inc: _alb_logs().access_logs(inc.env["alb"], inc.baseline_window, aws=inc.aws),
       lambda inc: _alb_logs().call_description(inc.env["alb"], inc.baseline_window),
       _alb_logs().COLUMNS, source="alb_access_logs",
       doc="ALB requests of the baseline hours before the window: what 'known' clients and user agents means.")


def _endpoints(inc):
    """Requests, errors and latency per endpoint: DuckDB over the window's access logs, or Athena over the
    environment's ALB table when it has an athena section."""
    from .sources import query_engines

    params = {"start": inc.window.start, "end": inc.window.end}
    athena = inc.env.get("athena")
    if athena:
        params["table"] = athena.get("alb_table") or "alb_logs"
        return query_engines.run_athena("alb_endpoints", athena, inc.aws, params)
    return query_engines.run_duckdb("alb_endpoints", {"alb_logs": inc.pull("alb_access_logs")}, params)


def _endpoints_args(inc):
    engine = "athena" if inc.env.get("athena") else "duckdb"
    return queries.load("alb_endpoints").record({"start": inc.window.start, "end": inc.window.end}, engine)


declare(Capture("alb_endpoints", "alb_access_logs", "query:alb_endpoints", _endpoints, _endpoints_args,
                ("alb.access_logs",), queries.load("alb_endpoints").columns, LOGS, query="alb_endpoints",
                after=("alb_access_logs",),
                doc="Requests, 5xx/4xx and target latency per endpoint (method and path template) in the window."))


def _data_access(inc):
    """S3 object calls per principal, bucket and action in the window: Athena over the environment's
    CloudTrail table when it has an athena section (an organisation's trail over months), else DuckDB over
    the events read from the trail's bucket."""
    from .sources import query_engines

    params = {"start": inc.window.start, "end": inc.window.end}
    athena = inc.env.get("athena")
    if athena:
        params["table"] = athena.get("cloudtrail_table") or "cloudtrail_logs"
        return query_engines.run_athena("cloudtrail_data_access", athena, inc.aws, params)
    return query_engines.run_duckdb("cloudtrail_data_access", {"cloudtrail_logs": inc.pull("cloudtrail_events")},
                                    params)


def _data_access_args(inc):
    engine = "athena" if inc.env.get("athena") else "duckdb"
    return queries.load("cloudtrail_data_access").record({"start": inc.window.start, "end": inc.window.end},
                                                         engine)


declare(Capture("cloudtrail_data_access", "cloudtrail", "query:cloudtrail_data_access", _data_access,
                _data_access_args, ("cloudtrail.bucket",), queries.load("cloudtrail_data_access").columns, LOGS,
                query="cloudtrail_data_access", after=("cloudtrail_events",),
                doc="S3 object calls (data events) per principal, bucket and action, with the busiest minute."))


def _rds_log_group(inc) -> str:
    rds = inc.env["rds"]
    return rds.get("log_group") or f"/aws/rds/instance/{rds['instance']}/postgresql"


log_events("pg_log_events", ["rds"], lambda inc: [_rds_log_group(inc)], logs.PG_LOG_PATTERN, logs.PG_LOG_REGEX,
           doc="PostgreSQL's own log (RDS exports it to CloudWatch Logs): errors, fatals, panics, and the "
               "warnings and checkpoint lines that tell of pressure.")

# ---- Scheduled jobs: declared heartbeats, EventBridge rules and Scheduler schedules ----------------------
def _schedules():
    from .sources import schedules

    return schedules


def _beats(inc):
    return _schedules().heartbeats(inc.env.get("jobs"))


def _heartbeat_window(inc):
    """The incident window with, before it, the context or two overdue spans of the slowest job."""
    return _schedules().lookback(_beats(inc), inc.window, defaults.CONTEXT)


def _heartbeat_metric_args(inc):
    s, w = _schedules(), _heartbeat_window(inc)
    return cloudwatch.call_description(s.heartbeat_metric_queries(_beats(inc)), w, s.heartbeat_metric_period(w))


def _heartbeat_metrics(inc):
    s, w = _schedules(), _heartbeat_window(inc)
    return cloudwatch.get_metric_data(s.heartbeat_metric_queries(_beats(inc)), w, s.heartbeat_metric_period(w),
                                      aws=inc.aws)


declare(Capture("job_heartbeat_logs", "logs", "FilterLogEvents",
                lambda inc: _schedules().heartbeat_logs(_beats(inc), _heartbeat_window(inc), aws=inc.aws),
                lambda inc: _schedules().heartbeat_log_description(_beats(inc), _heartbeat_window(inc)),
                ("jobs.heartbeats",), _schedules().HEARTBEAT_LOG_COLUMNS, LOGS,
                doc="Each job's heartbeat log lines (jobs.heartbeats with log_group and pattern) over the window "
                    "and, before it, two overdue spans of the slowest job."))
declare(Capture("job_heartbeat_metrics", "cloudwatch", "GetMetricData", _heartbeat_metrics, _heartbeat_metric_args,
                ("jobs.heartbeats",), contracts.METRIC_COLUMNS, METRICS,
                doc="Each job's heartbeat metric (jobs.heartbeats with metric), labelled with the job's name, over "
                    "the same span."))


def _jobs_section(inc) -> dict:
    return inc.env.get("jobs") or {}


events("eventbridge_rules", "events:ListRules+ListTargetsByRule", ["jobs"],
       lambda inc: _schedules().eventbridge_rules(_jobs_section(inc).get("event_buses"),
                                                  _jobs_section(inc).get("rule_prefix"), aws=inc.aws),
       lambda inc: {"event_buses": _jobs_section(inc).get("event_buses") or ["default"],
                    "rule_prefix": _jobs_section(inc).get("rule_prefix")},
       _schedules().RULE_COLUMNS, source="schedules",
       doc="EventBridge rules with a schedule expression (state, targets) on the environment's buses.")
events("scheduler_schedules", "scheduler:ListSchedules+GetSchedule", ["jobs"],
       lambda inc: _schedules().scheduler_schedules(_jobs_section(inc).get("schedule_groups"), aws=inc.aws),
       lambda inc: {"groups": _jobs_section(inc).get("schedule_groups") or "every group"},
       _schedules().RULE_COLUMNS, source="schedules",
       doc="EventBridge Scheduler schedules (expression, state, target) of the environment's groups.")


def _schedule_frame(inc) -> pd.DataFrame:
    return pd.concat([inc.pull("eventbridge_rules"), inc.pull("scheduler_schedules")], ignore_index=True)


metrics("schedule_invocation_metrics", ["jobs"], lambda inc: _schedules().invocation_queries(_schedule_frame(inc)),
        after=("eventbridge_rules", "scheduler_schedules"),
        doc="AWS/Events Invocations and FailedInvocations per scheduled rule; AWS/Scheduler attempts, target "
            "errors and dropped invocations per schedule group.")


def _job_events(inc):
    from .analysis import jobs

    beats = _beats(inc)
    logs_frame, metric_frame = inc.pull("job_heartbeat_logs"), inc.pull("job_heartbeat_metrics")
    pulled = inc.captures["job_heartbeat_logs"].pulled_at if "job_heartbeat_logs" in inc.captures else None
    as_of = jobs.as_of(inc.window.end, pulled)
    runs = jobs.runs(logs_frame, metric_frame, beats)
    silent = jobs.silent_jobs(runs, beats, as_of, _heartbeat_window(inc).start)
    failed = jobs.failed_invocations(inc.pull("schedule_invocation_metrics"), _schedule_frame(inc),
                                     inc.window.start, inc.window.end)
    return jobs.as_events(silent, failed)


events("job_events", "analysis:jobs.as_events", ["jobs"], _job_events,
       lambda inc: {"from": ["job_heartbeat_logs", "job_heartbeat_metrics", "schedule_invocation_metrics"],
                    **inc.window.as_dict()},
       after=("job_heartbeat_logs", "job_heartbeat_metrics", "schedule_invocation_metrics"), source="schedules",
       doc="A job going silent (when its heartbeat became overdue) and a schedule's first failed invocation, as "
           "change events for the overview's timeline.")


# ---- Authentication failures: the application log's auth lines ---------------------------------------------
def _auth_logs():
    from .sources import auth_logs

    return auth_logs


events("app_auth_logs", "logs:FilterLogEvents", ["logs"],
       lambda inc: _auth_logs().auth_lines(inc.env["logs"]["app"], inc.context_window, aws=inc.aws),
       lambda inc: _auth_logs().call_description(inc.env["logs"]["app"], inc.context_window),
       contracts.LOG_COLUMNS, source="logs",
       doc="The application log's authentication lines (401/403 access lines, JWT/secret/credential errors) "
           "over the context window.")
events("app_auth_logs_baseline", "logs:FilterLogEvents", ["logs"],
       lambda inc: _auth_logs().auth_lines(inc.env["logs"]["app"], inc.baseline_window, aws=inc.aws),
       lambda inc: _auth_logs().call_description(inc.env["logs"]["app"], inc.baseline_window),
       contracts.LOG_COLUMNS, source="logs",
       doc="The same lines over the baseline hours before the window: what 'known' clients and user agents means.")


# ---- Logs at volume: Logs Insights ------------------------------------------------------------------------
# Per log source three captures (forensics.sources.log_volume): <base>_per_minute (matching events per minute
# and log group), <base>_sample (the bounded sample: slices over the whole window, denser around the onset's
# first guess, FilterLogEvents when Insights is unavailable) and <base>_signature_counts (exact per-minute
# counts of the sample's candidate signatures, one query). Ranking by change: forensics.analysis.log_change.
def _log_volume():
    from .sources import log_volume

    return log_volume


def _capture_failed(frame: pd.DataFrame, name: str) -> None:
    if frame.attrs.get("capture_error"):
        raise LookupError(f"{name} failed: {frame.attrs['capture_error']}")


def log_volume(base: str, needs: Iterable[str], groups: Callable, regex: str, pattern: str | None,
               doc: str = "") -> tuple[Capture, Capture, Capture]:
    """The three Insights captures of one log source; ``regex`` selects its events (Insights' ``like``),
    ``pattern`` the same for the FilterLogEvents fallback."""
    rate_name, sample_name, counts_name = f"{base}_per_minute", f"{base}_sample", f"{base}_signature_counts"
    lv = _log_volume()

    def rate_pull(inc):
        return lv.events_per_minute(groups(inc), inc.context_window, regex, aws=inc.aws)

    def rate_args(inc):
        return {"api": logs.INSIGHTS_API,
                **lv.insights_args("log_events_per_minute", groups(inc), inc.context_window, {"match": regex})}

    def sampling(inc, per_slice):
        rate = inc.pull(rate_name)
        guess = lv.onset_guess(None if rate.attrs.get("capture_error") else rate, inc.window)
        return {"slices": lv.slice_plan(inc.context_window, guess), "per_slice": int(per_slice),
                "onset_guess": guess.isoformat(), "onset_guess_from": "window start" if rate.attrs.get(
                    "capture_error") or guess == inc.window.start else rate_name,
                "fallback": {"api": logs.API, "filterPattern": pattern, "client_regex": regex,
                             "max_events_per_slice": int(per_slice)}}

    def sample_pull(inc, per_slice=defaults.LOG_SAMPLE_PER_SLICE):
        plan = sampling(inc, per_slice)
        return lv.sample(groups(inc), plan["slices"], regex, pattern, per_slice=int(per_slice), aws=inc.aws)

    def sample_args(inc, per_slice=defaults.LOG_SAMPLE_PER_SLICE):
        return {"api": logs.INSIGHTS_API, "sampling": sampling(inc, per_slice),
                **lv.insights_args("log_sample_slice", groups(inc), inc.context_window,
                                   {"match": regex, "per_slice": int(per_slice)})}

    def plan(inc):
        from .analysis import log_change

        sample = inc.pull(sample_name)
        _capture_failed(sample, sample_name)
        cached = sample.attrs.get("signature_plan")
        if cached is not None:
            return cached
        from .analysis import signatures

        meta = inc.captures[sample_name].args.get("sampling") or {}
        sig = signatures.assign(sample["message"])
        guess = pd.Timestamp(meta.get("onset_guess") or inc.window.start)
        changed = log_change.from_sample(sample, sig, meta.get("slices") or [], int(meta.get("per_slice") or 1),
                                         guess)
        chosen = lv.candidates(changed, sig.value_counts())
        sample.attrs["signature_plan"] = lv.matchers(sample, sig, chosen)
        return sample.attrs["signature_plan"]

    def counts_pull(inc):
        return lv.signature_counts(groups(inc), inc.context_window, regex, plan(inc), aws=inc.aws)

    def counts_args(inc):
        p = plan(inc)
        if not p["signatures"]:
            return {"api": logs.INSIGHTS_API, "signatures": {}, "note": "no signature in the sample"}
        return {"api": logs.INSIGHTS_API, "labels": p["labels"], "coverage_in_sample": p["coverage"],
                **lv.insights_args("log_signature_counts", groups(inc), inc.context_window,
                                   {"match": regex, "signatures": p["signatures"]})}

    what = doc or base.replace("_", " ")
    needs = tuple(needs)
    return (
        declare(Capture(rate_name, "logs", "query:log_events_per_minute", rate_pull, rate_args, needs,
                        lv.RATE_COLUMNS, LOGS, query="log_events_per_minute",
                        doc=f"{what}: matching events per minute and log group (Logs Insights).")),
        declare(Capture(sample_name, "logs", "query:log_sample_slice", sample_pull, sample_args, needs,
                        lv.SAMPLE_COLUMNS, LOGS, query="log_sample_slice",
                        params={"per_slice": defaults.LOG_SAMPLE_PER_SLICE}, after=(rate_name,),
                        doc=f"{what}: a bounded sample spread over the window, denser around the onset "
                            "(Logs Insights per slice; FilterLogEvents when Insights is unavailable).")),
        declare(Capture(counts_name, "logs", "query:log_signature_counts", counts_pull, counts_args, needs,
                        lv.COUNT_COLUMNS, LOGS, query="log_signature_counts", after=(sample_name,),
                        doc=f"{what}: exact per-minute counts of the sample's top signatures (one Logs "
                            "Insights query).")),
    )


log_volume("app_error", ["logs"], lambda inc: inc.env["logs"]["app"], logs.ERROR_REGEX, logs.ERROR_PATTERN,
           doc="Application errors")
log_volume("worker_failure", ["queues"], _worker_groups, _queues().TASK_FAILURE_REGEX,
           _queues().TASK_FAILURE_PATTERN, doc="Worker task failures")
log_volume("pg_log", ["rds"], lambda inc: [_rds_log_group(inc)], logs.PG_LOG_REGEX, logs.PG_LOG_PATTERN,
           doc="PostgreSQL's own log")


def _cache():
    from .analysis import cache

    return cache


def _ai():
    from .analysis import ai

    return ai


#: FilterLogEvents terms for the fallback (case-sensitive, so both spellings; the regex then decides).
REDIS_ERROR_PATTERN = "?transport ?redis ?Redis ?ConnectionResetError ?Connection ?READONLY ?LOADING"
PROVIDER_ERROR_PATTERN = "?openai ?OpenAI ?anthropic ?Anthropic ?falling ?Falling ?budget ?Budget"
log_volume("redis_error", ["logs"], lambda inc: inc.env["logs"]["app"], "(?i)" + _cache().REDIS_ERROR.pattern,
           REDIS_ERROR_PATTERN, doc="Redis client errors in the application logs")
log_volume("provider_error", ["logs"], lambda inc: inc.env["logs"]["app"], "(?i)" + _ai().PROVIDER_ERROR.pattern,
           PROVIDER_ERROR_PATTERN, doc="LLM provider errors and fallbacks in the application logs")


# Exact counts by what a regex found (query log_match_counts: per minute and hit, with first and last event)
# and by task (log_task_counts): one Insights query each over the context window; no FilterLogEvents
# fallback - when Insights is unavailable they fail and the findings that need them are unknown.
def match_counts(name: str, needs: Iterable[str], groups: Callable, extract: Callable[[], str] | str,
                 doc: str = "", query: str = "log_match_counts") -> Capture:
    lv = _log_volume()
    pull_fn = lv.match_counts if query == "log_match_counts" else lv.task_counts
    columns = lv.MATCH_COLUMNS if query == "log_match_counts" else lv.TASK_COLUMNS

    def regex():
        return extract() if callable(extract) else extract

    def pull(inc):
        return pull_fn(groups(inc), inc.context_window, regex(), aws=inc.aws)

    def describe(inc):
        return {"api": logs.INSIGHTS_API, **lv.insights_args(query, groups(inc), inc.context_window,
                                                               {"extract": regex()})}

    return declare(Capture(name, "logs", f"query:{query}", pull, describe, tuple(needs), columns, LOGS,
                           query=query, doc=doc))


def _noncapturing(pattern: str) -> str:
    import re

    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


def _hit(pattern: str) -> str:
    """``pattern``'s alternatives inside one ``(?<hit>...)`` group; its own groups made non-capturing."""
    return "(?<hit>" + _noncapturing(pattern) + ")"


def _pglog_extract() -> str:
    """The patterns of forensics/data/pglog_patterns.yaml as one regex right after the severity (their ``^``),
    the text matched being what classifies the event (forensics.analysis.log_counts.categorized)."""
    from .analysis import pglog

    alternatives = "|".join(p.pattern.lstrip("^") for c in pglog.CATEGORIES for p in c.patterns)
    return r"(?:LOG|ERROR|FATAL|PANIC|WARNING):\s+" + _hit(alternatives)


def _pg_auth_client_extract() -> str:
    """The client address of each refused sign-in, from RDS's fixed prefix ``%t:%r:%u@%d:[%p]:``."""
    from .analysis import pglog

    (auth,) = [c for c in pglog.CATEGORIES if c.name == "authentication_failure"]
    refused = "|".join(p.pattern.lstrip("^") for p in auth.patterns)
    return (r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? ?[A-Z]{0,5}:(?<hit>[^:(]*)(?:\(\d+\))?:[^:@]*@[^:]*:"
            r"\[\d+\]:(?:FATAL|ERROR|LOG):\s+(?:" + _noncapturing(refused) + ")")


#: Celery's task lines as forensics.analysis.queues.TASK_LINE reads them, in Logs Insights' syntax with one
#: outcome group and an exception group that is always present (empty when the line names none).
TASK_LINE_INSIGHTS = (r"Task (?<task>[\w.]+)\[(?<id>[0-9a-fA-F-]{8,})\] (?<outcome>raised unexpected|retry|failed)\b"
                      r":?\s*(?:Retry in \S+:\s*)?(?<exception>[A-Za-z_][\w.]*|)")

match_counts("redis_error_kinds", ["logs"], lambda inc: inc.env["logs"]["app"],
             lambda: "(?i)" + _hit(_cache().REDIS_ERROR.pattern),
             doc="Redis client errors in the application logs by kind (the text matched: transport closed, "
                 "redis.exceptions.X...) per minute, with first and last event (Logs Insights).")
match_counts("pool_error_kinds", ["logs"], lambda inc: inc.env["logs"]["app"],
             lambda: _hit(r"QueuePool limit of size \d+ overflow \d+ reached"),
             doc="SQLAlchemy's connection-pool timeouts (QueuePool limit ... reached) in the application logs per "
                 "minute, with first and last event (Logs Insights: exact at any volume).")
match_counts("provider_error_kinds", ["logs"], lambda inc: inc.env["logs"]["app"],
             lambda: "(?i)" + _hit(_ai().PROVIDER_ERROR.pattern),
             doc="LLM provider errors and fallbacks in the application logs by the text matched, per minute "
                 "(Logs Insights).")
match_counts("pg_log_category_counts", ["rds"], lambda inc: [_rds_log_group(inc)], _pglog_extract,
             doc="PostgreSQL's own log: events per minute by the pattern of forensics/data/pglog_patterns.yaml "
                 "they match, with first and last event (Logs Insights).")
match_counts("pg_auth_failure_clients", ["rds"], lambda inc: [_rds_log_group(inc)], _pg_auth_client_extract,
             doc="PostgreSQL's refused sign-ins per minute by client address (Logs Insights).")
match_counts("worker_task_counts", ["queues"], _worker_groups, TASK_LINE_INSIGHTS, query="log_task_counts",
             doc="Worker task failures and retries by task, outcome and exception over the window (Logs Insights).")



# ---- Backups: snapshots, AWS Backup jobs, RDS backup events, the jobs' logs, the dumps in S3 (001 §3f, §3j) ----
def _backups():
    from .sources import backups

    return backups


def backup_window(inc):
    """``backups.lookback_hours`` before the window's end (never less than the context window): a daily job
    that failed last night is outside an hour-long incident window."""
    from .window import IncidentWindow

    hours = int((inc.env.get("backups") or {}).get("lookback_hours") or defaults.BACKUP_LOOKBACK_HOURS)
    end = inc.window.end
    return IncidentWindow(min(end - pd.Timedelta(hours=hours), inc.context_window.start), end)


#: The job logs' lines about backups and retention (filter terms are case-sensitive: both spellings).
BACKUP_LOG_PATTERN = "?backup ?Backup ?BACKUP ?retention ?Retention ?RETENTION ?pg_dump ?cleanup ?purge ?snapshot"
BACKUP_LOG_REGEX = r"(?i)backup|retention|pg_dump|cleanup|purge|snapshot"


def _backup_log_groups(inc) -> list[str]:
    return list(inc.env["backups"]["retention_log_groups"])


events("rds_snapshots", "rds:DescribeDBSnapshots", ["rds"],
       lambda inc: _backups().rds_snapshots(inc.env["rds"]["instance"], aws=inc.aws),
       lambda inc: _backups().snapshots_description(inc.env["rds"]["instance"]),
       _backups().SNAPSHOT_COLUMNS, source="rds",
       doc="Every snapshot of the RDS instance (automated, manual, AWS Backup's): created, type, status, progress.")
events("backup_jobs", "backup:ListBackupJobs", ["backups"],
       lambda inc: _backups().backup_jobs(backup_window(inc), vault=inc.env["backups"].get("vault"), aws=inc.aws),
       lambda inc: _backups().jobs_description(backup_window(inc), inc.env["backups"].get("vault")),
       _backups().JOB_COLUMNS, source="backup",
       doc="AWS Backup jobs created in the lookback (backups.lookback_hours) with their state and status message.")
events("rds_backup_events", "rds:DescribeEvents", ["rds"],
       lambda inc: _backups().rds_backup_events(inc.env["rds"]["instance"], backup_window(inc), aws=inc.aws),
       lambda inc: _backups().backup_events_description(inc.env["rds"]["instance"], backup_window(inc)),
       _backups().BACKUP_EVENT_COLUMNS, source="rds",
       doc="RDS events of category backup about the instance in the lookback (failures are kind backup-failed).")
declare(Capture(
    "backup_job_logs", "logs", "FilterLogEvents",
    lambda inc, max_events=defaults.LOG_MAX_EVENTS: logs.filter_log_events(
        _backup_log_groups(inc), backup_window(inc), BACKUP_LOG_PATTERN, aws=inc.aws, max_events=max_events,
        client_regex=BACKUP_LOG_REGEX),
    lambda inc, max_events=defaults.LOG_MAX_EVENTS: logs.call_description(
        _backup_log_groups(inc), backup_window(inc), BACKUP_LOG_PATTERN, max_events=max_events,
        client_regex=BACKUP_LOG_REGEX),
    ("backups.retention_log_groups",), contracts.LOG_COLUMNS, LOGS, params={"max_events": defaults.LOG_MAX_EVENTS},
    doc="The retention and backup jobs' log lines over the lookback (backups.retention_log_groups)."))
events("backup_objects", "s3:ListObjectsV2", ["backups.bucket"],
       lambda inc: _backups().backup_objects(inc.env["backups"]["bucket"], inc.env["backups"].get("prefix"),
                                             aws=inc.aws, max_objects=defaults.BACKUP_MAX_OBJECTS),
       lambda inc: {"Bucket": inc.env["backups"]["bucket"], "Prefix": inc.env["backups"].get("prefix"),
                    "max_objects": defaults.BACKUP_MAX_OBJECTS},
       _backups().OBJECT_COLUMNS, source="s3",
       doc="The application's own dumps in S3 (backups.bucket/prefix): key, size, last modified.")


# ---- Certificates and domains: ACM, Route 53, CloudFront (001 §3i, §3k; 000 chunk-load errors) -------------
def _certs():
    from .sources import certificates

    return certificates


def _cert_section(inc) -> dict:
    return inc.env["certificates"]


def _edge_ids(inc) -> list[str]:
    return list(_cert_section(inc)["cloudfront_distributions"])


def _edge_metrics(inc):
    window = inc.context_window
    return cloudwatch.get_metric_data(_certs().edge_queries(_edge_ids(inc)), window, window.period(),
                                      aws=_certs().edge_region(inc.aws))


def _edge_metrics_args(inc):
    window = inc.context_window
    return {"region": _certs().CLOUDFRONT_REGION,
            **cloudwatch.call_description(_certs().edge_queries(_edge_ids(inc)), window, window.period())}


events("acm_certificates", "acm:ListCertificates+DescribeCertificate", ["certificates"],
       lambda inc: _certs().acm_certificates(_certs().acm_regions(_cert_section(inc), inc.aws), aws=inc.aws),
       lambda inc: {"regions": _certs().acm_regions(_cert_section(inc), inc.aws),
                    "Includes": {"keyTypes": list(_certs().KEY_TYPES)}},
       _certs().CERTIFICATE_COLUMNS, source="acm",
       doc="Every ACM certificate (environment Region and us-east-1): expiry, status, renewal, validation records, "
           "in use by; dated by NotAfter on the timeline.")
events("route53_records", "route53:ListHostedZones+ListResourceRecordSets", ["certificates"],
       lambda inc: _certs().route53_records(_cert_section(inc)["domains"],
                                            zone_ids=_cert_section(inc).get("hosted_zones"), aws=inc.aws),
       lambda inc: {"domains": _cert_section(inc)["domains"], "hosted_zones": _cert_section(inc).get("hosted_zones"),
                    "types": list(_certs().RECORD_TYPES)},
       _certs().RECORD_COLUMNS, source="route53",
       doc="A, AAAA, CNAME and CAA records of the hosted zones holding the environment's domains.")
events("cloudfront_distributions", "cloudfront:GetDistribution", ["certificates.cloudfront_distributions"],
       lambda inc: _certs().cloudfront_distributions(_edge_ids(inc), aws=inc.aws),
       lambda inc: {"Ids": _edge_ids(inc)}, _certs().DISTRIBUTION_COLUMNS, source="cloudfront",
       doc="The named CloudFront distributions: aliases, viewer certificate, origins, status.")
declare(Capture("cloudfront_edge_metrics", "cloudwatch", "GetMetricData", _edge_metrics, _edge_metrics_args,
                ("certificates.cloudfront_distributions",), contracts.METRIC_COLUMNS, METRICS,
                doc="CloudFront requests, 4xx/5xx rates, 502/503/504 rates and origin latency per distribution "
                    "(us-east-1, Region=Global)."))

#: Captures of change events, merged by :func:`forensics.pull.all_change_events` into one timeline.
CHANGE_EVENT_CAPTURES: tuple[str, ...] = (
    "ecs_deployments", "ecs_service_events", "ecs_stopped_tasks", "rds_events", "rds_replica_events",
    "elasticache_events", "cloudtrail_events", "alarm_history", "job_events", "rds_snapshots", "backup_jobs",
    "acm_certificates")
from . import captures_pglog  # noqa: E402,F401  - PostgreSQL log captures (issue 20); the lead moves them into captures/
