"""The named captures notebooks ask for: one function each, ``pull.<name>(inc) -> DataFrame``.

Each wraps a source call in :meth:`IncidentSession.capture`, so the frame is recorded with its API
call or SQL, served to every other notebook of the record, and replayable. The most volatile
captures (PostgreSQL's live views) are listed in :data:`VOLATILE`; the runner pulls them before any
notebook starts (RFC 3227 order of volatility).
"""

from __future__ import annotations

from typing import Callable

import pandas as pd

from .sources import aws_events, cloudwatch, logs, postgres

METRIC_COLUMNS = ["timestamp", "id", "label", "value", "stat", "unit"]
LOG_COLUMNS = ["timestamp", "log_group", "log_stream", "message", "event_id"]
EVENT_COLUMNS = ["timestamp", "source", "resource", "kind", "message"]


# ---- PostgreSQL (volatile: what it shows is gone minutes later) -----------------------------------
class _PgConnection:
    """One read-only session per notebook process, opened on first use and closed at exit."""

    _conns: dict[int, object] = {}

    @classmethod
    def get(cls, inc):
        key = id(inc)
        conn = cls._conns.get(key)
        if conn is None or conn.closed:
            pg = inc.env.get("postgres")
            if not pg:
                raise LookupError("the environment has no postgres section")
            conn = postgres.connect(pg, statement_timeout_ms=int(pg.get("statement_timeout_ms") or 15000))
            cls._conns[key] = conn
        return conn

    @classmethod
    def close_all(cls):
        for conn in cls._conns.values():
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        cls._conns.clear()


def _pg(inc, name: str, fn: Callable, sql: str, columns: list[str] | None = None) -> pd.DataFrame:
    return inc.capture(name, lambda: fn(_PgConnection.get(inc)), source="postgres", call=sql,
                       args={"database": _pg_target(inc)}, columns=columns, volatile=True)


def _pg_target(inc) -> str:
    pg = inc.env.get("postgres") or {}
    if pg.get("dsn_env"):
        return f"${pg['dsn_env']}"
    return "dsn in environment" if pg.get("dsn") else "libpq defaults (PG*/PGSERVICE)"


def pg_activity(inc) -> pd.DataFrame:
    return _pg(inc, "pg_activity", postgres.activity, postgres.ACTIVITY_SQL, list(postgres.ACTIVITY_COLUMNS))


def pg_locks(inc) -> pd.DataFrame:
    return _pg(inc, "pg_locks", postgres.locks, postgres.LOCKS_SQL, list(postgres.LOCKS_COLUMNS))


def pg_statements(inc) -> pd.DataFrame:
    return _pg(inc, "pg_statements", postgres.statements, postgres.STATEMENTS_SQL,
               list(postgres.STATEMENTS_COLUMNS))


def pg_statements_info(inc) -> pd.DataFrame:
    return _pg(inc, "pg_statements_info", postgres.statements_info,
               postgres.STATEMENTS_INFO_SQL, list(postgres.STATEMENTS_INFO_COLUMNS))


def pg_settings(inc) -> pd.DataFrame:
    return _pg(inc, "pg_settings", postgres.settings, postgres.SETTINGS_SQL, list(postgres.SETTINGS_COLUMNS))


VOLATILE: list[Callable] = [pg_activity, pg_locks, pg_statements, pg_statements_info, pg_settings]


def precapture(inc) -> None:
    """Pull every volatile capture now, most volatile first (the runner's first step)."""
    try:
        for fn in VOLATILE:
            fn(inc)
    finally:
        _PgConnection.close_all()


# ---- CloudWatch metrics ----------------------------------------------------------------------------
def _metrics(inc, name: str, queries) -> pd.DataFrame:
    window = inc.context_window
    period = window.period()
    return inc.capture(
        name, lambda: cloudwatch.get_metric_data(queries, window, period, aws=inc.aws),
        source="cloudwatch", call="GetMetricData",
        args=cloudwatch.call_description(queries, window, period), columns=METRIC_COLUMNS)


def alb_metrics(inc) -> pd.DataFrame:
    alb = inc.env["alb"]
    return _metrics(inc, "alb_metrics", cloudwatch.alb_queries(alb["load_balancer"], alb.get("target_group"),
                                                               latency_stats=("Average", "Maximum")))


