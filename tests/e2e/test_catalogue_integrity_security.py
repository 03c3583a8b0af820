"""End to end: `forensics run --only data-integrity --only security` on the session sandbox.

The data-integrity scenario breaks one tenant's audit chain with a row written from psql; the security
scenario plants a CreateAccessKey and a GetSecretValue burst by a principal unseen in the baseline,
from a new address. The findings must name them, the bearer token of the audit endpoints must appear
nowhere in the record, and no raw access key id may be written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]
AKID = re.compile(rb"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def test_data_integrity_finds_the_broken_link_and_the_writer(findings, sandbox):
    f = findings["data-integrity"]
    truth = sandbox.truth_for("data-integrity")
    assert f["status"] == "ok", f
    f = f.get("findings", f)
    assert f["chain_intact"] is False
    first = f["first_broken_event"]
    assert first["event_id"] == truth["tampered_event_id"] and first["tenant"] == truth["tampered_tenant"]
    assert first["actor"] == truth["tampered_actor"] and first["reason"].startswith("hash mismatch")
    assert abs(pd.Timestamp(first["ts"]) - truth["tampered_at"]) <= pd.Timedelta(seconds=1)
    assert len(first["before"]) == 2 and len(first["after"]) == 2
    assert [a["actor"] for a in f["non_service_actors"]] == [truth["tampered_actor"]]
    assert f["app_verify_chain"] == {t: t != truth["tampered_tenant"] for t in truth["tenants"]}


def test_security_finds_the_new_principal_ip_and_sensitive_calls(findings, sandbox):
    f = findings["security"]
    truth = sandbox.truth_for("security")
    assert f["status"] == "ok", f
    f = f.get("findings", f)
    principal = next(p for p in f["principals"] if p["principal"] == truth["principal"])
    assert principal["new"] is True and principal["source_ips"] == [truth["source_ip"]]
    ip = next(i for i in f["new_source_ips"] if i["source_ip"] == truth["source_ip"])
    assert ip["principals"] == [truth["principal"]]
    calls = {(c["event_name"], c["principal"], c["source_ip"]): c for c in f["sensitive_calls"]}
    create = calls[("CreateAccessKey", truth["principal"], truth["source_ip"])]
    assert create["new_principal"] and create["new_ip"]
    assert abs(pd.Timestamp(create["first_seen"]) - truth["create_access_key_at"]) <= pd.Timedelta(seconds=1)
    burst = calls[("GetSecretValue", truth["principal"], truth["source_ip"])]
    assert burst["calls"] == truth["get_secret_value_burst"]
    # the planted calls come first: new actors are listed before known ones
    assert {f["sensitive_calls"][0]["event_name"], f["sensitive_calls"][1]["event_name"]} == {
        "GetSecretValue", "CreateAccessKey"}


def _all_bytes(record: Path):
    for p in record.rglob("*"):
        if p.is_file():
            yield p, p.read_bytes()
    for p in record.rglob("*.parquet"):  # compressed pages: read the values too
        frame = pd.read_parquet(p)
        yield p, frame.to_csv(index=False).encode()


def test_the_audit_token_and_raw_access_keys_appear_nowhere(record, sandbox):
    from forensics_sandbox.scenarios import security

    token = os.environ[sandbox.truth_for("data-integrity")["token_env"]].encode()
    # every access key id CloudTrail served: the planted one and the real dataset's
    keys = {sandbox.truth_for("security")["leaked_key"].encode()} | {
        r["userIdentity"]["accessKeyId"].encode() for r in security.load_records()
        if (r.get("userIdentity") or {}).get("accessKeyId")}
    assert len(keys) > 1
    for path, data in _all_bytes(record):
        assert token not in data, f"the audit token is in {path}"
        found = [k for k in keys if k in data]
        assert not found, f"raw access key ids {found} are in {path}"
        if path.parent.name == "data":
            assert not AKID.search(data), f"an access key id is in {path}: {AKID.search(data).group(0)!r}"
    ct = pd.read_parquet(record / "data" / "cloudtrail_events.parquet")
    assert ct["access_key_id"].dropna().str.startswith("[REDACTED:aws-access-key-id:").all()
    manifest = json.loads((record / "manifest.json").read_text())
    audit = next(c for c in manifest["captures"] if c["name"] == "audit_events")
    assert audit["args"]["token_env"] == "FORENSICS_SANDBOX_AUDIT_TOKEN" and audit["error"] is None


def test_verify_passes(record):
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "verify", str(record)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_security_ranks_the_planted_actor_first_with_its_whole_story(findings, sandbox):
    f = findings["security"]
    truth = sandbox.truth_for("security")
    f = f.get("findings", f)
    top = f["suspicious_actors"][0]
    assert top["story"].startswith(f"{truth['principal']} | {truth['source_ip']} |"), f["suspicious_actors"][:3]
    story = next(s for s in f["actor_stories"] if s["story"] == top["story"])
    calls = {c["event_name"]: c for c in story["calls"]}
    assert calls["GetSecretValue"]["calls"] == truth["get_secret_value_burst"] and "CreateAccessKey" in calls
    assert story["decisive"] and any("CreateAccessKey" in d or "GetSecretValue" in d for d in story["decisive"])
    flagged = [c for c in f["flagged_calls"] if c["story"] == top["story"]]
    assert sum(1 for c in flagged if c["event_name"] == "GetSecretValue") == truth["get_secret_value_burst"]
    assert f["skipped_rules"] == [] and isinstance(f["rule_hits"], list)
    assert any(e["kind"] == "security" for e in findings["overview"].get("findings", findings["overview"])["timeline"])
