"""The pool-exhaustion scenario's names: resources (the environment file's values), the applications in
pg_stat_activity, the errors and the SQL it plants, and its sizes."""

from __future__ import annotations

from ..common import API_LOG_GROUP, API_SERVICE, API_STREAM_PREFIX


SEED = 20261123

# ---- resource names (the environment file's values) ------------------------------------------------
TG_NAME = API_SERVICE
TG_ID = "9c2a6e1f7b3d5a80"
TG_DIMENSION = f"targetgroup/{TG_NAME}/{TG_ID}"
SERVICE = FAMILY = API_SERVICE
LOG_GROUP = API_LOG_GROUP
STREAM_PREFIX = API_STREAM_PREFIX
CONTAINER = "scr-api"
PREVIOUS_REVISION, NEW_REVISION = 41, 42
IMAGE_REPO = "scr-api"
ALARM_5XX = "scr-api-production-5xx-rate"
ALARM_CONNECTIONS = "scr-production-postgres-connections"

# ---- application names in pg_stat_activity ----------------------------------------------------------
API_APP = API_SERVICE
WORKER_APP = "scr-worker"
REPORTS_APP = "scr-reports"

QUEUEPOOL_ERROR = ("sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, "
                   "connection timed out, timeout 30.00 (Background on this error at: "
                   "https://sqlalche.me/e/20/3o7r)")
SLOTS_ERROR = ("sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: "
               "connection to server at \"scr-production-postgres.cq4x8mzk2v1a.eu-west-1.rds.amazonaws.com\" "
               "(10.0.12.45), port 5432 failed: FATAL:  remaining connection slots are reserved for "
               "non-replication superuser connections")
BASELINE_ERROR = "httpx.ReadTimeout: timed out"

SLOW_SQL = ("SELECT date_trunc(%s, o.created_at) AS day, count(*) AS orders, "
            "sum(o.total_cents) AS revenue_cents FROM orders o WHERE o.customer_note ILIKE %s "
            "GROUP BY 1 ORDER BY 1")
SLOW_PARAMS = ("day", "%refund%damaged%")
#: a substring of the slow statement's text as pg_stat_activity and pg_stat_statements show it
SLOW_MARKER = "FROM orders o WHERE o.customer_note ILIKE"
HOLDER_SQL = "UPDATE accounts SET balance_cents = balance_cents - %s, updated_at = now() WHERE id = %s"
WAITER_SQL = "UPDATE accounts SET balance_cents = balance_cents + %s, updated_at = now() WHERE id = %s"
IDLE_TX_SQL = ("SELECT orders.id, orders.status, orders.total_cents, orders.created_at FROM orders "
               "WHERE orders.account_id = %s ORDER BY orders.created_at DESC LIMIT %s")

# ---- evidence outside CloudWatch: ALB access logs in S3, PostgreSQL's own log -----------------------------
#: requests per minute written to the access logs (the sandbox writes a sample: ~1 in 30 of the metrics')
ACCESS_LOG_PER_MINUTE = 40
FAILING_ENDPOINT = "GET /api/v1/orders/{n}"
PG_SLOTS_FATAL = "remaining connection slots are reserved for non-replication superuser connections"

N_IDLE_IN_TX_SELECT = 7  # + the lock holder = 8 idle in transaction
N_IDLE_API = 8
N_IDLE_WORKER = 3
N_WAITERS = 2


def _traceback() -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/app/.venv/lib/python3.12/site-packages/sqlalchemy/engine/base.py", line 145, in __init__\n'
        "    self._dbapi_connection = engine.raw_connection()\n"
        '  File "/app/.venv/lib/python3.12/site-packages/sqlalchemy/pool/base.py", line 1264, in _checkout\n'
        "    rec = pool._do_get()\n"
        '  File "/app/.venv/lib/python3.12/site-packages/sqlalchemy/pool/impl.py", line 157, in _do_get\n'
        "    raise exc.TimeoutError(\n"
        f"{QUEUEPOOL_ERROR}"
    )
