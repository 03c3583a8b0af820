"""End to end: the evidence real incidents leave outside CloudWatch, in the session's catalogue record and
in a security-only environment.

- security reads the trail from its S3 bucket (management and data events): the leaked key's bulk
  GetObject read, which LookupEvents never shows, is a data-access burst by a new principal;
- api-errors names the failing endpoint from the ALB access logs in S3 (DuckDB over the window's files);
- db-connections reports the connection refusals from PostgreSQL's own log (RDS export in CloudWatch Logs);
- an environment with only name, aws and cloudtrail runs the security notebook and skips the others,
  saying which section each needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]


def test_security_sees_data_events_from_the_trail_bucket(findings, record, sandbox):
    truth = sandbox.truth_for("security")
    f = findings["security"]
    assert f["status"] == "ok" and "data_access" not in f["unknown"], f
    burst = next(a for a in f["data_access"] if a["bucket"] == truth["exfil_bucket"] and a["burst"])
    assert truth["principal"].endswith(burst["principal"])  # shortened to user/<name> in findings
    assert burst["event_name"] == "GetObject" and burst["calls"] == truth["exfil_objects"]
    assert burst["new_principal"] is True
    # the export worker reads the same bucket all day: steady, never a burst
    assert not any(a["burst"] and "scr-export-worker" in a["principal"] for a in f["data_access"])
    manifest = json.loads((record / "manifest.json").read_text())
    events = next(c for c in manifest["captures"] if c["name"] == "cloudtrail_events")
    assert events["args"]["api"] == "s3:ListObjectsV2+GetObject" and events["error"] is None
    data_access = next(c for c in manifest["captures"] if c["name"] == "cloudtrail_data_access")
    assert data_access["args"]["engine"] == "duckdb" and data_access["rows"] >= 2


def test_api_errors_names_the_failing_endpoint_from_access_logs(findings, record, sandbox):
    truth = sandbox.truth_for("pool-exhaustion")
    f = findings["api-errors"]
    assert f["failing_endpoints"][0]["endpoint"] == truth["failing_endpoint"], f["failing_endpoints"]
    top = f["failing_endpoints"][0]
    assert top["errors_5xx"] > 0 and top["p95"] > 1.0  # the orders endpoint waits seconds for a connection
    assert {t["target"].split(":")[0] for t in f["failing_targets"]}  # the targets that answered 500
    endpoints = pd.read_parquet(record / "data" / "alb_endpoints.parquet")
    healthy = endpoints[endpoints["endpoint"] == "GET /api/v1/catalog/items/{n}"].iloc[0]
    assert healthy["errors_5xx"] == 0 and healthy["p95"] < 1.0


def test_db_connections_reports_refusals_from_the_postgresql_log(findings, sandbox):
    truth = sandbox.truth_for("pool-exhaustion")
    errors = findings["db-connections"]["connection_errors"]
    assert errors["connection_exhaustion"]["entries"] == truth["pg_connection_refusals"]
    assert pd.Timestamp(errors["connection_exhaustion"]["first_seen"]) >= truth["onset"]
    assert "remaining connection slots" in errors["connection_exhaustion"]["example"]


def test_a_security_only_environment_runs_security_and_skips_the_rest(sandbox, sandbox_params, tmp_path):
    env = yaml.safe_load(Path(sandbox_params["environment"]).read_text())
    only = {"name": "security-only", "aws": env["aws"],
            "cloudtrail": {"bucket": env["cloudtrail"]["bucket"], "prefix": env["cloudtrail"]["prefix"]}}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(only))
    incident = yaml.safe_load(Path(sandbox_params["incident"]).read_text())
    incident.update(environment=str(tmp_path / "env.yaml"), notebooks=["security", "api-errors", "db-connections"])
    (tmp_path / "incident.yaml").write_text(yaml.safe_dump(incident))
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "run", str(tmp_path / "incident.yaml"), "--out",
                           str(tmp_path / "out"), "--jobs", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skip   api-errors: the environment has no alb or ecs or logs section" in proc.stdout + proc.stderr
    record = Path(proc.stdout.strip().splitlines()[-1])
    findings = json.loads((record / "findings.json").read_text())
    assert findings["api-errors"]["status"] == "skipped" and "alb" in findings["api-errors"]["reason"]
    assert findings["db-connections"]["status"] == "skipped"
    sec = findings["security"]
    truth = sandbox.truth_for("security")
    assert sec["status"] == "ok" and not sec["unknown"], sec
    assert any(p["principal"] == truth["principal"] and p["new"] for p in sec["principals"])
    assert any(ip["source_ip"] == truth["source_ip"] for ip in sec["new_source_ips"])
    assert any(c["event_name"] == "CreateAccessKey" for c in sec["sensitive_calls"])
    assert any(a["burst"] and a["calls"] == truth["exfil_objects"] for a in sec["data_access"])
    verify = subprocess.run([sys.executable, "-m", "forensics.cli", "verify", str(record)], capture_output=True,
                            text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
