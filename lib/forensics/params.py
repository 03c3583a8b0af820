"""Load and validate the two parameter files: an environment and an incident.

Both are checked completely before anything runs: a bad file gets one line naming the file and the
field, ``ParamsError`` (exit code 2), and nothing is written.

YAML turns ``2026-05-30T09:00:00Z`` into a datetime and ``no`` into False; the loader here keeps
scalars as YAML 1.2-ish strings for timestamps (a SafeLoader *subclass*, never a patch of PyYAML's
own SafeLoader: papermill issue #439).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from . import defaults, redact, resources
from .errors import ParamsError, WindowError
from .param_files import MAX_PARAMS_BYTES, _Dumper, _Loader, dump  # noqa: F401 (re-exported)
from .param_files import load_yaml as _load_yaml
from .window import IncidentWindow

#: The checkout's root (lib/forensics -> ../..); installed, the workspace is the current directory.
REPO_ROOT = resources.CHECKOUT
#: Where the user's `params/` lives: the checkout's, or ./params when installed (resources.py).
PARAMS_DIR = resources.params_dir()

SEVERITIES = ("P0", "P1", "P2", "P3")
_INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---- schema -------------------------------------------------------------------------------------
# Each section: field -> (required, type or tuple of types, description). Later issues add sections.
_ENV_SCHEMA: dict[str, Any] = {
    "name": (True, str, "environment name"),
    "aws": {
        "region": (True, str, "AWS region"),
        "profile": (False, (str, type(None)), "AWS profile (standard credential chain when null)"),
        "endpoint_url": (False, (str, type(None)), "endpoint override (the sandbox's moto server)"),
        "max_attempts": (False, int, f"AWS attempts per call, the first included (adaptive retries; default {defaults.AWS_MAX_ATTEMPTS})"),
        "connect_timeout_s": (False, (int, float), f"seconds to connect to an AWS endpoint (default {defaults.AWS_CONNECT_TIMEOUT_S})"),
        "read_timeout_s": (False, (int, float), f"seconds to wait for an AWS response (default {defaults.AWS_READ_TIMEOUT_S})"),
    },
    "alb": {"load_balancer": (False, (str, type(None)), "ALB dimension value, app/<name>/<id> (its metrics)"),
            "target_group": (False, (str, type(None)), "target group dimension value, targetgroup/<name>/<id>"),
            "access_logs": (False, dict, "where the ALB delivers its access logs: {bucket, prefix, accounts, "
                                         "regions} (all but bucket optional)")},
    "ecs": {"cluster": (True, str, "ECS cluster name"), "services": (True, list, "ECS service names")},
    "rds": {"instance": (True, str, "RDS DB instance identifier"),
            "replica": (False, (str, type(None)), "a read replica's DB instance identifier (ReplicaLag, its events)"),
            "log_group": (False, (str, type(None)), "CloudWatch Logs group of its PostgreSQL log (default "
                                                    "/aws/rds/instance/<instance>/postgresql)"),
            "log_line_prefix": (False, (str, type(None)), "log_line_prefix of that log (default RDS's %t:%r:%u@%d:[%p]:)")},
    "postgres_log": {"files": (True, list, "a self-hosted server's log files: paths, folders, globs or s3://bucket/prefix"),
                     "format": (False, (str, type(None)), "stderr, csvlog or jsonlog (detected when absent)"),
                     "log_line_prefix": (False, (str, type(None)), "the server's log_line_prefix (stderr format)")},
    "postgres": {
        "dsn_env": (False, (str, type(None)), "name of the environment variable holding a libpq DSN"),
        "dsn": (False, (str, type(None)), "a libpq DSN without password (the sandbox); PG*/PGSERVICE also work"),
        "statement_timeout_ms": (False, int, f"statement_timeout of the read-only session, ms (default {defaults.PG_STATEMENT_TIMEOUT_MS})"),
        "allow_privileged_role": (False, bool, "connect with a role that can write (superuser, table owner, "
                                               "write grants): refused unless true"),
    },
    "logs": {"app": (True, list, "application log group names")},
    "elasticache": {
        "replication_group": (True, str, "ElastiCache replication group id"),
        "nodes": (False, list, "cache cluster ids of its nodes (CloudWatch CacheClusterId), e.g. <group>-001"),
    },
    "queues": {
        "namespace": (True, str, "CloudWatch namespace of the queue-depth metric, e.g. SCR/Celery"),
        "metric": (True, str, "queue-depth metric name, e.g. QueueDepth"),
        "dimension": (True, str, "dimension naming the queue, e.g. Queue"),
        "names": (True, list, "queue names (dimension values)"),
        "log_groups": (False, list, "worker log group names"),
        "failed_table": (False, (str, type(None)), "table of failed deliveries (status, attempts, last_error, "
                                                    "created_at), e.g. webhook_deliveries"),
    },
    "ai": {
        "logs_table": (True, str, "table of LLM calls (org_id, model, provider, tokens, cost_usd, status, "
                                  "created_at), e.g. ai_task_logs"),
        "budgets_table": (False, (str, type(None)), "table of monthly budgets (org_id, monthly_budget_usd)"),
        "organizations_table": (False, (str, type(None)), "table of organizations (id, name)"),
    },
    "integrations": {
        "sync_logs_table": (False, (str, type(None)), "the CRM sync log table (provider, direction, org_id, status, "
                                                      "error_message, created_at), default crm_sync_logs"),
        "connections_table": (False, (str, type(None)), "the CRM connections table (provider, org_id, is_active, "
                                                        "last_synced_at), default crm_connections"),
    },
    "audit": {
        "base_url": (True, str, "the application's base URL serving /api/v1/tenants/<id>/audit-replay and "
                                "verify-chain (https://; http:// only on loopback)"),
        "token_env": (True, str, "name of the environment variable holding the bearer token (never the token)"),
        "token_file": (False, (str, type(None)), "a file holding the token, read when the variable is unset "
                                                 "(`forensics sandbox up` writes one, mode 0600)"),
        "tenants": (True, list, "tenant ids to replay"),
        "service_actors": (False, list, "actor prefixes of the service's own writers (default: service:)"),
        "export_file": (False, (str, type(None)), "an exported JSON/NDJSON audit file read instead of the API"),
        "timeout_s": (False, int, f"read timeout of one request, seconds (default {defaults.AUDIT_TIMEOUT_S})"),
    },
    "cloudtrail": {
        "bucket": (False, (str, type(None)), "the trail's S3 bucket: read directly, data events included "
                                             "(else LookupEvents: management events only, 90 days)"),
        "prefix": (False, (str, type(None)), "the trail's S3 key prefix (before AWSLogs/)"),
        "accounts": (False, list, "account ids to read (default: every account under AWSLogs/)"),
        "regions": (False, list, "Regions to read (default: every Region delivered)"),
        "organization_id": (False, (str, type(None)), "o-... for an organisation trail (found when absent)"),
        "baseline_hours": (False, int, "hours before the window pulled as the baseline of known principals "
                                       f"and IPs (default {defaults.CLOUDTRAIL_BASELINE_HOURS})"),
        "known_ips": (False, list, "addresses or CIDR ranges never reported as new (office, CI runners)"),
        "baseline_days": (False, int, "days before the window read from the trail's bucket as the behaviour "
                                      "baseline (default 14; needs cloudtrail.bucket)"),
        "rules_dir": (False, (str, type(None)), "a folder of your own Sigma rules (AWS CloudTrail), relative to "
                                                "this environment file; run beside SigmaHQ's"),
        "max_events": (False, int, f"stop LookupEvents after this many events per capture (default {defaults.CLOUDTRAIL_MAX_EVENTS})"),
    },
    "athena": {
        "workgroup": (False, (str, type(None)), "Athena workgroup (its output location, if it enforces one)"),
        "database": (True, str, "Glue database holding the tables below"),
        "output_location": (False, (str, type(None)), "s3:// location for query results (unless the workgroup "
                                                      "sets one)"),
        "cloudtrail_table": (False, (str, type(None)), "the CloudTrail table (default cloudtrail_logs)"),
        "alb_table": (False, (str, type(None)), "the ALB access-log table (default alb_logs)"),
    },
    "jobs": {
        "heartbeats": (False, list, "each job's expected heartbeat: {name, period (90s, 5m, 1h, 1d), tolerance "
                                    "(periods a run may be late, default 0.5), and log_group + pattern (literal "
                                    "text every run logs) or metric: {namespace, name, dimensions, stat}}"),
        "event_buses": (False, list, "EventBridge buses whose scheduled rules are read (default: default)"),
        "rule_prefix": (False, (str, type(None)), "only EventBridge rules whose name starts with this"),
        "schedule_groups": (False, list, "EventBridge Scheduler groups read (default: every group)"),
    },
    "schema": {
        "expected_alembic_head": (False, (str, type(None)), "the alembic revision the deployed code expects "
                                                            "(its migrations' head)"),
        "alembic_table": (False, (str, type(None)), "alembic's version table (default alembic_version)"),
        "enums": (False, dict, "PostgreSQL enum type -> the values the application expects"),
    },
    "backups": {
        "vault": (False, (str, type(None)), "AWS Backup vault whose jobs are read (default: every vault)"),
        "bucket": (False, (str, type(None)), "S3 bucket the application's own dumps go to, e.g. "
                                             "scr-production-backups"),
        "prefix": (False, (str, type(None)), "key prefix of those dumps inside the bucket, e.g. pg_dump/"),
        "retention_log_groups": (False, list, "log groups of the retention/backup jobs (Celery workers), e.g. "
                                              "/ecs/scr-celery-default-production"),
        "lookback_hours": (False, int, "hours before the window's end read for backup jobs, events and job logs "
                                       f"(default {defaults.BACKUP_LOOKBACK_HOURS})"),
        "max_age_hours": (False, int, "a newest good snapshot older than this is stale "
                                      f"(default {defaults.BACKUP_MAX_AGE_HOURS})"),
    },
    "certificates": {
        "domains": (True, list, "the domains the platform serves (its own and white-label ones)"),
        "regions": (False, list, "Regions whose ACM certificates are read (default: aws.region and us-east-1, "
                                 "where CloudFront's live)"),
        "cloudfront_distributions": (False, list, "CloudFront distribution ids (their aliases, certificate, "
                                                  "4xx/5xx rates)"),
        "hosted_zones": (False, list, "Route 53 hosted zone ids to read (default: the account's zones whose "
                                      "name ends one of the domains)"),
        "warn_days": (False, int, f"a certificate with fewer days left is expiring (default {defaults.CERT_WARN_DAYS})"),
    },
    "diagnosis": {
        "runbook_file": (True, str, "your runbook entries (YAML, the format of lib/forensics/runbooks/entries.yaml), "
                                    "added to the built-in ones; relative to this file"),
    },
}
#: Only ``name`` and ``aws`` are required: a notebook runs on the sections the environment has, and one
#: with none of its sections is skipped (a security-only environment, a platform without ECS).
_ENV_OPTIONAL_SECTIONS = {"alb", "ecs", "rds", "logs", "postgres", "postgres_log", "elasticache", "queues", "ai", "integrations", "audit",
                          "cloudtrail", "athena", "schema", "diagnosis", "jobs", "backups", "certificates"}
#: fields naming a PostgreSQL table: a plain identifier (optionally schema-qualified), nothing else
_TABLE_FIELDS = (("queues", "failed_table"), ("ai", "logs_table"), ("ai", "budgets_table"),
                 ("ai", "organizations_table"), ("integrations", "sync_logs_table"),
                 ("integrations", "connections_table"))
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$")

_INCIDENT_SCHEMA: dict[str, Any] = {
    "incident": (True, str, "incident id, e.g. INC-2026-0530"),
    "title": (True, str, "one-line title"),
    "severity": (True, str, "P0..P3"),
    "environment": (True, str, "a name in params/environments/ or a path"),
    "window": {"start": (True, str, "ISO-8601 UTC"), "end": (True, str, "ISO-8601 UTC")},
    "notebooks": (False, list, "notebook names; default every notebook"),
}


@dataclass(frozen=True)
class Incident:
    """A validated incident with its resolved environment."""

    incident: str
    title: str
    severity: str
    window: IncidentWindow
    environment: dict
    notebooks: list[str] | None = None
    source_path: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def date(self) -> str:
        return self.window.start.strftime("%Y-%m-%d")

    def as_dict(self) -> dict:
        """The resolved parameters, as written to a record's params.yaml (environment inlined)."""
        out = {
            "incident": self.incident,
            "title": self.title,
            "severity": self.severity,
            "environment": self.environment,
            "window": self.window.as_dict(),
        }
        if self.notebooks:
            out["notebooks"] = list(self.notebooks)
        out.update(self.extra)
        return out


