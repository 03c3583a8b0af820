"""PostgreSQL's own views, live ones first (order of volatility): activity, locks, statements, settings."""

from __future__ import annotations

import time

import pandas as pd

from .. import defaults, queries
from ..sources import postgres
from ..sources.call import Call
from .core import COUNTERS, LIVE, Capture, declare, postgres_query

postgres_query("pg_activity", "pg_activity", run=lambda conn, inc: postgres.activity(conn), volatility=LIVE)
postgres_query("pg_locks", "pg_locks", run=lambda conn, inc: postgres.locks(conn), volatility=LIVE)
postgres_query("pg_statements", "pg_statements", run=lambda conn, inc: postgres.statements(conn),
               volatility=COUNTERS)
postgres_query("pg_statements_info", "pg_statements_info", run=lambda conn, inc: postgres.statements_info(conn),
               volatility=COUNTERS)
postgres_query("pg_settings", "pg_settings", run=lambda conn, inc: postgres.settings(conn), volatility=COUNTERS)


def _statements_after(inc, wait_s=defaults.PG_STATEMENTS_SECOND_SNAPSHOT_WAIT_S) -> Call:
    """Wait until ``wait_s`` after the first snapshot (never longer than ``wait_s`` from now), then snapshot."""

    def run():
        conn = inc.pg()
        first = inc.pull("pg_statements")
        elapsed = 0.0
        if len(first) and "snapshot_at" in first:
            elapsed = (pd.Timestamp.now(tz="UTC")
                       - pd.to_datetime(first["snapshot_at"], utc=True).max()).total_seconds()
        time.sleep(min(max(wait_s - elapsed, 0.0), wait_s))
        return postgres.statements(conn)

    return Call(None, {"database": inc.pg_target(), **queries.load("pg_statements").record(),
                       "after": "pg_statements", "wait_s": wait_s}, run)


declare(Capture(
    "pg_statements_after", "postgres", "query:pg_statements", _statements_after,
    ("postgres",), queries.load("pg_statements").columns, COUNTERS, query="pg_statements",
    params={"wait_s": defaults.PG_STATEMENTS_SECOND_SNAPSHOT_WAIT_S}, after=("pg_statements",),
    doc="A second pg_stat_statements snapshot, wait_s after the first: their delta is what the database did "
        "in between."))
postgres_query("pg_statements_info_after", "pg_statements_info",
               run=lambda conn, inc: postgres.statements_info(conn), volatility=COUNTERS,
               after=("pg_statements_after",))
