"""Runbook entries as data: every entry cites a real runbook section; evidence is weighed, timing is
checked (a cause must precede its effect), missing findings are unknown; a user's file adds entries."""

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from forensics import diagnosis
from forensics.errors import ParamsError
from forensics.params import load_environment

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"

#: A pool exhaustion after a deploy, with a Redis failover half an hour later.
FINDINGS = {
    "api-errors": {"status": "ok", "onset": "2026-11-23T10:05:00Z",
                   "suspected_change": {"time": "2026-11-23T10:00:00Z", "kind": "deployment", "resource": "c/api",
                                        "message": "api:42 PRIMARY"},
                   "top_error_signatures": ["GET <*> failed: sqlalchemy.exc.TimeoutError: QueuePool limit reached"]},
    "db-connections": {"status": "ok", "peak_connections": 40.0, "max_connections": 40, "idle_in_transaction": 8,
                       "pool_errors": 900, "saturated_at": "2026-11-23T10:04:00Z", "top_holder": "api",
                       "blockers": []},
    "cache-redis": {"status": "ok", "failover_events": [{"time": "2026-11-23T10:35:00Z", "message": "Failover"}],
                    "app_errors": {"count": 80, "first_seen": "2026-11-23T10:35:02Z"}},
}


def by_id(diag):
    return {h["id"]: h for h in diag["hypotheses"]}


def test_every_builtin_entry_cites_a_section_of_a_seed_runbook():
    if not SEEDS.is_dir():
        pytest.skip("shared/seeds is not beside this checkout")
    rb = diagnosis.load()
    assert len(rb.entries) >= 15
    for entry in rb.entries:
        for src in [entry["source"], *entry.get("also", [])]:
            text = (SEEDS / src["runbook"]).read_text()
            heading = src["section"].split(" (")[0]
            for part in heading.split(": "):
                assert part in text, (entry["id"], src)


def test_pool_exhaustion_after_deploy_is_primary_and_redis_is_concurrent_not_its_cause():
    diag = diagnosis.diagnose(FINDINGS)
    hyps = by_id(diag)
    assert diag["primary"] == "pool-exhaustion-after-deploy"
    top = hyps["pool-exhaustion-after-deploy"]
    assert top["rank"] == 1 and top["holds"] and top["timing"]["holds"] is True
    assert [s["step"] for s in top["timing"]["steps"]] == ["deployment", "connections at 90 % of max_connections",
                                                           "5xx onset"]
    pool = next(e for e in top["evidence_for"] if e["finding"] == "db-connections.pool_errors")
    assert (pool["value"], pool["notebook"], pool["html"]) == (900, "db-connections", "html/db-connections.html")
    assert top["source"] == {"runbook": "004_b9c89ee92470956a.txt",
                             "section": "Incident 4: Database Connection Pool Exhausted", "file": "entries.yaml"}
    assert "top holder api" in top["next_step"] and "c/api" in top["next_step"]
    assert "redis-failover" in diag["concurrent"] and hyps["redis-failover"]["role"] == "concurrent"
    as_cause = hyps["redis-transport-closed-5xx"]
    assert not as_cause["holds"] and "a cause must precede its effect" in as_cause["verdict"]
    assert hyps["pool-exhaustion-load"]["role"] == "alternative"


def test_redis_before_the_5xx_makes_it_a_cause_again():
    findings = {**FINDINGS, "cache-redis": {"failover_events": [{"time": "2026-11-23T10:01:00Z"}],
                                            "app_errors": {"count": 80, "first_seen": "2026-11-23T10:02:00Z"}}}
    hyp = by_id(diagnosis.diagnose(findings))["redis-transport-closed-5xx"]
    assert hyp["holds"] and hyp["timing"]["holds"] is True


def test_a_deploy_after_the_onset_refutes_the_chain():
    findings = {**FINDINGS, "db-connections": {**FINDINGS["db-connections"], "saturated_at": "2026-11-23T09:50:00Z"}}
    hyp = by_id(diagnosis.diagnose(findings))["pool-exhaustion-after-deploy"]
    assert not hyp["holds"] and hyp["verdict"].startswith("refuted: deployment")


