"""A scenario bank for the diagnosis: incidents generated as findings.json-shaped inputs from how AWS and
PostgreSQL document their behaviour, each on its own platform (names, Region, account, timings, noise).

Every generator takes a ``random.Random`` and returns ``(findings, expected_primary)``; healthy windows
expect ``None``. The values follow the services' documented shapes, not this project's sandbox:

- ECS: a stopped task's ``stoppedReason`` ("Essential container in task exited", "OutOfMemoryError:
  Container killed due to memory usage", "CannotPullContainerError", "ResourceInitializationError");
  RunTask sets a task's ``group`` to ``family:<name>``, services to ``service:<name>``.
- CloudTrail: ``userIdentity.arn`` of an assumed role is ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``.
- RDS event messages ("The free storage capacity for DB instance ... is low"); ElastiCache's
  "Failover from primary node ... to replica node ... completed".
- ACM certificate ``Type`` IMPORTED / AMAZON_ISSUED, ``RenewalStatus`` PENDING_VALIDATION.
- PostgreSQL: ``pg_stat_activity.state`` "idle in transaction", pg_stat_statements mean times.

:func:`bank` gives the tune part and the held-out part: both are fixed by :data:`SPLIT_SEED` (drawn
before any result was looked at): each mechanism has one incident in each part, from different seeds.
"""

from __future__ import annotations

import random
import string
from datetime import datetime, timedelta, timezone

SPLIT_SEED = 20261207
REGIONS = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2", "sa-east-1", "ca-central-1", "us-west-2",
           "ap-northeast-1", "eu-north-1", "af-south-1"]
