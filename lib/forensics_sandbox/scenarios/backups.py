"""Scenario "backups": backups stopped two nights ago, and the migration ran without a finished snapshot.

The story: a Terraform change at T-40 h (T = the sandbox's now) replaced the backup IAM role and the
Celery task role. Since then:

- AWS Backup's nightly job of ``scr-production-postgres`` (vault ``scr-production-vault``) FAILED twice
  ("Insufficient privileges to perform this action."); the documents bucket's job still COMPLETES;
- the application's ``backup_database_task`` (a pg_dump piped to ``s3://scr-production-backups/pg_dump/``)
  failed both nights with ``AccessDenied`` on ``PutObject``: the newest dump in S3 is from T-55 h;
- separately, ``data_retention_cleanup`` fails every night on ``usage_events`` with a statement timeout
  (001 §3f: tables grow unboundedly);
- RDS's own automated backups still run (they need no role): the last one is the backup the primary
  scenario's RDS events announce at T0-52 min, the only recent restore point.

During the incident the CD pipeline asked AWS Backup for a pre-migration backup at T0-14 min (FAILED,
same role), fell back to a manual snapshot ``pre-migration-e41b7c9d2f10`` at T0-10 min, and ran the
migration at T0 while that snapshot was still ``creating`` (35 %): a restore would start from T0-52 min.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from .. import moto_ext as ext
from .played import Played, register
from .common import MIN, RDS_INSTANCE, bucket_for, epoch_ms, incident_fields, iso, put_logs, timeline

INSTANCE = RDS_INSTANCE
VAULT = "scr-production-vault"
BUCKET = "scr-production-backups"
PREFIX = "pg_dump/"
DOCUMENTS = "scr-production-documents"
LOG_GROUP = "/ecs/scr-celery-default-production"
PRE_MIGRATION = "pre-migration-e41b7c9d2f10"
H = pd.Timedelta(hours=1)
DENIED = "Insufficient privileges to perform this action."
RETENTION_ERROR = ("ERROR app.tasks.data_retention: data_retention_cleanup failed on usage_events: "
                   "canceling statement due to statement timeout")


def _naive(ts: pd.Timestamp) -> dt.datetime:
    return ts.tz_convert("UTC").tz_localize(None).to_pydatetime()


class Plan:
    def __init__(self, now: pd.Timestamp, rds_backup: pd.Timestamp | None = None, bucket: str = BUCKET):
        self.t = t = timeline(now)
        self.bucket = bucket
        end = t["end"]
        self.change = end - 40 * H
        nights = range(8)
        #: RDS automated snapshots, daily; today's is the one RDS's events announce (see :func:`_announced`)
        self.announced = rds_backup is not None
        self.rds_backup = rds_backup if rds_backup is not None else t["start"] + 8 * MIN
        self.automated = [self.rds_backup - k * 24 * H for k in nights]
        #: AWS Backup nightly jobs of the instance: (created, state)
        self.rds_jobs = [(end - 5 * H - k * 24 * H, "FAILED" if end - 5 * H - k * 24 * H > self.change
                          else "COMPLETED") for k in nights]
        self.doc_jobs = [end - 5 * H - k * 24 * H + 2 * MIN for k in nights]
        self.on_demand = t["deploy"] - 14 * MIN
        self.pre_migration = t["deploy"] - 10 * MIN
        #: the app's pg_dump task and the retention sweep: (time, ok)
        self.dumps = [(end - 7 * H - k * 24 * H, end - 7 * H - k * 24 * H < self.change) for k in nights]
        self.retention = [end - 5 * H + 30 * MIN - k * 24 * H for k in nights]

    def awsbackup_snapshots(self) -> list[pd.Timestamp]:
        return [c + 4 * MIN for c, state in self.rds_jobs if state == "COMPLETED"]

    def log_events(self) -> dict[str, list[tuple[int, str]]]:
        lines = []
        for ts, ok in self.dumps:
            stamp = ts.strftime("%Y-%m-%d")
            lines.append((ts, "INFO app.tasks.backup: backup_database_task started: pg_dump of app to "
                              f"s3://{self.bucket}/{PREFIX}{stamp}.dump"))
            lines.append((ts + 9 * MIN, f"INFO app.tasks.backup: backup_database_task succeeded: {stamp}.dump "
                                        "uploaded (5.2 GiB)") if ok else
                         (ts + 2 * MIN, "ERROR app.tasks.backup: backup_database_task failed: An error occurred "
                                        "(AccessDenied) when calling the PutObject operation: Access Denied"))
        for ts in self.retention:
            lines.append((ts, "INFO app.tasks.data_retention: data_retention_cleanup started"))
            lines.append((ts + MIN, "INFO app.tasks.data_retention: data_retention_cleanup deleted 10000 rows "
                                    "from digest_logs"))
            lines.append((ts + 6 * MIN, RETENTION_ERROR if ts > self.change else
                          "INFO app.tasks.data_retention: data_retention_cleanup succeeded"))
        # the worker's other work, which the capture's filter must leave out
        for k in range(48):
            lines.append((self.t["end"] - k * H - 17 * MIN, "INFO celery.worker: Task app.tasks.webhooks.deliver "
                                                            f"[{k:08x}-beef] succeeded in 0.21s"))
        lines.sort()
        return {"scr-celery-default/celery-worker/2f1c0e7a": [(epoch_ms(ts), msg) for ts, msg in lines]}


def _announced(sb, since: pd.Timestamp) -> pd.Timestamp | None:
    """When the instance's latest automated backup began, as its RDS events say (the platform's scenario
    announces one before the incident): today's snapshot is that backup."""
    starts = [pd.Timestamp(e.date) for e in sb.backend("rds").events
              if e.source_identifier == INSTANCE and e.message == "Backing up DB instance"]
    starts = [ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC") for ts in starts]
    recent = [ts for ts in starts if ts >= since]
    return max(recent) if recent else None


def _snapshot(backend, snapshot_id: str, snapshot_type: str, created: pd.Timestamp, status: str = "available",
              progress: int | None = None):
    snap = backend.create_db_snapshot(INSTANCE, snapshot_id, snapshot_type=snapshot_type)
    snap.created = _naive(created)
    snap.original_snapshot_create_time = snap.created
    snap.status = status
    if progress is not None:
        snap.percent_progress = progress
    return snap


def load_rds(sb, plan: Plan) -> None:
    backend = sb.backend("rds")
    # moto takes an automated snapshot (and stamps its events) when it creates an instance, "now": this
    # instance's history is the plan's
    for sid, snap in list(backend.database_snapshots.items()):
        if snap.db_instance_identifier == INSTANCE:
            del backend.database_snapshots[sid]
    for ts in plan.automated:
        _snapshot(backend, f"rds:{INSTANCE}-{ts.strftime('%Y-%m-%d-%H-%M')}", "automated", ts)
    for ts in plan.awsbackup_snapshots():
        _snapshot(backend, f"awsbackup:job-{ts.strftime('%Y%m%d%H%M')}", "awsbackup", ts)
    _snapshot(backend, PRE_MIGRATION, "manual", plan.pre_migration, status="creating", progress=35)
    for ts in plan.automated[1 if plan.announced else 0:]:  # an announced backup has its events already
        ext.add_rds_event(backend, INSTANCE, "Backing up DB instance", ["backup"], ts)
        ext.add_rds_event(backend, INSTANCE, "Finished DB instance backup", ["backup"], ts + pd.Timedelta("11min 37s"))


def load_backup(sb, plan: Plan) -> list[dict]:
    backend = sb.backend("backup")
    region, account = sb.region, sb.account_id
    db_arn = f"arn:aws:rds:{region}:{account}:db:{INSTANCE}"
    role = f"arn:aws:iam::{account}:role/scr-backup-role"
    jobs = []
    for created, state in plan.rds_jobs:
        jobs.append(ext.add_backup_job(
            backend, vault=VAULT, resource_arn=db_arn, resource_type="RDS", created=created, state=state,
            completed=created + (4 * MIN if state == "COMPLETED" else MIN),
            status_message=DENIED if state == "FAILED" else None, size_bytes=214_748_364_800 if state == "COMPLETED"
            else None, iam_role_arn=role, plan_id="scr-production-daily"))
    for created in plan.doc_jobs:
        ext.add_backup_job(backend, vault=VAULT, resource_arn=f"arn:aws:s3:::{DOCUMENTS}", resource_type="S3",
                                  created=created, state="COMPLETED", completed=created + 11 * MIN,
                                  size_bytes=48_318_382_080, iam_role_arn=role, plan_id="scr-production-daily")
    jobs.append(ext.add_backup_job(
        backend, vault=VAULT, resource_arn=db_arn, resource_type="RDS", created=plan.on_demand, state="FAILED",
        completed=plan.on_demand + MIN, status_message=DENIED, iam_role_arn=role))
    return jobs


def load_s3(sb, plan: Plan) -> list[str]:
    s3 = sb.client("s3")
    s3.create_bucket(Bucket=plan.bucket, CreateBucketConfiguration={"LocationConstraint": sb.region})
    backend = ext.backend("s3", sb.account_id, "aws")
    keys = []
    for ts, ok in plan.dumps:
        if not ok:
            continue
        key = f"{PREFIX}{ts.strftime('%Y-%m-%d')}.dump"
        s3.put_object(Bucket=plan.bucket, Key=key, Body=b"PGDMP sandbox dump\n")
        backend.get_object(plan.bucket, key).last_modified = _naive(ts + 9 * MIN)
        keys.append(key)
    return keys


@register("backups")
def play(sb) -> Played:
    t = timeline(sb.now)  # the instance is the platform's (pool-exhaustion plays first, always)
    plan = Plan(sb.now, _announced(sb, t["start"] - H), bucket_for(BUCKET, sb.account_id))
    load_rds(sb, plan)
    jobs = load_backup(sb, plan)
    dumps = load_s3(sb, plan)
    put_logs(sb.client("logs"), LOG_GROUP, plan.log_events())
    end = t["end"]
    lookback = end - pd.Timedelta(hours=48)
    good = max(plan.awsbackup_snapshots() + plan.automated)
    good_id = (f"awsbackup:job-{good.strftime('%Y%m%d%H%M')}" if good in plan.awsbackup_snapshots()
               else f"rds:{INSTANCE}-{good.strftime('%Y-%m-%d-%H-%M')}")
    failed_jobs = [j["BackupJobId"] for j in jobs if j["State"] == "FAILED" and j["CreationDate"] >= lookback]
    failed_dumps = [ts + 2 * MIN for ts, ok in plan.dumps if not ok and ts >= lookback]
    truth = {"scenario": "backups", "instance": INSTANCE, "vault": VAULT,
             "failed_job_ids": failed_jobs, "failed_dump_times": sorted(iso(ts) for ts in failed_dumps),
             "failed_backups": len(failed_jobs) + len(failed_dumps),
             "last_good_snapshot": good_id, "snapshot_age_hours": round((end - good) / H, 1),
             "pre_migration_snapshot": PRE_MIGRATION, "pre_migration_progress": 35,
             "on_demand_failed_at": iso(plan.on_demand), "pre_migration_at": iso(plan.pre_migration),
             "retention_error": RETENTION_ERROR,
             "retention_failures": sum(1 for ts in plan.retention if ts > plan.change and ts + 6 * MIN >= lookback),
             "last_dump": dumps[0] if dumps else None}
    incident = incident_fields("SANDBOX-BACKUPS", "Backups failing; migration ran without a restore point", "P2", t)
    resources = {"rds": {"instance": INSTANCE},
                 "backups": {"vault": VAULT, "bucket": plan.bucket, "prefix": PREFIX, "retention_log_groups": [LOG_GROUP]}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan", "INSTANCE", "VAULT", "BUCKET", "PRE_MIGRATION"]