def alb_latency_percentiles(inc) -> pd.DataFrame:
    """Percentiles apart: a source that cannot serve them (moto) must not cost the other series."""
    alb = inc.env["alb"]
    queries = [q for q in cloudwatch.alb_queries(alb["load_balancer"], latency_stats=("p50", "p95", "p99"))
               if q.metric == "TargetResponseTime"]
    return _metrics(inc, "alb_latency_percentiles", queries)


def rds_metrics(inc) -> pd.DataFrame:
    return _metrics(inc, "rds_metrics", cloudwatch.rds_queries(inc.env["rds"]["instance"]))


def ecs_metrics(inc) -> pd.DataFrame:
    ecs = inc.env["ecs"]
    many = len(ecs["services"]) > 1
    queries = [q for i, svc in enumerate(ecs["services"])
               for q in cloudwatch.ecs_queries(ecs["cluster"], svc, prefix=f"ecs{i}" if many else "ecs")]
    return _metrics(inc, "ecs_metrics", queries)


# ---- Logs ------------------------------------------------------------------------------------------
def app_error_logs(inc, max_events: int = 200_000) -> pd.DataFrame:
    groups = inc.env["logs"]["app"]
    window = inc.context_window
    return inc.capture(
        "app_error_logs",
        lambda: logs.filter_log_events(groups, window, logs.ERROR_PATTERN, aws=inc.aws,
                                       max_events=max_events, client_regex=logs.ERROR_REGEX),
        source="logs", call="FilterLogEvents",
        args=logs.call_description(groups, window, logs.ERROR_PATTERN), columns=LOG_COLUMNS)


# ---- Change events ---------------------------------------------------------------------------------
def _events(inc, name: str, fn: Callable, call: str, args: dict) -> pd.DataFrame:
    return inc.capture(name, fn, source="aws-events", call=call, args=args, columns=EVENT_COLUMNS)


def ecs_deployments(inc) -> pd.DataFrame:
    ecs = inc.env["ecs"]
    return _events(inc, "ecs_deployments",
                   lambda: aws_events.ecs_deployments(ecs["cluster"], ecs["services"], inc.window, aws=inc.aws),
                   "ecs:DescribeServices", {"cluster": ecs["cluster"], "services": ecs["services"],
                                            "field": "deployments"})


def ecs_service_events(inc) -> pd.DataFrame:
    ecs = inc.env["ecs"]
    return _events(inc, "ecs_service_events",
                   lambda: aws_events.ecs_service_events(ecs["cluster"], ecs["services"], inc.window,
                                                         aws=inc.aws),
                   "ecs:DescribeServices", {"cluster": ecs["cluster"], "services": ecs["services"],
                                            "field": "events", **inc.window.as_dict()})


def ecs_stopped_tasks(inc) -> pd.DataFrame:
    ecs = inc.env["ecs"]
    return _events(inc, "ecs_stopped_tasks",
                   lambda: aws_events.ecs_stopped_tasks(ecs["cluster"], ecs["services"], inc.window, aws=inc.aws),
                   "ecs:ListTasks+DescribeTasks", {"cluster": ecs["cluster"], "services": ecs["services"],
                                                   "desiredStatus": "STOPPED", **inc.window.as_dict()})


def rds_events(inc) -> pd.DataFrame:
    instance = inc.env["rds"]["instance"]
    return _events(inc, "rds_events", lambda: aws_events.rds_events(instance, inc.window, aws=inc.aws),
                   "rds:DescribeEvents", {"SourceIdentifier": instance, **inc.window.as_dict()})


# ---- Everything on one timeline ---------------------------------------------------------------------
#: Captures of change events, each ``fn(inc) -> events frame``, with the environment section it needs.
#: A notebook that adds a source of change events registers it here so the overview sees it too.
CHANGE_EVENT_CAPTURES: list[tuple[str, Callable]] = [
    ("ecs", ecs_deployments),
    ("ecs", ecs_service_events),
    ("ecs", ecs_stopped_tasks),
    ("rds", rds_events),
]


def all_change_events(inc) -> pd.DataFrame:
    """Every change-event capture the environment has the section for, merged and sorted."""
    from .analysis import timeline

    frames = [fn(inc) for section, fn in CHANGE_EVENT_CAPTURES if inc.env.get(section)]
    return timeline.merge(*frames)


