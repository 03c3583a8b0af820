"""Every default in one place: timeouts, caps, waits. The parameter schema (params.py) and the README quote
these values; nothing else spells them out again.

An environment overrides the ones it names (``aws.read_timeout_s``, ``postgres.statement_timeout_ms``,
``audit.timeout_s``, ``cloudtrail.max_events`` and ``cloudtrail.baseline_hours``); the rest are the tool's.
"""

from __future__ import annotations

# ---- AWS -----------------------------------------------------------------------------------------
#: Every attempt of one AWS call, the first included (botocore adaptive retries: throttling backs off).
AWS_MAX_ATTEMPTS = 7
AWS_CONNECT_TIMEOUT_S = 5
AWS_READ_TIMEOUT_S = 30
#: The collector's identity check (STS) must not hold the run up when AWS is unreachable.
STS_CONNECT_TIMEOUT_S = 3
STS_READ_TIMEOUT_S = 5
STS_MAX_ATTEMPTS = 2

# ---- PostgreSQL (the read-only session) --------------------------------------------------------------
PG_STATEMENT_TIMEOUT_MS = 15_000
PG_LOCK_TIMEOUT_MS = 2_000
PG_IDLE_IN_TRANSACTION_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5
#: How long (at most) slow-queries waits between its two pg_stat_statements snapshots.
PG_STATEMENTS_SECOND_SNAPSHOT_WAIT_S = 8.0

# ---- Logs and trails ---------------------------------------------------------------------------------
#: FilterLogEvents stops after this many events per capture (the frame says ``truncated``).
LOG_MAX_EVENTS = 200_000
#: Logs at volume (forensics.sources.log_volume): the bounded sample signature discovery reads is this many
#: slices of LOG_SAMPLE_SLICE_S seconds spread over the window, plus LOG_SAMPLE_ONSET_SLICES within
#: LOG_SAMPLE_ONSET_SPAN of the onset's first guess, each at most LOG_SAMPLE_PER_SLICE events.
LOG_SAMPLE_SLICES = 24
LOG_SAMPLE_ONSET_SLICES = 12
LOG_SAMPLE_SLICE_S = 10
LOG_SAMPLE_ONSET_SPAN = "15min"
LOG_SAMPLE_PER_SLICE = 300
#: consecutive slices are read by one Insights query while their span holds at most this many events by the
#: per-minute counts (half the 10,000-row limit of one query)
LOG_SAMPLE_PACK_MAX_EVENTS = 5_000
#: Signatures given exact per-minute counts: the most changed in the sample, then the most frequent.
LOG_TOP_BY_CHANGE = 4
LOG_TOP_BY_COUNT = 8
#: One Logs Insights query may run this long before it is stopped; this many run at once (AWS allows 30
#: concurrent queries per account).
INSIGHTS_TIMEOUT_S = 120
INSIGHTS_CONCURRENCY = 8
#: LookupEvents stops after this many events per capture.
CLOUDTRAIL_MAX_EVENTS = 20_000
#: Hours before the window pulled as CloudTrail's baseline of known principals and IPs.
CLOUDTRAIL_BASELINE_HOURS = 24
#: ``cloudtrail.baseline_days``: days of the trail before the window that describe each actor's usual behaviour
#: (forensics.detection.behaviour); days, not hours, so a weekly job or an on-call engineer does not look new
CLOUDTRAIL_BASELINE_DAYS = 14

# ---- Backups and certificates ------------------------------------------------------------------------
#: Hours before the window's end whose backup jobs, RDS backup events and job logs are read.
BACKUP_LOOKBACK_HOURS = 48
#: A newest good snapshot older than this (hours, at the window's end) is stale (daily backups + slack).
BACKUP_MAX_AGE_HOURS = 26
#: A certificate with fewer days left than this is expiring (ACM renews at about 60, warns at 45).
CERT_WARN_DAYS = 30
#: Keys listed under ``backups.prefix`` at most (a dated dump per day for years is a few thousand).
BACKUP_MAX_OBJECTS = 50_000

# ---- The application's audit API ---------------------------------------------------------------------
#: Read timeout of one audit-replay or verify-chain request, seconds.
AUDIT_TIMEOUT_S = 30

# ---- Windows and runs ----------------------------------------------------------------------------------
#: How much time before the incident window metrics and logs are pulled for (the baseline).
CONTEXT = "30min"
#: papermill's per-cell timeout under `forensics run`, seconds.
CELL_TIMEOUT_S = 900
#: Threads pulling the capture plan (each AWS API is also held to its own rate: rates.yaml).
PLAN_THREADS = 8
#: Threads of an interactive notebook's prefetch (forensics.prefetch): fewer than the runner's, since they
#: share the machine with the cells (measured in tests/bench/test_bench_first_chart.py).
PREFETCH_THREADS = 4
#: Objects a delivery-file capture reads at once (forensics.sources.s3_objects.read_each).
S3_READ_THREADS = 8
#: Connections each (shared) boto3 client keeps: every plan thread may be reading S3 delivery files
#: S3_READ_THREADS at a time through the same client (botocore's default of 10 would make urllib3 discard
#: connections and warn).
AWS_MAX_POOL_CONNECTIONS = PLAN_THREADS * S3_READ_THREADS
#: How late, in periods, a scheduled job's run may be before it counts as missing (jobs.heartbeats[].tolerance).
JOB_TOLERANCE = 0.5
