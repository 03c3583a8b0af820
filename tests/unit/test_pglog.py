"""PostgreSQL server log: prefixes (stderr, RDS, csvlog, CloudWatch events) and the categories of the
patterns file, on real log excerpts (tests/data/postgres_logs, see its README)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forensics.analysis import pglog

DATA = Path(__file__).resolve().parents[1] / "data" / "postgres_logs"


def test_quellog_stderr_excerpt_categories_and_prefix_fields():
    entries = pglog.parse_stderr((DATA / "quellog_stderr_excerpt.log").read_text().splitlines())
    counts = entries["category"].value_counts().to_dict()
    assert counts["connection_exhaustion"] == 38 and counts["deadlock"] == 1 and counts["statement_timeout"] == 1
    assert counts["authentication_failure"] == 1 and counts["checkpoint_pressure"] == 1 and counts["lock_waits"] == 7
    assert entries["timestamp"].notna().all()
    dead = entries[entries["category"] == "deadlock"].iloc[0]
    assert (dead["severity"], dead["pid"], dead["user"], dead["database"], dead["client"]) == (
        "ERROR", 111, "app_user", "app_db", "172.28.0.10")
    # DETAIL/HINT/CONTEXT/STATEMENT lines and their continuations belong to the entry, not new entries
    assert dead["detail"].startswith("DETAIL: Process 111 waits for ShareLock") and "CONTEXT: while updating" in dead["detail"]
    assert not entries["message"].str.startswith(("Process 112", "BEGIN;")).any()
    storm = pglog.summary(entries)
    assert storm.iloc[0]["category"] == "connection_exhaustion" and storm.iloc[0]["entries"] == 38
    assert set(storm.iloc[0]["users"]) <= {"app_user", "batch"}


def test_rds_prefix_and_pg_hba_failures():
    entries = pglog.parse_stderr((DATA / "pgbadger_rds_excerpt.log").read_text().splitlines())
    fails = entries[entries["category"] == "authentication_failure"]
    assert len(fails) == 2
    first = fails.iloc[0]
    # 2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:FATAL:  no pg_hba.conf entry...
    assert first["timestamp"] == pd.Timestamp("2020-03-11T19:40:50Z")
    assert (first["client"], first["user"], first["database"], first["pid"]) == ("192.168.1.201", "gilles", "pgbench",
                                                                                 12795)
    assert (entries["category"] == "other").sum() == len(entries) - 2


def test_cloudwatch_events_of_an_rds_log_group():
    events = pd.DataFrame({
        "timestamp": pd.to_datetime(["2026-05-30T09:00:01Z", "2026-05-30T09:00:02Z", "2026-05-30T09:00:03Z"]),
        "message": ["2026-05-30 09:00:01 UTC:10.0.1.5(40112):app@orders:[4242]:FATAL:  remaining connection slots "
                    "are reserved for roles with the SUPERUSER attribute",
                    "2026-05-30 09:00:02 UTC:10.0.1.6(40113):app@orders:[4243]:ERROR:  canceling statement due to "
                    "lock timeout\n2026-05-30 09:00:02 UTC:10.0.1.6(40113):app@orders:[4243]:STATEMENT:  UPDATE t SET x=1",
                    "no prefix here: FATAL:  sorry, too many clients already"]})
    entries = pglog.parse_events(events)
    assert entries["category"].tolist() == ["connection_exhaustion", "lock_timeout", "connection_exhaustion"]
    assert entries.iloc[1]["detail"] == "STATEMENT: UPDATE t SET x=1"
    assert entries.iloc[2]["timestamp"] == pd.Timestamp("2026-05-30T09:00:03Z")  # CloudWatch's time as fallback
    wide = pglog.per_minute(entries)
    assert wide.loc[pd.Timestamp("2026-05-30T09:00Z"), "connection_exhaustion"] == 2


def test_csvlog_keeps_sqlstate_and_checks_the_patterns():
    text = ('2026-04-02 14:56:02.638 UTC,"app_user","app_db",111,"172.28.0.10:5000",69ce.6f,5,"UPDATE",'
            '2026-04-02 14:56:00 UTC,3/12,809,ERROR,40P01,"deadlock detected","Process 111 waits",,,,,,,,"psql",'
            '"client backend",,0\n'
            '2026-04-02 14:56:03.000 UTC,"x","app_db",112,"172.28.0.11:5001",69ce.70,1,"authentication",'
            '2026-04-02 14:56:03 UTC,,0,FATAL,28P01,"password authentication failed for user ""x""",,,,,,,,,"",'
            '"client backend",,0\n')
    entries = pglog.parse_csvlog(text)
    assert entries["category"].tolist() == ["deadlock", "authentication_failure"]
    assert entries.iloc[0]["client"] == "172.28.0.10" and entries.iloc[0]["detail"] == "DETAIL: Process 111 waits"
    check = pglog.check_against_sqlstate(entries).set_index("category")
    assert check.loc["deadlock", "recall"] == 1.0 and check.loc["authentication_failure", "precision"] == 1.0


def test_patterns_file_errors_are_clear(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("deadlock:\n  patterns: ['(unclosed']\n")
    with pytest.raises(ValueError, match="deadlock.*bad regex"):
        pglog.load_patterns(bad)
    bad.write_text("deadlock: {description: x}\n")
    with pytest.raises(ValueError, match="needs a list of regexes"):
        pglog.load_patterns(bad)
    assert pglog.classify_message("could not obtain lock on row in relation \"t\"") == "lock_timeout"
    assert pglog.classify_message("duration: 2.280 ms  statement: END;") == "other"
