"""Backups: RDS snapshots, AWS Backup jobs, RDS backup events and the application's dumps in S3.

Snapshots and jobs are change events (``[timestamp, source, resource, kind, message, ...]``): kind
``backup`` when they completed or are still running, ``backup-failed`` when they did not complete, so
the overview's timeline shows them. A snapshot's ``timestamp`` is its ``SnapshotCreateTime``, a job's its
``CreationDate``.

- ``DescribeDBSnapshots`` returns automated and manual snapshots by default; snapshots AWS Backup made
  (``awsbackup``) only when asked by type: both are asked.
- ``ListBackupJobs`` keeps jobs for 30 days; RDS keeps events for 14 days.
"""

from __future__ import annotations

import pandas as pd

from .. import contracts
from ..window import IncidentWindow, iso
from . import _aws_client, _aws_errors, _empty, _typed
from .call import Call

BASE = contracts.EVENT_COLUMNS
SNAPSHOT_COLUMNS = {**BASE, "snapshot_id": "str", "snapshot_type": "str", "status": "str", "progress": "float64",
                    "instance": "str", "engine_version": "str", "encrypted": "boolean", "storage_gib": "Int64",
                    "original_create_time": "ts", "arn": "str"}
JOB_COLUMNS = {**BASE, "job_id": "str", "state": "str", "vault": "str", "resource_arn": "str",
               "resource_type": "str", "completed": "ts", "status_message": "str", "percent_done": "float64",
               "size_bytes": "Int64", "iam_role_arn": "str", "plan_id": "str"}
BACKUP_EVENT_COLUMNS = {**BASE, "categories": "str", "source_type": "str", "source_arn": "str"}
OBJECT_COLUMNS = {"last_modified": "ts", "bucket": "str", "key": "str", "size_bytes": "Int64"}

#: Snapshot statuses that will never become a restore point.
FAILED_SNAPSHOT = ("failed", "incompatible-restore", "incompatible-parameters", "incompatible-network")
#: Backup job states that did not produce a recovery point (PARTIAL: some resources only).
FAILED_JOB = ("FAILED", "ABORTED", "EXPIRED", "PARTIAL")
#: RDS event messages that report a backup failing rather than running.
_FAILED_WORDS = r"(?i)\b(?:fail\w*|unable|could not|cannot|error)\b"
SNAPSHOT_TYPES = (None, "awsbackup")


def _frame(rows: list[dict], schema: dict) -> pd.DataFrame:
    if not rows:
        return _empty(schema)
    df = _typed(pd.DataFrame(rows), schema)
    return df.sort_values("timestamp", kind="stable", na_position="last").reset_index(drop=True)


def rds_snapshots(instance: str, *, aws: dict | None = None, client=None) -> pd.DataFrame:
    """Every snapshot of the DB instance (automated, manual and AWS Backup's), oldest first."""
    rds = _aws_client("rds", aws, client)
    rows, seen = [], set()
    for snapshot_type in SNAPSHOT_TYPES:
        args = {"DBInstanceIdentifier": instance, **({"SnapshotType": snapshot_type} if snapshot_type else {})}
        with _aws_errors("rds", f"DescribeDBSnapshots for {instance}"):
            for page in rds.get_paginator("describe_db_snapshots").paginate(**args):
                for s in page.get("DBSnapshots") or []:
                    sid = s.get("DBSnapshotIdentifier")
                    if sid in seen:
                        continue
                    seen.add(sid)
                    status = (s.get("Status") or "").lower()
                    progress = s.get("PercentProgress")
                    failed = status in FAILED_SNAPSHOT
                    rows.append({
                        "timestamp": s.get("SnapshotCreateTime"), "source": "rds", "resource": sid,
                        "kind": contracts.BACKUP_FAILED if failed else contracts.BACKUP,
                        "message": f"{s.get('SnapshotType')} snapshot {sid} of {instance}: {status}"
                                   + (f" ({progress} %)" if progress is not None and status != "available" else ""),
                        "snapshot_id": sid, "snapshot_type": s.get("SnapshotType"), "status": status,
                        "progress": progress, "instance": s.get("DBInstanceIdentifier") or instance,
                        "engine_version": s.get("EngineVersion"), "encrypted": s.get("Encrypted"),
                        "storage_gib": s.get("AllocatedStorage"),
                        "original_create_time": s.get("OriginalSnapshotCreateTime"),
                        "arn": s.get("DBSnapshotArn")})
    return _frame(rows, SNAPSHOT_COLUMNS)


def snapshots_call(instance: str, *, aws: dict | None = None) -> Call:
    """:func:`rds_snapshots` as one :class:`~forensics.sources.call.Call`."""
    return Call(None, {"DBInstanceIdentifier": instance, "SnapshotType": ["default (automated, manual)", "awsbackup"]},
                lambda: rds_snapshots(instance, aws=aws))


