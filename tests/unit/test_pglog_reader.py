"""forensics.pglog: log_line_prefix compiled, every input format read into the same entries, multi-line
entries joined - on real excerpts (tests/data/postgres_logs, see its README) and on lines written the way
PostgreSQL writes them where no real sample of a format is at hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from forensics.pglog import prefix as pfx
from forensics.pglog import reader

DATA = Path(__file__).resolve().parents[1] / "data" / "postgres_logs"
QUELLOG_PREFIX = "%m [%p] %e: db=%d,user=%u,app=%a,client=%h "


@pytest.mark.parametrize("prefix,line,expect", [
    (None, "2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:FATAL:  no pg_hba",
     {"ts": "2020-03-11 20:40:50 CET", "client": "192.168.1.201", "port": "50906", "user": "gilles", "db": "pgbench",
      "pid": "12795", "sev": "FATAL"}),
    (None, "2020-03-11 20:40:43 CET::@:[12760]:LOG:  starting", {"user": "", "db": "", "client": "", "sev": "LOG"}),
    (QUELLOG_PREFIX, "2026-04-02 14:55:51.580 UTC [53] 00000: db=postgres,user=postgres,app=psql,client=[local] "
                     "LOG:  connection", {"ts": "2026-04-02 14:55:51.580 UTC", "sqlstate": "00000", "app": "psql",
                                          "client": "[local]", "pid": "53"}),
    ("%m %q%u@%d ", "2024-01-01 00:00:00.1 UTC LOG:  checkpoint starting: time", {"user": None, "sev": "LOG"}),
    ("%m %q%u@%d ", "2024-01-01 00:00:00.1 UTC app@shop LOG:  x", {"user": "app", "db": "shop"}),
    ("%t [%-5p] ", "2024-01-01 00:00:00 UTC [42   ] ERROR:  boom", {"pid": "42", "sev": "ERROR"}),
    ("%n|%a|", "1700000000.123|my app|WARNING:  w", {"epoch": "1700000000.123", "app": "my app"}),
])
def test_prefix_compiles_to_one_regex_with_named_fields(prefix, line, expect):
    m = re.match(pfx.compile_prefix(prefix), line)
    assert m, pfx.compile_prefix(prefix)
    for key, value in expect.items():
        assert m.groupdict().get(key) == value, key


def test_quellog_stderr_excerpt_entries_fields_and_multiline_joined():
    entries = reader.parse_text((DATA / "quellog_stderr_excerpt.log").read_bytes(), QUELLOG_PREFIX)
    assert entries["timestamp"].notna().all() and entries["pid"].notna().all()
    # no DETAIL/STATEMENT/continuation line became an entry of its own
    assert not entries["severity"].isin(["DETAIL", "STATEMENT", "HINT", "CONTEXT"]).any()
    assert not entries["message"].str.startswith(("\t", "Process ")).any()
    dead = entries[entries["message"] == "deadlock detected"].iloc[0]
    assert (dead["severity"], dead["pid"], dead["user"], dead["database"], dead["client"], dead["sqlstate"]) == (
        "ERROR", 111, "app_user", "app_db", "172.28.0.10", "40P01")
    assert dead["detail"].startswith("Process 111 waits for ShareLock") and "Process 112:" in dead["detail"]
    assert dead["hint"] == "See server log for query details."
    assert dead["context"].startswith("while updating tuple") and "UPDATE lock_test" in dead["statement"]
    # a multi-line statement after 'duration:' is one entry holding every line
    dur = entries[entries["message"].str.startswith("duration: 427.261 ms")].iloc[0]
    assert "FROM generate_series(1, 50000) gs;" in dur["message"] and dur["message"].count("\n") >= 7
    temp = entries[entries["message"].str.startswith("temporary file:")].iloc[0]
    assert "INSERT INTO large_transactions" in temp["statement"]
    assert entries["timestamp"].iloc[0] == pd.Timestamp("2026-04-02T14:55:55.815Z")


def test_rds_prefix_times_in_utc_and_unknowns_as_missing():
    entries = reader.parse_text((DATA / "pgbadger_rds_excerpt.log").read_bytes())
    assert len(entries) == 40 - sum(1 for ln in (DATA / "pgbadger_rds_excerpt.log").read_text().splitlines()
                                    if not re.match(r"^\d{4}-", ln))
    first = entries[entries["severity"] == "FATAL"].iloc[0]
    assert first["timestamp"] == pd.Timestamp("2020-03-11T19:40:50Z")  # CET is UTC+1
    assert (first["client"], first["user"], first["database"], first["pid"]) == ("192.168.1.201", "gilles", "pgbench", 12795)
    boot = entries.iloc[0]
    assert pd.isna(boot["user"]) and pd.isna(boot["client"]) and boot["message"].startswith("starting PostgreSQL")


def test_cloudwatch_events_read_as_the_text_is_and_fill_in_times():
    text = (DATA / "quellog_stderr_excerpt.log").read_text()
    lines = text.splitlines()
    # RDS's export: one event per entry, continuation lines inside the event's message
    events, cur = [], None
    for ln in lines:
        if re.match(r"^\d{4}-", ln):
            cur = [ln]
            events.append(cur)
        elif cur is not None:
            cur.append(ln)
    frame = pd.DataFrame({"timestamp": pd.Timestamp("2026-04-02T15:00:00Z"), "message": ["\n".join(e) for e in events]})
    from_events = reader.parse_events(frame, QUELLOG_PREFIX)
    from_text = reader.parse_text(text, QUELLOG_PREFIX)
    pd.testing.assert_frame_equal(from_events, from_text)
    # a prefix without a time: the event's own time fills it in
    bare = pd.DataFrame({"timestamp": [pd.Timestamp("2026-01-01T00:00:01Z")],
                         "message": ["[42]: db=x,user=y LOG:  connection authorized: user=y database=x"]})
    got = reader.parse_events(bare, "[%p]: db=%d,user=%u ")
    assert got["timestamp"].iloc[0] == pd.Timestamp("2026-01-01T00:00:01Z") and got["user"].iloc[0] == "y"


CSV = ('2026-04-02 14:56:02.638 UTC,"app_user","app_db",111,"172.28.0.10:40112",69ce8380.6f,7,"UPDATE",'
       '2026-04-02 14:56:00 UTC,5/12,809,ERROR,40P01,"deadlock detected","Process 111 waits for ShareLock on '
       'transaction 809; blocked by process 112.\nProcess 112: UPDATE t SET v = 1 WHERE id = 2;",'
       '"See server log for query details.",,,"while updating tuple (0,3) in relation ""lock_test""",'
       '"UPDATE t SET v = 2 WHERE id = 3;",,,"webapp","client backend",,0\n'
       '2026-04-02 14:56:03.000 UTC,,,57,,69ce8377.39,5,,2026-04-02 14:55:51 UTC,,0,LOG,00000,'
       '"checkpoint starting: time",,,,,,,,,"","checkpointer",,0\n')


