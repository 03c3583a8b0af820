"""AWS Backup's ``ListBackupJobs`` for the sandbox's in-process moto server (moto 5.2 has vaults and plans,
no jobs).

:func:`install` (idempotent, process-wide, additive: one route and one handler on moto's
``BackupResponse``) serves the jobs planted by :func:`add_backup_job`, as the API reference describes
them: filtered by ``state``, ``backupVaultName``, ``resourceArn``, ``resourceType``, ``createdAfter`` /
``createdBefore`` and ``completeAfter`` / ``completeBefore``, newest first, ``maxResults`` 1..1000
(default 1000), paged by ``nextToken``. A moto server serves a service's routes from the first request
to it on, so install before the first AWS Backup request (the sandbox installs at start).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

_lock = threading.Lock()
ROUTE = "{0}/backup-jobs/?$"
STATES = ("CREATED", "PENDING", "RUNNING", "ABORTING", "ABORTED", "COMPLETED", "FAILED", "EXPIRED", "PARTIAL")


def install() -> None:
    from moto.backup import urls
    from moto.backup.responses import BackupResponse

    with _lock:
        if getattr(getattr(BackupResponse, "list_backup_jobs", None), "forensics_patched", False):
            return
        urls.url_paths.setdefault(ROUTE, urls.response.dispatch)
        BackupResponse.list_backup_jobs = _list_backup_jobs


def _list_backup_jobs(self):
    from moto.core.responses import ActionResult

    q = {k: (v[0] if isinstance(v, list) else v) for k, v in self.querystring.items()}
    jobs = list(getattr(self.backup_backend, "forensics_backup_jobs", []))
    return ActionResult(backup_jobs_page(
        jobs, state=q.get("state"), vault=q.get("backupVaultName"), resource_arn=q.get("resourceArn"),
        resource_type=q.get("resourceType"), created_after=q.get("createdAfter"),
        created_before=q.get("createdBefore"), complete_after=q.get("completeAfter"),
        complete_before=q.get("completeBefore"), max_results=q.get("maxResults"), next_token=q.get("nextToken")))


_list_backup_jobs.forensics_patched = True  # type: ignore[attr-defined]


def _utc(value) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def backup_jobs_page(jobs: list[dict], *, state=None, vault=None, resource_arn=None, resource_type=None,
                     created_after=None, created_before=None, complete_after=None, complete_before=None,
                     max_results=None, next_token=None) -> dict:
    """One ``ListBackupJobs`` page of ``jobs`` (BackupJob dicts), newest first."""
    from moto.core.exceptions import JsonRESTError

    size = int(max_results or 1000)
    if not 1 <= size <= 1000:
        raise JsonRESTError("InvalidParameterValueException", "maxResults must be between 1 and 1000.")
    if state is not None and state not in STATES:
        raise JsonRESTError("InvalidParameterValueException", f"Invalid state {state!r}.")
    lo, hi = _utc(created_after), _utc(created_before)
    clo, chi = _utc(complete_after), _utc(complete_before)

    def keep(j: dict) -> bool:
        done = j.get("CompletionDate")
        return ((state is None or j["State"] == state) and (vault is None or j["BackupVaultName"] == vault)
                and (resource_arn is None or j["ResourceArn"] == resource_arn)
                and (resource_type is None or j.get("ResourceType") == resource_type)
                and (lo is None or j["CreationDate"] >= lo) and (hi is None or j["CreationDate"] <= hi)
                and (clo is None or (done is not None and done >= clo))
                and (chi is None or (done is not None and done <= chi)))

    selected = sorted((j for j in jobs if keep(j)), key=lambda j: (j["CreationDate"], j["BackupJobId"]),
                      reverse=True)
    first = int(next_token) if next_token else 0
    out: dict[str, Any] = {"BackupJobs": selected[first:first + size]}
    if first + size < len(selected):
        out["NextToken"] = str(first + size)
    return out


def add_backup_job(backup_backend, *, vault: str, resource_arn: str, resource_type: str, created, state: str,
                   completed=None, status_message: str | None = None, percent_done: str | None = None,
                   size_bytes: int | None = None, iam_role_arn: str | None = None, plan_id: str | None = None,
                   job_id: str | None = None) -> dict:
    """A backup job ``ListBackupJobs`` returns, shaped as AWS Backup reports it."""
    if state not in STATES:
        raise ValueError(f"unknown backup job state {state!r}")
    account, region = backup_backend.account_id, backup_backend.region_name
    job = {"AccountId": account, "BackupJobId": job_id or str(uuid.uuid4()).upper(), "BackupVaultName": vault,
           "BackupVaultArn": f"arn:aws:backup:{region}:{account}:backup-vault:{vault}",
           "ResourceArn": resource_arn, "ResourceType": resource_type,
           "ResourceName": resource_arn.rsplit(":", 1)[-1], "CreationDate": _utc(created), "State": state,
           "PercentDone": percent_done or ("100.0" if state == "COMPLETED" else "0.0"),
           "IamRoleArn": iam_role_arn or f"arn:aws:iam::{account}:role/service-role/AWSBackupDefaultServiceRole",
           "BackupType": "", "IsParent": False}
    if completed is not None:
        job["CompletionDate"] = _utc(completed)
    if status_message:
        job["StatusMessage"] = status_message
    if size_bytes is not None:
        job["BackupSizeInBytes"] = int(size_bytes)
    if plan_id:
        job["CreatedBy"] = {"BackupPlanId": plan_id, "BackupRuleId": "daily"}
    if state == "COMPLETED":
        job["RecoveryPointArn"] = (f"arn:aws:rds:{region}:{account}:snapshot:awsbackup:job-"
                                   f"{job['BackupJobId'].lower()}" if resource_type == "RDS" else
                                   f"arn:aws:backup:{region}:{account}:recovery-point:{job['BackupJobId']}")
    backup_backend.__dict__.setdefault("forensics_backup_jobs", []).append(job)
    return job
