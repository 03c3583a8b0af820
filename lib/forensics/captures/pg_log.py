"""PostgreSQL's own log as evidence (issue 20): the log captured once (``pg_log_export``: RDS/Aurora's
CloudWatch Logs group, or a self-hosted server's stderr/csvlog/jsonlog files from a path or S3), then one
frame per thing an incident needs from it, each derived from that capture (``after``) by
:mod:`forensics.pglog`; and exact counts at any volume where the logs are (Logs Insights).

Where the log comes from (environment): ``postgres_log.files`` (paths, folders, globs, ``s3://`` prefixes;
``format`` stderr|csvlog|jsonlog, detected when absent; ``log_line_prefix``), else ``rds`` (the instance's
``/aws/rds/instance/<id>/postgresql`` group or ``rds.log_group``; ``rds.log_line_prefix`` for Aurora or a
custom parameter group, default RDS's ``%t:%r:%u@%d:[%p]:``).
"""

from __future__ import annotations

import pandas as pd

from .. import contracts
from ..sources import logs
from ..sources.call import Call, failing
from .core import LOGS, Capture, declare
from .log_volume import match_counts
from .logs import rds_log_group as _group

#: At most this many log events (lines) are pulled; a longer log is truncated, and says so.
MAX_EVENTS = 2_000_000


def _section(inc) -> dict:
    return inc.env.get("postgres_log") or {}


def _prefix(inc) -> str | None:
    return _section(inc).get("log_line_prefix") or (inc.env.get("rds") or {}).get("log_line_prefix")


def _export_call(inc, max_events=MAX_EVENTS) -> Call:
    sec = _section(inc)
    if sec.get("files"):
        def run():
            from ..pglog import files

            read, reading = files.read_files(list(sec["files"]), aws=inc.aws)
            frame = files.as_events(read, sec.get("format"))
            frame.attrs.update(reading)
            return frame

        return Call("files", {"api": "files", "files": list(sec["files"]), "format": sec.get("format"),
                              "log_line_prefix": _prefix(inc)}, run)
    if not inc.env.get("rds"):
        return failing(None, {"needs": "section postgres_log or rds"},
                       LookupError("the environment names no PostgreSQL log (postgres_log.files or rds)"))
    made = logs.filter_call([_group(inc)], inc.context_window, None, aws=inc.aws, max_events=max_events)
    return made.recorded_as(after={"log_line_prefix": _prefix(inc) or "%t:%r:%u@%d:[%p]:"})


declare(Capture("pg_log_export", "logs", "FilterLogEvents | files", _export_call, (),
                contracts.LOG_COLUMNS, LOGS, params={"max_events": MAX_EVENTS},
                doc="PostgreSQL's whole log over the context window: RDS/Aurora's CloudWatch Logs group (every "
                    "event, no filter) or a self-hosted server's files (postgres_log.files: paths or s3://)."))

