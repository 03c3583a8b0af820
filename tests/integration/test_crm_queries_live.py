"""The CRM queries on a real PostgreSQL, as the read-only role: an application table lacking columns reads as
nulls (unknown), never a failed query; the columns query names what exists; a missing table has no columns."""

from __future__ import annotations

import uuid

import pandas as pd
import psycopg
import pytest

from forensics import queries
from forensics.analysis import integrations as crm
from forensics.sources import postgres as pgs
from forensics.window import IncidentWindow

T = pd.Timestamp("2026-05-30T10:00:00Z")


@pytest.fixture
def lean_table(pg_cluster):
    """A sync log with no provider, direction or status column."""
    name = f"crm_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
        su.execute(f"CREATE TABLE {name} (id bigserial, org_id uuid, error_message text, created_at timestamptz)")
        su.execute(f"INSERT INTO {name} (org_id, error_message, created_at) VALUES "
                   "(gen_random_uuid(), NULL, %s), (gen_random_uuid(), '401 Unauthorized', %s)",
                   (T.to_pydatetime(), (T + pd.Timedelta(minutes=3)).to_pydatetime()))
        su.execute(f"GRANT SELECT ON {name} TO PUBLIC")
    yield name
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
        su.execute(f"DROP TABLE IF EXISTS {name}")


def _run(conn, name, values):
    q = queries.load(name)
    text, bound = q.sql(values)
    return pgs.run(conn, text, bound, schema=q.columns, what=name)


def test_missing_columns_are_nulls_and_named(pg_cluster, lean_table):
    conn = pgs.connect({"dsn": pg_cluster.dsn(user="forensics")})
    try:
        w = IncidentWindow(T - pd.Timedelta(hours=1), T + pd.Timedelta(hours=1))
        logs = _run(conn, "crm_sync_logs", {"table": lean_table, "start": w.start, "end": w.end})
        cols = _run(conn, "crm_table_columns", {"sync_logs_table": lean_table, "connections_table": "no_such_table"})
    finally:
        conn.close()
    assert len(logs) == 2 and logs["provider"].isna().all() and logs["status"].isna().all()
    missing = crm.missing_columns(cols)
    assert missing["sync_logs"] == ["provider", "direction", "status"]
    assert missing["connections"] == list(crm.EXPECTED_COLUMNS["connections"])
    classes = crm.by_class(crm.failures(logs))
    assert [c["class"] for c in classes] == ["oauth-expired"]
    assert pd.Timestamp(classes[0]["first_failure"]) == T + pd.Timedelta(minutes=3)
