"""PostgreSQL's log as evidence through the captures, on the sandbox's moto server: RDS's CloudWatch Logs
group (every event pulled, then each frame derived from it), a self-hosted server's files from S3 and from a
path, and the exact counts at volume from Logs Insights - with no database connection, as in a postmortem
days later: the slow statements then come from the log, and say so."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import pandas as pd
import pytest

import forensics
from forensics import params
from forensics.analysis import db, log_counts
from forensics.analysis import statements as stmts
from forensics.pglog import extract, reader
from forensics_sandbox.moto_ext import logs_insights as ext_logs_insights
from forensics_sandbox.s3_evidence import rds_log_line

pytestmark = pytest.mark.sandbox
DATA = Path(__file__).resolve().parents[1] / "data" / "postgres_logs"
CULPRIT = "SELECT pg_sleep({s}), count(*) FROM reconcile WHERE org = {o}"


def _ms(ts: pd.Timestamp) -> int:
    return int((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))


def _lines(start: pd.Timestamp) -> list[tuple[pd.Timestamp, str]]:
    out = []
    for i in range(30):
        ts = start + pd.Timedelta(seconds=20 * i)
        out.append((ts, rds_log_line(ts, "LOG", "connection authorized: user=app database=app", pid=100 + i)))
        out.append((ts, rds_log_line(ts, "LOG", f"duration: {1500 + i}.5 ms  statement: "
                                                + CULPRIT.format(s=1.5, o=i), pid=100 + i)))
        out.append((ts, rds_log_line(ts, "LOG", "duration: 0.2 ms  statement: SELECT 1", pid=100 + i)))
        out.append((ts, rds_log_line(ts, "LOG", f"disconnection: session time: 0:00:0{i % 10}.100 user=app "
                                                "database=app host=10.0.1.23 port=51234", pid=100 + i)))
    t = start + pd.Timedelta(minutes=3)
    out += [(t, rds_log_line(t, "LOG", 'temporary file: path "base/pgsql_tmp/pgsql_tmp7.0", size 52428800', pid=7)),
            (t, rds_log_line(t, "STATEMENT", "SELECT * FROM big ORDER BY payload", pid=7)),
            (t, rds_log_line(t, "LOG", "process 8 still waiting for ShareLock on transaction 77 after 1000.052 ms",
                             pid=8)),
            (t, rds_log_line(t, "DETAIL", "Process holding the lock: 9. Wait queue: 8.", pid=8)),
            (t, rds_log_line(t, "STATEMENT", "UPDATE accounts SET n = n + 1 WHERE id = 3", pid=8)),
            (t, rds_log_line(t, "ERROR", "deadlock detected", pid=9)),
            (t, rds_log_line(t, "DETAIL", "Process 9 waits for ShareLock on transaction 78; blocked by process 8.\n"
                                          "Process 8 waits for ShareLock on transaction 77; blocked by process 9.\n"
                                          "Process 9: UPDATE accounts SET n = 0 WHERE id = 4\n"
                                          "Process 8: UPDATE accounts SET n = n + 1 WHERE id = 3", pid=9)),
            (t, rds_log_line(t, "FATAL", 'Peer authentication failed for user "ops"', client="[local]", pid=10)),
            (t, rds_log_line(t, "LOG", "checkpoint complete: wrote 120 buffers (0.7%); 0 WAL file(s) added, 0 "
                                       "removed, 1 recycled; write=11.9 s, sync=0.1 s, total=12.1 s; sync files=3, "
                                       "longest=0.1 s, average=0.1 s; distance=900 kB, estimate=900 kB",
                             client="", user="", database="", pid=3))]
    return out


@pytest.fixture(scope="module")
def planted(moto_server):
    ext_logs_insights.install()
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=30)
    group = f"/aws/rds/instance/db-{uuid.uuid4().hex[:8]}/postgresql"
    logs = moto_server.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="postgresql.log")
    lines = sorted(_lines(start), key=lambda x: x[0])  # PutLogEvents: chronological; equal times keep order
    logs.put_log_events(logGroupName=group, logStreamName="postgresql.log",
                        logEvents=[{"timestamp": _ms(t), "message": m} for t, m in lines])
    yield {"group": group, "start": start, "lines": lines}
    logs.delete_log_group(logGroupName=group)


def _open(tmp_path, env: dict, start, end):
    (tmp_path / "env.yaml").write_text(params.dump(env))
    (tmp_path / "incident.yaml").write_text(params.dump({
        "incident": "PGLOG", "title": "t", "severity": "P2", "environment": str(tmp_path / "env.yaml"),
        "window": {"start": pd.Timestamp(start).isoformat(), "end": pd.Timestamp(end).isoformat()}}))
    return forensics.open_incident(tmp_path / "incident.yaml", notebook="pglog")


def test_rds_log_group_to_every_frame_with_no_database(tmp_path, moto_server, planted):
    env = {"name": "pglog", "aws": {"region": "eu-west-1", "endpoint_url": moto_server.endpoint_url},
           "rds": {"instance": "db", "log_group": planted["group"]},
           "postgres": {"dsn": "host=127.0.0.1 port=1 dbname=x user=forensics connect_timeout=1"}}
    inc = _open(tmp_path, env, planted["start"], planted["start"] + pd.Timedelta(minutes=20))
    export = inc.pull("pg_log_export")
    assert len(export) == len(planted["lines"])
    st = inc.pull("pg_log_statements")
    assert st["query"].iloc[0] == "SELECT pg_sleep($1), count(*) FROM reconcile WHERE org = $2"
    assert st["calls"].iloc[0] == 30 and st["total_ms"].iloc[0] == pytest.approx(sum(1500.5 + i for i in range(30)))
    assert inc.pull("pg_log_temp_files")["size_bytes"].tolist() == [52428800]
    waits = inc.pull("pg_log_lock_waits")
    assert (waits["state"].tolist(), waits["holders"].tolist()) == (["waiting"], ["9"])
    dead = inc.pull("pg_log_deadlocks").iloc[0]
    assert dead["statement_1"] == "UPDATE accounts SET n = 0 WHERE id = 4"
    assert inc.pull("pg_log_auth_failures")["method"].tolist() == ["peer"]
    assert inc.pull("pg_log_checkpoints")["write_s"].tolist() == [11.9]
    assert inc.pull("pg_log_sessions")["session_s"].max() == pytest.approx(9.1)
    assert inc.pull("pg_log_connections")["authorized"].sum() == 30
    assert inc.pull("pg_log_statements_per_minute")["calls"].sum() == 60
    # pg_stat_statements cannot answer (no connection): the log ranks, says so, and lists the pg_sleep culprit
    pss = inc.pull("pg_statements")
    source = stmts.statements_source(pss, st, inc.window)
    assert source["source"] == "log" and "did not answer" in source["why"]
    slow = db.slow_statements(stmts.from_log(st), min_mean_ms=100)
    assert slow["query"].tolist() == [st["query"].iloc[0]] and slow["source"].iloc[0] == "log"
    # Logs Insights: exact counts where the logs are, no event pulled
    kinds = log_counts.by_hit(inc.pull("pg_log_event_counts")).set_index("signature")["count"]
    assert kinds["duration"] == 60 and kinds["connection authorized"] == 30 and kinds["disconnection"] == 30
    assert kinds["Peer authentication failed"] == 1 and kinds["deadlock detected"] == 1


def test_self_hosted_files_from_s3_and_from_a_path(tmp_path, moto_server):
    text = (DATA / "quellog_stderr_excerpt.log").read_bytes()
    bucket = f"pglog-{uuid.uuid4().hex[:8]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=bucket, Key="pg/postgresql-2026-04-02.log.gz", Body=gzip.compress(text))
    local = tmp_path / "logs"
    local.mkdir()
    (local / "postgresql.log").write_bytes(text)
    prefix = "%m [%p] %e: db=%d,user=%u,app=%a,client=%h "
    expected = extract.analyse(reader.parse_text(text, prefix))
    for where in ([f"s3://{bucket}/pg/"], [str(local)]):
        run = tmp_path / uuid.uuid4().hex[:6]
        run.mkdir()
        env = {"name": "self-hosted", "aws": {"region": "eu-west-1", "endpoint_url": moto_server.endpoint_url},
               "postgres_log": {"files": where, "log_line_prefix": prefix}}
        inc = _open(run, env, "2026-04-02T14:00:00Z", "2026-04-02T16:00:00Z")
        assert len(inc.pull("pg_log_export")) == text.count(b"\n")
        assert inc.pull("pg_log_deadlocks")["processes"].tolist() == ["111, 112"]
        errors = inc.pull("pg_log_errors")
        assert errors["count"].sum() == len(expected["error_events"])
        assert inc.pull("pg_log_statements")["calls"].sum() == len(expected["statement_events"])
