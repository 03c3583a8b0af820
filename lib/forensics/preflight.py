"""Preflight: before `run` writes anything (and in `validate`), prove the incident can be read at all.

The commonest mistakes (a wrong AWS profile, a wrong Region, a window in the future, a resource named
wrong) otherwise produce a sealed record full of empty "ok" answers that the on-call engineer believes.
Preflight checks, read-only:

- the caller identity (STS GetCallerIdentity) of the profile or credential chain in use, and the Region;
- that the window is not in the future (an ongoing incident may end at "now": it says so);
- that each resource the environment names and the selected notebooks read exists and is readable:
  log groups, the load balancer and target group, the DB instance (and replica), the ECS cluster and
  services, the ElastiCache replication group, the trail's and the access logs' buckets and prefixes,
  the backup bucket, and a PostgreSQL connection when one is configured.

Every failure is collected; :class:`PreflightError` carries them as one line (exit 2). Only operations
in :data:`forensics._aws.READ_OPERATIONS` are called, through the same read-only clients as the captures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import pandas as pd

from .errors import ForensicsError

#: how far past "now" a window end may be and still be "now" (clock skew, the minute being written)
CLOCK_SLACK = pd.Timedelta(minutes=2)
#: an end this close to now is an ongoing incident: evidence after the run is not in the record
ONGOING = pd.Timedelta(minutes=10)


class PreflightError(ForensicsError):
    """The incident cannot be read as configured: one line, exit 2, nothing written."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        super().__init__(f"preflight: {problems[0]}{more}")

    def __reduce__(self):
        return (type(self), (self.problems,))


@dataclass
class Report:
    """What preflight found: who we are, where, which resources answered; notes are not failures."""

    account: str | None = None
    arn: str | None = None
    region: str | None = None
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """One line for `validate` and the run's log."""
        who = self.arn or "unknown caller"
        text = f"preflight ok: {who} in {self.region}; {len(self.checked)} resource(s) readable"
        return text + (f"; {'; '.join(self.notes)}" if self.notes else "")


def _one_line(exc: BaseException) -> str:
    from . import redact

    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    msg = " ".join(str(exc).split())
    return redact.text(f"{code or type(exc).__name__}: {msg}")[:300]


def sections_read(selected: Iterable[str] | None, cat: dict | None = None) -> set[str]:
    """The environment sections (top level) the selected notebooks' captures read; every section when
    ``selected`` is None."""
    if selected is None:
        return set()  # means all
    from . import captures
    from .notebooks import catalogue

    cat = cat or catalogue()
    out = set()
    for name in selected:
        for cap in cat[name].captures:
            out |= {n.split(".")[0] for n in captures.get(cap).needs}
    return out