def backup_jobs(window: IncidentWindow, *, vault: str | None = None, aws: dict | None = None,
                client=None) -> pd.DataFrame:
    """AWS Backup jobs created in ``window`` (of ``vault`` when given), oldest first."""
    backup = _aws_client("backup", aws, client)
    rows = []
    with _aws_errors("backup", "ListBackupJobs" + (f" of vault {vault}" if vault else "")):
        for page in backup.get_paginator("list_backup_jobs").paginate(**job_arguments(window, vault)):
            for j in page.get("BackupJobs") or []:
                state = j.get("State") or ""
                resource = j.get("ResourceName") or (j.get("ResourceArn") or "").rsplit(":", 1)[-1]
                failed = state in FAILED_JOB
                message = f"AWS Backup job of {j.get('ResourceType')} {resource}: {state}"
                if j.get("StatusMessage"):
                    message += f": {j['StatusMessage']}"
                rows.append({
                    "timestamp": j.get("CreationDate"), "source": "backup", "resource": resource,
                    "kind": contracts.BACKUP_FAILED if failed else contracts.BACKUP, "message": message,
                    "job_id": j.get("BackupJobId"), "state": state, "vault": j.get("BackupVaultName"),
                    "resource_arn": j.get("ResourceArn"), "resource_type": j.get("ResourceType"),
                    "completed": j.get("CompletionDate"), "status_message": j.get("StatusMessage"),
                    "percent_done": pd.to_numeric(j.get("PercentDone"), errors="coerce"),
                    "size_bytes": j.get("BackupSizeInBytes"), "iam_role_arn": j.get("IamRoleArn"),
                    "plan_id": (j.get("CreatedBy") or {}).get("BackupPlanId")})
    return _frame(rows, JOB_COLUMNS)


def job_arguments(window: IncidentWindow, vault: str | None = None) -> dict:
    args = {"ByCreatedAfter": window.start.to_pydatetime(), "ByCreatedBefore": window.end.to_pydatetime()}
    if vault:
        args["ByBackupVaultName"] = vault
    return args


def jobs_call(window: IncidentWindow, vault: str | None = None, *, aws: dict | None = None) -> Call:
    """:func:`backup_jobs` as one :class:`~forensics.sources.call.Call`."""
    return Call(None, {k: iso(v) if k.startswith("ByCreated") else v for k, v in job_arguments(window, vault).items()},
                lambda: backup_jobs(window, vault=vault, aws=aws))


def rds_backup_events(instance: str, window: IncidentWindow, *, aws: dict | None = None,
                      client=None) -> pd.DataFrame:
    """RDS events of category ``backup`` about the instance in ``window``; kind ``backup-failed`` for
    those that report a failure, else ``rds-event``."""
    rds = _aws_client("rds", aws, client)
    rows = []
    args = {"SourceIdentifier": instance, "SourceType": "db-instance", "EventCategories": ["backup"],
            "StartTime": window.start.to_pydatetime(), "EndTime": window.end.to_pydatetime()}
    with _aws_errors("rds", f"DescribeEvents (backup) for {instance}"):
        for page in rds.get_paginator("describe_events").paginate(**args):
            for e in page.get("Events") or []:
                rows.append({"timestamp": e.get("Date"), "source": "rds",
                             "resource": e.get("SourceIdentifier") or instance, "kind": None,
                             "message": e.get("Message"),
                             "categories": ", ".join(e.get("EventCategories") or []) or None,
                             "source_type": e.get("SourceType"), "source_arn": e.get("SourceArn")})
    df = _frame(rows, BACKUP_EVENT_COLUMNS)
    if len(df):
        failed = df["message"].fillna("").str.contains(_FAILED_WORDS, regex=True)
        df["kind"] = failed.map({True: contracts.BACKUP_FAILED, False: contracts.RDS_EVENT}).astype("str")
    return df


def backup_events_call(instance: str, window: IncidentWindow, *, aws: dict | None = None) -> Call:
    """:func:`rds_backup_events` as one :class:`~forensics.sources.call.Call`."""
    return Call(None, {"SourceIdentifier": instance, "SourceType": "db-instance", "EventCategories": ["backup"],
                       **window.as_dict()},
                lambda: rds_backup_events(instance, window, aws=aws))


def backup_objects(bucket: str, prefix: str | None = None, *, aws: dict | None = None, client=None,
                   max_objects: int = 50_000) -> pd.DataFrame:
    """The application's own dumps: every object under ``prefix`` (key, size, last modified), oldest first.
    Stops after ``max_objects`` keys (``attrs['truncated']``)."""
    s3 = _aws_client("s3", aws, client)
    rows, truncated = [], False
    args = {"Bucket": bucket, **({"Prefix": prefix} if prefix else {})}
    with _aws_errors("s3", f"ListObjectsV2 of s3://{bucket}/{prefix or ''}"):
        for page in s3.get_paginator("list_objects_v2").paginate(**args):
            for o in page.get("Contents") or []:
                if len(rows) >= max_objects:
                    truncated = True
                    break
                rows.append({"last_modified": o.get("LastModified"), "bucket": bucket, "key": o.get("Key"),
                             "size_bytes": o.get("Size")})
            if truncated:
                break
    df = _typed(pd.DataFrame(rows), OBJECT_COLUMNS) if rows else _empty(OBJECT_COLUMNS)
    df = df.sort_values("last_modified", kind="stable").reset_index(drop=True)
    df.attrs["truncated"] = truncated
    return df
