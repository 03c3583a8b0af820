"""The CRM sync runbook entries (001 §3h) against integrations findings: OAuth expiry vs a changed ENCRYPTION_KEY."""

from __future__ import annotations

from forensics import diagnosis


def _classes(*classes):
    return [{"class": c, "label": c, "failures": n, "first_failure": "2026-05-30T10:05:00Z", "first_org": org,
             "orgs": orgs, "providers": ["hubspot"]} for c, n, org, orgs in classes]


def test_oauth_expiry_is_the_diagnosis_with_its_org_in_the_next_step():
    classes = _classes(("rate-limited", 20, "busy", ["busy"]), ("oauth-expired", 90, "org-a", ["org-a", "org-b"]))
    diag = diagnosis.diagnose({"integrations": {"error_classes": classes, "top_error_class": classes[1],
                                                "stale_connections": [{"org_id": "org-a"}]}})
    hyps = {h["id"]: h for h in diag["hypotheses"]}
    assert diag["primary"] == "crm-oauth-expired"
    assert hyps["crm-oauth-expired"]["holds"] and not hyps["crm-encryption-key-changed"]["holds"]
    assert "org-a" in hyps["crm-oauth-expired"]["next_step"] and "re-authenticate" in hyps["crm-oauth-expired"]["next_step"]


def test_decryption_failures_point_at_the_encryption_key():
    classes = _classes(("decryption-failed", 300, "org-a", ["org-a", "org-b", "org-c"]))
    diag = diagnosis.diagnose({"integrations": {"error_classes": classes, "top_error_class": classes[0],
                                                "stale_connections": []}})
    hyps = {h["id"]: h for h in diag["hypotheses"]}
    assert diag["primary"] == "crm-encryption-key-changed" and not hyps["crm-oauth-expired"]["holds"]
    assert "ENCRYPTION_KEY" in hyps["crm-encryption-key-changed"]["next_step"]
