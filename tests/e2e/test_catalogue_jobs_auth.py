"""End to end: the session's `forensics run` of every notebook on the sandbox that plays every scenario finds
what the scheduled-jobs and auth-failures scenarios planted, and a job going silent reaches the overview's
timeline and the postmortem draft."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]
SECOND = pd.Timedelta(seconds=1)


def _ts(value) -> pd.Timestamp:
    return pd.Timestamp(value)


def test_scheduled_jobs_finds_the_silent_sweep_the_failing_rule_and_the_late_run(findings, sandbox):
    f, truth = findings["scheduled-jobs"], sandbox.truth_for("scheduled-jobs")
    assert f["status"] == "ok" and not f["unknown"], f
    silent = {s["job"]: s for s in f["silent_jobs"]}
    assert set(silent) == set(truth["silent"])
    for job, last in truth["silent"].items():
        assert abs(_ts(silent[job]["last_seen"]) - last) <= SECOND, job
        assert silent[job]["expected_period_min"] == truth["periods_min"][job]
    assert [r["job"] for r in f["late_runs"]] == [truth["late_run"]["job"]]
    assert abs(_ts(f["late_runs"][0]["run"]) - truth["late_run"]["run"]) <= SECOND
    (failed,) = f["failed_invocations"]
    assert failed["name"] == truth["failed_rule"] and failed["failed"] == truth["failed_invocations"]
    assert _ts(failed["first_failed"]) == truth["first_failed"]
    assert [d["name"] for d in f["disabled_schedules"]] == [truth["disabled_rule"]]


def test_a_silent_job_is_on_the_overview_timeline_and_in_the_postmortem(record, findings, sandbox):
    truth = sandbox.truth_for("scheduled-jobs")
    timeline = findings["overview"]["timeline"]
    silent = [e for e in timeline if e["kind"] == "job-silent"]
    assert {e["resource"] for e in silent} == set(truth["silent"])
    assert any(e["kind"] == "job-failed" and e["resource"] == truth["failed_rule"] for e in timeline)
    assert "cert-sweep went silent" in (record / "postmortem.md").read_text()


def test_auth_failures_finds_the_onset_the_new_client_and_its_errors(findings, sandbox):
    f, truth = findings["auth-failures"], sandbox.truth_for("auth-failures")
    assert f["status"] == "ok" and not f["unknown"], f
    assert abs(_ts(f["onset"]) - truth["onset"]) <= pd.Timedelta(minutes=1)
    top = f["by_client_ip"][0]
    assert top["client_ip"] == truth["client_ip"] and top["auth_failures"] == truth["attack_requests"]
    assert top["user_agents"] == [truth["user_agent"]] and top["new"] is True
    new = [c["client_ip"] for c in f["new_clients"]]
    assert new[0] == truth["client_ip"] and not set(new) & set(truth["known_clients"])
    assert f["by_user_agent"][0]["user_agent"] == truth["user_agent"] and f["by_user_agent"][0]["tool"] is True
    errors = {e["signature"]: e for e in f["top_auth_errors"]}
    assert errors["bad_credentials"]["events"] == truth["bad_password"]
    assert errors["bad_signature"]["events"] == truth["bad_signature"]
    assert errors["bad_credentials"]["clients"] == [truth["client_ip"]]
    pg = errors["postgres_auth_failure"]
    assert pg["events"] == truth["pg_failures"] and pg["clients"] == [truth["client_ip"]]
    assert f["postgres_auth_failures"]["authentication_failure"]["entries"] == truth["pg_failures"]
