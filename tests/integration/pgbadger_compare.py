"""Helpers of the comparison with pgbadger (tests/integration/test_pglog_pgbadger.py and the benchmark):
run Debian's pgbadger on a log, read its JSON report into the counts :func:`forensics.pglog.extract.summary_counts`
gives, and both sides' top statements by total time in one comparable form."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from forensics.pglog import normalize

ROOT_CANDIDATES = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / "postgres_logs",
                   Path("/work/shared/data/real/postgres_logs"))
ROOT = next((p for p in ROOT_CANDIDATES if p.exists()), ROOT_CANDIDATES[0])
PGBADGER = shutil.which("pgbadger")

#: log -> (our format, log_line_prefix, pgbadger's arguments). Tuned on: the first two; reported on: the rest.
LOGS = {
    "quellog/comprehensive_stderr.log": ("stderr", "%m [%p] %e: db=%d,user=%u,app=%a,client=%h ",
                                         ["-f", "stderr", "-p", "%m [%p] %e: db=%d,user=%u,app=%a,client=%h "]),
    "pgbadger/rds.head6000.log": ("rds", None, ["-f", "rds"]),
    "quellog/comprehensive_csvlog.csv": ("csvlog", None, ["-f", "csv"]),
    "pgbadger/light.postgres.log": ("stderr", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
                                    ["-f", "stderr", "-p", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "]),
}
TUNING = ("quellog/comprehensive_stderr.log", "pgbadger/rds.head6000.log")
HELD_OUT = ("quellog/comprehensive_csvlog.csv", "pgbadger/light.postgres.log")


def run_pgbadger(path: Path, args: list[str], out: Path) -> dict:
    # its own pid folder: pgbadger refuses to start while another run's /tmp/pgbadger.pid exists
    subprocess.run([PGBADGER, "-q", "--pid-dir", str(out.parent), *args, "-x", "json", "-o", str(out), str(path)],
                   check=True, timeout=900, capture_output=True)
    return json.loads(out.read_text())


def _db(section):
    """pgbadger keys most sections by the log's name ('postgres' for one plain log)."""
    if isinstance(section, dict) and len(section) == 1 and isinstance(next(iter(section.values())), dict):
        return next(iter(section.values()))
    return section or {}


def pgbadger_counts(rep: dict) -> dict:
    types = _db(rep.get("logs_type"))
    errors = _db(rep.get("error_info"))
    norm = _db(rep.get("normalyzed_info"))
    tables_v = _db(rep.get("autovacuum_info")).get("tables", {})
    tables_a = _db(rep.get("autoanalyze_info")).get("tables", {})
    locks = _db(rep.get("lock_info"))
    temp = _db(rep.get("tempfile_info"))
    sess = _db(rep.get("session_info"))
    conn = _db(rep.get("connection_info"))
    ck = rep.get("checkpoint_info") or {}

    def err(*words):
        return sum(v.get("count", 0) for k, v in errors.items() if any(w in k for w in words))

    return {
        "queries": rep["overall_stat"]["queries_number"],
        "queries_total_ms": sum(v.get("duration", 0) for v in norm.values()),
        "errors_ERROR": types.get("ERROR", 0), "errors_FATAL": types.get("FATAL", 0),
        "errors_PANIC": types.get("PANIC", 0), "errors_WARNING": types.get("WARNING", 0),
        "connections": conn.get("count", 0), "sessions": sess.get("count", 0),
        "session_total_s": sess.get("duration", 0) / 1000.0,
        "checkpoints": sum((ck.get("starting") or {}).values()), "checkpoint_write_s": ck.get("write", 0),
        "checkpoint_warnings": ck.get("warning", 0),
        "temp_files": temp.get("count", 0), "temp_bytes": temp.get("size", 0),
        "lock_waits_acquired": sum(v.get("count", 0) for v in locks.values() if isinstance(v, dict)),
        "deadlocks": err("deadlock detected"),
        "autovacuum": sum(t.get("vacuums", 0) for t in tables_v.values()),
        "autoanalyze": sum(t.get("analyzes", 0) for t in tables_a.values()),
        "auth_failures": err("authentication failed", "no pg_hba.conf entry", "pg_hba.conf rejects"),
        "cancellations": err("canceling statement due to", "canceling autovacuum task",
                             "terminating connection due to"),
    }


def pgbadger_top(rep: dict, n: int = 5) -> list[tuple[str, float]]:
    norm = _db(rep.get("normalyzed_info"))
    ranked = sorted(norm.items(), key=lambda kv: -kv[1].get("duration", 0))[:n]
    return [(normalize.comparable(q), v.get("duration", 0)) for q, v in ranked]


def our_top(statements, n: int = 5) -> list[tuple[str, float]]:
    return [(normalize.comparable(q), float(t)) for q, t in zip(statements["query"][:n], statements["total_ms"][:n])]


def within(ours: float, theirs: float, tolerance: float = 0.05) -> bool:
    return abs(ours - theirs) <= tolerance * max(abs(ours), abs(theirs)) + 1e-9
