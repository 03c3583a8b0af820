"""End to end: `forensics run --only integrations --only overview` on the session sandbox (every scenario in
one sandbox) finds what the integrations scenario planted: HubSpot OAuth tokens expiring one organisation at a
time (the class, the first organisation, the first failure's time), the background 429s, the connections that
stopped syncing, and the first failure on the overview's timeline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]


@pytest.fixture(scope="module")
def record(sandbox_params, tmp_path_factory):
    out = tmp_path_factory.mktemp("evidence-integrations")
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "run", str(sandbox_params["incident"]),
                           "--only", "integrations", "--only", "overview", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_dir()
    return path


@pytest.fixture(scope="module")
def findings(record):
    return json.loads((record / "findings.json").read_text())


def test_integrations_finds_oauth_expiry_its_first_org_and_time(findings, sandbox):
    f, truth = findings["integrations"], sandbox.truth_for("integrations")
    assert f["status"] == "ok", f
    assert f["missing_columns"] == {"sync_logs": [], "connections": []}
    classes = {c["class"]: c for c in f["error_classes"]}
    assert set(classes) == {"oauth-expired", "rate-limited", "invalid-field"}
    oauth = classes["oauth-expired"]
    assert oauth["first_org"] == truth["oauth_first_org"] and oauth["first_provider"] == "hubspot"
    assert abs(pd.Timestamp(oauth["first_failure"]) - truth["oauth_first_failure"]) < pd.Timedelta(seconds=1)
    assert sorted(oauth["orgs"]) == sorted(truth["oauth_orgs"])
    assert oauth["failures"] == truth["oauth_failures"]
    assert f["first_failure"]["oauth-expired"] == oauth["first_failure"]
    assert f["top_error_class"]["class"] == "oauth-expired"
    rate = classes["rate-limited"]
    assert rate["orgs"] == [truth["rate_limited_org"]] and rate["failures"] == truth["rate_limited_failures"]
    assert f["failed_syncs"] == truth["failed_syncs"]
    assert sorted(s["org_id"] for s in f["stale_connections"]) == sorted(truth["stale_orgs"])
    top = f["failures_by_provider_direction_org"][0]
    assert top["provider"] == "hubspot" and top["org_id"] == truth["oauth_first_org"]


def test_first_oauth_failure_is_on_the_overview_timeline(findings, sandbox):
    truth = sandbox.truth_for("integrations")
    crm = [e for e in findings["overview"]["timeline"] if e["kind"] == "crm-sync-failed"]
    oauth = [e for e in crm if "OAuth" in e["message"]]
    assert len(oauth) == 1 and truth["oauth_first_org"] in oauth[0]["resource"]
    assert abs(pd.Timestamp(oauth[0]["time"]) - truth["oauth_first_failure"]) < pd.Timedelta(seconds=1)


def test_the_diagnosis_names_oauth_expiry_for_crm_sync_errors(findings, sandbox):
    hyps = {h["id"]: h for h in findings["diagnosis"]["hypotheses"]}
    assert hyps["crm-oauth-expired"]["holds"] and not hyps["crm-encryption-key-changed"]["holds"]
    assert sandbox.truth_for("integrations")["oauth_first_org"] in hyps["crm-oauth-expired"]["next_step"]
