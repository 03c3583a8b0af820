"""The database's schema as the application expects it: alembic's version table and enum types.

Read-only catalog queries, run through :func:`forensics.sources.postgres.run` on a session from
:func:`forensics.sources.postgres.connect`. The version table's name comes from the environment and is
spliced in only as an identifier; a missing table is an answer ("no alembic_version table"), not an error.
"""

from __future__ import annotations

import pandas as pd

from . import _typed, postgres

ALEMBIC_COLUMNS = {"version_num": "str", "table": "str", "table_exists": "boolean"}
ENUM_COLUMNS = {"schema": "str", "type": "str", "value": "str", "sort_order": "float64"}

TABLE_EXISTS_SQL = "SELECT to_regclass(%s) IS NOT NULL AS table_exists"
ENUMS_SQL = """\
SELECT n.nspname::text AS schema,
       t.typname::text AS type,
       e.enumlabel::text AS value,
       e.enumsortorder::float8 AS sort_order
FROM pg_type t
JOIN pg_enum e ON e.enumtypid = t.oid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, t.typname, e.enumsortorder"""


def alembic_sql(table: str):
    from psycopg import sql

    from .tables import identifier

    return sql.SQL("SELECT v.version_num::text AS version_num FROM {table} v ORDER BY 1").format(
        table=identifier(table))


def alembic_version(conn, table: str = "alembic_version") -> pd.DataFrame:
    """The revision(s) in alembic's version table (several rows: branches); one row with a null
    ``version_num`` and ``table_exists`` False when there is no such table."""
    exists = postgres.run(conn, TABLE_EXISTS_SQL, (table,), what="to_regclass")["table_exists"].iloc[0]
    if not exists:
        return _typed(pd.DataFrame([{"version_num": None, "table": table, "table_exists": False}]), ALEMBIC_COLUMNS)
    df = postgres.run(conn, alembic_sql(table), what=f"{table} read")
    df["table"] = table
    df["table_exists"] = True
    if df.empty:
        df = pd.DataFrame([{"version_num": None, "table": table, "table_exists": True}])
    return _typed(df, ALEMBIC_COLUMNS)


def enums(conn) -> pd.DataFrame:
    """Every enum type's values, in their sort order."""
    return postgres.run(conn, ENUMS_SQL, schema=ENUM_COLUMNS, what="pg_enum read")