# ---- Redis (ElastiCache), queues, AI spend: cache-redis, queue-backlog, ai-cost ---------------------
def elasticache_nodes(inc) -> list[str]:
    """The environment's nodes, else the group's first two conventional node ids."""
    ec = inc.env["elasticache"]
    return list(ec.get("nodes") or [f"{ec['replication_group']}-001", f"{ec['replication_group']}-002"])


def elasticache_metrics(inc) -> pd.DataFrame:
    from .sources import elasticache

    return _metrics(inc, "elasticache_metrics", elasticache.metric_queries(elasticache_nodes(inc)))


def elasticache_group(inc) -> pd.DataFrame:
    from .sources import elasticache

    group = inc.env["elasticache"]["replication_group"]
    return inc.capture("elasticache_group", lambda: elasticache.replication_group(group, aws=inc.aws),
                       source="aws-events", call="elasticache:DescribeReplicationGroups",
                       args={"ReplicationGroupId": group})


def elasticache_events(inc) -> pd.DataFrame:
    from .sources import elasticache

    group, nodes = inc.env["elasticache"]["replication_group"], elasticache_nodes(inc)
    window = inc.context_window
    return _events(inc, "elasticache_events",
                   lambda: elasticache.events(group, nodes, window, aws=inc.aws),
                   "elasticache:DescribeEvents", elasticache.call_description(group, nodes, window))


def queue_depth(inc) -> pd.DataFrame:
    from .sources import queues

    q = inc.env["queues"]
    return _metrics(inc, "queue_depth", queues.depth_queries(q["namespace"], q["metric"], q["dimension"], q["names"]))


def worker_failure_logs(inc, max_events: int = 200_000) -> pd.DataFrame:
    from .sources import queues

    groups = inc.env["queues"].get("log_groups") or []
    window = inc.context_window
    if not groups:
        raise LookupError("the environment's queues section names no log_groups")
    return inc.capture(
        "worker_failure_logs",
        lambda: logs.filter_log_events(groups, window, queues.TASK_FAILURE_PATTERN, aws=inc.aws,
                                       max_events=max_events, client_regex=queues.TASK_FAILURE_REGEX),
        source="logs", call="FilterLogEvents",
        args=logs.call_description(groups, window, queues.TASK_FAILURE_PATTERN,
                                   client_regex=queues.TASK_FAILURE_REGEX), columns=LOG_COLUMNS)


def _table(inc, name: str, fn: Callable, composed, args: dict) -> pd.DataFrame:
    from .sources import tables

    return inc.capture(name, lambda: fn(_PgConnection.get(inc)), source="postgres",
                       call=tables.sql_text(composed), args={"database": _pg_target(inc), **args})


def failed_deliveries(inc) -> pd.DataFrame:
    from .sources import tables

    table = inc.env["queues"]["failed_table"]
    window = inc.context_window
    return _table(inc, "failed_deliveries", lambda conn: tables.failed_deliveries(conn, table, window),
                  tables.failed_deliveries_sql(table), {"table": table, **window.as_dict()})


def ai_calls(inc) -> pd.DataFrame:
    from .sources import tables

    table = inc.env["ai"]["logs_table"]
    window = inc.context_window
    return _table(inc, "ai_calls", lambda conn: tables.ai_calls_per_minute(conn, table, window),
                  tables.ai_calls_sql(table), {"table": table, **window.as_dict()})


def ai_budgets(inc) -> pd.DataFrame:
    from .sources import tables

    ai = inc.env["ai"]
    as_of = inc.window.end
    return _table(inc, "ai_budgets",
                  lambda conn: tables.ai_budget_use(conn, ai["logs_table"], ai["budgets_table"], as_of,
                                                    ai.get("organizations_table")),
                  tables.ai_budget_sql(ai["logs_table"], ai["budgets_table"], ai.get("organizations_table")),
                  {"logs_table": ai["logs_table"], "budgets_table": ai["budgets_table"],
                   "as_of": as_of.isoformat()})


# ---- Audit trail (data integrity) ---------------------------------------------------------------------
AUDIT_COLUMNS = ["ts", "event_id", "tenant", "actor", "action", "entity", "payload", "prev_hash", "chain_hash"]


