"""Log events read with FilterLogEvents: application errors, worker failures, PostgreSQL's own log, sign-ins."""

from __future__ import annotations

from .. import contracts
from ..sources import auth_logs, logs
from ..sources import queues as queue_source
from .core import events, log_events


def app_groups(inc) -> list[str]:
    return inc.env["logs"]["app"]


def worker_groups(inc) -> list[str]:
    groups = inc.env["queues"].get("log_groups") or []
    if not groups:
        raise LookupError("the environment's queues section names no log_groups")
    return groups


def rds_log_group(inc) -> str:
    rds = inc.env["rds"]
    return rds.get("log_group") or f"/aws/rds/instance/{rds['instance']}/postgresql"


log_events("app_error_logs", ["logs"], app_groups, logs.ERROR_PATTERN, logs.ERROR_REGEX,
           doc="Application error log events.")
log_events("worker_failure_logs", ["queues"], worker_groups, queue_source.TASK_FAILURE_PATTERN,
           queue_source.TASK_FAILURE_REGEX, doc="Worker (Celery) task failures and retries.")
log_events("pg_log_events", ["rds"], lambda inc: [rds_log_group(inc)], logs.PG_LOG_PATTERN, logs.PG_LOG_REGEX,
           doc="PostgreSQL's own log (RDS exports it to CloudWatch Logs): errors, fatals, panics, and the "
               "warnings and checkpoint lines that tell of pressure.")

# ---- Authentication failures: the application log's auth lines ---------------------------------------------
events("app_auth_logs", "logs:FilterLogEvents", ["logs"],
       lambda inc: auth_logs.auth_call(app_groups(inc), inc.context_window, aws=inc.aws),
       contracts.LOG_COLUMNS, source="logs",
       doc="The application log's authentication lines (401/403 access lines, JWT/secret/credential errors) "
           "over the context window.")
events("app_auth_logs_baseline", "logs:FilterLogEvents", ["logs"],
       lambda inc: auth_logs.auth_call(app_groups(inc), inc.baseline_window, aws=inc.aws),
       contracts.LOG_COLUMNS, source="logs",
       doc="The same lines over the baseline hours before the window: what 'known' clients and user agents means.")