def _check(path, data, schema, prefix="", optional_sections=()) -> None:
    if not isinstance(data, dict):
        raise ParamsError(path, f"{prefix.rstrip('.') or 'file'} must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise ParamsError(path, f"unknown field {prefix}{unknown[0]} (known: {', '.join(sorted(schema))})")
    for key, spec in schema.items():
        if isinstance(spec, dict):
            if key not in data:
                if key in optional_sections:
                    continue
                raise ParamsError(path, f"missing field {prefix}{key}")
            _check(path, data[key], spec, f"{prefix}{key}.")
            continue
        required, types, _ = spec
        if key not in data:
            if required:
                raise ParamsError(path, f"missing field {prefix}{key}")
            continue
        value = data[key]
        if not isinstance(value, types) or isinstance(value, bool) and types is int:
            want = types.__name__ if isinstance(types, type) else " or ".join(
                "null" if t is type(None) else t.__name__ for t in types)
            raise ParamsError(path, f"field {prefix}{key} must be {want}, got {value!r}")
        if required and isinstance(value, (str, list)) and not value:
            raise ParamsError(path, f"field {prefix}{key} is empty")


def _refuse_secrets(path, data, prefix="") -> None:
    """Parameters are copied into every executed notebook: a secret-looking value is refused."""

    if isinstance(data, dict):
        for k, v in data.items():
            _refuse_secrets(path, v, f"{prefix}{k}.")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _refuse_secrets(path, v, f"{prefix}{i}.")
    elif isinstance(data, str) and redact.found(data):
        raise ParamsError(path, f"field {prefix.rstrip('.')} looks like a secret ({redact.found(data)[0]}); "
                                "pass credentials by reference (an environment variable name), never by value")


def load_environment(ref: str | os.PathLike, base: Path | None = None) -> dict:
    """An environment by name (``params/environments/<name>.yaml``) or by path."""
    ref = str(ref)
    path = Path(ref)
    if not (ref.endswith((".yaml", ".yml")) or os.sep in ref or path.exists()):
        path = (base or PARAMS_DIR / "environments") / f"{ref}.yaml"
        example = resources.example_params_dir() / "environments" / f"{ref}.yaml"
        if not path.exists() and base is None and example.exists():
            path = example  # an installed package's examples (example-production)
        if not path.exists():
            known = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ParamsError(path, f"no environment named {ref!r} (known: {', '.join(known) or 'none'})")
    data = _load_yaml(path)
    _check(path, data, _ENV_SCHEMA, optional_sections=_ENV_OPTIONAL_SECTIONS)
    pg = data.get("postgres") or {}
    if pg.get("dsn") and redact.found(pg["dsn"]):
        raise ParamsError(path, "postgres.dsn contains a password; put the DSN in an environment variable "
                                "and name it in postgres.dsn_env, or use ~/.pgpass / PGSERVICE")
    if pg.get("dsn_env") and not _ENV_VAR.match(pg["dsn_env"]):
        raise ParamsError(path, f"postgres.dsn_env must be an environment variable name, got {pg['dsn_env']!r}")
    if "ecs" in data and not all(isinstance(s, str) and s for s in data["ecs"]["services"]):
        raise ParamsError(path, "field ecs.services must be a list of names")
    if "logs" in data and not all(isinstance(g, str) and g for g in data["logs"]["app"]):
        raise ParamsError(path, "field logs.app must be a list of log group names")
    _check_bucket_section(path, (data.get("alb") or {}).get("access_logs"), "alb.access_logs")
    _check_backups_and_certificates(path, data)
    if (data.get("cloudtrail") or {}).get("bucket"):
        _check_bucket_section(path, data["cloudtrail"], "cloudtrail")
    if data.get("athena"):  # Athena writes its results: never into the evidence it reads
        from . import readonly_sql

        try:
            readonly_sql.check_output_location(data["athena"].get("output_location"), data)
        except readonly_sql.NotReadOnly as exc:
            raise ParamsError(path, str(exc)) from None
    if (data.get("cloudtrail") or {}).get("rules_dir"):  # resolved now: a record inlines the environment
        rules = (path.parent / data["cloudtrail"]["rules_dir"]).resolve()
        if not rules.is_dir():
            raise ParamsError(path, f"cloudtrail.rules_dir {data['cloudtrail']['rules_dir']!r} is not a folder "
                                    f"(looked for {rules})")
        data["cloudtrail"] = {**data["cloudtrail"], "rules_dir": str(rules)}
    for section, key in _TABLE_FIELDS:
        value = (data.get(section) or {}).get(key)
        if value is not None and not _TABLE_NAME.match(value):
            raise ParamsError(path, f"field {section}.{key} must be a table name ([schema.]identifier), got {value!r}")
    audit = data.get("audit") or {}
    if audit.get("token_env") is not None and not _ENV_VAR.match(audit["token_env"]):
        raise ParamsError(path, f"audit.token_env must be an environment variable name, got {audit['token_env']!r}")
    if audit.get("base_url"):
        from ._aws import is_loopback_url

        if not (audit["base_url"].startswith("https://") or (audit["base_url"].startswith("http://")
                                                               and is_loopback_url(audit["base_url"]))):
            raise ParamsError(path, "audit.base_url must be https:// (http:// only on loopback): a bearer token "
                                    "never travels in clear text")
    if "jobs" in data:
        from .heartbeats import heartbeats

        try:
            heartbeats(data["jobs"])
        except ValueError as exc:
            raise ParamsError(path, str(exc)) from None
    _refuse_secrets(path, data)
    if data.get("diagnosis"):  # resolved and checked now: a bad runbook file fails before anything runs
        from . import runbook as runbooks

        runbook = (path.parent / data["diagnosis"]["runbook_file"]).resolve()
        runbooks.load(runbook)
        data["diagnosis"] = {**data["diagnosis"], "runbook_file": str(runbook)}
    return data


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_DOMAIN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$")


def _check_backups_and_certificates(path, data: dict) -> None:
    """Names that must be names: domains, lists of strings, a bucket without s3://."""
    backups = data.get("backups") or {}
    if backups.get("bucket"):
        where = {"bucket": backups["bucket"], **({"prefix": backups["prefix"]} if backups.get("prefix") else {})}
        _check_bucket_section(path, where, "backups")
    for section, key in (("backups", "retention_log_groups"), ("certificates", "regions"),
                         ("certificates", "cloudfront_distributions"), ("certificates", "hosted_zones")):
        values = (data.get(section) or {}).get(key)
        if values is not None and not all(isinstance(v, str) and v for v in values):
            raise ParamsError(path, f"field {section}.{key} must be a list of names")
    for name in (data.get("certificates") or {}).get("domains") or []:
        if not isinstance(name, str) or not _DOMAIN.match(name.lower()):
            raise ParamsError(path, f"field certificates.domains must list domain names, got {name!r}")


def _check_bucket_section(path, section, where: str) -> None:
    """A delivery location in S3: a valid bucket name, a prefix without s3:// or leading slash."""
    if section is None:
        return
    if where != "cloudtrail":
        known = {"bucket", "prefix", "accounts", "regions"}
        _check(path, section, {k: (k == "bucket", (str, list) if k in ("accounts", "regions") else str, k)
                               for k in known}, f"{where}.")
    bucket = section.get("bucket") or ""
    if not _BUCKET.match(bucket):
        raise ParamsError(path, f"field {where}.bucket must be an S3 bucket name, got {bucket!r}")
    prefix = section.get("prefix") or ""
    if prefix.startswith(("s3://", "/")):
        raise ParamsError(path, f"field {where}.prefix is a key prefix inside the bucket (no s3://, no leading /)")
    for key in ("accounts", "regions"):
        if key in section and not all(isinstance(v, str) and v for v in section[key]):
            raise ParamsError(path, f"field {where}.{key} must be a list of names")


def load_incident(path: str | os.PathLike, known_notebooks: list[str] | None = None,
                  check_retention: bool = True) -> Incident:
    """Load, validate and resolve an incident file. ``known_notebooks`` validates ``notebooks:``."""
    path = Path(path)
    data = _load_yaml(path)
    _check(path, data, _INCIDENT_SCHEMA)
    _refuse_secrets(path, data)
    if not _INCIDENT_ID.match(data["incident"]):
        raise ParamsError(path, f"incident id {data['incident']!r} must be letters, digits, '.', '_' or '-'")
    if data["severity"] not in SEVERITIES:
        raise ParamsError(path, f"severity must be one of {', '.join(SEVERITIES)}, got {data['severity']!r}")
    try:
        window = IncidentWindow(data["window"]["start"], data["window"]["end"])
        if check_retention:
            window.check_retention()
    except WindowError as exc:
        raise ParamsError(path, str(exc)) from None
    notebooks = data.get("notebooks")
    if notebooks is not None:
        if not notebooks or not all(isinstance(n, str) for n in notebooks):
            raise ParamsError(path, "field notebooks must be a non-empty list of notebook names")
        if known_notebooks is not None:
            unknown = [n for n in notebooks if n not in known_notebooks]
            if unknown:
                raise ParamsError(path, f"unknown notebook {unknown[0]!r} (known: {', '.join(known_notebooks)})")
    env_ref = data["environment"]
    if isinstance(env_ref, str) and not Path(env_ref).is_absolute() and (os.sep in env_ref or
                                                                         env_ref.endswith((".yaml", ".yml"))):
        env_ref = str((path.parent / env_ref).resolve())
    elif isinstance(env_ref, str) and not Path(env_ref).is_absolute():
        # a name: beside the incident file first, then its params/ layout's environments/, then PARAMS_DIR
        for beside in (path.parent / f"{env_ref}.yaml", path.parent.parent / "environments" / f"{env_ref}.yaml"):
            if beside.is_file():
                env_ref = str(beside.resolve())
                break
    environment = load_environment(env_ref)
    return Incident(
        incident=data["incident"], title=data["title"], severity=data["severity"], window=window,
        environment=environment, notebooks=notebooks, source_path=str(path),
    )




def load_resolved(path: str | os.PathLike) -> Incident:
    """Read a record's params.yaml (environment inlined) back into an Incident; no retention check,
    so a record can be replayed years later."""
    path = Path(path)
    data = _load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("environment"), dict):
        raise ParamsError(path, "not a resolved parameters file (environment must be inlined)")
    env = data["environment"]
    _check(path, env, _ENV_SCHEMA, "environment.", optional_sections=_ENV_OPTIONAL_SECTIONS)
    try:
        window = IncidentWindow(data["window"]["start"], data["window"]["end"])
    except (KeyError, TypeError, WindowError) as exc:
        raise ParamsError(path, f"bad window: {exc}") from None
    return Incident(
        incident=data["incident"], title=data.get("title", ""), severity=data.get("severity", ""),
        window=window, environment=env, notebooks=data.get("notebooks"), source_path=str(path),
    )