def audit_events(inc) -> pd.DataFrame:
    """The tenants' audit events in the window: the application's audit-replay (the bearer token from
    the variable named by ``audit.token_env``; neither it nor its value is recorded), or an export."""
    from .sources import audit

    a = inc.env["audit"]
    window = inc.window
    if a.get("export_file"):
        return inc.capture("audit_events", lambda: audit.read_export(a["export_file"], window, a["tenants"]),
                           source="audit", call="read export", args={"file": a["export_file"], "tenants": a["tenants"],
                                                                     **window.as_dict()}, columns=AUDIT_COLUMNS)
    return inc.capture(
        "audit_events",
        lambda: audit.audit_replay(a["base_url"], a["tenants"], window, token_env=a["token_env"],
                                   timeout=float(a.get("timeout_s") or 30)),
        source="audit", call="GET " + audit.REPLAY_PATH + "?from=&to=",
        args=audit.call_description(a["base_url"], a["tenants"], window, a["token_env"]), columns=AUDIT_COLUMNS)


def audit_verify(inc) -> pd.DataFrame:
    """The application's own verify-chain verdict per tenant."""
    from .sources import audit

    a = inc.env["audit"]
    if a.get("export_file"):
        raise LookupError("audit.export_file is set: the application's verify-chain is not asked")
    return inc.capture(
        "audit_verify",
        lambda: audit.verify_chain_endpoint(a["base_url"], a["tenants"], token_env=a["token_env"],
                                            timeout=float(a.get("timeout_s") or 60)),
        source="audit", call="GET " + audit.VERIFY_PATH,
        args=audit.call_description(a["base_url"], a["tenants"], None, a["token_env"]),
        columns=list(audit.VERIFY_COLUMNS))


# ---- CloudTrail (security) ------------------------------------------------------------------------------
def _cloudtrail(inc, name: str, window) -> pd.DataFrame:
    from .sources import cloudtrail

    ct = inc.env.get("cloudtrail") or {}
    max_events = int(ct.get("max_events") or cloudtrail.DEFAULT_MAX_EVENTS)
    return inc.capture(name, lambda: cloudtrail.lookup_events(window, aws=inc.aws, max_events=max_events),
                       source="cloudtrail", call="LookupEvents",
                       args=cloudtrail.call_description(window, max_events=max_events),
                       columns=list(cloudtrail.COLUMNS))


def cloudtrail_events(inc) -> pd.DataFrame:
    """Every CloudTrail management event in the incident window."""
    return _cloudtrail(inc, "cloudtrail_events", inc.window)


def cloudtrail_baseline(inc) -> pd.DataFrame:
    """CloudTrail events of the ``cloudtrail.baseline_hours`` (default 24) before the window: what
    "known" principals and source IPs means."""
    from .window import IncidentWindow

    hours = int((inc.env.get("cloudtrail") or {}).get("baseline_hours") or 24)
    start = inc.window.start
    return _cloudtrail(inc, "cloudtrail_baseline", IncidentWindow(start - pd.Timedelta(hours=hours), start))


# ---- ECS deploys: target groups behind the services (ecs-deploy) ---------------------------------------
def ecs_target_groups(inc) -> pd.DataFrame:
    """The target groups the environment's services register into (found through DescribeServices)."""
    from .sources import ecs_health

    ecs = inc.env["ecs"]
    return inc.capture("ecs_target_groups",
                       lambda: ecs_health.service_target_groups(ecs["cluster"], ecs["services"], aws=inc.aws),
                       source="aws-events", call="ecs:DescribeServices+elbv2:DescribeTargetGroups",
                       args={"cluster": ecs["cluster"], "services": ecs["services"], "field": "loadBalancers"},
                       columns=list(ecs_health.TARGET_GROUP_COLUMNS))


def ecs_target_health(inc) -> pd.DataFrame:
    """Each of those target groups' targets and their health now."""
    from .sources import ecs_health

    arns = ecs_target_groups(inc)["target_group_arn"].dropna().tolist()
    return inc.capture("ecs_target_health", lambda: ecs_health.target_health(arns, aws=inc.aws),
                       source="aws-events", call="elbv2:DescribeTargetHealth", args={"target_groups": arns},
                       columns=list(ecs_health.TARGET_HEALTH_COLUMNS))


def ecs_target_group_metrics(inc) -> pd.DataFrame:
    """HealthyHostCount / UnHealthyHostCount of every service's target group over the context window."""
    from .sources import ecs_health

    return _metrics(inc, "ecs_target_group_metrics", ecs_health.target_group_queries(ecs_target_groups(inc)))


