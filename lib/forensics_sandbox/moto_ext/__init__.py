"""What the sandbox adds to its in-process moto server (moto 5.2.x), one module per AWS service.

moto cannot, through any AWS API, give resources a past (ECS deployments and service events, RDS
events), and it lacks a few read paths the notebooks use. The sandbox owns an in-process moto server,
so it sets those on the backend objects here. Nothing here touches forensic code: every result is
read back through plain boto3 against the server.

- :mod:`.server`: one AWS account per server (:func:`isolate_account`), :func:`close_server`,
  :func:`drop_account`, :func:`backend`;
- :mod:`.cloudwatch`: percentile statistics, ``DescribeAlarmHistory`` (:func:`add_alarm_history`);
- :mod:`.rds`: ``DescribeEvents`` time window, :func:`add_rds_event`, :func:`backdate_rds_instance`;
- :mod:`.elbv2`: :func:`set_target_health`, :func:`rekey_load_balancer`, :func:`rekey_target_group`;
- :mod:`.ecs`: :func:`set_service_history`, :func:`set_task_stopped`;
- :mod:`.elasticache`: ``DescribeEvents`` (:func:`add_elasticache_event`);
- :mod:`.cloudtrail`: ``LookupEvents`` (:func:`add_cloudtrail_events`);
- :mod:`.backup`: AWS Backup ``ListBackupJobs`` (:func:`add_backup_job`);
- :mod:`.acm`: certificates with a planted state and past (:func:`set_certificate`, :func:`set_in_use`);
- :mod:`.paging`: the one pagination every served API uses; :mod:`.patching`, :mod:`.times`: the rest
  they share.

:func:`install` applies every patch of :data:`INSTALLERS` once per process (additive: only what moto
answered wrongly, or not at all, changes).
"""

from __future__ import annotations

import threading

from . import acm, backup, cloudtrail, cloudwatch, elasticache, elbv2, logs_insights, rds
from .acm import set_certificate, set_in_use, validation_record
from .backup import add_backup_job, backup_jobs_page
from .cloudtrail import add_cloudtrail_events, cloudtrail_event, cloudtrail_lookup_page
from .cloudwatch import add_alarm_history, alarm_history_page, percentile
from .ecs import set_service_history, set_task_stopped
from .elasticache import add_elasticache_event, elasticache_events_page
from .elbv2 import rekey_load_balancer, rekey_target_group, set_target_health
from .paging import paginate
from .rds import add_rds_event, backdate_rds_instance
from .server import ACCOUNT_HEADER, backend, close_server, drop_account, isolate_account

#: every patch :func:`install` applies, in order: a new served API adds its installer here
INSTALLERS = [
    cloudwatch.install_percentiles,
    rds.install_event_window,
    elbv2.install_target_health,
    cloudtrail.install_lookup,
    elasticache.install_events,
    cloudwatch.install_alarm_history,
    logs_insights.install,  # StartQuery/GetQueryResults/StopQuery run the real query (sandbox/insights.py)
    backup.install_list_backup_jobs,
    acm.install_planted_state,
]

_installed = False
_lock = threading.Lock()


def install() -> None:
    """Patch moto's classes once per process (idempotent, process-wide)."""
    global _installed
    with _lock:
        if _installed:
            return
        for installer in INSTALLERS:
            installer()
        _installed = True


__all__ = [
    "ACCOUNT_HEADER", "INSTALLERS", "install", "isolate_account", "close_server", "backend", "drop_account",
    "percentile", "add_alarm_history", "alarm_history_page",
    "add_rds_event", "backdate_rds_instance",
    "set_target_health", "rekey_load_balancer", "rekey_target_group",
    "set_service_history", "set_task_stopped",
    "add_elasticache_event", "elasticache_events_page",
    "add_cloudtrail_events", "cloudtrail_event", "cloudtrail_lookup_page",
    "paginate", "add_backup_job", "backup_jobs_page", "set_certificate", "set_in_use", "validation_record",
]
