"""The database's schema as the application expects it: alembic's version table and enum types.

Read-only catalog queries, run through :func:`forensics.sources.postgres.run` on a session from
:func:`forensics.sources.postgres.connect`. The version table's name comes from the environment and is
spliced in only as an identifier; a missing table is an answer ("no alembic_version table"), not an error.
"""

from __future__ import annotations

import pandas as pd

from . import _typed, postgres

ALEMBIC_COLUMNS = {"version_num": "str", "table": "str", "table_exists": "boolean"}


def _query(name: str):
    from .. import queries

    return queries.load(name)


ENUM_COLUMNS = _query("pg_enums").columns


def _run(conn, name: str, params: dict | None, what: str, schema=None) -> pd.DataFrame:
    text, bound = _query(name).sql(params)
    return postgres.run(conn, text, bound, schema=schema, what=what)


def alembic_version(conn, table: str = "alembic_version") -> pd.DataFrame:
    """The revision(s) in alembic's version table (several rows: branches); one row with a null
    ``version_num`` and ``table_exists`` False when there is no such table."""
    exists = _run(conn, "pg_table_exists", {"table": table}, "to_regclass")["table_exists"].iloc[0]
    if not exists:
        return _typed(pd.DataFrame([{"version_num": None, "table": table, "table_exists": False}]), ALEMBIC_COLUMNS)
    df = _run(conn, "pg_alembic_version", {"table": table}, f"{table} read")
    df["table"] = table
    df["table_exists"] = True
    if df.empty:
        df = pd.DataFrame([{"version_num": None, "table": table, "table_exists": True}])
    return _typed(df, ALEMBIC_COLUMNS)


def enums(conn) -> pd.DataFrame:
    """Every enum type's values, in their sort order."""
    return _run(conn, "pg_enums", None, "pg_enum read", schema=ENUM_COLUMNS)