def test_csvlog_with_quoted_newlines_and_quotes():
    entries = reader.parse(CSV)
    assert len(entries) == 2
    d = entries.iloc[0]
    assert (d["client"], d["sqlstate"], d["application"], d["pid"]) == ("172.28.0.10", "40P01", "webapp", 111)
    assert "\nProcess 112: UPDATE" in d["detail"] and d["context"].endswith('relation "lock_test"')
    assert d["statement"] == "UPDATE t SET v = 2 WHERE id = 3;"
    assert pd.isna(entries.iloc[1]["user"]) and entries.iloc[1]["message"] == "checkpoint starting: time"


def test_jsonlog_cnpg_and_cloud_sql():
    pg = json.dumps({"timestamp": "2024-05-01 10:00:00.123 UTC", "user": "app", "dbname": "shop", "pid": 7,
                     "remote_host": "10.0.0.5", "error_severity": "ERROR", "state_code": "23505",
                     "message": "duplicate key value violates unique constraint \"k\"", "statement": "INSERT 1"})
    e = reader.parse(pg + "\n")
    assert (e["user"].iloc[0], e["sqlstate"].iloc[0], e["statement"].iloc[0]) == ("app", "23505", "INSERT 1")
    cnpg = json.dumps({"level": "info", "record": {"log_time": "2022-11-27 18:58:02.096 UTC", "user_name": "postgres",
                                                   "process_id": "600", "error_severity": "LOG",
                                                   "message": "disconnection: session time: 0:00:00.007"}})
    assert reader.parse(cnpg)["message"].iloc[0].startswith("disconnection")
    gcp = json.dumps({"textPayload": "[24667]: [2-1] db=cloudsqladmin,user=cloudsqladmin LOG:  connection authorized: x",
                      "timestamp": "2020-05-02T13:00:20.38403Z"})
    g = reader.parse(gcp)
    assert (g["pid"].iloc[0], g["user"].iloc[0]) == (24667, "cloudsqladmin")
    assert g["timestamp"].iloc[0] == pd.Timestamp("2020-05-02T13:00:20.38403Z")


def test_bad_input_is_empty_or_readable_never_a_crash():
    assert reader.parse_text(b"").empty
    assert reader.parse_text(b"not a log line\nnor this\n").empty
    got = reader.parse_text(b"2024-01-01 00:00:00 UTC::@:[1]:LOG:  caf\xe9 \xff\n")
    assert len(got) == 1 and got["message"].iloc[0].startswith("caf")
    with pytest.raises(ValueError, match="unknown PostgreSQL log format"):
        reader.parse("x", "syslog9")
