"""AWS Backup: a served ``ListBackupJobs`` (moto 5.2 has vaults and plans, no jobs).

Jobs planted by :func:`add_backup_job`, as the API reference describes them: filtered by ``state``,
``backupVaultName``, ``resourceArn``, ``resourceType``, ``createdAfter``/``createdBefore`` and
``completeAfter``/``completeBefore``, newest first, ``maxResults`` 1..1000 (default 1000), paged by
``nextToken``. moto routes a REST API by its URL table, which lacks ``/backup-jobs/``: the installer adds
the route too. A moto server builds a service's routes on the first request to it, so the route exists on
every server whose first AWS Backup request comes after :func:`install_list_backup_jobs` (the sandbox
installs before it starts its server).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from .paging import paginate
from .patching import serve
from .times import aware, epoch_utc

ROUTE = "{0}/backup-jobs/?$"
STATES = ("CREATED", "PENDING", "RUNNING", "ABORTING", "ABORTED", "COMPLETED", "FAILED", "EXPIRED", "PARTIAL")


def install_list_backup_jobs() -> None:
    from moto.backup import urls
    from moto.backup.responses import BackupResponse
    from moto.core.responses import ActionResult

    def list_backup_jobs(self):
        q = {k: (v[0] if isinstance(v, list) else v) for k, v in self.querystring.items()}
        return ActionResult(backup_jobs_page(
            list(getattr(self.backup_backend, "forensics_backup_jobs", [])), state=q.get("state"),
            vault=q.get("backupVaultName"), resource_arn=q.get("resourceArn"), resource_type=q.get("resourceType"),
            created_after=q.get("createdAfter"), created_before=q.get("createdBefore"),
            complete_after=q.get("completeAfter"), complete_before=q.get("completeBefore"),
            max_results=q.get("maxResults"), next_token=q.get("nextToken")))

    urls.url_paths.setdefault(ROUTE, urls.response.dispatch)
    serve(BackupResponse, "list_backup_jobs", list_backup_jobs)


def _when(value) -> dt.datetime | None:
    """Query-string times: ISO-8601 (botocore's default for REST) or epoch seconds."""
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.replace(".", "", 1).isdigit():
        value = float(value)
    return epoch_utc(value)


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
    lo, hi, clo, chi = (_when(v) for v in (created_after, created_before, complete_after, complete_before))

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
    return paginate(selected, "BackupJobs", size, next_token)


def add_backup_job(backup_backend, *, vault: str, resource_arn: str, resource_type: str, created, state: str,
                   completed=None, status_message: str | None = None, percent_done: str | None = None,
                   size_bytes: int | None = None, iam_role_arn: str | None = None, plan_id: str | None = None,
                   job_id: str | None = None) -> dict:
    """A backup job ``ListBackupJobs`` returns, shaped as AWS Backup reports it."""
    if state not in STATES:
        raise ValueError(f"unknown backup job state {state!r}")
    account, region = backup_backend.account_id, backup_backend.region_name
    job_id = job_id or str(uuid.uuid4()).upper()
    job: dict[str, Any] = {
        "AccountId": account, "BackupJobId": job_id, "BackupVaultName": vault,
        "BackupVaultArn": f"arn:aws:backup:{region}:{account}:backup-vault:{vault}", "ResourceArn": resource_arn,
        "ResourceType": resource_type, "ResourceName": resource_arn.rsplit(":", 1)[-1], "CreationDate": aware(created),
        "State": state, "PercentDone": percent_done or ("100.0" if state == "COMPLETED" else "0.0"),
        "IamRoleArn": iam_role_arn or f"arn:aws:iam::{account}:role/service-role/AWSBackupDefaultServiceRole",
        "IsParent": False}
    if completed is not None:
        job["CompletionDate"] = aware(completed)
    if status_message:
        job["StatusMessage"] = status_message
    if size_bytes is not None:
        job["BackupSizeInBytes"] = int(size_bytes)
    if plan_id:
        job["CreatedBy"] = {"BackupPlanId": plan_id, "BackupRuleId": "daily"}
    if state == "COMPLETED":
        job["RecoveryPointArn"] = (f"arn:aws:rds:{region}:{account}:snapshot:awsbackup:job-{job_id.lower()}"
                                   if resource_type == "RDS" else
                                   f"arn:aws:backup:{region}:{account}:recovery-point:{job_id}")
    backup_backend.__dict__.setdefault("forensics_backup_jobs", []).append(job)
    return job