# ---- slow-queries: a second pg_stat_statements snapshot -------------------------------------------------
def pg_statements_after(inc, wait_s: float = 8.0) -> pd.DataFrame:
    """A second pg_stat_statements snapshot, ``wait_s`` seconds (at most) after the first one
    (``pg_statements``, taken by the runner before any notebook): the delta of the two is what the
    database did in between. The wait is bounded: never more than ``wait_s`` from now."""
    import time

    first = pg_statements(inc)
    pg_statements_info(inc)

    def fetch():
        if len(first) and "snapshot_at" in first:
            elapsed = (pd.Timestamp.now(tz="UTC") - pd.to_datetime(first["snapshot_at"], utc=True).max())
            time.sleep(min(max(wait_s - elapsed.total_seconds(), 0.0), wait_s))
        else:
            time.sleep(wait_s)
        return postgres.statements(_PgConnection.get(inc))

    return inc.capture("pg_statements_after", fetch, source="postgres", call=postgres.STATEMENTS_SQL,
                       args={"database": _pg_target(inc), "after": "pg_statements", "wait_s": wait_s},
                       volatile=True)


def pg_statements_info_after(inc) -> pd.DataFrame:
    """pg_stat_statements_info with the second snapshot (stats_reset, dealloc: was the delta cut?)."""
    return _pg(inc, "pg_statements_info_after", postgres.statements_info, postgres.STATEMENTS_INFO_SQL)


# ---- db-health: replica, schema --------------------------------------------------------------------------
def rds_replica_metrics(inc) -> pd.DataFrame:
    """The read replica's ReplicaLag (Maximum), CPU and free storage; empty when ``rds.replica`` is unset."""
    replica = (inc.env.get("rds") or {}).get("replica")
    if not replica:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    queries = [cloudwatch.MetricQuery("replica_lag", "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": replica},
                                      "Maximum", "replica lag (s)"),
               *[q for q in cloudwatch.rds_queries(replica, prefix="replica") if q.metric in ("CPUUtilization",
                                                                                            "FreeStorageSpace")]]
    return _metrics(inc, "rds_replica_metrics", queries)


def rds_replica_events(inc) -> pd.DataFrame:
    """RDS events of the read replica in the window; empty when ``rds.replica`` is unset."""
    replica = (inc.env.get("rds") or {}).get("replica")
    if not replica:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    return _events(inc, "rds_replica_events", lambda: aws_events.rds_events(replica, inc.window, aws=inc.aws),
                   "rds:DescribeEvents", {"SourceIdentifier": replica, **inc.window.as_dict()})


def pg_alembic_version(inc) -> pd.DataFrame:
    from .sources import pg_schema

    table = (inc.env.get("schema") or {}).get("alembic_table") or "alembic_version"
    return _table(inc, "pg_alembic_version", lambda conn: pg_schema.alembic_version(conn, table),
                  pg_schema.alembic_sql(table), {"table": table})


def pg_enums(inc) -> pd.DataFrame:
    from .sources import pg_schema

    return inc.capture("pg_enums", lambda: pg_schema.enums(_PgConnection.get(inc)), source="postgres",
                       call=pg_schema.ENUMS_SQL, args={"database": _pg_target(inc)},
                       columns=list(pg_schema.ENUM_COLUMNS))


CHANGE_EVENT_CAPTURES.append(("rds", rds_replica_events))
CHANGE_EVENT_CAPTURES.append(("elasticache", elasticache_events))
CHANGE_EVENT_CAPTURES.append(("cloudtrail", cloudtrail_events))


# ---- CloudWatch alarm history (every environment: section "aws") -------------------------------------
def alarm_history(inc) -> pd.DataFrame:
    """Every alarm state change (DescribeAlarmHistory, StateUpdate) over the context window."""
    window = inc.context_window
    return inc.capture("alarm_history", lambda: cloudwatch.alarm_history(window, aws=inc.aws),
                       source="cloudwatch", call="DescribeAlarmHistory",
                       args=cloudwatch.alarm_history_description(window),
                       columns=list(cloudwatch.ALARM_HISTORY_COLUMNS))


CHANGE_EVENT_CAPTURES.append(("aws", alarm_history))
