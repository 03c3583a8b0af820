"""Faults survived, injected for real: closed ports, a loopback server that throttles, stalls or
answers garbage, PostgreSQL down or timing out, a notebook whose kernel dies or that raises.

Capture level (fast, in process): every source × every fault gives an empty frame with its columns,
an error saying why, a FAILED row in inc.sources(), and findings that depend on it null and unknown.
Record level (one `forensics run`): every notebook still completes or is marked failed with its
partial output, the manifest records every error, the record verifies, the exit code is non-zero.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import psycopg
import pytest

from forensics import captures, pull
from forensics.capture import CaptureStore
from forensics.params import REPO_ROOT, Incident
from forensics.session import IncidentSession
from forensics.window import IncidentWindow

from .fault_server import FaultServer, closed_port
from .secrets_corpus import corpus

pytestmark = [pytest.mark.sandbox]
FORENSICS = [sys.executable, "-m", "forensics.cli"]
LIMITS = {"max_attempts": 2, "connect_timeout_s": 1, "read_timeout_s": 0.5}
NOW = pd.Timestamp.now(tz="UTC").floor("min")
WINDOW = {"start": (NOW - pd.Timedelta("2h")).isoformat(), "end": (NOW - pd.Timedelta("1h")).isoformat()}


def environment(endpoint_url: str, pg_dsn: str, **pg) -> dict:
    return {"name": "faulty", "aws": {"region": "eu-west-1", "profile": None, "endpoint_url": endpoint_url, **LIMITS},
            "alb": {"load_balancer": "app/fault-alb/0123456789abcdef"},
            "ecs": {"cluster": "fault-cluster", "services": ["fault-api"]},
            "rds": {"instance": "fault-db"}, "logs": {"app": ["/ecs/fault-api"]},
            "postgres": {"dsn": pg_dsn, "dsn_env": None, **pg}}


def session(env: dict, tmp_path: Path) -> IncidentSession:
    inc = Incident(incident="INC-FAULT", title="faults", severity="P2", environment=env,
                   window=IncidentWindow(WINDOW["start"], WINDOW["end"]))
    return IncidentSession(inc, CaptureStore(tmp_path, notebook="faults"), "faults")


@pytest.fixture(scope="module")
def servers():
    started = {mode: FaultServer(mode, delay_s=1.2).start() for mode in ("throttle", "429", "slow", "html", "truncated")}
    yield started
    for s in started.values():
        s.stop()


AWS_CAPTURES = {  # capture -> (pull function, contract columns it must start with, signing name)
    "alb_metrics": (pull.alb_metrics, pull.METRIC_COLUMNS, "monitoring"),
    "app_error_logs": (pull.app_error_logs, pull.LOG_COLUMNS, "logs"),
    "ecs_deployments": (pull.ecs_deployments, pull.EVENT_COLUMNS, "ecs"),
    "rds_events": (pull.rds_events, pull.EVENT_COLUMNS, "rds"),
}
WHY = {"closed": r"(?i)connect|refused|unreachable", "throttle": r"(?i)throttl|rate exceeded",
       "429": r"(?i)429|too many|throttl|unknown|error", "slow": r"(?i)timed? ?out|timeout",
       "html": r"(?i)pars|unable|invalid|decode|unexpected|malformed|html|expecting|json",
       "truncated": r"(?i)pars|unable|invalid|decode|unexpected|malformed|incomplete|truncat|expecting|json|xml|cbor"}


@pytest.mark.parametrize("capture", list(AWS_CAPTURES))
@pytest.mark.parametrize("fault", ["closed", "throttle", "429", "slow", "html", "truncated"])
def test_each_aws_source_survives_each_fault(fault, capture, servers, tmp_path):
    fn, columns, service = AWS_CAPTURES[capture]
    server = servers.get(fault)
    url = server.endpoint_url if server else f"http://127.0.0.1:{closed_port()}"
    before = server.requests[service] if server else 0
    inc = session(environment(url, "host=127.0.0.1 port=1 dbname=x user=forensics"), tmp_path)
    t0 = time.perf_counter()
    frame = fn(inc)
    elapsed = time.perf_counter() - t0
    # a failed capture keeps every column the capture declares for it, the contract's first
    assert frame.empty and list(frame.columns) == list(captures.get(capture).columns)
    assert list(frame.columns)[:len(columns)] == columns
    meta = inc.captures[capture]
    assert meta.error and pytest.approx(0) != len(meta.error)
    import re
    assert re.search(WHY[fault], meta.error), meta.error
    row = inc.sources().set_index("capture").loc[capture]
    assert row["status"] == "FAILED" and row["error"] == meta.error
    assert inc.finding("headline", 42, needs=[capture]) is None
    assert inc.findings["headline"] is None and inc.unknown == ["headline"]
    sidecar = json.loads((tmp_path / ".captures" / f"{capture}.json").read_text())
    assert sidecar["error"] == meta.error and sidecar["file"] is None
    assert elapsed < 15, f"gave up after {elapsed:.1f} s"
    if fault == "throttle":  # adaptive retries engaged, and gave up after max_attempts
        assert server.requests[service] - before == LIMITS["max_attempts"], server.requests


def test_postgresql_down(tmp_path):
    inc = session(environment("http://127.0.0.1:1", f"host=127.0.0.1 port={closed_port()} dbname=app "
                                                     "user=forensics"), tmp_path)
    volatile = [c.name for c in captures.volatile(captures.plan(list(captures.CAPTURES), inc.env)[0])]
    assert volatile == ["pg_activity", "pg_locks", "pg_statements", "pg_statements_info", "pg_settings"]
    t0 = time.perf_counter()
    for name in volatile:  # what the runner pulls first
        inc.pull(name)
    assert time.perf_counter() - t0 < 10
    assert set(inc.failed()) == set(volatile)
    assert all("cannot connect" in m.error for m in inc.captures.values())
    assert inc.finding("max_connections", 40, needs=["pg_settings"]) is None and "max_connections" in inc.unknown


def test_postgresql_statement_timeout(pg_cluster, tmp_path):
    """A session holding an exclusive lock on pg_stat_activity: our query waits, then times out. (1.5 s, not less:
    the timeout also bounds the role check at connect, a catalog query that took over 300 ms on a loaded CI.)"""
    admin = psycopg.connect(pg_cluster.dsn("postgres"))
    try:
        inc = session(environment("http://127.0.0.1:1", pg_cluster.dsn("forensics"), statement_timeout_ms=1500),
                      tmp_path)
        inc.pg()  # connected before the lock is taken (new backends would wait for it)
        admin.execute("LOCK TABLE pg_catalog.pg_stat_activity IN ACCESS EXCLUSIVE MODE")
        t0 = time.perf_counter()
        frame = pull.pg_activity(inc)
        elapsed = time.perf_counter() - t0
        admin.rollback()  # the lock is gone: the same session answers again
        settings = pull.pg_settings(inc)
    finally:
        admin.close()
        inc.close()
    assert frame.empty and "query" in frame.columns
    assert "statement_timeout" in inc.captures["pg_activity"].error, inc.captures["pg_activity"].error
    assert elapsed < 5, (elapsed, inc.captures["pg_activity"])
    assert not settings.empty, "the session survived its statement timeout"
    assert inc.finding("top_holder", "x", needs=["pg_activity"]) is None


# ---- one record over a broken world --------------------------------------------------------------
SECRET = next(s for s in corpus(seed=5) if s.kind == "stripe-key")


def _notebook(cells: list[str]) -> nbformat.NotebookNode:
    params = nbformat.v4.new_code_cell("incident_file = None\nrecord_dir = None\nreplay_from = None")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, *[nbformat.v4.new_code_cell(c) for c in cells]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["forensics"] = {"title": "test-only", "order": 95, "sources": [], "serves": []}
    return nb


@pytest.fixture(scope="module")
def broken_record(tmp_path_factory):
    work = tmp_path_factory.mktemp("broken")
    nbdir = work / "notebooks"
    nbdir.mkdir()
    for name in ("api-errors", "db-connections", "overview"):
        shutil.copy(REPO_ROOT / "notebooks" / f"{name}.ipynb", nbdir)
    open_inc = ("import forensics\ninc = forensics.open_incident(incident_file, record_dir=record_dir, "
                "replay_from=replay_from, notebook='{}')")
    nbformat.write(_notebook([open_inc.format("zz-kernel-dies"), "print('partial output before the kernel died')",
                              "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "print('never')"]),
                   nbdir / "zz-kernel-dies.ipynb")
    nbformat.write(_notebook([open_inc.format("zz-raises"),
                              "inc.finding('answer', 42)\nprint('partial output before the exception')",
                              # the secret comes from data at run time, not from the notebook's source
                              f"raise RuntimeError('payment provider rejected key ' + {SECRET.secret[::-1]!r}[::-1])",
                              "print('never')"]), nbdir / "zz-raises.ipynb")
    mixed = FaultServer(per_service={"monitoring": "throttle", "logs": "slow", "ecs": "html", "rds": "truncated",
                                     "sts": "429", "elasticloadbalancing": "html"}, delay_s=1.2).start()
    env_path, inc_path = work / "env.yaml", work / "incident.yaml"
    import yaml

    env_path.write_text(yaml.safe_dump(environment(
        mixed.endpoint_url, f"host=127.0.0.1 port={closed_port()} dbname=app user=forensics")))
    inc_path.write_text(yaml.safe_dump({"incident": "INC-FAULT", "title": "everything is broken", "severity": "P2",
                                        "environment": str(env_path), "window": WINDOW}))
    try:
        # --skip-preflight: this record is about what a run writes when every source fails (preflight would stop it)
        proc = subprocess.run([*FORENSICS, "run", inc_path, "--out", work / "evidence", "--jobs", "2", "--skip-preflight"],
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "FORENSICS_NOTEBOOK_DIR": str(nbdir)})
    finally:
        mixed.stop()
    record = Path(proc.stdout.strip().splitlines()[-1])
    yield proc, record, mixed.requests
    for p in [record, *record.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)


def test_run_exits_non_zero_with_a_summary(broken_record):
    proc, record, _ = broken_record
    assert proc.returncode == 1, proc.stderr
    assert "FAILED notebooks: zz-kernel-dies, zz-raises" in proc.stderr
    assert record.is_dir() and not record.name.endswith(".partial")


def test_real_notebooks_complete_with_unknown_findings_not_wrong_ones(broken_record):
    _, record, requests = broken_record
    f = json.loads((record / "findings.json").read_text())
    for nb in ("api-errors", "db-connections", "overview"):
        assert f[nb]["status"] == "no evidence", f[nb]  # every source failed: never "ok" over nothing
        assert f[nb]["unknown"], nb
        for key in f[nb]["unknown"]:
            assert f[nb][key] is None, (nb, key)
    assert {"onset", "error_rate_peak", "suspected_change", "top_error_signatures"} <= set(f["api-errors"]["unknown"])
    assert {"max_connections", "top_holder", "peak_connections", "pool_errors"} <= set(f["db-connections"]["unknown"])
    fs = f["db-connections"]["failed_sources"]
    assert "cannot connect" in fs["pg_activity"] and "pg_activity" in fs
    assert "hrottl" in fs["rds_metrics"] and "timeout" in fs["app_error_logs"].lower()
    assert requests["monitoring"] >= 2 and requests["logs"] >= 2


def test_notebooks_show_which_source_is_missing_and_why(broken_record):
    _, record, _ = broken_record
    html = (record / "html" / "db-connections.html").read_text()
    assert "FAILED" in html and "cannot connect" in html and "pg_activity" in html
    html = (record / "html" / "api-errors.html").read_text()
    assert "FAILED" in html and "alb_metrics" in html


def test_manifest_records_every_error_and_the_missing_identity(broken_record):
    _, record, _ = broken_record
    m = json.loads((record / "manifest.json").read_text())
    caps = {c["name"]: c for c in m["captures"]}
    for name in ("pg_activity", "pg_settings", "alb_metrics", "app_error_logs", "ecs_deployments", "rds_events"):
        assert caps[name]["error"] and caps[name]["file"] is None and caps[name]["rows"] == 0, caps[name]
    assert m["collector"]["aws_identity"]["error"]
    assert m["collector"]["db_user"] is None and m["clock"] == {}
    status = {n["name"]: n["status"] for n in m["notebooks"]}
    assert status == {"db-connections": "no evidence", "api-errors": "no evidence", "overview": "no evidence",
                      "zz-kernel-dies": "failed",
                      "zz-raises": "failed"}


def test_failed_notebooks_keep_their_partial_output_and_are_marked(broken_record):
    _, record, _ = broken_record
    f = json.loads((record / "findings.json").read_text())
    assert f["zz-kernel-dies"]["status"] == "failed" and "ead" in f["zz-kernel-dies"]["error"]
    assert f["zz-raises"]["status"] == "failed" and "RuntimeError" in f["zz-raises"]["error"]
    assert f["zz-raises"]["answer"] == 42, "findings made before the failure are kept"
    for name, text in (("zz-kernel-dies", "partial output before the kernel died"),
                       ("zz-raises", "partial output before the exception")):
        nb = (record / "notebooks" / f"{name}.ipynb").read_text()
        assert text in nb and "never" not in nb.replace("print('never')", "")
        assert text in (record / "html" / f"{name}.html").read_text()


def test_the_record_still_verifies_and_the_exception_did_not_leak_a_secret(broken_record):
    _, record, _ = broken_record
    proc = subprocess.run([*FORENSICS, "verify", record], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    for p in record.rglob("*"):
        if p.is_file():
            assert SECRET.secret.encode() not in p.read_bytes(), p
