"""Read-only queries over the application's own tables (names from the environment, never from SQL text).

Table names are validated (``[schema.]identifier``) and spliced in only as
``psycopg.sql.Identifier``; every value is a bound parameter. Aggregation is pushed down to
PostgreSQL (per minute, per status...) so a busy production table costs a bounded result, not a
full scan into pandas. Run through :func:`forensics.sources.postgres.run` on a session from
:func:`forensics.sources.postgres.connect` (read-only, statement timeout).

- :func:`ai_calls_per_minute` — ``ai_task_logs``-like table: calls, tokens and cost per minute,
  org, model, provider and status.
- :func:`ai_budget_use` — month-to-date spend per organisation against its monthly budget.
- :func:`failed_deliveries` — a deliveries table (``webhook_deliveries``-like) grouped by status and
  last error: count, attempts, first and last created_at.
"""

from __future__ import annotations

import re

import pandas as pd

from ..window import IncidentWindow
from . import postgres

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")

AI_CALLS_COLUMNS = {"minute": "ts", "org_id": "str", "model": "str", "provider": "str", "status": "str",
                    "calls": "float64", "prompt_tokens": "float64", "completion_tokens": "float64",
                    "cost_usd": "float64"}
BUDGET_COLUMNS = {"org_id": "str", "org_name": "str", "monthly_budget_usd": "float64", "spend_mtd_usd": "float64",
                  "share": "float64", "month_start": "ts", "as_of": "ts"}
FAILED_COLUMNS = {"status": "str", "last_error": "str", "deliveries": "float64", "attempts": "float64",
                  "max_attempts": "float64", "first_created": "ts", "last_created": "ts"}


def identifier(name: str):
    """``"t"`` or ``"schema.t"`` as a composable ``sql.Identifier``; anything else is ValueError."""
    from psycopg import sql

    parts = str(name).split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"not a table name: {name!r} (expected [schema.]identifier)")
    return sql.Identifier(*parts)


def ai_calls_sql(table: str):
    from psycopg import sql

    return sql.SQL("""\
SELECT date_trunc('minute', l.created_at) AS minute,
       l.org_id::text AS org_id,
       l.model::text AS model,
       l.provider::text AS provider,
       l.status::text AS status,
       count(*)::float8 AS calls,
       coalesce(sum(l.prompt_tokens), 0)::float8 AS prompt_tokens,
       coalesce(sum(l.completion_tokens), 0)::float8 AS completion_tokens,
       coalesce(sum(l.cost_usd), 0)::float8 AS cost_usd
FROM {table} l
WHERE l.created_at >= %(start)s AND l.created_at < %(end)s
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5""").format(table=identifier(table))


def ai_calls_per_minute(conn, table: str, window: IncidentWindow) -> pd.DataFrame:
    return postgres.run(conn, ai_calls_sql(table), {"start": window.start.to_pydatetime(),
                                                    "end": window.end.to_pydatetime()},
                        schema=AI_CALLS_COLUMNS, what=f"AI calls per minute from {table}")


def ai_budget_sql(logs_table: str, budgets_table: str, organizations_table: str | None = None):
    from psycopg import sql

    org_join = sql.SQL("LEFT JOIN {orgs} o ON o.id::text = b.org_id::text").format(
        orgs=identifier(organizations_table)) if organizations_table else sql.SQL("")
    org_name = sql.SQL("o.name::text") if organizations_table else sql.SQL("NULL::text")
    return sql.SQL("""\
WITH spend AS (
    SELECT l.org_id::text AS org_id, sum(l.cost_usd)::float8 AS spend
    FROM {logs} l
    WHERE l.created_at >= date_trunc('month', %(as_of)s::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
      AND l.created_at < %(as_of)s
    GROUP BY 1
)
SELECT b.org_id::text AS org_id,
       {org_name} AS org_name,
       b.monthly_budget_usd::float8 AS monthly_budget_usd,
       coalesce(s.spend, 0)::float8 AS spend_mtd_usd,
       (coalesce(s.spend, 0) / nullif(b.monthly_budget_usd, 0))::float8 AS share,
       date_trunc('month', %(as_of)s::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS month_start,
       %(as_of)s::timestamptz AS as_of
FROM {budgets} b
LEFT JOIN spend s ON s.org_id = b.org_id::text
{org_join}
ORDER BY share DESC NULLS LAST, b.org_id""").format(logs=identifier(logs_table), budgets=identifier(budgets_table),
                                                     org_name=org_name, org_join=org_join)


def ai_budget_use(conn, logs_table: str, budgets_table: str, as_of: pd.Timestamp,
                  organizations_table: str | None = None) -> pd.DataFrame:
    """Per organisation: monthly budget, spend from the start of ``as_of``'s month (UTC) to ``as_of``, share."""
    return postgres.run(conn, ai_budget_sql(logs_table, budgets_table, organizations_table),
                        {"as_of": pd.Timestamp(as_of).to_pydatetime()}, schema=BUDGET_COLUMNS,
                        what=f"budget use from {budgets_table} and {logs_table}")


def failed_deliveries_sql(table: str):
    from psycopg import sql

    return sql.SQL("""\
SELECT d.status::text AS status,
       d.last_error::text AS last_error,
       count(*)::float8 AS deliveries,
       coalesce(sum(d.attempts), 0)::float8 AS attempts,
       max(d.attempts)::float8 AS max_attempts,
       min(d.created_at) AS first_created,
       max(d.created_at) AS last_created
FROM {table} d
WHERE d.created_at >= %(start)s AND d.created_at < %(end)s
GROUP BY 1, 2
ORDER BY deliveries DESC, status, last_error NULLS FIRST""").format(table=identifier(table))


def failed_deliveries(conn, table: str, window: IncidentWindow) -> pd.DataFrame:
    """Deliveries created in ``window`` grouped by status and last error (the delivered ones too, so the
    failure share can be computed)."""
    return postgres.run(conn, failed_deliveries_sql(table), {"start": window.start.to_pydatetime(),
                                                             "end": window.end.to_pydatetime()},
                        schema=FAILED_COLUMNS, what=f"deliveries by status from {table}")


def sql_text(composed, conn=None) -> str:
    """The SQL text of a composed query for the manifest (identifiers quoted as PostgreSQL would)."""
    try:
        return composed.as_string(conn)
    except Exception:  # noqa: BLE001 - without a connection, a readable approximation
        return str(composed)