S, F, TS, I = "str", "float64", "ts", "Int64"
WHO = {"timestamp": TS, "pid": I, "user": S, "database": S}
#: name -> (frame of forensics.pglog.extract.analyse, columns, what it is)
DERIVED = {
    "pg_log_statements": ("statements", {
        "fingerprint": S, "query": S, "calls": "int64", "total_ms": F, "mean_ms": F, "max_ms": F, "first_seen": TS,
        "last_seen": TS, "users": S, "databases": S, "applications": S, "via": S},
        "statements the log timed (duration: lines of log_min_duration_statement / log_duration, auto_explain "
        "plans), normalised to pg_stat_statements' shape ($1) and fingerprinted; by total time"),
    "pg_log_statements_per_minute": ("statements_per_minute", {
        "minute": TS, "calls": F, "total_ms": F},
        "statements the log timed per minute: calls and total time"),
    "pg_log_errors": ("errors", {
        "severity": S, "sqlstate": S, "sqlstate_class": S, "inferred": "bool", "signature": S, "count": "int64",
        "first_seen": TS, "last_seen": TS, "users": S, "databases": S, "example": S, "statement": S},
        "ERROR/FATAL/PANIC/WARNING entries by SQLSTATE (the log's, else inferred) and message signature"),
    "pg_log_auth_failures": ("auth_failures", {
        **WHO, "client": S, "method": S, "reason": S, "message": S},
        "refused sign-ins of every method (password, md5, scram, peer, ident, PAM, LDAP, RADIUS, cert, GSSAPI, "
        "SSPI, BSD), no pg_hba.conf entry, unknown role"),
    "pg_log_lock_waits": ("lock_waits", {
        **WHO, "state": S, "mode": S, "object": S, "waited_ms": F, "holders": S, "wait_queue": S, "statement": S},
        "log_lock_waits: still waiting / acquired after N ms, holders, wait queue, statement"),
    "pg_log_deadlocks": ("deadlocks", {
        **WHO, "processes": S, "statement_1": S, "statement_2": S, "statement": S, "detail": S},
        "deadlocks with both processes' statements"),
    "pg_log_temp_files": ("temp_files", {
        **WHO, "size_bytes": "int64", "path": S, "query": S, "fingerprint": S},
        "temporary files (log_temp_files): size and the statement that wrote them"),
    "pg_log_checkpoints": ("checkpoints", {
        "timestamp": TS, "event": S, "kind": S, "reason": S, "buffers": F, "wal_added": F, "wal_removed": F,
        "wal_recycled": F, "write_s": F, "sync_s": F, "total_s": F, "distance_kb": F, "estimate_kb": F, "apart_s": F},
        "checkpoints completed (why, buffers, write/sync/total s, distance) and 'too frequently' warnings"),
    "pg_log_autovacuum": ("autovacuum", {
        "timestamp": TS, "kind": S, "table": S, "elapsed_s": F, "tuples_removed": F, "pages_removed": F, "message": S},
        "autovacuum and autoanalyze runs (log_autovacuum_min_duration)"),
    "pg_log_connections": ("connections_per_minute", {
        "minute": TS, "received": "int64", "authorized": "int64", "disconnections": "int64", "refused": "int64"},
        "connections received, authorized, disconnections and refusals per minute"),
    "pg_log_sessions": ("sessions", {**WHO, "client": S, "session_s": F},
                        "sessions ended (log_disconnections) and their length"),
    "pg_log_cancellations": ("cancellations", {**WHO, "severity": S, "reason": S, "statement": S},
                             "statements cancelled and sessions terminated: user request, timeouts, administrator "
                             "command, recovery conflicts, autovacuum cancelled"),
}


def _derived(frame_name: str):
    def call(inc) -> Call:
        def run():
            from ..pglog import extract, record

            export = inc.pull("pg_log_export")
            err = export.attrs.get("capture_error")
            if err:
                raise LookupError(f"pg_log_export failed: {err}")
            out = record.analysed(export, _prefix(inc), inc.context_window)
            if frame_name == "statements_per_minute":
                ev = out["statement_events"]
                calls = extract.per_minute(ev)
                total = extract.per_minute(ev, "duration_ms")
                return pd.DataFrame({"minute": calls.index, "calls": calls.to_numpy(),
                                     "total_ms": total.reindex(calls.index).to_numpy()})
            return out[frame_name]

        return Call(None, {"from": "pg_log_export", "parser": "forensics.pglog", "frame": frame_name,
                           "log_line_prefix": _prefix(inc) or "%t:%r:%u@%d:[%p]:", **inc.context_window.as_dict()},
                    run)

    return call


for _name, (_frame, _cols, _doc) in DERIVED.items():
    declare(Capture(_name, "logs", "derived:pg_log_export", _derived(_frame), (), _cols, LOGS,
                    after=("pg_log_export",), doc="PostgreSQL's log: " + _doc + "."))

#: What each event kind starts with after the severity: counted exactly at any volume by Logs Insights.
EVENT_KINDS = (r"duration|connection received|connection authorized|disconnection|checkpoint starting|"
               r"checkpoint complete|checkpoints are occurring too frequently|temporary file|automatic vacuum|"
               r"automatic aggressive vacuum|automatic analyze|still waiting for|acquired|deadlock detected|"
               r"canceling statement due to \w+ ?\w*|terminating connection due to \w+ ?\w*|"
               r"\w+ authentication failed|no pg_hba\.conf entry|sorry, too many clients|"
               r"remaining connection slots are reserved")
match_counts(
    "pg_log_event_counts", ["rds"], lambda inc: [_group(inc)],
    r"(?:LOG|ERROR|FATAL|WARNING|PANIC):\s+(?:process \d+ )?(?<hit>" + EVENT_KINDS + ")",
    doc="PostgreSQL's log: events per minute by kind (statements timed, connections, disconnections, checkpoints, "
        "temporary files, autovacuum, lock waits, deadlocks, cancellations, sign-in failures), with first and "
        "last event (Logs Insights: exact at any volume, no event pulled).")
