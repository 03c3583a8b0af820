"""End to end: the session's `forensics run` of every notebook over the sandbox that plays every scenario
finds what the backups and certificates scenarios planted, and the overview's timeline shows their events."""

from __future__ import annotations

import json

import pytest

from forensics import contracts

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]
NOTEBOOKS = ("backups", "certificates")


def test_backups_finds_the_failed_backups_the_restore_point_and_the_retention_errors(findings, sandbox):
    f, truth = findings["backups"], sandbox.truth_for("backups")
    assert f["status"] == "ok" and f["unknown"] == [], f
    failed = f["failed_backups"]
    assert len(failed) == truth["failed_backups"]
    assert sorted(x["time"] for x in failed if x["source"] == "app") == truth["failed_dump_times"]
    assert sum(x["source"] == "backup" for x in failed) == len(truth["failed_job_ids"])
    assert all("Insufficient privileges" in x["message"] for x in failed if x["source"] == "backup")
    assert f["last_good_snapshot"]["snapshot_id"] == truth["last_good_snapshot"]
    assert f["snapshot_age_hours"] == pytest.approx(truth["snapshot_age_hours"], abs=0.1)
    assert f["backup_stale"] is False
    assert [(s["snapshot_id"], s["status"], s["progress"]) for s in f["snapshots_not_ready"]] == [
        (truth["pre_migration_snapshot"], "creating", truth["pre_migration_progress"])]
    [retention] = f["retention_errors"]
    assert retention["example"] == truth["retention_error"] and retention["count"] == truth["retention_failures"]
    assert f["last_dump"]["key"] == truth["last_dump"]
    assert f["app_jobs"]["backup_database_task"]["last_success"] is None


def test_certificates_finds_what_expires_what_waits_where_dns_disagrees_and_the_edge_peak(findings, sandbox):
    f, truth = findings["certificates"], sandbox.truth_for("certificates")
    assert f["status"] == "ok" and f["unknown"] == [], f
    assert f["expiring"].keys() == truth["expiring"].keys()
    for name, days in truth["expiring"].items():
        assert f["expiring"][name] == pytest.approx(days, abs=0.01)
    assert sorted({p["domain"] for p in f["validation_pending"]}) == truth["validation_pending"]
    assert sorted((m["domain"], m["problem"]) for m in f["dns_mismatches"]) == [tuple(m) for m in truth["dns_mismatches"]]
    peak = f["edge_error_rate_peak"]
    assert {k: peak[k] for k in ("distribution", "series", "peak_pct", "at")} == truth["edge_peak"]


def test_the_overview_timeline_shows_the_backup_failure_the_unfinished_snapshot_and_the_expired_certificate(
        findings, sandbox):
    backups, certs = sandbox.truth_for("backups"), sandbox.truth_for("certificates")
    seen = {(e["kind"], e["resource"], e["time"]) for e in findings["overview"]["timeline"]}
    assert (contracts.BACKUP_FAILED, backups["instance"], backups["on_demand_failed_at"]) in seen
    assert (contracts.BACKUP, backups["pre_migration_snapshot"], backups["pre_migration_at"]) in seen
    assert (contracts.CERTIFICATE_EXPIRY, certs["expired_in_window"], certs["expired_at"]) in seen


def test_record_holds_the_backup_and_certificate_captures(record):
    manifest = json.loads((record / "manifest.json").read_text())
    caps = {c["name"]: c for c in manifest["captures"]}
    for name in ("rds_snapshots", "backup_jobs", "rds_backup_events", "backup_job_logs", "backup_objects",
                 "acm_certificates", "route53_records", "cloudfront_distributions", "cloudfront_edge_metrics"):
        assert name in caps and caps[name]["error"] is None and caps[name]["rows"] > 0, caps.get(name)