def test_missing_findings_are_unknown_not_evidence():
    findings = {"api-errors": FINDINGS["api-errors"]}  # db-connections did not run
    diag = diagnosis.diagnose(findings)
    hyp = by_id(diag)["pool-exhaustion-after-deploy"]
    assert not hyp["holds"] and hyp["verdict"].startswith("not supported")
    assert "db-connections.pool_errors" in [e["finding"] for e in hyp["unknown"]]
    assert not any(e["finding"].startswith("db-connections") for e in hyp["evidence_against"])
    assert diag["primary"] != "pool-exhaustion-after-deploy"


def test_nothing_holds_on_a_quiet_record():
    diag = diagnosis.diagnose({"overview": {"status": "ok", "onset": None}})
    assert diag["primary"] is None and diag["concurrent"] == []
    assert all(h["role"] == "not holding" for h in diag["hypotheses"])


USER = textwrap.dedent("""\
    symptoms:
      - {id: cert-expiry, label: certificate about to expire}
    entries:
      - id: cert-renewal-stuck
        explains: cert-expiry
        cause: ACM renewal is stuck waiting for DNS validation.
        chain: [validation record missing, renewal pending, certificate expires]
        for:
          - says: a lot of pool errors (stand-in finding for the test)
            finding: db-connections.pool_errors
            holds: '"db-connections".pool_errors > `100`'
            required: true
        next_step: Re-add the validation CNAME.
        source: {runbook: our-runbook.md, section: "Certificate expiry"}
      - id: redis-failover
        explains: redis-errors
        cause: Our own wording of the failover.
        for:
          - says: Redis errors
            finding: cache-redis.app_errors.count
            holds: '"cache-redis".app_errors.count > `0`'
        next_step: Page the cache owner.
        source: {runbook: our-runbook.md, section: "Redis"}
""")


def test_a_user_file_adds_entries_and_replaces_a_builtin_by_id(tmp_path):
    path = tmp_path / "ours.yaml"
    path.write_text(USER)
    rb = diagnosis.load(path)
    diag = diagnosis.diagnose(FINDINGS, rb)
    hyps = by_id(diag)
    assert hyps["cert-renewal-stuck"]["holds"] and hyps["cert-renewal-stuck"]["source"]["file"] == "ours.yaml"
    assert hyps["redis-failover"]["next_step"] == "Page the cache owner."
    assert diag["runbooks"] == ["entries.yaml", "ours.yaml"]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["entries"][0].pop("source"), "entries[0]: 'source' is a required property"),
    (lambda d: d["entries"][0]["for"][0].update(holds="pool_errors >"), "entry cert-renewal-stuck: bad expression"),
    (lambda d: d["entries"][0].update(explains="nothing"), "explains unknown symptom 'nothing'"),
    (lambda d: d["entries"][0]["for"][0].update(weight="heavy"), "entries[0].for[0].weight: 'heavy' is not of type"),
])
def test_a_bad_user_file_is_one_line_naming_the_file_and_field(tmp_path, edit, message):
    data = yaml.safe_load(USER)
    edit(data)
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError) as err:
        diagnosis.load(path)
    text = str(err.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_the_environment_names_the_user_file_relative_to_itself(tmp_path):
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "ours.yaml").write_text(USER)
    env = tmp_path / "env.yaml"
    base = ("name: production\naws: {region: eu-west-1}\nalb: {load_balancer: app/a/1}\n"
            "ecs: {cluster: c, services: [s]}\nrds: {instance: db}\nlogs: {app: [/ecs/api]}\n")
    env.write_text(base + "diagnosis: {runbook_file: runbooks/ours.yaml}\n")
    loaded = load_environment(env)
    assert loaded["diagnosis"]["runbook_file"] == str(tmp_path / "runbooks" / "ours.yaml")
    diag = diagnosis.for_record(FINDINGS, loaded)
    assert "cert-renewal-stuck" in by_id(diag)
    env.write_text(base + "diagnosis: {runbook_file: runbooks/missing.yaml}\n")
    with pytest.raises(ParamsError, match=r"missing\.yaml: no such runbook file"):
        load_environment(env)


def test_a_runbook_file_gone_at_replay_is_reported_in_the_diagnosis():
    diag = diagnosis.for_record(FINDINGS, {"diagnosis": {"runbook_file": "/nonexistent/ours.yaml"}})
    assert re.search(r"ours\.yaml: no such runbook file", diag["error"]) and diag["hypotheses"] == []


