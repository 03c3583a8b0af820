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

import pandas as pd

from ..window import IncidentWindow
from . import postgres


def _query(name: str):
    from .. import queries

    return queries.load(name)


FAILED_COLUMNS = _query("failed_deliveries").columns


def _run(conn, name: str, params: dict, what: str) -> pd.DataFrame:
    q = _query(name)
    text, bound = q.sql(params)
    return postgres.run(conn, text, bound, schema=q.columns, what=what)


def ai_calls_per_minute(conn, table: str, window: IncidentWindow) -> pd.DataFrame:
    return _run(conn, "ai_calls", {"table": table, "start": window.start, "end": window.end},
                f"AI calls per minute from {table}")


def ai_budget_use(conn, logs_table: str, budgets_table: str, as_of: pd.Timestamp,
                  organizations_table: str | None = None) -> pd.DataFrame:
    """Per organisation: monthly budget, spend from the start of ``as_of``'s month (UTC) to ``as_of``, share."""
    params = {"logs_table": logs_table, "budgets_table": budgets_table, "as_of": as_of}
    if organizations_table:
        params["organizations_table"] = organizations_table
    return _run(conn, "ai_budgets_named" if organizations_table else "ai_budgets", params,
                f"budget use from {budgets_table} and {logs_table}")


def failed_deliveries(conn, table: str, window: IncidentWindow) -> pd.DataFrame:
    """Deliveries created in ``window`` grouped by status and last error (the delivered ones too, so the
    failure share can be computed)."""
    return _run(conn, "failed_deliveries", {"table": table, "start": window.start, "end": window.end},
                f"deliveries by status from {table}")
