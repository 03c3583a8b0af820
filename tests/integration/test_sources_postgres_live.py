"""PostgreSQL source against the real throwaway cluster: read-only sessions, timeouts, live
idle-in-transaction holders and blocked writers, pg_stat_statements snapshots."""

from __future__ import annotations

import threading
import time
import uuid

import pandas as pd
import psycopg
import pytest

from forensics.errors import ReadOnlyViolation, SourceError
from forensics_sandbox.pg_cluster import free_port
from forensics.sources import TS_DTYPE
from forensics.sources import postgres as pgs

pytestmark = pytest.mark.sandbox


@pytest.fixture
def reader(pg_cluster):
    conn = pgs.connect({"dsn": pg_cluster.dsn(user="forensics")})
    yield conn
    conn.close()


@pytest.fixture
def table(pg_cluster):
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
        su.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int)")
        su.execute(f"INSERT INTO {name} VALUES (1, 0), (2, 0)")
        su.execute(f"GRANT ALL ON {name} TO app")
    yield name
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
        su.execute(f"DROP TABLE IF EXISTS {name}")


def _wait_for(conn, sql, params, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.execute(sql, params).fetchone()[0]:
            return
        time.sleep(0.02)
    raise AssertionError(f"condition never met: {sql}")


def test_session_is_read_only_with_our_guards(reader, table):
    with pytest.raises(ReadOnlyViolation):  # refused before it is sent (tests/trust/test_readonly.py)
        reader.execute(f"UPDATE {table} SET v = 1")
    with pytest.raises(ReadOnlyViolation):
        reader.execute("CREATE TABLE forensics_should_not_exist (x int)")
    s = pgs.settings(reader).iloc[0]
    assert s["default_transaction_read_only"] == "on"
    assert s["application_name"] == "forensics"
    guards = (s["statement_timeout"], s["lock_timeout"], s["idle_in_transaction_session_timeout"])
    assert guards == ("15s", "2s", "30s")
    assert s["current_user"] == "forensics" and s["max_connections"] == 40
    assert s["superuser_reserved_connections"] == 3 and s["server_version_num"] >= 150000
    assert reader.autocommit is True
    assert str(pgs.settings(reader)["snapshot_at"].dtype) == TS_DTYPE


def test_statement_timeout_fires(pg_cluster):
    conn = pgs.connect({"dsn": pg_cluster.dsn(user="forensics")}, statement_timeout_ms=200)
    try:
        t0 = time.monotonic()
        with pytest.raises(SourceError, match="statement_timeout") as err:
            pgs.run(conn, "SELECT pg_sleep(5)")
        assert time.monotonic() - t0 < 2
        assert isinstance(err.value.__cause__, psycopg.errors.QueryCanceled)
        assert pgs.run(conn, "SELECT 1 AS one")["one"].tolist() == [1]  # still usable after the error
    finally:
        conn.close()


def test_statement_timeout_from_the_environment_section(pg_cluster):
    conn = pgs.connect({"dsn": pg_cluster.dsn(user="forensics"), "statement_timeout_ms": 1234})
    try:
        assert pgs.settings(conn)["statement_timeout"].iloc[0] == "1234ms"
    finally:
        conn.close()


def test_lock_timeout_keeps_the_collector_from_queueing_behind_the_incident(pg_cluster, table):
    with psycopg.connect(pg_cluster.dsn()) as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # transaction left open
        conn = pgs.connect({"dsn": pg_cluster.dsn(user="forensics")}, lock_timeout_ms=200)
        try:
            t0 = time.monotonic()
            with pytest.raises(SourceError, match="lock_timeout") as err:
                pgs.run(conn, f"SELECT count(*) FROM {table}")
            assert time.monotonic() - t0 < 2
            assert isinstance(err.value.__cause__, psycopg.errors.LockNotAvailable)
        finally:
            conn.close()
        holder.rollback()


def test_idle_holder_and_blocked_writer_show_up(pg_cluster, reader, table):
    tag = uuid.uuid4().hex[:8]
    holder = psycopg.connect(pg_cluster.dsn(user="app", application_name=f"holder-{tag}"))
    holder.execute(f"UPDATE {table} SET v = v + 1 WHERE id = 1")  # transaction open, now idle in it
    holder_pid = holder.info.backend_pid
    blocked = psycopg.connect(pg_cluster.dsn(user="app", application_name=f"writer-{tag}"), autocommit=True)
    blocked.execute("SET statement_timeout = '10s'")
    blocked_pid = blocked.info.backend_pid
    done = threading.Event()
    thread = threading.Thread(target=lambda: (blocked.execute(f"UPDATE {table} SET v = 9 WHERE id = 1"),
                                              done.set()), daemon=True)
    thread.start()
    try:
        _wait_for(reader, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                  (blocked_pid,))
        time.sleep(0.05)  # some age on the holder's transaction
        act = pgs.activity(reader)
        by_pid = act.set_index("pid")
        h, w = by_pid.loc[holder_pid], by_pid.loc[blocked_pid]
        assert h["state"] == "idle in transaction" and h["application_name"] == f"holder-{tag}"
        assert h["xact_age_s"] > 0 and h["usename"] == "app" and h["blocked_by"] == []
        assert w["state"] == "active" and w["wait_event_type"] == "Lock"
        assert w["blocked_by"] == [holder_pid]
        assert "SET v = 9" in w["query"]  # other users' text visible to pg_read_all_stats
        assert reader.info.backend_pid not in act["pid"].tolist()  # our own session left out
        for col in ("backend_start", "xact_start", "query_start", "state_change", "snapshot_at"):
            assert str(act[col].dtype) == TS_DTYPE
        assert act["xact_age_s"].dtype == "float64" and act["pid"].dtype == "int64"
        assert h["xact_start"] <= act["snapshot_at"].iloc[0]

        lk = pgs.locks(reader)
        mine = lk[lk["waiting_pid"] == blocked_pid]
        assert mine["blocking_pid"].tolist() == [holder_pid]
        row = mine.iloc[0]
        assert row["locktype"] == "transactionid" and row["mode"] == "ShareLock"
        assert row["blocking_state"] == "idle in transaction"
        assert row["blocking_application"] == f"holder-{tag}"
        assert row["wait_s"] >= 0 and str(lk["blocking_xact_start"].dtype) == TS_DTYPE
    finally:
        holder.rollback()
        thread.join(10)
        holder.close()
        blocked.close()
    assert done.is_set()
    assert pgs.locks(reader).query("waiting_pid == @blocked_pid").empty


def test_statements_snapshot_is_float_and_sees_other_users(pg_cluster, reader):
    marker = f"probe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_cluster.dsn(user="app"), autocommit=True) as app:
        for _ in range(3):
            app.execute(f"SELECT 1 AS {marker}")
    df = pgs.statements(reader)
    for col in ("calls", "total_exec_time", "mean_exec_time", "max_exec_time", "stddev_exec_time", "rows",
                "shared_blks_hit", "shared_blks_read", "temp_blks_written"):
        assert df[col].dtype == "float64", col
    assert str(df["snapshot_at"].dtype) == TS_DTYPE
    row = df[df["query"].str.contains(marker, regex=False)].iloc[0]
    assert row["calls"] == 3.0 and row["usename"] == "app" and row["datname"] == "app"
    assert df.attrs["hidden_query_text"] == 0


def test_statements_without_pg_read_all_stats(pg_cluster):
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
        su.execute("SELECT 42 AS superuser_only_statement")
    conn = pgs.connect({"dsn": pg_cluster.dsn(user="app"), "allow_privileged_role": True})  # app can CREATE
    try:
        with pytest.raises(SourceError, match="GRANT pg_read_all_stats TO app"):
            pgs.statements(conn)
        partial = pgs.statements(conn, strict=False)
        assert partial.attrs["hidden_query_text"] > 0
        assert (partial["query"] == "<insufficient privilege>").sum() == partial.attrs["hidden_query_text"]
    finally:
        conn.close()


def test_statements_where_the_extension_is_missing(pg_cluster):
    conn = pgs.connect({"dsn": pg_cluster.dsn(user="forensics", dbname="postgres")})
    try:
        with pytest.raises(SourceError, match="CREATE EXTENSION pg_stat_statements") as err:
            pgs.statements(conn)
        assert isinstance(err.value.__cause__, psycopg.errors.UndefinedTable)
        with pytest.raises(SourceError, match="CREATE EXTENSION pg_stat_statements"):
            pgs.statements_info(conn)
    finally:
        conn.close()


def test_statements_info(reader):
    info = pgs.statements_info(reader)
    assert len(info) == 1 and info["dealloc"].dtype == "float64"
    assert str(info["stats_reset"].dtype) == TS_DTYPE
    assert info["stats_reset"].iloc[0] <= pd.Timestamp.now(tz="UTC")


def test_empty_snapshot_keeps_columns(reader):
    lk = pgs.locks(reader)
    assert list(lk.columns) == list(pgs.LOCKS_COLUMNS)
    assert str(lk["waiting_since"].dtype) == TS_DTYPE and lk["waiting_pid"].dtype == "int64"


def test_unreachable_server_is_a_quick_source_error():
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=f"cannot connect to 127.0.0.1:{port}/app as forensics") as err:
        pgs.connect({"dsn": f"host=127.0.0.1 port={port} dbname=app user=forensics password=hunter2"},
                    connect_timeout=2)
    assert time.monotonic() - t0 < 3
    assert "hunter2" not in str(err.value)
    assert isinstance(err.value.__cause__, psycopg.OperationalError)


def test_dsn_from_environment_and_libpq_defaults(pg_cluster, monkeypatch):
    monkeypatch.setenv("FORENSICS_IT_DSN", pg_cluster.dsn(user="forensics"))
    conn = pgs.connect({"dsn_env": "FORENSICS_IT_DSN"})
    try:
        assert pgs.settings(conn)["current_user"].iloc[0] == "forensics"
    finally:
        conn.close()
    for var, value in {"PGHOST": "127.0.0.1", "PGPORT": str(pg_cluster.port), "PGUSER": "forensics",
                       "PGDATABASE": "app", "PGOPTIONS": "-c work_mem=7MB"}.items():
        monkeypatch.setenv(var, value)
    conn = pgs.connect({})
    try:
        s = pgs.settings(conn).iloc[0]
        assert s["current_database"] == "app" and s["default_transaction_read_only"] == "on"
        assert s["work_mem"] == "7MB"  # the user's PGOPTIONS kept, ours added
    finally:
        conn.close()