WORDS = ["atlas", "bramble", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "kestrel",
         "lumen", "meadow", "nimbus", "onyx", "pilot", "quartz", "raven", "sable", "tundra", "umber", "vertex"]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Platform:
    """One made-up platform: its names, Region, account, and the incident's onset."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.region = rng.choice(REGIONS)
        self.account = "".join(rng.choice(string.digits) for _ in range(12))
        self.app = rng.choice(WORDS) + "-" + rng.choice(["api", "web", "core", "svc"])
        self.cluster = rng.choice(WORDS) + "-" + rng.choice(["prod", "live", "main"])
        day = datetime(2026, rng.randint(1, 11), rng.randint(1, 28), tzinfo=timezone.utc)
        self.onset = day + timedelta(hours=rng.randint(0, 22), minutes=rng.randint(0, 59))

    def at(self, minutes: float) -> str:
        return _iso(self.onset + timedelta(minutes=minutes))

    def ip(self) -> str:
        r = self.rng
        return f"{r.choice([45, 91, 103, 185, 198, 203])}.{r.randint(1, 254)}.{r.randint(1, 254)}.{r.randint(1, 254)}"

    def user(self, name: str) -> str:
        return f"arn:aws:iam::{self.account}:user/{name}"

    def session(self, role: str) -> str:
        sid = "".join(self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(10))
        return f"arn:aws:sts::{self.account}:assumed-role/{role}/{sid}"

    def change(self, kind: str, minutes_before: float, message: str) -> dict:
        return {"time": self.at(-minutes_before), "source": "ecs" if kind in ("deployment", "task-run") else "cloudtrail",
                "resource": f"{self.cluster}/{self.app}", "kind": kind, "message": message}


# ---- noise every window may carry: documented-normal behaviour that is not an incident ----------------------

def noise(p: Platform, findings: dict) -> dict:
    r = p.rng
    known_ip = f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
    ci_role = r.choice(WORDS) + "-deployer"
    sec = findings.setdefault("security", {})
    sec.setdefault("principals", []).extend([
        {"principal": f"arn:aws:iam::{p.account}:role/{ci_role}", "calls": r.randint(50, 500), "new": False},
        {"principal": p.user(r.choice(WORDS) + "-export"), "calls": r.randint(20, 200), "new": False}])
    sec.setdefault("sensitive_calls", []).extend([
        # a new session of a role the baseline knows, from a known address (every CI run is a new session)
        {"principal": p.session(ci_role), "event_name": "GetSecretValue", "source_ip": known_ip,
         "calls": r.randint(1, 4), "failed": 0, "new_principal": True, "new_ip": False},
    ])
    sec.setdefault("bursts", [])
    sec.setdefault("data_access", [])
    slow = findings.setdefault("slow-queries", {})
    # a cheap statement "5x slower" from one call: below the floors
    slow.setdefault("regressed", []).append(
        {"queryid": r.randint(10**6, 10**9), "query": "SELECT 1", "calls": 1, "mean_ms_before": 0.006,
         "mean_ms": 0.03, "ratio": 5.0, "excess_ms": 0.024})
    slow.setdefault("stats_reset_or_evicted", False)
    slow.setdefault("blockers", [])
    q = findings.setdefault("queue-backlog", {})
    q.setdefault("backlog_onset", {})
    q.setdefault("failing_tasks", []).append(
        {"task": f"{p.app}.tasks.reports.build", "failures": 0, "retries": r.randint(1, 6),
         "exception": "SoftTimeLimitExceeded", "first_seen": p.at(-r.randint(90, 180))})
    findings.setdefault("certificates", {}).setdefault("expiring", {})
    findings["certificates"].setdefault("expiring_imported", [])
    findings["certificates"].setdefault("validation_pending", [])
    findings.setdefault("api-errors", {}).setdefault("onset", None)
    findings.setdefault("db-connections", {}).setdefault("max_connections", r.choice([100, 200, 400, 800]))
    findings["db-connections"].setdefault("peak_connections", findings["db-connections"]["max_connections"] * r.uniform(0.1, 0.4))
    findings["db-connections"].setdefault("pool_errors", 0)
    findings["db-connections"].setdefault("blockers", [])
    findings.setdefault("scheduled-jobs", {}).setdefault("silent_jobs", [])
    findings.setdefault("backups", {}).setdefault("failed_backups", [])
    return findings


# ---- incidents ------------------------------------------------------------------------------------------------

def _api(p: Platform, change: dict | None, signatures: list[str]) -> dict:
    return {"onset": p.at(0), "suspected_change": change, "top_error_signatures": signatures,
            "error_rate_peak": p.rng.uniform(0.05, 0.6)}


def pool_after_deploy(p):
    mx = p.rng.choice([100, 200, 500])
    f = {"api-errors": _api(p, p.change("deployment", p.rng.randint(3, 25), f"{p.app}:{p.rng.randint(10, 300)} PRIMARY"),
                            ["GET <*> 500: sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached"]),
         "db-connections": {"peak_connections": float(mx - p.rng.randint(0, 3)), "max_connections": mx,
                            "idle_in_transaction": p.rng.randint(5, 60), "pool_errors": p.rng.randint(50, 5000),
                            "saturated_at": p.at(-1), "top_holder": p.app, "blockers": []}}
    return f, "pool-exhaustion-after-deploy"


def lambda_code_error(p):
    exc = p.rng.choice(["KeyError: 'tenant_id'", "AttributeError: 'NoneType' object has no attribute 'id'",
                        "TypeError: unsupported operand"])
    f = {"api-errors": _api(p, p.change("lambda-deploy", p.rng.randint(1, 15), "UpdateFunctionCode by ci"),
                            [f"POST <*> 502: {exc}"])}
    return f, "bad-deploy-code-error"


def redis_failover(p):
    t = p.rng.randint(1, 10)
    f = {"cache-redis": {"failover_events": [{"time": p.at(0), "message": f"Failover from primary node {p.app}-001 to replica node {p.app}-002 completed"}],
                         "app_errors": {"count": p.rng.randint(20, 900), "first_seen": p.at(t / 10)}}}
    return f, "redis-failover"


def deploy_oom(p):
    n = p.rng.randint(4, 30)
    f = {"ecs-deploy": {"failed_deployment": {"failed_tasks": n, "created_at": p.at(-5)},
                        "stop_reasons": {"OutOfMemoryError: Container killed due to memory usage": n - 1,
                                         "Scaling activity initiated by deployment": 1},
                        "rollback_to": f"{p.app}:{p.rng.randint(10, 99)}"}}
    return f, "deploy-out-of-memory"


def deploy_startup(p):
    n = p.rng.randint(3, 20)
    reason = p.rng.choice(["Essential container in task exited [exit 1]", "CannotPullContainerError: pull image manifest",
                           "ResourceInitializationError: unable to pull secrets"])
    f = {"ecs-deploy": {"failed_deployment": {"failed_tasks": n, "created_at": p.at(-3)},
                        "stop_reasons": {reason: n}, "rollback_to": None}}
    return f, "deploy-startup-error"


def migration_task_regression(p):
    mean_before = p.rng.uniform(0.5, 4)
    ratio = p.rng.uniform(12, 400)
    f = {"slow-queries": {"regressed": [{"queryid": p.rng.randint(10**6, 10**9),
                                         "query": "SELECT * FROM orders WHERE customer_id = $1", "calls": p.rng.randint(200, 9000),
                                         "mean_ms_before": mean_before, "mean_ms": mean_before * ratio, "ratio": ratio,
                                         "excess_ms": 1e5}],
                          "stats_reset_or_evicted": False}}
    if p.rng.random() < 0.5:  # the regression shows as API errors too; the migration task ran just before
        f["api-errors"] = _api(p, p.change("task-run", p.rng.randint(1, 5), f"one-off task {p.app}-migrate:{p.rng.randint(2, 80)}"),
                               ["psycopg2.errors.QueryCanceled: canceling statement due to statement timeout"])
    return f, "statement-regression"


def storage_filling(p):
    f = {"db-health": {"storage_hours_to_full": p.rng.uniform(2, 30),
                       "rds_events": [{"message": f"The free storage capacity for DB instance {p.app}-db is low at 4% of the provisioned storage"}]}}
    return f, "storage-filling"


def replica_lag(p):
    f = {"db-health": {"replica_lag_peak_s": p.rng.uniform(90, 3000), "storage": {"rate_gib_per_hour": -p.rng.uniform(0.5, 8)},
                       "storage_hours_to_full": p.rng.uniform(200, 2000)}}
    return f, "replica-lag-heavy-writes"


def webhook_timeouts(p):
    f = {"queue-backlog": {"backlog_onset": {"webhooks": p.at(0), "default": None} if p.rng.random() < 0.5 else {"webhooks": p.at(0)},
                           "failing_tasks": [{"task": f"{p.app}.webhooks.deliver", "failures": p.rng.randint(20, 800),
                                              "retries": p.rng.randint(50, 2000),
                                              "exception": p.rng.choice(["httpx.ReadTimeout", "httpx.ConnectError"]),
                                              "first_seen": p.at(-p.rng.randint(1, 15))}],
                           "deliveries_by_status": {"failed": p.rng.randint(10, 500), "delivered": p.rng.randint(0, 50)}}}
    f["queue-backlog"]["backlog_onset"] = {k: v for k, v in f["queue-backlog"]["backlog_onset"].items() if v}
    return f, "webhook-target-timeouts"


def worker_concurrency_cut(p):
    # A worker deploy cut concurrency; unrelated webhook retries two hours earlier (the trap).
    f = {"queue-backlog": {"backlog_onset": {p.rng.choice(["celery", "default", "reports"]): p.at(0)},
                           "failing_tasks": [{"task": f"{p.app}.webhooks.deliver", "failures": 0, "retries": p.rng.randint(1, 5),
                                              "exception": "httpx.ReadTimeout", "first_seen": p.at(-p.rng.randint(100, 160))}],
                           "deliveries_by_status": {"delivered": p.rng.randint(100, 900)}}}
    return f, "worker-capacity"


def llm_fallback(p):
    before = p.rng.uniform(0.0005, 0.003)
    f = {"ai-cost": {"model_shift": {"from": "small-model", "to": "large-model", "cost_per_call_before": before,
                                     "cost_per_call_after": before * p.rng.uniform(12, 60)},
                     "provider_errors": {"429": p.rng.randint(10, 900)}, "orgs_over_budget": []}}
    return f, "llm-provider-fallback"


def audit_manual_write(p):
    f = {"data-integrity": {"chain_intact": False,
                            "non_service_actors": [{"actor": "postgres", "first_seen": p.at(-2)}],
                            "first_broken_event": {"ts": p.at(0), "tenant": p.rng.choice(WORDS), "event_id": p.rng.randint(1, 10**6)},
                            "app_verify_chain": {"t1": False}}}
    return f, "audit-write-outside-service"


def leaked_new_principal(p):
    ip = p.ip()
    who = p.user(p.rng.choice(WORDS) + "-tmp")
    f = {"security": {"principals": [{"principal": who, "calls": 300, "new": True}],
                      "sensitive_calls": [
                          {"principal": who, "event_name": "CreateAccessKey", "source_ip": ip, "calls": 1, "failed": 0,
                           "new_principal": True, "new_ip": True},
                          {"principal": who, "event_name": "GetSecretValue", "source_ip": ip, "calls": p.rng.randint(20, 90),
                           "failed": 0, "new_principal": True, "new_ip": True}],
                      "bursts": [{"principal": who, "event_name": "GetSecretValue", "calls": 40}]}}
    return f, "leaked-access-key"


def known_principal_new_address(p):
    """The issue's miss: an hourly export job's user (active in the baseline) used from a new address."""
    ip = p.ip()
    job = p.user(p.rng.choice(WORDS) + "-export-job")
    f = {"security": {"principals": [{"principal": job, "calls": p.rng.randint(300, 3000), "new": False}],
                      "sensitive_calls": [
                          {"principal": job, "event_name": "CreateAccessKey", "source_ip": ip, "calls": 1, "failed": 0,
                           "new_principal": False, "new_ip": True},
                          {"principal": job, "event_name": "GetSecretValue", "source_ip": ip, "calls": p.rng.randint(15, 60),
                           "failed": 0, "new_principal": False, "new_ip": True}],
                      "bursts": [{"principal": job, "event_name": "GetSecretValue", "calls": p.rng.randint(10, 40)}],
                      "data_access": [{"principal": job, "bucket": p.app + "-exports", "calls": p.rng.randint(100, 400),
                                       "burst": True, "new_principal": False}]}}
    return f, "known-principal-misused"


def role_session_new_address(p):
    """A role's session (a new session name each time) used from a new address, reading secrets in bulk."""
    ip = p.ip()
    role = p.rng.choice(WORDS) + "-worker-role"
    f = {"security": {"principals": [{"principal": p.session(role), "calls": 400, "new": False}],
                      "sensitive_calls": [
                          {"principal": p.session(role), "event_name": "GetSecretValue", "source_ip": ip,
                           "calls": p.rng.randint(20, 80), "failed": 0, "new_principal": True, "new_ip": True}],
                      "bursts": [{"principal": p.session(role), "event_name": "GetSecretValue", "calls": 25}]}}
    return f, "known-principal-misused"


