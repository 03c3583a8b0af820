"""Backups: snapshots, AWS Backup jobs, RDS backup events, the backup jobs' logs, the dumps in S3 (001 §3f, §3j).

Everything after the snapshots is read over the session's ``backup_window`` (``backups.lookback_hours`` up to
the window's end): a daily job that failed last night is outside an hour-long incident window."""

from __future__ import annotations

from .. import defaults
from ..sources import backups
from ..sources.call import Call
from .core import events, log_events

#: The job logs' lines about backups and retention (filter terms are case-sensitive: both spellings).
BACKUP_LOG_PATTERN = "?backup ?Backup ?BACKUP ?retention ?Retention ?RETENTION ?pg_dump ?cleanup ?purge ?snapshot"
BACKUP_LOG_REGEX = r"(?i)backup|retention|pg_dump|cleanup|purge|snapshot"

events("rds_snapshots", "rds:DescribeDBSnapshots", ["rds"],
       lambda inc: backups.snapshots_call(inc.env["rds"]["instance"], aws=inc.aws),
       backups.SNAPSHOT_COLUMNS, source="rds",
       doc="Every snapshot of the RDS instance (automated, manual, AWS Backup's): created, type, status, progress.")
events("backup_jobs", "backup:ListBackupJobs", ["backups"],
       lambda inc: backups.jobs_call(inc.backup_window, inc.env["backups"].get("vault"), aws=inc.aws),
       backups.JOB_COLUMNS, source="backup",
       doc="AWS Backup jobs created in the lookback (backups.lookback_hours) with their state and status message.")
events("rds_backup_events", "rds:DescribeEvents", ["rds"],
       lambda inc: backups.backup_events_call(inc.env["rds"]["instance"], inc.backup_window, aws=inc.aws),
       backups.BACKUP_EVENT_COLUMNS, source="rds",
       doc="RDS events of category backup about the instance in the lookback (failures are kind backup-failed).")
log_events("backup_job_logs", ("backups.retention_log_groups",),
           lambda inc: list(inc.env["backups"]["retention_log_groups"]), BACKUP_LOG_PATTERN, BACKUP_LOG_REGEX,
           window=lambda inc: inc.backup_window,
           doc="The retention and backup jobs' log lines over the lookback (backups.retention_log_groups).")


def _objects_call(inc) -> Call:
    bucket, prefix = inc.env["backups"]["bucket"], inc.env["backups"].get("prefix")
    return Call(None, {"Bucket": bucket, "Prefix": prefix, "max_objects": defaults.BACKUP_MAX_OBJECTS},
                lambda: backups.backup_objects(bucket, prefix, aws=inc.aws, max_objects=defaults.BACKUP_MAX_OBJECTS))


events("backup_objects", "s3:ListObjectsV2", ["backups.bucket"], _objects_call, backups.OBJECT_COLUMNS, source="s3",
       doc="The application's own dumps in S3 (backups.bucket/prefix): key, size, last modified.")
