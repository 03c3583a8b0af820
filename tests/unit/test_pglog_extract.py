"""forensics.pglog: statements normalised to pg_stat_statements' shape, and every frame an incident needs
from the log (the real quellog excerpt; lines written as PostgreSQL writes them for the methods and modes no
real excerpt holds); the statement source chosen and the pg_sleep culprit listed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from forensics.analysis import db, pglog_findings
from forensics.analysis import statements as stmts
from forensics.pglog import extract, normalize, reader
from forensics.window import IncidentWindow

DATA = Path(__file__).resolve().parents[1] / "data" / "postgres_logs"
QUELLOG_PREFIX = "%m [%p] %e: db=%d,user=%u,app=%a,client=%h "


@pytest.fixture(scope="module")
def quellog():
    entries = reader.parse_text((DATA / "quellog_stderr_excerpt.log").read_bytes(), QUELLOG_PREFIX)
    return entries, extract.analyse(entries)


@pytest.mark.parametrize("text,expect", [
    ("SELECT * FROM t1 WHERE a = 1 AND b = 'x''y' LIMIT 10;", "SELECT * FROM t1 WHERE a = $1 AND b = $2 LIMIT $3"),
    ("UPDATE acc SET bal = bal + -4389 WHERE aid = 3551", "UPDATE acc SET bal = bal + $1 WHERE aid = $2"),
    ("SELECT x - 1, 2.5, E'a\\n'", "SELECT x - $1, $2, $3"),
    ("SELECT * FROM t WHERE a = $1 AND b = 7", "SELECT * FROM t WHERE a = $1 AND b = $2"),
    ("  SELECT   1\n\t FROM  t  ;  ", "SELECT $1 FROM t"),
    ("INSERT INTO h (c9) VALUES (1, 'it''s', -2)", "INSERT INTO h (c9) VALUES ($1, $2, $3)"),
])
def test_normalise_to_pg_stat_statements_shape(text, expect):
    assert normalize.normalise([text])["query"].iloc[0] == expect


def test_fingerprint_joins_literal_and_normalised_texts():
    a = normalize.normalise(["select * from t where id = 42"])["fingerprint"].iloc[0]
    assert a == normalize.fingerprint("SELECT * FROM t WHERE id = $1") == normalize.fingerprint("select * from t where id=7")
    assert normalize.fingerprint("not sql at all ((") .startswith("t")


def test_normalise_skips_heads_and_keeps_nulls():
    msgs = pa.array(["duration: 1.0 ms  statement: SELECT 1", None, "xx SELECT 'a'"])
    got = normalize.normalise(msgs, np.array([29, 0, 3]))
    assert got["query"].iloc[0] == "SELECT $1" and pd.isna(got["query"].iloc[1]) and got["query"].iloc[2] == "SELECT $1"


def test_statements_from_the_quellog_excerpt(quellog):
    entries, fr = quellog
    ev, st = fr["statement_events"], fr["statements"]
    assert len(ev) == int(entries["message"].str.startswith("duration: ").sum())
    assert (ev["via"] == "log_min_duration_statement").all() and ev["query"].notna().all()
    assert st["total_ms"].is_monotonic_decreasing and st["calls"].sum() == len(ev)
    top = st.iloc[0]
    assert top["first_seen"] <= top["last_seen"] and "$" in "".join(st["query"])
    assert {"users", "databases", "applications"} <= set(st.columns)


def test_log_duration_pairs_with_the_process_last_statement_and_auto_explain_counts():
    text = ("2024-01-01 10:00:00 UTC::app@shop:[7]:LOG:  statement: SELECT * FROM orders WHERE id = 5\n"
            "2024-01-01 10:00:00 UTC::app@shop:[8]:LOG:  statement: SELECT 2\n"
            "2024-01-01 10:00:01 UTC::app@shop:[7]:LOG:  duration: 1500.5 ms\n"
            "2024-01-01 10:00:02 UTC::app@shop:[9]:LOG:  duration: 2000.0 ms  plan:\n"
            "\tQuery Text: SELECT pg_sleep(2), * FROM big WHERE k = 'x'\n"
            "\tSeq Scan on big  (cost=0.00..1.00 rows=1 width=4)\n"
            "2024-01-01 10:00:03 UTC::app@shop:[9]:LOG:  duration: 0.5 ms  parse <unnamed>: SELECT 3\n")
    ev = extract.statement_events(reader.parse_text(text))
    assert list(ev["via"]) == ["log_duration", "auto_explain"]
    assert list(ev["query"]) == ["SELECT * FROM orders WHERE id = $1", "SELECT pg_sleep($1), * FROM big WHERE k = $2"]
    assert list(ev["duration_ms"]) == [1500.5, 2000.0]


def test_errors_by_sqlstate_and_signature(quellog):
    _, fr = quellog
    errs = fr["errors"]
    assert errs["count"].sum() == len(fr["error_events"])
    dead = errs[errs["signature"] == "deadlock detected"].iloc[0]
    assert (dead["sqlstate"], dead["sqlstate_class"], bool(dead["inferred"])) == ("40P01", "40 transaction rollback", False)
    assert extract.by_class(fr["error_events"])["count"].sum() == len(fr["error_events"])
    # without %e the code is inferred from the message, and says so
    rds = extract.error_events(reader.parse_text(
        '2024-01-01 10:00:00 UTC:10.0.0.1(5):app@shop:[7]:ERROR:  duplicate key value violates unique constraint "k"\n'))
    assert (rds["sqlstate"].iloc[0], bool(rds["inferred"].iloc[0]), rds["signature"].iloc[0]) == (
        "23505", True, 'duplicate key value violates unique constraint "..."')


METHODS = {"Peer": "peer", "BSD": "bsd", "Ident": "ident", "PAM": "pam", "LDAP": "ldap", "RADIUS": "radius",
           "certificate": "certificate", "GSSAPI": "gssapi", "SSPI": "sspi", "password": "password"}


def test_every_authentication_method_is_a_failure_with_its_method():
    lines = [f'2024-01-01 10:00:0{i} UTC:10.0.0.{i}(5):u{i}@shop:[{i}]:FATAL:  {m} authentication failed for user "u{i}"'
             for i, m in enumerate(METHODS)]
    lines += ['2024-01-01 10:00:11 UTC:10.0.0.9(5):bob@shop:[11]:FATAL:  password authentication failed for user "bob"',
              '2024-01-01 10:00:11 UTC:10.0.0.9(5):bob@shop:[11]:DETAIL:  Connection matched file "/etc/pg_hba.conf" '
              'line 95: "host all all 0.0.0.0/0 md5"',
              '2024-01-01 10:00:12 UTC:10.0.0.9(5):eve@shop:[12]:FATAL:  no pg_hba.conf entry for host "10.0.0.9", '
              'user "eve", database "shop", SSL off',
              '2024-01-01 10:00:13 UTC:10.0.0.9(5):x@shop:[13]:FATAL:  role "x" does not exist']
    auth = extract.auth_failures(reader.parse_text("\n".join(lines) + "\n"))
    assert list(auth["method"][:len(METHODS)]) == list(METHODS.values())
    assert list(auth["method"][len(METHODS):len(METHODS) + 1]) == ["md5"]
    assert list(auth["reason"][-2:]) == ["no_hba_entry", "no_role"]
    assert (auth["client"].iloc[0], auth["user"].iloc[0]) == ("10.0.0.0", "u0")


def test_locks_deadlocks_temp_files_checkpoints_vacuum_sessions_cancellations(quellog):
    entries, fr = quellog
    waits = fr["lock_waits"]
    assert set(waits["state"]) <= {"waiting", "acquired", "detected_deadlock_while_waiting", "avoided_deadlock"}
    assert (waits["waited_ms"] > 0).all() and waits["mode"].notna().all() and waits["holders"].notna().any()
    assert waits["statement"].notna().any()
    d = fr["deadlocks"].iloc[0]
    assert d["processes"] == "111, 112" and "id = 2" in d["statement_1"] and "value + 10" in d["statement_2"]
    t = fr["temp_files"]
    assert len(t) and (t["size_bytes"] > 0).all() and t["query"].str.contains("INSERT INTO large_transactions").any()
    ck = fr["checkpoints"]
    assert (ck["event"] == "too_frequent").sum() == 1 and ck.loc[ck["event"] == "too_frequent", "apart_s"].iloc[0] == 5
    sess = fr["sessions"]
    assert len(sess) == int(entries["message"].str.startswith("disconnection:").sum()) and (sess["session_s"] >= 0).all()
    cpm = fr["connections_per_minute"]
    assert cpm["authorized"].sum() == int(entries["message"].str.startswith("connection authorized").sum())
    assert cpm["refused"].sum() >= 38  # the connection storm's 'too many clients' / reserved slots
    assert set(fr["cancellations"]["reason"]) <= {"user_request", "statement_timeout", "lock_timeout",
                                                   "administrator_command", "autovacuum", "conflict_with_recovery",
                                                   "idle_in_transaction_timeout", "idle_session_timeout"}
    counts = extract.summary_counts(entries, fr)
    assert counts["deadlocks"] == 1 and counts["checkpoint_warnings"] == 1 and counts["temp_files"] == len(t)
    assert pglog_findings.lock_trouble(waits, fr["deadlocks"])["deadlocks"]["count"] == 1
    assert pglog_findings.temp_files(t)["bytes"] == int(t["size_bytes"].sum())


def test_autovacuum_and_cancellations_read_their_numbers():
    text = ('2024-01-01 10:00:00 UTC::@:[5]:LOG:  automatic vacuum of table "shop.public.orders": index scans: 1\n'
            "\tpages: 12 removed, 30 remain\n\ttuples: 500 removed, 900 remain\n"
            "\tsystem usage: CPU: user: 0.01 s, system: 0.00 s, elapsed: 0.25 s\n"
            '2024-01-01 10:00:01 UTC::@:[5]:LOG:  automatic analyze of table "shop.public.orders"\n'
            "2024-01-01 10:00:02 UTC:10.0.0.1(5):app@shop:[7]:ERROR:  canceling statement due to user request\n"
            "2024-01-01 10:00:02 UTC:10.0.0.1(5):app@shop:[7]:STATEMENT:  SELECT pg_sleep(60)\n"
            "2024-01-01 10:00:03 UTC::@:[9]:ERROR:  canceling autovacuum task\n"
            "2024-01-01 10:00:04 UTC::@:[3]:LOG:  checkpoint starting: wal\n"
            "2024-01-01 10:00:09 UTC::@:[3]:LOG:  checkpoint complete: wrote 3843 buffers (23.5%), wrote 2 SLRU "
            "buffers; 0 WAL file(s) added, 1 removed, 2 recycled; write=4.852 s, sync=0.096 s, total=5.011 s; sync "
            "files=12, longest=0.010 s, average=0.001 s; distance=59888 kB, estimate=61575 kB; lsn=0/1, redo lsn=0/1\n")
    fr = extract.analyse(reader.parse_text(text))
    v = fr["autovacuum"]
    assert list(v["kind"]) == ["vacuum", "analyze"] and v["table"].iloc[0] == "shop.public.orders"
    assert (v["elapsed_s"].iloc[0], v["tuples_removed"].iloc[0], v["pages_removed"].iloc[0]) == (0.25, 500, 12)
    c = fr["cancellations"]
    assert list(c["reason"]) == ["user_request", "autovacuum"] and c["statement"].iloc[0] == "SELECT pg_sleep(60)"
    ck = fr["checkpoints"].iloc[0]
    assert (ck["event"], ck["reason"], ck["buffers"], ck["wal_recycled"], ck["write_s"], ck["distance_kb"]) == (
        "complete", "wal", 3843, 2, 4.852, 59888)
    assert pglog_findings.checkpoints(fr["checkpoints"])["by_reason"] == {"wal": 1}


# ---- which source ranks the slow statements -------------------------------------------------------------
W = IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z")


def _pss(taken="2026-11-23T10:05:00Z", query="SELECT pg_sleep($1), * FROM reconcile WHERE org = $2"):
    return pd.DataFrame({"queryid": [1, 2], "query": [query, "SELECT $1"], "calls": [3.0, 100.0],
                         "total_exec_time": [1700.0, 5.0], "mean_exec_time": [566.7, 0.05],
                         "snapshot_at": pd.to_datetime([taken, taken], utc=True)})


def _log():
    ev = extract.statement_events(reader.parse_text(
        "2026-11-23 09:10:00 UTC:10.0.0.1(5):app@shop:[7]:LOG:  duration: 900.0 ms  statement: "
        "SELECT pg_sleep(0.9), * FROM reconcile WHERE org = 4\n"
        "2026-11-23 09:11:00 UTC:10.0.0.1(5):app@shop:[7]:LOG:  duration: 800.0 ms  statement: "
        "SELECT pg_sleep(0.8), * FROM reconcile WHERE org = 5\n"))
    return extract.statements(ev)


def test_statements_source_says_which_and_why():
    log = _log()
    assert stmts.statements_source(_pss(), log, W)["source"] == "pg_stat_statements"
    missing = pd.DataFrame()
    missing.attrs["capture_error"] = "OperationalError: connection refused"
    got = stmts.statements_source(missing, log, W)
    assert got["source"] == "log" and "connection refused" in got["why"]
    reset = stmts.statements_source(_pss(), log, W, {"stats_reset": "2026-11-23T09:30:00Z"})
    assert reset["source"] == "log" and "reset" in reset["why"]
    stale = stmts.statements_source(_pss(taken="2026-11-26T10:00:00Z"), log, W)
    assert stale["source"] == "log" and "stale" in stale["why"]
    assert stmts.statements_source(missing, log.iloc[0:0], W)["source"] is None
    # reset, and the log timed nothing: pg_stat_statements still ranks them, saying its counts are a lower bound
    fallback = stmts.statements_source(_pss(), log.iloc[0:0], W, {"stats_reset": "2026-11-23T09:30:00Z"})
    assert fallback["source"] == "pg_stat_statements" and "lower bound" in fallback["why"]


def test_a_culprit_calling_pg_sleep_is_listed_from_either_source():
    from_pss = db.slow_statements(stmts.by_time_spent(_pss()), min_mean_ms=100)
    assert "pg_sleep" in from_pss["query"].iloc[0] and from_pss["source"].iloc[0] == "pg_stat_statements"
    ranked = stmts.from_log(_log())
    from_log = db.slow_statements(ranked, min_mean_ms=100)
    assert from_log["query"].iloc[0] == "SELECT pg_sleep($1), * FROM reconcile WHERE org = $2"
    assert from_log["source"].iloc[0] == "log" and from_log["calls"].iloc[0] == 2
    assert pglog_findings.top_statements(stmts.slow(ranked))[0]["total_ms"] == 1700.0


def test_the_collector_is_known_by_its_application_name_not_by_words():
    log = _log().assign(applications="forensics")
    assert (stmts.from_log(log)["kind"] == "collector").all()
    assert db.slow_statements(stmts.from_log(log), min_mean_ms=0).empty


def test_pg_stat_statements_rows_join_the_log_by_fingerprint():
    joined = stmts.join_log(_pss(), _log())
    assert joined["log_calls"].iloc[0] == 2 and pd.isna(joined["log_calls"].iloc[1])


def test_connections_per_minute_with_no_sign_in_failure():
    """A log with connections and no refused sign-in (the sandbox's RDS log): the empty failures frame must
    not turn the times into objects (pd.Grouper then raised 'Only valid with DatetimeIndex')."""
    text = ("2026-11-23 18:00:01 UTC:10.0.0.5(5432):app@db:[101]:LOG:  connection received: host=10.0.0.5 port=5432\n"
            "2026-11-23 18:00:01 UTC:10.0.0.5(5432):app@db:[101]:LOG:  connection authorized: user=app database=db\n"
            "2026-11-23 18:02:30 UTC:10.0.0.5(5432):app@db:[101]:LOG:  disconnection: session time: 0:02:29.000 "
            "user=app database=db host=10.0.0.5 port=5432\n").encode()
    entries = reader.parse_text(text, "%t:%r:%u@%d:[%p]:")
    cpm = extract.connections_per_minute(entries)
    assert cpm["received"].sum() == 1 and cpm["authorized"].sum() == 1 and cpm["disconnections"].sum() == 1
    assert cpm["refused"].sum() == 0 and len(cpm) == 3  # 18:00, 18:01 (zero), 18:02