def credential_stuffing(p):
    ip = p.ip()
    f = {"auth-failures": {"onset": p.at(0), "new_clients": [{"client_ip": ip, "failure_ratio": p.rng.uniform(0.8, 1),
                                                              "first_failure": p.at(-1)}],
                           "by_client_ip": [{"client_ip": ip, "new": True}]}}
    return f, "credential-stuffing"


def job_silent(p):
    f = {"scheduled-jobs": {"silent_jobs": [{"job": p.app + "-sweep", "last_seen": p.at(-p.rng.randint(60, 600))}],
                            "failed_invocations": [], "disabled_schedules": [p.app + "-sweep"]}}
    return f, "scheduled-job-silent"


def backups_failing(p):
    f = {"backups": {"failed_backups": [{"id": "job-" + str(p.rng.randint(1, 999)), "state": "FAILED"}],
                     "backup_stale": True, "snapshots_not_ready": [], "retention_errors": []}}
    return f, "backups-failing"


def renewal_stuck(p):
    name = f"{p.rng.choice(WORDS)}.example.{p.rng.choice(['com', 'io', 'net'])}"
    f = {"certificates": {"expiring": {name: p.rng.uniform(3, 25)}, "expiring_imported": [],
                          "validation_pending": [{"domain": name, "renewal_status": "PENDING_VALIDATION",
                                                  "validation_status": "PENDING_VALIDATION"}],
                          "dns_mismatches": [{"name": name}]}}
    return f, "certificate-renewal-stuck"


