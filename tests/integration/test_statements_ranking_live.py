"""Slow statements ranked by time spent, against the real PostgreSQL cluster with pg_stat_statements: a
one-off CREATE DATABASE and a bulk INSERT ... SELECT generate_series (more total time than anything
else) must not outrank the reconciliation scan the application runs again and again (issue 9)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from forensics.analysis import db, statements
from forensics.sources import postgres as pgs

pytestmark = pytest.mark.sandbox
SCAN_CALLS = 120


@pytest.fixture
def names(pg_cluster):
    tag = uuid.uuid4().hex[:8]
    n = {"orders": f"recon_orders_{tag}", "ledger": f"recon_ledger_{tag}", "bulk": f"bulk_{tag}",
         "database": f"copy_{tag}"}
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
        su.execute(f"CREATE TABLE {n['orders']} AS SELECT g AS id, g % 30 AS day FROM generate_series(1, 60000) g")
        su.execute(f"CREATE TABLE {n['ledger']} AS SELECT g AS order_id FROM generate_series(1, 60000, 2) g")
        su.execute(f"CREATE TABLE {n['bulk']} (id int, note text)")
        su.execute(f"GRANT SELECT ON {n['orders']}, {n['ledger']} TO app")
    yield n
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
        for table in (n["orders"], n["ledger"], n["bulk"]):
            su.execute(f"DROP TABLE IF EXISTS {table}")
        su.execute(f"DROP DATABASE IF EXISTS {n['database']}")


def test_one_off_ddl_and_bulk_load_do_not_outrank_the_repeated_scan(pg_cluster, names):
    reader = pgs.connect({"dsn": pg_cluster.dsn(user="forensics")})
    try:
        before, info_before = pgs.statements(reader), pgs.statements_info(reader)
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
            su.execute(f"CREATE DATABASE {names['database']}")
            su.execute(f"INSERT INTO {names['bulk']} SELECT g, md5(g::text) FROM generate_series(1, %s) g",
                       (1_500_000,))
        with psycopg.connect(pg_cluster.dsn(user="app"), autocommit=True) as app:
            scan = (f"SELECT count(*) FROM {names['orders']} o WHERE o.day = %s AND NOT EXISTS "
                    f"(SELECT 1 FROM {names['ledger']} l WHERE l.order_id = o.id)")
            for i in range(SCAN_CALLS):
                app.execute(scan, (i % 30,))
        after, info_after = pgs.statements(reader), pgs.statements_info(reader)
    finally:
        reader.close()

    ranked = statements.by_time_spent(after, before, info_before, info_after)
    mine = ranked[ranked["query"].str.contains(names["orders"]) & ranked["query"].str.contains("NOT EXISTS")]
    bulk = ranked[ranked["query"].str.contains(f"INSERT INTO {names['bulk']}")]
    created = ranked[ranked["query"].str.contains(f"CREATE DATABASE {names['database']}")]
    assert len(mine) == len(bulk) == len(created) == 1
    assert mine.iloc[0]["calls"] == SCAN_CALLS
    # The failure this guards against: by raw time the bulk load comes first.
    assert bulk.iloc[0]["total_exec_time"] > mine.iloc[0]["total_exec_time"]
    assert list(bulk["kind"]) == ["bulk load"] and list(created["kind"]) == ["utility"]

    slow = statements.slow(ranked)
    assert names["orders"] in slow.iloc[0]["query"], slow[["query", "total_exec_time"]]
    apart = set(statements.one_offs(ranked, n=50)["queryid"])
    assert {bulk.iloc[0]["queryid"], created.iloc[0]["queryid"]} <= apart
    # One snapshot (db-connections): total since reset, the same filter.
    listed = db.slow_statements(after, min_mean_ms=0, limit=50)["query"]
    assert listed.str.contains(names["orders"]).any()
    assert not listed.str.contains(f"CREATE DATABASE|INSERT INTO {names['bulk']}").any()