def test_jmespath_helpers():
    f = diagnosis._Functions()
    assert f._func_ratio(36, 40) == 0.9 and f._func_ratio(1, 0) is None
    stops = {"OutOfMemoryError [exit 137]": 4, "Essential container in task exited [exit 1]": 2}
    assert f._func_tally(stops, "OutOfMemory") == 4 and f._func_tally(None, "x") is None
    assert f._func_share(stops, "exit 1]") == pytest.approx(1 / 3)
    assert f._func_minutes("2026-11-23T10:00:00Z", "2026-11-23T10:05:30Z") == 5.5


# ---- issue 21: mechanisms, not one scenario's shape ----------------------------------------------------------
# Written from the services' documentation: CloudTrail userIdentity.arn of an assumed role is
# arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION; RunTask sets a task's group to "family:NAME" (a service's
# tasks have "service:NAME"); ACM renews only certificates it issued (Type AMAZON_ISSUED), never IMPORTED
# ones; pg_stat_statements' mean_exec_time is in milliseconds.

ACCOUNT = "210987654321"
JOB = f"arn:aws:iam::{ACCOUNT}:user/nightly-export"


def _security(calls, principals=(), bursts=(), data_access=()):
    return {"security": {"sensitive_calls": list(calls), "principals": list(principals), "bursts": list(bursts),
                         "data_access": list(data_access)}}