def imported_expired(p):
    name = f"{p.rng.choice(WORDS)}.example.{p.rng.choice(['com', 'org'])}"
    arn = f"arn:aws:acm:{p.region}:{p.account}:certificate/{p.rng.randint(10**7, 10**8)}"
    f = {"certificates": {"expiring": {name: -p.rng.uniform(0.1, 3)},
                          "expiring_imported": [{"name": name, "certificate": arn, "not_after": p.at(-60)}],
                          "validation_pending": [], "dns_mismatches": [{"name": name}] if p.rng.random() < 0.5 else [],
                          "edge_error_rate_peak": {"rate": 0.4}}}
    return f, "imported-certificate-expiring"


def security_group_revoked(p):
    f = {"api-errors": _api(p, p.change("security-group-change", p.rng.randint(1, 10), "RevokeSecurityGroupIngress by ops"),
                            ["psycopg2.OperationalError: could not connect to server: Connection timed out"])}
    return f, "db-unreachable-5xx"


def idle_in_transaction_locks(p):
    f = {"db-connections": {"blockers": [{"pid": p.rng.randint(100, 60000), "state": "idle in transaction",
                                          "application_name": p.app, "blocked": p.rng.randint(2, 40)}]}}
    return f, "lock-chain-idle-in-transaction"