def check_window(window, now: pd.Timestamp | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of the window against the clock."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    stamp = now.floor("s").strftime("%Y-%m-%dT%H:%M:%SZ")
    if window.start > now + CLOCK_SLACK:
        return [f"window start {window.start.isoformat()} is in the future (now {stamp})"], []
    if window.end > now + CLOCK_SLACK:
        return [f"window end {window.end.isoformat()} is in the future (now {stamp}); an ongoing incident may "
                f"end at now: write end: {stamp}"], []
    if now - window.end < ONGOING:
        return [], [f"the window ends now (an ongoing incident): events after {stamp} are not in the record"]
    return [], []


def run(incident, selected: Iterable[str] | None = None, *, now: pd.Timestamp | None = None,
        cat: dict | None = None) -> Report:
    """Every check; raises :class:`PreflightError` (one line) when any fails, else returns the report."""
    report = check(incident, selected, now=now, cat=cat)
    if report.problems:
        raise PreflightError(report.problems)
    return report


def check(incident, selected: Iterable[str] | None = None, *, now: pd.Timestamp | None = None,
          cat: dict | None = None) -> Report:
    """Every check, failures collected in ``report.problems`` (the identity first: without it nothing
    else can answer, so the resources are not tried)."""
    env = incident.environment
    report = Report()
    problems, notes = check_window(incident.window, now)
    report.problems += problems
    report.notes += notes
    wanted = sections_read(list(selected) if selected is not None else None, cat)

    def used(section: str) -> bool:
        return bool(env.get(section)) and (not wanted or section in wanted)

    aws = env.get("aws") or {}
    needs_aws = not wanted or bool(wanted - _NOT_AWS)
    if needs_aws:
        clients = _identity(aws, report)
        if clients is None:
            return report
        for section, fn in _AWS_SECTIONS.items():
            if used(section):
                for what, probe in fn(env):
                    _probe(report, what, lambda p=probe: p(clients))
    if used("postgres"):
        _probe(report, "PostgreSQL", lambda: _postgres(env["postgres"]))
    return report


#: error codes that mean "no such resource" (else: not readable, e.g. AccessDenied)
_NOT_FOUND = {"LoadBalancerNotFound", "TargetGroupNotFound", "DBInstanceNotFound", "DBInstanceNotFoundFault",
              "ReplicationGroupNotFoundFault", "NoSuchBucket", "ClusterNotFoundException", "ResourceNotFoundException"}


def _probe(report: Report, what: str, call: Callable[[], None]) -> None:
    if what in report.checked:
        return
    try:
        problem = call()
    except Exception as exc:  # noqa: BLE001 - any failure is the user's to see, on one line
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        where = f" in {report.region}" if report.region else ""
        problem = (f"{what} does not exist{where} ({_one_line(exc)})" if code in _NOT_FOUND
                   else f"{what} is not readable: {_one_line(exc)}")
    if problem:
        report.problems.append(problem if problem.startswith(what) else f"{what}: {problem}")
    else:
        report.checked.append(what)


class _Clients:
    """One boto3 session and one read-only client per service for the whole preflight (making them is
    most of its time)."""

    def __init__(self, aws: dict, sess):
        self.aws, self.sess, self.made = aws, sess, {}

    def __call__(self, service: str):
        from . import _aws

        if service not in self.made:
            self.made[service] = _aws.client(service, self.aws, boto3_session=self.sess, config=_CONFIG())
        return self.made[service]


def _CONFIG():  # noqa: N802 - a constant made late (botocore imported only when needed)
    from . import _aws

    return _aws.client_config(connect_timeout=3, read_timeout=10, max_attempts=1)


def _identity(aws: dict, report: Report) -> _Clients | None:
    from . import _aws

    try:
        sess = _aws.session(aws)
        report.region = sess.region_name
        if not report.region:
            report.problems.insert(0, "no AWS Region: set aws.region in the environment (or AWS_REGION)")
            return None
        clients = _Clients(aws, sess)
        ident = clients("sts").get_caller_identity()
    except Exception as exc:  # noqa: BLE001 - ProfileNotFound, NoCredentialsError, endpoint down...
        profile = aws.get("profile")
        where = f"profile {profile!r}" if profile else "the default credential chain"
        report.problems.insert(0, f"AWS identity ({where}) unknown: {_one_line(exc)}")
        return None
    report.account, report.arn = ident.get("Account"), ident.get("Arn")
    return clients


# ---- resources, per section: (what, probe(aws) -> problem or None) -----------------------------------
def _log_group(name: str):
    def probe(client):
        logs = client("logs")
        groups = logs.describe_log_groups(logGroupNamePrefix=name, limit=50).get("logGroups", [])
        if not any(g.get("logGroupName") == name for g in groups):
            return f"log group {name} does not exist in {logs.meta.region_name}"
        return None

    return (f"log group {name}", probe)


def _bucket(name: str, prefix: str | None, what: str, must_hold: bool = True):
    def probe(client):
        s3 = client("s3")
        kw = {"Bucket": name, "MaxKeys": 1}
        if prefix:
            kw["Prefix"] = prefix
        resp = s3.list_objects_v2(**kw)
        if must_hold and not resp.get("KeyCount") and not resp.get("Contents"):
            return f"{what} s3://{name}/{prefix or ''} holds no object"
        return None

    return (f"{what} s3://{name}/{prefix or ''}", probe)


def _logs(env):
    return [_log_group(g) for g in env["logs"].get("app") or []]


def _alb(env):
    alb = env["alb"]
    out = []
    if alb.get("load_balancer"):
        dim = alb["load_balancer"]
        name = dim.split("/")[1] if dim.count("/") >= 2 else dim

        def lb(client, dim=dim, name=name):
            elb = client("elbv2")
            pages = elb.get_paginator("describe_load_balancers").paginate(PaginationConfig={"MaxItems": 2000})
            arns = [x["LoadBalancerArn"] for page in pages for x in page.get("LoadBalancers", [])]
            if not any(a.endswith("/" + dim) for a in arns):
                return f"load balancer {dim} does not exist in {elb.meta.region_name} ({len(arns)} load balancer(s) there)"
            return None

        out.append((f"load balancer {dim}", lb))
    if alb.get("target_group"):
        dim = alb["target_group"]
        name = dim.split("/")[1] if dim.count("/") >= 2 else dim

        def tg(client, name=name):
            client("elbv2").describe_target_groups(Names=[name])
            return None

        out.append((f"target group {dim}", tg))
    logs = alb.get("access_logs") or {}
    if logs.get("bucket"):
        prefix = (logs.get("prefix") or "").strip("/")
        out.append(_bucket(logs["bucket"], f"{prefix}/AWSLogs/" if prefix else "AWSLogs/", "ALB access logs"))
    return out


def _ecs(env):
    ecs = env["ecs"]
    cluster, services = ecs["cluster"], list(ecs.get("services") or [])

    def probe(client):
        c = client("ecs")
        found = c.describe_clusters(clusters=[cluster])
        if not [x for x in found.get("clusters", []) if x.get("status") != "INACTIVE"]:
            return f"ECS cluster {cluster} does not exist in {c.meta.region_name}"
        missing = []
        for i in range(0, len(services), 10):
            resp = c.describe_services(cluster=cluster, services=services[i:i + 10])
            missing += [f.get("arn", "?").split("/")[-1] for f in resp.get("failures", [])]
        if missing:
            return f"ECS service(s) {', '.join(missing)} not found in cluster {cluster}"
        return None

    return [(f"ECS cluster {cluster}", probe)]


def _rds(env):
    rds = env["rds"]
    out = []
    for ident in [rds["instance"], rds.get("replica")]:
        if ident:
            def probe(client, ident=ident):
                client("rds").describe_db_instances(DBInstanceIdentifier=ident)
                return None

            out.append((f"DB instance {ident}", probe))
    if rds.get("log_group"):
        out.append(_log_group(rds["log_group"]))
    return out


def _elasticache(env):
    group = env["elasticache"]["replication_group"]

    def probe(client):
        client("elasticache").describe_replication_groups(ReplicationGroupId=group)
        return None

    return [(f"ElastiCache replication group {group}", probe)]


def _queues(env):
    return [_log_group(g) for g in env["queues"].get("log_groups") or []]


def _cloudtrail(env):
    ct = env["cloudtrail"]
    if not ct.get("bucket"):
        return []
    prefix = (ct.get("prefix") or "").strip("/")
    return [_bucket(ct["bucket"], f"{prefix}/AWSLogs/" if prefix else "AWSLogs/", "trail bucket")]


def _backups(env):
    b = env["backups"]
    out = [_log_group(g) for g in b.get("retention_log_groups") or []]
    if b.get("bucket"):
        out.append(_bucket(b["bucket"], b.get("prefix"), "backup bucket", must_hold=False))
    return out


def _jobs(env):
    groups = {h["log_group"] for h in (env["jobs"].get("heartbeats") or []) if isinstance(h, dict)
              and h.get("log_group")}
    return [_log_group(g) for g in sorted(groups)]


#: sections read without AWS credentials (a run of only these notebooks needs no identity)
_NOT_AWS = {"postgres", "audit", "ai", "schema", "diagnosis"}
_AWS_SECTIONS: dict[str, Callable] = {
    "logs": _logs, "alb": _alb, "ecs": _ecs, "rds": _rds, "elasticache": _elasticache, "queues": _queues,
    "cloudtrail": _cloudtrail, "backups": _backups, "jobs": _jobs,
}


def _postgres(pg: dict) -> None:
    from .sources import postgres

    conn = postgres.connect(pg, connect_timeout=5)
    try:
        conn.execute("select 1").fetchone()
    finally:
        conn.close()
