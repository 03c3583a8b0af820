"""End to end, as a user runs it: `forensics run` on the sandbox scenario, then `forensics verify`.

The scenario plants a deployment, a 5xx onset 5 minutes later, idle-in-transaction holders, a lock
chain and a slow statement; the findings must name each of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]
FORENSICS = [sys.executable, "-m", "forensics.cli"]


def forensics(*args, cwd=None, check=False):
    proc = subprocess.run([*FORENSICS, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"forensics {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def test_record_layout(record, sandbox):
    assert record.parent.name == f"{sandbox.truth['window_start']:%Y-%m-%d}_{sandbox.incident['incident']}"
    for name in ("api-errors", "db-connections"):
        assert (record / "notebooks" / f"{name}.ipynb").exists()
        html = (record / "html" / f"{name}.html").read_text()
        assert "data:image/png;base64," in html, "charts are embedded in the HTML"
        assert not re.search(r"(src|href)=[\"']https?://", html), "the HTML is self-contained"
    data = {p.name for p in (record / "data").glob("*.parquet")}
    assert {"alb_metrics.parquet", "pg_activity.parquet", "pg_statements.parquet", "app_error_logs.parquet",
            "ecs_deployments.parquet", "rds_metrics.parquet"} <= data
    assert list((record / "figures").glob("api-errors--*.png"))
    assert not (record / ".captures").exists() and not (record / ".findings").exists()
    manifest = json.loads((record / "manifest.json").read_text())
    assert {c["name"] for c in manifest["captures"]} >= {"alb_metrics", "pg_activity"}
    pg = next(c for c in manifest["captures"] if c["name"] == "pg_activity")
    assert "pg_stat_activity" in pg["args"]["text"] and pg["rows"] > 10 and pg["error"] is None


def test_volatile_sources_were_captured_first(record):
    manifest = json.loads((record / "manifest.json").read_text())
    order = [c["name"] for c in manifest["captures"]]
    first_non_pg = next(i for i, n in enumerate(order) if not n.startswith("pg_"))
    assert all(n.startswith("pg_") for n in order[:first_non_pg]) and "pg_activity" in order[:first_non_pg]


def test_api_errors_finds_onset_and_the_deployment(findings, sandbox):
    f = findings["api-errors"]
    assert f["status"] == "ok", f
    truth = sandbox.truth
    onset = pd.Timestamp(f["onset"])
    assert abs(onset - truth["onset"]) <= pd.Timedelta(minutes=2), (onset, truth["onset"])
    change = f["suspected_change"]
    assert change["kind"] == "deployment"
    assert truth["new_task_definition"].split("/")[-1] in change["message"]
    assert abs(pd.Timestamp(change["time"]) - truth["deploy_time"]) <= pd.Timedelta(seconds=1)
    assert f["error_rate_peak"] > 0.05
    assert any("QueuePool limit" in s for s in f["top_error_signatures"][:3])


def test_db_connections_finds_holders_chain_and_slow_statement(findings, sandbox):
    f = findings["db-connections"]
    truth = sandbox.truth
    assert f["status"] == "ok", f
    assert f["max_connections"] == truth["max_connections"]
    assert f["peak_connections"] == truth["max_connections"]
    assert f["idle_in_transaction"] >= truth["idle_in_transaction_count"]
    assert f["idle_in_transaction_by_app"][truth["idle_in_transaction_app"]] >= truth["idle_in_transaction_count"]
    assert f["top_holder"] == truth["top_holder"]
    assert any(truth["slow_statement"] in q for q in f["slow_statements"]), f["slow_statements"]
    assert f["blockers"] and f["blockers"][0]["application_name"] == truth["blocker_app"]
    assert f["blockers"][0]["waiting"] >= 2
    assert f["pool_errors"] > 0


def test_verify_passes_then_fails_after_one_byte_changes(record, tmp_path):
    ok = forensics("verify", record)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("verified:")
    copy = tmp_path / record.parent.name / record.name
    shutil.copytree(record, copy)
    for p in copy.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    target = copy / "data" / "pg_activity.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    bad = forensics("verify", copy)
    assert bad.returncode == 1
    assert "changed: data/pg_activity.parquet" in bad.stdout.splitlines()


def test_a_second_run_never_overwrites(record, sandbox_params):
    out = record.parent.parent
    proc = forensics("run", sandbox_params["incident"], "--out", out, "--only", "api-errors", check=True)
    second = Path(proc.stdout.strip().splitlines()[-1])
    assert second != record and second.parent == record.parent
    manifest = json.loads((second / "manifest.json").read_text())
    first_digest = json.loads((record / "manifest.json").read_text())["digest"]
    assert manifest["previous_record_digest"] == first_digest
    assert [n["name"] for n in manifest["notebooks"]] == ["api-errors"]


def test_overview_timeline_and_postmortem_draft(record, findings, sandbox):
    f = findings["overview"]
    truth = sandbox.truth
    assert f["status"] == "ok", f
    assert abs(pd.Timestamp(f["onset"]) - truth["onset"]) <= pd.Timedelta(minutes=2)
    assert f["ongoing"] is True and f["recovered"] is None  # the scenario has not recovered by its end
    assert f["failed_requests"] > 1000
    kinds = [e["kind"] for e in f["timeline"]]
    assert "deployment" in kinds and "onset" in kinds
    assert kinds.index("deployment") < kinds.index("onset")
    # CloudWatch alarm history (DescribeAlarmHistory) on the timeline, at the time the scenario planted it
    planted = truth["alarms"]["scr-api-production-5xx-rate"]["time"]
    alarms = [e for e in f["timeline"] if e["kind"] == "alarm" and e["resource"] == "scr-api-production-5xx-rate"]
    assert alarms and pd.Timestamp(alarms[0]["time"]) == planted, f["timeline"]
    assert alarms[0]["source"] == "cloudwatch" and "OK to ALARM" in alarms[0]["message"]
    md = (record / "postmortem.md").read_text()
    assert md.startswith(f"# Incident Postmortem: {sandbox.incident['title']}")
    for heading in ("## What Happened", "## Timeline", "## Root Cause", "## Impact", "## Action Items"):
        assert heading in md
    assert truth["new_task_definition"] in md
    assert "QueuePool limit" in md
    assert "(html/api-errors.html)" in md and "(html/db-connections.html)" in md
    manifest = json.loads((record / "manifest.json").read_text())
    assert "postmortem.md" in {f["path"] for f in manifest["files"]}


def test_manifest_records_each_query_verbatim_with_its_parameters(record):
    """Queries as data: the manifest holds the query file's text as it is, its name, engine and values."""
    from forensics import queries

    manifest = json.loads((record / "manifest.json").read_text())
    by_name = {c["name"]: c for c in manifest["captures"]}
    for name in ("pg_activity", "pg_statements", "ai_calls", "failed_deliveries"):
        args = by_name[name]["args"]
        q = queries.load(args["query"])
        assert args["text"] == q.text and args["engine"] == "postgres" and by_name[name]["query"] == q.name
    assert set(by_name["ai_calls"]["args"]["parameters"]) == {"table", "start", "end"}
    # the plan pulled every capture once: one sidecar per name, pulled by the runner unless a notebook was first
    assert len(by_name) == len(manifest["captures"])
    assert sum(c["notebook"] == "runner" for c in manifest["captures"]) >= len(manifest["captures"]) // 2