def test_fold_principal_folds_sts_sessions_to_their_role_only():
    from forensics.runbook import fold_principal

    assert fold_principal(f"arn:aws:sts::{ACCOUNT}:assumed-role/etl-role/i-0abc123") == f"arn:aws:iam::{ACCOUNT}:role/etl-role"
    assert fold_principal(f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/r/s") == f"arn:aws-cn:iam::{ACCOUNT}:role/r"
    assert fold_principal(JOB) == JOB
    assert fold_principal("AWSService") == "AWSService"


def test_a_known_principal_used_from_a_new_address_to_create_a_key_and_read_secrets_is_primary():
    findings = _security(
        [{"principal": JOB, "event_name": "CreateAccessKey", "source_ip": "185.220.101.7", "calls": 1, "failed": 0,
          "new_principal": False, "new_ip": True},
         {"principal": JOB, "event_name": "GetSecretValue", "source_ip": "185.220.101.7", "calls": 31, "failed": 0,
          "new_principal": False, "new_ip": True}],
        principals=[{"principal": JOB, "calls": 1200, "new": False}],
        bursts=[{"principal": JOB, "event_name": "GetSecretValue", "calls": 31}],
        data_access=[{"principal": JOB, "bucket": "exports", "calls": 249, "burst": True, "new_principal": False}])
    diag = diagnosis.diagnose(findings)
    assert diag["primary"] == "known-principal-misused"
    hyp = by_id(diag)["known-principal-misused"]
    assert "nightly-export" in hyp["next_step"]
    assert not by_id(diag)["leaked-access-key"]["holds"]  # it needs a principal new to the baseline


def test_a_known_principal_from_a_new_address_without_keys_or_bulk_reads_is_no_incident():
    # A CI runner's new egress address reading one secret: documented-normal, not a leak.
    findings = _security([{"principal": JOB, "event_name": "GetSecretValue", "source_ip": "34.201.4.9", "calls": 1,
                           "failed": 0, "new_principal": False, "new_ip": True}],
                         principals=[{"principal": JOB, "calls": 40, "new": False}])
    assert diagnosis.diagnose(findings)["primary"] is None


def test_calls_refused_from_the_new_address_refute_the_misuse():
    findings = _security([{"principal": JOB, "event_name": "CreateAccessKey", "source_ip": "185.220.101.7", "calls": 4,
                           "failed": 4, "new_principal": False, "new_ip": True}],
                         principals=[{"principal": JOB, "calls": 40, "new": False}],
                         bursts=[{"principal": JOB, "event_name": "GetSecretValue", "calls": 12}])
    hyp = by_id(diagnosis.diagnose(findings))["known-principal-misused"]
    assert not hyp["holds"] and hyp["verdict"].startswith("refuted: the calls from new addresses were refused")


def test_a_new_session_of_a_known_role_is_not_a_new_principal():
    role = "etl-role"
    seen = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/i-0aaa"
    now = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/i-0bbb"
    findings = _security([{"principal": now, "event_name": "GetSecretValue", "source_ip": "203.0.113.50", "calls": 40,
                           "failed": 0, "new_principal": True, "new_ip": True}],
                         principals=[{"principal": seen, "calls": 300, "new": False}],
                         bursts=[{"principal": now, "event_name": "GetSecretValue", "calls": 40}])
    diag = diagnosis.diagnose(findings)
    hyps = by_id(diag)
    assert not hyps["leaked-access-key"]["holds"]
    assert "new session of a role seen in the baseline" in hyps["leaked-access-key"]["verdict"]
    assert diag["primary"] == "known-principal-misused"


WEBHOOK_QUEUE = {"queue-backlog": {"backlog_onset": {"webhooks": "2026-11-23T14:00:00Z"},
                                   "deliveries_by_status": {"failed": 40}}}


def test_webhook_timing_uses_the_delivery_tasks_and_the_webhook_queue():
    f = {"queue-backlog": {**WEBHOOK_QUEUE["queue-backlog"], "backlog_onset": {"celery": "2026-11-23T11:00:00Z",
                                                                               "webhooks": "2026-11-23T14:00:00Z"},
                           "failing_tasks": [
                               {"task": "app.reports.build", "failures": 0, "retries": 3, "exception": "SoftTimeLimitExceeded",
                                "first_seen": "2026-11-23T11:30:00Z"},
                               {"task": "app.webhooks.deliver", "failures": 90, "retries": 300, "exception": "httpx.ReadTimeout",
                                "first_seen": "2026-11-23T13:55:00Z"}]}}
    hyp = by_id(diagnosis.diagnose(f))["webhook-target-timeouts"]
    assert hyp["holds"] and hyp["timing"]["holds"] is True
    assert [s["time"] for s in hyp["timing"]["steps"]] == ["2026-11-23T13:55:00Z", "2026-11-23T14:00:00Z"]


def test_webhook_retries_hours_before_the_backlog_do_not_explain_it():
    # A worker deploy cut concurrency at 14:00; a few webhook timeouts were retried at 12:00.
    f = {"queue-backlog": {"backlog_onset": {"celery": "2026-11-23T14:00:00Z"}, "deliveries_by_status": {"delivered": 500},
                           "failing_tasks": [{"task": "app.webhooks.deliver", "failures": 0, "retries": 3,
                                              "exception": "httpx.ReadTimeout", "first_seen": "2026-11-23T12:00:00Z"}]}}
    diag = diagnosis.diagnose(f)
    assert not by_id(diag)["webhook-target-timeouts"]["holds"]
    assert "more than 45" in by_id(diag)["webhook-target-timeouts"]["verdict"]
    assert diag["primary"] == "worker-capacity"


def test_an_expired_imported_certificate_is_not_a_stuck_renewal():
    f = {"certificates": {"expiring": {"shop.example.org": -1.5},
                          "expiring_imported": [{"name": "shop.example.org", "certificate": "arn:aws:acm:eu-west-1:1:certificate/x",
                                                 "not_after": "2026-11-22T00:00:00Z"}],
                          "validation_pending": [], "dns_mismatches": [{"name": "shop.example.org"}]}}
    diag = diagnosis.diagnose(f)
    assert diag["primary"] == "imported-certificate-expiring"
    assert by_id(diag)["certificate-renewal-stuck"]["verdict"].startswith("refuted: every expiring certificate is imported")
    assert "import-certificate --certificate-arn arn:aws:acm:eu-west-1:1:certificate/x" in by_id(diag)[
        "imported-certificate-expiring"]["next_step"]
    issued = {"certificates": {**f["certificates"], "expiring_imported": [],
                               "validation_pending": [{"domain": "shop.example.org", "renewal_status": "PENDING_VALIDATION"}]}}
    assert diagnosis.diagnose(issued)["primary"] == "certificate-renewal-stuck"


def test_expiring_imported_reads_the_acm_type_of_the_served_certificate():
    import pandas as pd
    from forensics.analysis import certificates as ac

    certs = pd.DataFrame({"arn": ["arn:imp", "arn:acm"], "names": ["a.example.com", "b.example.com"],
                          "type": ["IMPORTED", "AMAZON_ISSUED"], "in_use_by": ["arn:alb", "arn:alb"],
                          "status": ["EXPIRED", "ISSUED"],
                          "not_after": pd.to_datetime(["2026-11-20", "2026-11-30"], utc=True)})
    out = ac.expiring_imported(certs, {"a.example.com": -3.0, "b.example.com": 7.0})
    assert out == [{"name": "a.example.com", "certificate": "arn:imp", "not_after": "2026-11-20T00:00:00Z"}]
    assert ac.expiring_imported(certs, {}) == []


def test_one_off_tasks_and_cloudtrail_changes_are_changes_and_the_latest_made_change_is_the_suspect():
    import pandas as pd
    from forensics.analysis import timeline as tl

    t0 = pd.Timestamp("2026-11-23T09:00:00Z")
    deploys = pd.DataFrame({"timestamp": [t0], "source": ["ecs"], "resource": ["prod/api"], "kind": ["deployment"],
                            "message": ["api:42"]})
    stopped = pd.DataFrame({"timestamp": [t0 + pd.Timedelta("40min")], "group": ["family:api-migrate"],
                            "task_definition": ["api-migrate:7"], "started_at": [t0 + pd.Timedelta("38min")]})
    service_task = stopped.assign(group="service:api")
    trail = pd.DataFrame({"timestamp": [t0 + pd.Timedelta("10min"), t0 + pd.Timedelta("12min"), t0 + pd.Timedelta("13min")],
                          "event_name": ["ModifyDBParameterGroup", "AuthorizeSecurityGroupIngress", "DescribeDBInstances"],
                          "principal": ["arn:aws:iam::1:user/dba"] * 3, "error_code": [None, "UnauthorizedOperation", None]})
    assert tl.one_off_tasks(service_task).empty
    changes = tl.merge(deploys, tl.one_off_tasks(stopped), tl.cloudtrail_changes(trail))
    assert changes["kind"].tolist() == ["deployment", "parameter-group-change", "task-run"]  # refused/read-only: none
    onset = t0 + pd.Timedelta("39min")
    assert tl.describe(tl.change_before(changes, onset))["message"] == "one-off task api-migrate:7"
    assert tl.change_before(changes, t0 + pd.Timedelta("11min"))["kind"] == "parameter-group-change"
    lam = pd.DataFrame({"timestamp": [t0], "event_name": ["UpdateFunctionCode"], "principal": ["ci"]})
    assert tl.cloudtrail_changes(lam)["kind"].tolist() == ["lambda-deploy"]


def test_regression_floors_a_sub_millisecond_single_call_is_not_a_regression():
    import pandas as pd
    from forensics.analysis import statements as st

    d = pd.DataFrame({"queryid": [1, 2, 3], "calls": [1, 400, 3], "mean_exec_time": [0.03, 45.0, 80.0],
                      "mean_exec_time_before": [0.006, 2.0, 4.0]})
    assert st.regressed(d)["queryid"].tolist() == [2]  # 1: 0.03 ms, one call; 3: three calls
    assert st.regressed(d, min_calls=1, min_mean_ms=0)["queryid"].tolist() == [2, 3, 1]
    noise = {"slow-queries": {"regressed": [{"queryid": 1, "query": "SELECT 1", "calls": 1, "mean_ms_before": 0.006,
                                             "mean_ms": 0.03, "ratio": 5.0}], "stats_reset_or_evicted": False}}
    assert diagnosis.diagnose(noise)["primary"] is None


def test_a_migration_task_before_a_regression_is_named_and_supports_it():
    f = {"api-errors": {"onset": "2026-11-23T09:40:00Z",
                        "suspected_change": {"time": "2026-11-23T09:39:00Z", "kind": "task-run", "resource": "family:api-migrate",
                                             "message": "one-off task api-migrate:7"},
                        "top_error_signatures": ["QueryCanceled: canceling statement due to statement timeout"]},
         "slow-queries": {"regressed": [{"queryid": 9, "query": "SELECT * FROM orders WHERE customer_id = $1", "calls": 900,
                                         "mean_ms_before": 1.2, "mean_ms": 340.0, "ratio": 283.0}]}}
    diag = diagnosis.diagnose(f)
    assert diag["primary"] == "statement-regression"
    hyp = by_id(diag)["statement-regression"]
    assert any(e["finding"] == "api-errors.suspected_change" for e in hyp["evidence_for"])
    assert "one-off task api-migrate:7" in hyp["next_step"]
