"""The shapes every module agrees on, named once: frame columns with one dtype each, event kinds, file names.

Sources produce these frames, the timeline merges them, charts and the overview read them, tests check
them; none of them spells a column list or a kind out again. ``"ts"`` is a UTC timestamp of
:data:`TS_DTYPE`.
"""

from __future__ import annotations

#: The one timestamp dtype of every frame a source returns.
TS_DTYPE = "datetime64[us, UTC]"

#: CloudWatch metrics, long: one row per (query id, timestamp).
METRIC_COLUMNS: dict[str, str] = {"timestamp": "ts", "id": "str", "label": "str", "value": "float64",
                                  "stat": "str", "unit": "str"}
#: Log events (FilterLogEvents, a bounded sample, or an export).
LOG_COLUMNS: dict[str, str] = {"timestamp": "ts", "log_group": "str", "log_stream": "str", "message": "str",
                               "event_id": "str"}
#: Change and timeline events: deployments, service events, stopped tasks, RDS/ElastiCache events,
#: alarm state changes, CloudTrail calls, detected onsets. Sources may add columns after these.
EVENT_COLUMNS: dict[str, str] = {"timestamp": "ts", "source": "str", "resource": "str", "kind": "str",
                                 "message": "str"}

# ---- event kinds (the ``kind`` column); each is produced by the source named beside it ----------------
DEPLOYMENT = "deployment"              # ECS DescribeServices deployments
SERVICE_EVENT = "service-event"        # ECS service events
TASK_STOPPED = "task-stopped"          # ECS stopped tasks
TASK_RUN = "task-run"                  # ECS tasks run outside a service (RunTask: a migration), at their start
RDS_EVENT = "rds-event"                # RDS DescribeEvents
ELASTICACHE_EVENT = "elasticache-event"  # ElastiCache DescribeEvents
FAILOVER = "failover"                  # ElastiCache DescribeEvents about a failover
ALARM = "alarm"                        # CloudWatch DescribeAlarmHistory ("alarm-<state>" with the new state)
ONSET = "onset"                        # analysis.onset episodes put on the timeline
JOB_SILENT = "job-silent"              # analysis.jobs: a job's heartbeat overdue (capture job_events)
JOB_FAILED = "job-failed"              # analysis.jobs: a schedule's first failed invocation (job_events)
BACKUP = "backup"                      # RDS snapshots, AWS Backup jobs (completed or running)
BACKUP_FAILED = "backup-failed"        # AWS Backup jobs failed/aborted/expired/partial, failed snapshots
CERTIFICATE_EXPIRY = "certificate-expiry"  # ACM certificates, dated by their NotAfter
# CloudTrail events keep their API name (eventName) as their kind.

#: What most often causes an incident, most likely first: a deployment beats an RDS event.
CHANGE_KINDS: tuple[str, ...] = (DEPLOYMENT, RDS_EVENT, SERVICE_EVENT)

# ---- the collector ------------------------------------------------------------------------------------
#: application_name of our own PostgreSQL sessions (so they are recognisable, and left out of analyses).
APPLICATION_NAME = "forensics"

# ---- the evidence record's files (evidence.Record builds every path from these; docs/record.md) ---------
PARAMS_FILE = "params.yaml"
MANIFEST_FILE = "manifest.json"
FINDINGS_FILE = "findings.json"
POSTMORTEM_FILE = "postmortem.md"
INDEX_FILE = "index.html"
DATA_DIR = "data"
FIGURES_DIR = "figures"
NOTEBOOKS_DIR = "notebooks"
HTML_DIR = "html"
#: html/<notebook><REPORT_SUFFIX>.html: the notebook's view without code cells
REPORT_SUFFIX = ".report"
#: Scratch folders inside a record while it is written (removed before the manifest is made).
SIDECAR_DIR = ".captures"
FINDINGS_SCRATCH_DIR = ".findings"
#: A notebook's status when the environment configures none of its sources ("not configured", not a problem).
SKIPPED = "skipped"
#: A record being written is ``<captured-at>.partial``; renamed to ``<captured-at>`` when sealed.
PARTIAL_SUFFIX = ".partial"
#: In the incident folder (beside its records): held (flock) by the run writing a record of that incident.
LOCK_FILE = ".lock"
