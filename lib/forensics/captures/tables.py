"""The application's own tables (failed deliveries, AI calls and budgets) and its schema (alembic, enums)."""

from __future__ import annotations

from .. import queries
from ..sources import pg_schema, tables
from ..sources.call import Call
from .core import TABLES, Capture, declare, postgres_query


def _window_params(inc) -> dict:
    w = inc.context_window
    return {"start": w.start, "end": w.end}


postgres_query("failed_deliveries", "failed_deliveries",
               lambda inc: {"table": inc.env["queues"]["failed_table"], **_window_params(inc)},
               run=lambda conn, inc: tables.failed_deliveries(conn, inc.env["queues"]["failed_table"],
                                                              inc.context_window),
               needs=("postgres", "queues"))
postgres_query("ai_calls", "ai_calls", lambda inc: {"table": inc.env["ai"]["logs_table"], **_window_params(inc)},
               run=lambda conn, inc: tables.ai_calls_per_minute(conn, inc.env["ai"]["logs_table"],
                                                                inc.context_window),
               needs=("postgres", "ai"))


def _budgets_call(inc) -> Call:
    """Month-to-date spend against budgets; the query that names organisations when the environment has
    their table (the one recorded is the one run)."""
    ai = inc.env["ai"]
    values = {"logs_table": ai["logs_table"], "budgets_table": ai["budgets_table"], "as_of": inc.window.end}
    if ai.get("organizations_table"):
        values["organizations_table"] = ai["organizations_table"]
    query = "ai_budgets_named" if ai.get("organizations_table") else "ai_budgets"
    return Call(None, {"database": inc.pg_target(), **queries.load(query).record(values)},
                lambda: tables.ai_budget_use(inc.pg(), **values))


declare(Capture("ai_budgets", "postgres", "query:ai_budgets", _budgets_call,
                ("postgres", "ai"), queries.load("ai_budgets").columns, TABLES, query="ai_budgets",
                doc="Month-to-date spend per organisation against its monthly budget "
                    "(query ai_budgets_named when the environment names an organisations table)."))


def _alembic_table(inc) -> str:
    return (inc.env.get("schema") or {}).get("alembic_table") or "alembic_version"


postgres_query("pg_alembic_version", "pg_alembic_version", lambda inc: {"table": _alembic_table(inc)},
               run=lambda conn, inc: pg_schema.alembic_version(conn, _alembic_table(inc)),
               doc="alembic's version table (a missing table is an answer, not an error).")
postgres_query("pg_enums", "pg_enums")