MECHANISMS = [pool_after_deploy, lambda_code_error, redis_failover, deploy_oom, deploy_startup, migration_task_regression,
              storage_filling, replica_lag, webhook_timeouts, worker_concurrency_cut, llm_fallback, audit_manual_write,
              leaked_new_principal, known_principal_new_address, role_session_new_address, credential_stuffing,
              job_silent, backups_failing, renewal_stuck, imported_expired, security_group_revoked,
              idle_in_transaction_locks]


def healthy(p: Platform):
    """A busy, healthy window: only the noise (and a known principal's one call from a new address,
    a CI runner's new egress IP: no burst, no key created)."""
    f = noise(p, {})
    f["security"]["sensitive_calls"].append(
        {"principal": p.user(p.rng.choice(WORDS) + "-ci"), "event_name": "GetSecretValue", "source_ip": p.ip(),
         "calls": 1, "failed": 0, "new_principal": False, "new_ip": True})
    f["api-errors"]["error_rate_peak"] = p.rng.uniform(0, 0.004)
    return f, None


#: Two incidents at once on one platform (disjoint notebooks): the primary is the one whose symptom a
#: customer sees first (the runbook's symptom order); the other must be concurrent, not its cause.
CONCURRENT = [(pool_after_deploy, backups_failing), (migration_task_regression, job_silent),
              (known_principal_new_address, imported_expired), (webhook_timeouts, renewal_stuck),
              (deploy_oom, llm_fallback)]
#: Notebooks a case may lose (a source that did not answer: its findings are absent, i.e. unknown), never
#: the one its mechanism is read from.
OPTIONAL = ["db-connections", "scheduled-jobs", "backups", "api-errors"]


def _merge(a: dict, b: dict) -> dict:
    out = {k: dict(v) for k, v in a.items()}
    for k, v in b.items():
        out.setdefault(k, {}).update(v)
    return out


def _case(name: str, seed: str, *makers) -> dict:
    rng = random.Random(seed)
    p = Platform(rng)
    findings, expected = {}, []
    for make in makers:
        f, e = make(p)
        findings = _merge(findings, f)
        expected.append(e)
    if makers[0] is not healthy:
        findings = noise(p, findings)
        # a source down: one notebook the mechanism does not read is missing (one case in five)
        needed = {k for make in makers for k in make(Platform(random.Random(seed)))[0]}
        spare = [k for k in OPTIONAL if k not in needed]
        if spare and rng.random() < 0.2:
            findings.pop(rng.choice(spare), None)
    return {"name": name, "region": p.region, "expected": expected[0], "concurrent": expected[1:], "findings": findings}


def bank(healthy_windows: int = 4) -> dict[str, list[dict]]:
    """``{"tune": [...], "held_out": [...]}``: each mechanism once per part, each pair of
    :data:`CONCURRENT` once per part, and ``healthy_windows`` healthy windows per part; the seeds of each
    part come from :data:`SPLIT_SEED` alone."""
    parts = {}
    for part, salt in (("tune", "t"), ("held_out", "h")):
        cases = [_case(m.__name__, f"{SPLIT_SEED}-{salt}-{m.__name__}", m) for m in MECHANISMS]
        cases += [_case(f"{a.__name__}+{b.__name__}", f"{SPLIT_SEED}-{salt}-{a.__name__}+{b.__name__}", a, b)
                  for a, b in CONCURRENT]
        cases += [_case(f"healthy-{i}", f"{SPLIT_SEED}-{salt}-healthy-{i}", healthy) for i in range(healthy_windows)]
        parts[part] = cases
    return parts


def score(cases: list[dict], diagnose) -> dict:
    """Top-1 right on incidents, false primaries on healthy windows, and the misses."""
    right, incidents, false_primary, healthy_n, misses = 0, 0, 0, 0, []
    concurrent_n = concurrent_right = 0
    for c in cases:
        diag = diagnose(c["findings"])
        got = diag["primary"]
        for other in c.get("concurrent", []):
            concurrent_n += 1
            concurrent_right += other in diag["concurrent"]
        if c["expected"] is None:
            healthy_n += 1
            if got is not None:
                false_primary += 1
                misses.append((c["name"], None, got))
        else:
            incidents += 1
            if got == c["expected"]:
                right += 1
            else:
                misses.append((c["name"], c["expected"], got))
    return {"top1_right": right, "incidents": incidents, "false_primaries": false_primary,
            "healthy_windows": healthy_n, "concurrent_right": concurrent_right, "concurrent": concurrent_n,
            "misses": misses}
