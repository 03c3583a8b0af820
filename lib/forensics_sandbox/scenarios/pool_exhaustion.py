"""Scenario "pool-exhaustion": the API's database connection pool is exhausted after a deploy.

The story (what an on-call engineer finds): at T0 the service ``scr-api-production`` starts rolling
out task definition ``:42``, which delivers partner webhooks *inline*, inside the request's database
transaction. Each slow webhook call leaves a connection idle in transaction; five minutes later
(the onset) the pools are empty, requests wait 30 s for a connection and fail with SQLAlchemy's
``QueuePool limit of size 5 overflow 10 reached``, the old task still running gets "remaining
connection slots are reserved", ALB 5xx jump from a handful to hundreds a minute, latency from
~80 ms to seconds, RDS DatabaseConnections sits at max_connections, health checks fail and ECS
replaces new tasks, so the rollout never completes. Meanwhile a reporting job runs a slow
unindexed ``ILIKE`` over ``orders`` and a worker's balance update waits on a row lock held by one of
the API's idle transactions.

Times: end = now floored to the minute; T0 = end - 60 min; data from T0 - 60 min; window = [T0 - 30 min, end];
onset = T0 + 5 min. Everything random comes from one seeded generator, so two plays with the same
``now`` plant the same data.

Realism notes: the ALB publishes ``HTTPCode_*`` counts only for minutes that had such responses
(a minute without a 5xx has no datapoint, as in CloudWatch); ``TargetResponseTime`` has 12 samples
per minute so percentiles mean something; ECS service events are newest first.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .. import moto_ext as ext
from ..workload import Workload, create_schema, reset_statements
from .played import Played, register
from .common import (ACCESS_LOG_BUCKET, bucket_for, ACCESS_LOG_PREFIX, API_LOG_GROUP, API_SERVICE, API_STREAM_PREFIX,
                     ECS_CLUSTER, LB_DIMENSION, LB_ID, LB_NAME, MIN, PG_LOG_GROUP, RDS_INSTANCE, app_log_line,
                     epoch_ms, hex_id, incident_fields, put_logs, put_metrics, timeline, uuid4)

SEED = 20261123

# ---- resource names (the environment file's values) ------------------------------------------------
TG_NAME = API_SERVICE
TG_ID = "9c2a6e1f7b3d5a80"
TG_DIMENSION = f"targetgroup/{TG_NAME}/{TG_ID}"
SERVICE = FAMILY = API_SERVICE
LOG_GROUP = API_LOG_GROUP
STREAM_PREFIX = API_STREAM_PREFIX
CONTAINER = "scr-api"
PREVIOUS_REVISION, NEW_REVISION = 41, 42
IMAGE_REPO = "scr-api"
ALARM_5XX = "scr-api-production-5xx-rate"
ALARM_CONNECTIONS = "scr-production-postgres-connections"

# ---- application names in pg_stat_activity ----------------------------------------------------------
API_APP = API_SERVICE
WORKER_APP = "scr-worker"
REPORTS_APP = "scr-reports"

QUEUEPOOL_ERROR = ("sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, "
                   "connection timed out, timeout 30.00 (Background on this error at: "
                   "https://sqlalche.me/e/20/3o7r)")
SLOTS_ERROR = ("sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: "
               "connection to server at \"scr-production-postgres.cq4x8mzk2v1a.eu-west-1.rds.amazonaws.com\" "
               "(10.0.12.45), port 5432 failed: FATAL:  remaining connection slots are reserved for "
               "non-replication superuser connections")
BASELINE_ERROR = "httpx.ReadTimeout: timed out"

SLOW_SQL = ("SELECT date_trunc(%s, o.created_at) AS day, count(*) AS orders, "
            "sum(o.total_cents) AS revenue_cents FROM orders o WHERE o.customer_note ILIKE %s "
            "GROUP BY 1 ORDER BY 1")
SLOW_PARAMS = ("day", "%refund%damaged%")
#: a substring of the slow statement's text as pg_stat_activity and pg_stat_statements show it
SLOW_MARKER = "FROM orders o WHERE o.customer_note ILIKE"
HOLDER_SQL = "UPDATE accounts SET balance_cents = balance_cents - %s, updated_at = now() WHERE id = %s"
WAITER_SQL = "UPDATE accounts SET balance_cents = balance_cents + %s, updated_at = now() WHERE id = %s"
IDLE_TX_SQL = ("SELECT orders.id, orders.status, orders.total_cents, orders.created_at FROM orders "
               "WHERE orders.account_id = %s ORDER BY orders.created_at DESC LIMIT %s")

# ---- evidence outside CloudWatch: ALB access logs in S3, PostgreSQL's own log -----------------------------
#: requests per minute written to the access logs (the sandbox writes a sample: ~1 in 30 of the metrics')
ACCESS_LOG_PER_MINUTE = 40
FAILING_ENDPOINT = "GET /api/v1/orders/{n}"
PG_SLOTS_FATAL = "remaining connection slots are reserved for non-replication superuser connections"

N_IDLE_IN_TX_SELECT = 7  # + the lock holder = 8 idle in transaction
N_IDLE_API = 8
N_IDLE_WORKER = 3
N_WAITERS = 2

# ---- the plan: every planted value, computed before anything is loaded ------------------------------
class Plan:
    """Everything the scenario plants, from ``now`` and the seed (no servers needed: unit-testable)."""

    def __init__(self, now: pd.Timestamp, max_connections: int = 40, account_id: str = "123456789012",
                 region: str = "eu-west-1", seed: int = SEED):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.t = timeline(now)
        self.max_connections = max_connections
        self.account_id = account_id
        self.region = region
        rng, t = self.rng, self.t
        self.minutes = pd.date_range(t["start"], t["end"], freq="min", inclusive="left")
        self.tasks = self._tasks()
        self.deployment_id = f"ecs-svc/{rng.integers(10**18, 9 * 10**18)}"
        self.previous_deployment_id = f"ecs-svc/{rng.integers(10**18, 9 * 10**18)}"
        self.previous_created = t["deploy"] - pd.Timedelta(days=6, hours=3, minutes=17, seconds=41)
        self.images = {PREVIOUS_REVISION: f"2026.11.17-{hex_id(rng, 7)}", NEW_REVISION: f"2026.11.23-{hex_id(rng, 7)}"}
        self.metrics = self._metrics()
        self.log_events = self._logs()
        self.ecs_events = self._ecs_events()
        self.alarms = self._alarms()

    # -- tasks ------------------------------------------------------------------------------------
    def _tasks(self) -> list[dict]:
        t, rng = self.t, self.rng
        d = t["deploy"]

        def task(name, revision, started, stopped, ip, stop_reason=None):
            return {"name": name, "id": hex_id(rng, 32), "revision": revision, "started": started,
                    "stopped": stopped, "ip": ip, "stop_reason": stop_reason}

        return [
            task("old1", PREVIOUS_REVISION, self.t["start"] - pd.Timedelta(days=6), d + pd.Timedelta("3min"),
                 "10.0.1.23", "Scaling activity initiated by (deployment ecs-svc/...)"),
            task("old2", PREVIOUS_REVISION, self.t["start"] - pd.Timedelta(days=6), None, "10.0.2.71"),
            task("new1", NEW_REVISION, d + pd.Timedelta("65s"), d + pd.Timedelta("25min"), "10.0.1.140",
                 "Task failed ELB health checks in (target-group ...)"),
            task("new2", NEW_REVISION, d + pd.Timedelta("68s"), d + pd.Timedelta("45min"), "10.0.2.36",
                 "Task failed ELB health checks in (target-group ...)"),
            task("new3", NEW_REVISION, d + pd.Timedelta("26min"), None, "10.0.1.201"),
            task("new4", NEW_REVISION, d + pd.Timedelta("46min"), None, "10.0.2.158"),
        ]

    def task(self, name: str) -> dict:
        return next(x for x in self.tasks if x["name"] == name)

    def serving(self, ts: pd.Timestamp) -> list[dict]:
        """Tasks that take requests at ``ts`` (30 s after start until they stop)."""
        return [x for x in self.tasks if x["started"] + pd.Timedelta("30s") <= ts
                and (x["stopped"] is None or ts < x["stopped"] - pd.Timedelta("20s"))]

    # -- CloudWatch -------------------------------------------------------------------------------
    def _metrics(self) -> dict[str, list[dict]]:
        """namespace -> MetricData items (one per minute, TargetResponseTime with 12 samples)."""
        rng, t = self.rng, self.t
        n = len(self.minutes)
        idx = np.arange(n)
        before_deploy = self.minutes < t["deploy"]
        after_onset = self.minutes >= t["onset"]
        ramp = ~before_deploy & ~after_onset

        requests = np.clip(1250 + 150 * np.sin(2 * np.pi * idx / 90) + rng.normal(0, 60, n), 1000, 1500).round()
        target_5xx = np.where(after_onset, rng.integers(150, 401, n), rng.integers(0, 4, n))
        elb_5xx = np.where(after_onset, rng.integers(12, 61, n), 0)
        target_4xx = rng.integers(4, 21, n)
        target_2xx = requests - target_5xx - elb_5xx - target_4xx

        latency = []
        for i, m in enumerate(self.minutes):
            if after_onset[i]:
                samples = rng.uniform(2.0, 10.0, 12)
            elif ramp[i]:
                k = int((m - t["deploy"]) / MIN)
                samples = rng.lognormal(np.log(0.08 * 2.4 ** k), 0.3, 12)
            else:
                samples = rng.lognormal(np.log(0.08), 0.3, 12)
            latency.append(np.round(samples, 4))

        conns = np.empty(n)
        conns[before_deploy] = rng.integers(10, 15, before_deploy.sum())
        ramp_len = int(ramp.sum()) + 1  # deploy minute .. onset minute inclusive
        climb = np.linspace(conns[before_deploy][-1], self.max_connections, ramp_len + 1)[1:].round()
        conns[ramp] = climb[:-1]
        conns[after_onset] = self.max_connections
        onset_i = int(np.argmax(after_onset))
        conns[onset_i] = self.max_connections

        rds_cpu = np.where(after_onset, rng.normal(41, 4, n), np.where(ramp, rng.normal(27, 3, n),
                                                                       rng.normal(18, 2, n)))
        ecs_cpu = np.where(after_onset, rng.normal(14, 3, n), np.where(ramp, rng.normal(38, 4, n),
                                                                       rng.normal(31, 3, n)))
        mem_drift = np.clip((self.minutes - t["deploy"]) / pd.Timedelta(minutes=60), 0, 1) * 17
        ecs_mem = 46 + mem_drift + rng.normal(0, 1.2, n)

        healthy, unhealthy = [], []
        for m in self.minutes:
            alive = [x for x in self.tasks if x["started"] + pd.Timedelta("40s") <= m + pd.Timedelta("30s")
                     and (x["stopped"] is None or m < x["stopped"])]
            sick = [x for x in alive if x["revision"] == NEW_REVISION and x["stopped"] is not None
                    and x["stopped"] - pd.Timedelta("3min") <= m]
            healthy.append(len(alive) - len(sick))
            unhealthy.append(len(sick))

        lb = [{"Name": "LoadBalancer", "Value": LB_DIMENSION}]
        lb_tg = lb + [{"Name": "TargetGroup", "Value": TG_DIMENSION}]
        rds = [{"Name": "DBInstanceIdentifier", "Value": RDS_INSTANCE}]
        ecs = [{"Name": "ClusterName", "Value": ECS_CLUSTER}, {"Name": "ServiceName", "Value": SERVICE}]

        def items(name, dims, values, unit, skip_zero=False):
            out = []
            for m, v in zip(self.minutes, values):
                if skip_zero and v == 0:
                    continue  # the ALB publishes no HTTPCode_* datapoint for a minute without one
                out.append({"MetricName": name, "Dimensions": dims, "Timestamp": m.to_pydatetime(),
                            "Value": float(v), "Unit": unit})
            return out

        alb = (items("RequestCount", lb, requests, "Count")
               + items("HTTPCode_Target_2XX_Count", lb, target_2xx, "Count", skip_zero=True)
               + items("HTTPCode_Target_4XX_Count", lb, target_4xx, "Count", skip_zero=True)
               + items("HTTPCode_Target_5XX_Count", lb, target_5xx, "Count", skip_zero=True)
               + items("HTTPCode_ELB_5XX_Count", lb, elb_5xx, "Count", skip_zero=True)
               + items("HealthyHostCount", lb_tg, healthy, "Count")
               + items("UnHealthyHostCount", lb_tg, unhealthy, "Count"))
        alb += [{"MetricName": "TargetResponseTime", "Dimensions": lb, "Timestamp": m.to_pydatetime(),
                 "Values": [float(v) for v in samples], "Unit": "Seconds"}
                for m, samples in zip(self.minutes, latency)]
        self.series = {
            "RequestCount": requests, "HTTPCode_Target_5XX_Count": target_5xx, "HTTPCode_ELB_5XX_Count": elb_5xx,
            "TargetResponseTime": latency, "DatabaseConnections": conns, "HealthyHostCount": np.array(healthy),
        }
        return {
            "AWS/ApplicationELB": alb,
            "AWS/RDS": (items("DatabaseConnections", rds, conns, "Count")
                        + items("CPUUtilization", rds, np.round(rds_cpu, 2), "Percent")),
            "AWS/ECS": (items("CPUUtilization", ecs, np.round(ecs_cpu, 2), "Percent")
                        + items("MemoryUtilization", ecs, np.round(ecs_mem, 2), "Percent")),
        }

    # -- CloudWatch alarms ---------------------------------------------------------------------------
    def _alarms(self) -> list[dict]:
        """The alarms the platform has and the state changes they made (deterministic: no draw from the
        generator, so the other planted data stay as they were). CloudWatch evaluates a 1-minute period
        once it is complete, so an alarm goes off a minute (and a few seconds) after the breaching minute."""
        t = self.t
        conns = self.series["DatabaseConnections"]
        full = self.minutes[int(np.argmax(conns >= self.max_connections))]
        lb = [{"Name": "LoadBalancer", "Value": LB_DIMENSION}]
        rds = [{"Name": "DBInstanceIdentifier", "Value": RDS_INSTANCE}]
        five_xx = self.series["HTTPCode_Target_5XX_Count"]
        first_5xx = self.minutes[int(np.argmax(self.minutes >= t["onset"]))]
        return [
            {"name": ALARM_5XX, "namespace": "AWS/ApplicationELB", "metric": "HTTPCode_Target_5XX_Count",
             "dimensions": lb, "statistic": "Sum", "threshold": 50.0, "time": t["onset"] + MIN,
             "description": "scr-api 5xx above 50 a minute", "value": float(five_xx[self.minutes == first_5xx][0]),
             "breach": first_5xx},
            {"name": ALARM_CONNECTIONS, "namespace": "AWS/RDS", "metric": "DatabaseConnections",
             "dimensions": rds, "statistic": "Maximum", "threshold": float(self.max_connections),
             "time": full + MIN + pd.Timedelta(seconds=21),
             "description": "scr-production-postgres connections at max_connections",
             "value": float(conns[self.minutes == full][0]), "breach": full},
        ]

    # -- logs ---------------------------------------------------------------------------------------
    def _logs(self) -> dict[str, list[tuple[int, str]]]:
        """stream name -> [(timestamp ms, message)] sorted by time (int milliseconds throughout: fast)."""
        r = random.Random(self.seed + 7)
        t = self.t
        start_ms, end_ms, onset_ms = epoch_ms(t["start"]), epoch_ms(t["end"]), epoch_ms(t["onset"])
        never = 2**62
        spans = [(x, epoch_ms(x["started"]), epoch_ms(x["stopped"]) if x["stopped"] is not None else never)
                 for x in self.tasks]
        streams: dict[str, list[tuple[int, str]]] = {f"{STREAM_PREFIX}/{x['id']}": [] for x, _, stop in spans
                                                     if stop > start_ms}
        alb_ips = ("10.0.1.84", "10.0.2.117", "10.0.1.9", "10.0.2.230")
        report_days = [str((t["end"] - pd.Timedelta(days=d)).date()) for d in range(1, 30)]

        def emit(task, ms, message):
            streams[f"{STREAM_PREFIX}/{task['id']}"].append((ms, message))

        def serving(ms):  # tasks that take requests: 30 s after start until 20 s before they stop
            return [x for x, a, b in spans if a + 30_000 <= ms < b - 20_000]

        def arrivals(n, minute_ms):  # (ms, task) of n requests in a minute: those a serving task takes
            for _ in range(n):
                ms = minute_ms + r.randrange(60_000)
                tasks = serving(ms)
                if tasks:
                    yield ms, r.choice(tasks)

        phrases = {200: "OK", 201: "Created", 401: "Unauthorized", 404: "Not Found",
                   422: "Unprocessable Entity", 500: "Internal Server Error", 503: "Service Unavailable"}

        def access(method, path, status):
            return (f'INFO:     {r.choice(alb_ips)}:{r.randrange(32768, 61000)} - "{method} {path} HTTP/1.1" '
                    f"{status} {phrases[status]}")

        kinds = list(range(8))
        weights = [.26, .2, .1, .12, .1, .1, .06, .06]

        def request():
            kind = r.choices(kinds, weights)[0]
            acct, order = r.randrange(1, 51), r.randrange(1, 400_001)
            if kind == 0:
                path = f"/api/v1/orders?status={r.choice(('paid', 'pending', 'shipped'))}&page={r.randrange(1, 9)}"
                return "GET", path, 200, "scr_api.orders", acct
            return {1: ("GET", f"/api/v1/orders/{order}", 200, "scr_api.orders", acct),
                    2: ("POST", "/api/v1/orders", 201, "scr_api.orders", acct),
                    3: ("GET", f"/api/v1/accounts/{acct}", 200, "scr_api.accounts", acct),
                    4: ("GET", f"/api/v1/accounts/{acct}/balance", 200, "scr_api.accounts", acct),
                    5: ("POST", "/api/v1/payments", 201, "scr_api.payments", acct),
                    6: ("POST", f"/api/v1/orders/{order}/refunds", 201, "scr_api.refunds", acct),
                    7: ("GET", f"/api/v1/reports/daily?date={r.choice(report_days)}", 200, "scr_api.reports",
                        acct)}[kind]

        # startup / shutdown lines of the tasks that start or stop inside the window
        for x, a, b in spans:
            if start_ms <= a < end_ms:
                emit(x, a, "INFO:     Started server process [1]")
                emit(x, a + 5, "INFO:     Waiting for application startup.")
                emit(x, a + 2400, app_log_line(
                    a + 2400, "INFO", "scr_api.main", "-",
                    f"starting scr-api {self.images[x['revision']]} task_definition={FAMILY}:{x['revision']} "
                    "db_pool_size=5 db_max_overflow=10 db_pool_timeout=30 webhook_delivery=inline"))
                emit(x, a + 2600, "INFO:     Application startup complete.")
                emit(x, a + 2601, "INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)")
            if start_ms <= b < end_ms:
                s = b - 2000
                emit(x, s, "INFO:     Shutting down")
                emit(x, s + 300, "INFO:     Waiting for application shutdown.")
                emit(x, s + 400, "INFO:     Application shutdown complete.")
                emit(x, s + 500, "INFO:     Finished server process [1]")

        requests = self.series["RequestCount"]
        errors_5xx = self.series["HTTPCode_Target_5XX_Count"]
        next_baseline = start_ms + r.randrange(4, 12) * 60_000 + r.randrange(60_000)
        for i, m in enumerate(range(start_ms, end_ms, 60_000)):
            incident = m >= onset_ms
            # ALB health checks: every target, from two ALB nodes, every 30 s
            for x, a, b in spans:
                for off in (3100, 17400, 33100, 47400):
                    ms = m + off + r.randrange(400)
                    if a + 30_000 <= ms < b:
                        failing = incident and x["revision"] == NEW_REVISION and r.random() < 0.55
                        emit(x, ms, access("GET", "/health", 503 if failing else 200))
            # request traffic (the access log is sampled at 2 %)
            for ms, x in arrivals(int(requests[i] / 50), m):
                method, path, status, logger, acct = request()
                if r.random() < 0.04:
                    status = r.choice((401, 404, 422))
                if r.random() < 0.25:
                    msg = {"scr_api.orders": f"order listing account_id={acct} rows={r.randrange(50)}",
                           "scr_api.accounts": f"account lookup account_id={acct}",
                           "scr_api.payments": f"payment captured account_id={acct} amount_cents={r.randrange(500, 90000)}",
                           "scr_api.refunds": f"refund queued account_id={acct}",
                           "scr_api.reports": f"daily report served account_id={acct} cache=hit"}[logger]
                    emit(x, ms, app_log_line(ms, "INFO", logger, hex_id(r, 12), msg))
                emit(x, ms + r.randrange(20, 160), access(method, path, status))
            # the rare error of every day: a partner webhook times out
            while next_baseline < m + 60_000:
                ms = next_baseline
                tasks = serving(ms)
                if tasks:
                    host = r.choice(("hooks.acme-logistics.example", "api.partner-billing.example"))
                    emit(r.choice(tasks), ms, app_log_line(
                        ms, "ERROR", "scr_api.webhooks", hex_id(r, 12),
                        f"webhook delivery failed account_id={r.randrange(1, 51)} "
                        f"url=https://{host}/v2/events attempt=3/3: {BASELINE_ERROR}"))
                next_baseline += int(r.uniform(7, 16) * 60_000)
            if not incident:
                continue
            # the incident: pools empty, requests wait 30 s for a connection and fail
            for ms, x in arrivals(int(errors_5xx[i] / 8), m):
                method, path, _status, _logger, _acct = request()
                rid = hex_id(r, 12)
                if x["revision"] == NEW_REVISION:
                    if r.random() < 0.2:
                        emit(x, ms, app_log_line(ms, "ERROR", "uvicorn.error", rid,
                                                 "Exception in ASGI application\n" + _traceback()))
                    else:
                        emit(x, ms, app_log_line(ms, "ERROR", "scr_api.db", rid,
                                                 f"{method} {path} failed after {30000 + r.randrange(1, 60)} ms: "
                                                 f"{QUEUEPOOL_ERROR}"))
                else:
                    emit(x, ms, app_log_line(ms, "ERROR", "scr_api.db", rid, f"{method} {path} failed: {SLOTS_ERROR}"))
                emit(x, ms + 3, access(method, path, 500))
            if r.random() < 0.3:
                ms = m + r.randrange(60_000)
                tasks = [x for x in serving(ms) if x["revision"] == NEW_REVISION]
                if tasks:
                    emit(r.choice(tasks), ms, app_log_line(
                        ms, "WARNING", "scr_api.webhooks", hex_id(r, 12),
                        f"inline webhook delivery took {r.uniform(8, 29):.1f}s account_id={r.randrange(1, 51)} "
                        "(transaction kept open)"))
        for events in streams.values():
            events.sort(key=lambda e: e[0])
        return {k: v for k, v in streams.items() if v}

    # -- ECS events ---------------------------------------------------------------------------------
    def _ecs_events(self) -> list[dict]:
        rng, t = self.rng, self.t
        d = t["deploy"]
        tg_arn = self.target_group_arn
        svc = f"(service {SERVICE})"
        tid = {x["name"]: x["id"] for x in self.tasks}
        rows = [
            (self.previous_created + pd.Timedelta("40s"), f"{svc} has started 2 tasks: (task {hex_id(rng, 32)}) (task {hex_id(rng, 32)})."),
            (self.previous_created + pd.Timedelta("6min 12s"), f"{svc} (deployment {self.previous_deployment_id}) deployment completed."),
            (self.previous_created + pd.Timedelta("6min 40s"), f"{svc} has reached a steady state."),
            (t["start"] - pd.Timedelta("5h 47min"), f"{svc} has reached a steady state."),
            (t["start"] + pd.Timedelta("13min 8s"), f"{svc} has reached a steady state."),
            (d + pd.Timedelta("21s"), f"{svc} has started 2 tasks: (task {tid['new1']}) (task {tid['new2']})."),
            (d + pd.Timedelta("1min 49s"), f"{svc} registered 2 targets in (target-group {tg_arn})"),
            (d + pd.Timedelta("2min 14s"), f"{svc} has begun draining connections on 1 tasks."),
            (d + pd.Timedelta("2min 15s"), f"{svc} deregistered 1 targets in (target-group {tg_arn})"),
            (d + pd.Timedelta("3min 2s"), f"{svc} has stopped 1 running tasks: (task {tid['old1']})."),
        ]
        for sick, repl in (("new1", "new3"), ("new2", "new4")):
            stop = self.task(sick)["stopped"]
            rows += [
                (stop - pd.Timedelta("1min 10s"), f"{svc} (task {tid[sick]}) (port 8000) is unhealthy in "
                 f"(target-group {tg_arn}) due to (reason Health checks failed with these codes: [503])."),
                (stop - pd.Timedelta("40s"), f"{svc} has begun draining connections on 1 tasks."),
                (stop - pd.Timedelta("39s"), f"{svc} deregistered 1 targets in (target-group {tg_arn})"),
                (stop, f"{svc} has stopped 1 running tasks: (task {tid[sick]})."),
                (self.task(repl)["started"] - pd.Timedelta("20s"), f"{svc} has started 1 tasks: (task {tid[repl]})."),
                (self.task(repl)["started"] + pd.Timedelta("50s"), f"{svc} registered 1 targets in (target-group {tg_arn})"),
            ]
        return [{"id": uuid4(rng), "createdAt": ts, "message": msg} for ts, msg in sorted(rows)]

    # -- names ------------------------------------------------------------------------------------
    @property
    def target_group_arn(self) -> str:
        return f"arn:aws:elasticloadbalancing:{self.region}:{self.account_id}:{TG_DIMENSION}"

    def task_definition_arn(self, revision: int) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account_id}:task-definition/{FAMILY}:{revision}"

    def container_definition(self, revision: int) -> dict:
        env = {"APP_ENV": "production", "DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "10", "DB_POOL_TIMEOUT": "30",
               "WEB_CONCURRENCY": "2", "WEBHOOK_DELIVERY": "inline" if revision >= NEW_REVISION else "queued",
               "DATABASE_HOST": f"{RDS_INSTANCE}.cq4x8mzk2v1a.{self.region}.rds.amazonaws.com"}
        image = self.images.get(revision, f"2026.{1 + revision % 11:02d}.{1 + revision % 27:02d}-{revision:07x}")
        return {
            "name": CONTAINER,
            "image": f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{IMAGE_REPO}:{image}",
            "cpu": 1024, "memory": 2048, "essential": True,
            "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "healthCheck": {"command": ["CMD-SHELL", "curl -fsS http://localhost:8000/health || exit 1"],
                            "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 20},
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": LOG_GROUP, "awslogs-region": self.region, "awslogs-stream-prefix": "ecs",
                "awslogs-multiline-pattern": r"^(\d{4}-\d{2}-\d{2} |INFO: |WARNING: |ERROR: )"}},
        }


# ---- evidence outside CloudWatch ---------------------------------------------------------------------------
def access_log_lines(plan: Plan) -> list[tuple[pd.Timestamp, str]]:
    """A sample of the API's requests as the ALB logs them: from the onset, the orders endpoint (the one
    that holds a database connection) fails with 500s and 504s after seconds of waiting; checkout fails
    now and then; the catalogue (served from cache) and the profile keep answering."""
    from ..s3_evidence import alb_line

    rng = np.random.default_rng(plan.seed + 17)  # its own stream: the rest of the plan is unchanged
    t = plan.t
    endpoints = [("GET", "/api/v1/orders/{}", 0.35), ("POST", "/api/v1/checkout", 0.15),
                 ("GET", "/api/v1/catalog/items/{}", 0.35), ("GET", "/api/v1/me", 0.15)]
    weights = [w for *_, w in endpoints]
    clients = [f"198.51.100.{i}" for i in range(2, 40)] + [f"203.0.113.{i}" for i in range(100, 120)]
    agents = ["Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
              "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36", "scr-mobile/5.12.0 (iOS 18.1)"]
    tg = plan.target_group_arn
    out = []
    for minute in plan.minutes:
        serving = plan.serving(minute) or plan.tasks[:1]
        for k in range(ACCESS_LOG_PER_MINUTE):
            ts = minute + pd.Timedelta(seconds=float(rng.uniform(0, 60)))
            verb, path, _ = endpoints[rng.choice(len(endpoints), p=weights)]
            path = path.format(int(rng.integers(1000, 99999)))
            task = serving[int(rng.integers(len(serving)))]
            latency = float(rng.lognormal(np.log(0.06), 0.3))
            elb_status = target_status = 200
            target = f"{task['ip']}:8000"
            failing = ts >= t["onset"] and (path.startswith("/api/v1/orders/") and rng.random() < 0.8
                                            or path == "/api/v1/checkout" and rng.random() < 0.3)
            if ts >= t["deploy"] and path.startswith("/api/v1/orders/"):
                latency = float(rng.uniform(2.0, 10.0)) if ts >= t["onset"] else latency * 4
            if failing:
                if rng.random() < 0.25:  # the ALB gave up waiting: 504, no target status
                    elb_status, target_status, latency = 504, None, None
                else:
                    elb_status = target_status = 500
            out.append((ts, alb_line(
                time=ts, elb=LB_DIMENSION, client=f"{clients[int(rng.integers(len(clients)))]}:{int(rng.integers(1024, 65535))}",
                target=target, request=f"{verb} https://api.scr.example:443{path} HTTP/2.0",
                user_agent=agents[int(rng.integers(len(agents)))], elb_status=elb_status,
                target_status=target_status, target_time=latency, target_group_arn=tg,
                trace_id=f"Root=1-{int(ts.timestamp()):08x}-{rng.bytes(12).hex()}",
                error_reason="TargetResponseTimeout" if elb_status == 504 else None)))
    return out


def pg_log_lines(plan: Plan) -> dict[str, list[tuple[int, str]]]:
    """PostgreSQL's own log (RDS export): checkpoints all along, and from the onset the connection
    attempts refused because the slots are taken."""
    from ..s3_evidence import rds_log_line

    rng = np.random.default_rng(plan.seed + 23)
    t = plan.t
    lines = []
    for minute in plan.minutes:
        if minute.minute % 5 == 0:
            lines.append((minute, rds_log_line(minute, "LOG", "checkpoint starting: time", client="[local]",
                                               user="rdsadmin", database="rdsadmin", pid=1234)))
        if minute >= t["onset"]:
            for _ in range(int(rng.integers(2, 6))):
                ts = minute + pd.Timedelta(seconds=float(rng.uniform(0, 60)))
                task = plan.tasks[int(rng.integers(len(plan.tasks)))]
                lines.append((ts, rds_log_line(ts, "FATAL", PG_SLOTS_FATAL, client=f"{task['ip']}({int(rng.integers(30000, 60000))})",
                                               pid=int(rng.integers(20000, 30000)))))
    lines.sort(key=lambda x: x[0])
    return {f"{RDS_INSTANCE}.0": [(epoch_ms(ts), line) for ts, line in lines]}


# ---- loading ----------------------------------------------------------------------------------------
def load_aws(sb, plan: Plan) -> dict:
    """Put the plan into the sandbox's moto server; returns what the truth needs from AWS."""
    t = plan.t
    # CloudWatch
    cw = sb.client("cloudwatch")
    for namespace, items in plan.metrics.items():
        put_metrics(cw, namespace, items, batch=150)

    # Logs
    n_events = put_logs(sb.client("logs"), LOG_GROUP, plan.log_events)
    pg_log = pg_log_lines(plan)
    put_logs(sb.client("logs"), PG_LOG_GROUP, pg_log)
    # ALB access logs, delivered to S3 as the load balancer would
    from ..s3_evidence import put_alb_logs

    requests = access_log_lines(plan)
    put_alb_logs(sb.client("s3"), bucket_for(ACCESS_LOG_BUCKET, sb.account_id), ACCESS_LOG_PREFIX, sb.account_id, sb.region, LB_DIMENSION,
                 requests)

    # EC2 network + ALB + target group
    ec2 = sb.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{sb.region}{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    alb_sg = ec2.create_security_group(GroupName="scr-production-alb", Description="ALB", VpcId=vpc)["GroupId"]
    task_sg = ec2.create_security_group(GroupName="scr-api-production", Description="API tasks",
                                        VpcId=vpc)["GroupId"]
    elb = sb.client("elbv2")
    lb_arn = elb.create_load_balancer(Name=LB_NAME, Subnets=subnets, SecurityGroups=[alb_sg], Scheme="internet-facing",
                                      Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    elb_backend = sb.backend("elbv2")
    lb_arn = ext.rekey_load_balancer(elb_backend, lb_arn, LB_ID)
    tg_arn = elb.create_target_group(Name=TG_NAME, Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip",
                                     HealthCheckPath="/health", HealthCheckIntervalSeconds=30,
                                     HealthyThresholdCount=2, UnhealthyThresholdCount=3,
                                     Matcher={"HttpCode": "200"})["TargetGroups"][0]["TargetGroupArn"]
    tg_arn = ext.rekey_target_group(elb_backend, tg_arn, TG_ID)
    elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    current = [x for x in plan.tasks if x["stopped"] is None]
    elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": x["ip"], "Port": 8000} for x in current])
    ext.set_target_health(elb_backend, tg_arn, plan.task("new4")["ip"], "unhealthy", "Target.FailedHealthChecks",
                          "Health checks failed with these codes: [503]")

    # ECS
    ecs = sb.client("ecs")
    ecs.create_cluster(clusterName=ECS_CLUSTER)
    for revision in range(1, NEW_REVISION + 1):
        ecs.register_task_definition(family=FAMILY, containerDefinitions=[plan.container_definition(revision)],
                                     requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="1024",
                                     memory="2048",
                                     executionRoleArn=f"arn:aws:iam::{plan.account_id}:role/scr-api-execution")
    net = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [task_sg], "assignPublicIp": "DISABLED"}}
    ecs.create_service(cluster=ECS_CLUSTER, serviceName=SERVICE, taskDefinition=f"{FAMILY}:{NEW_REVISION}",
                       desiredCount=2, launchType="FARGATE", networkConfiguration=net,
                       loadBalancers=[{"targetGroupArn": tg_arn, "containerName": CONTAINER, "containerPort": 8000}],
                       deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100,
                                                "deploymentCircuitBreaker": {"enable": False, "rollback": False}})
    new_td, old_td = plan.task_definition_arn(NEW_REVISION), plan.task_definition_arn(PREVIOUS_REVISION)
    common = {"launchType": "FARGATE", "platformVersion": "1.4.0", "platformFamily": "Linux",
              "networkConfiguration": net, "pendingCount": 0}
    last_event = max(e["createdAt"] for e in plan.ecs_events)
    deployments = [
        {**common, "id": plan.deployment_id, "status": "PRIMARY", "taskDefinition": new_td, "desiredCount": 2,
         "runningCount": 2, "failedTasks": 2, "createdAt": t["deploy"], "updatedAt": last_event,
         "rolloutState": "IN_PROGRESS", "rolloutStateReason": f"ECS deployment {plan.deployment_id} in progress."},
        {**common, "id": plan.previous_deployment_id, "status": "ACTIVE", "taskDefinition": old_td,
         "desiredCount": 1, "runningCount": 1, "failedTasks": 0, "createdAt": plan.previous_created,
         "updatedAt": t["deploy"] + pd.Timedelta("3min 2s"), "rolloutState": "COMPLETED",
         "rolloutStateReason": f"ECS deployment {plan.previous_deployment_id} completed."},
    ]
    ext.set_service_history(sb.backend("ecs"), ECS_CLUSTER, SERVICE, deployments=deployments,
                            events=plan.ecs_events, created_at=t["deploy"] - pd.Timedelta(days=212),
                            running_count=3, pending_count=0)

    # RDS
    rds = sb.client("rds")
    rds.create_db_instance(DBInstanceIdentifier=RDS_INSTANCE, DBInstanceClass="db.t4g.medium", Engine="postgres",
                           EngineVersion="15.7", AllocatedStorage=200, StorageType="gp3", DBName="app",
                           MasterUsername="scr_admin", MasterUserPassword="sandbox-not-a-secret",  # noqa: S106
                           MultiAZ=True, BackupRetentionPeriod=7, PreferredBackupWindow="03:00-03:30")
    rds_backend = sb.backend("rds")
    ext.backdate_rds_instance(rds_backend, RDS_INSTANCE, t["deploy"] - pd.Timedelta(days=403, hours=5))
    backup = t["start"] + pd.Timedelta("8min 12s")
    ext.add_rds_event(rds_backend, RDS_INSTANCE, "Backing up DB instance", ["backup"], backup)
    ext.add_rds_event(rds_backend, RDS_INSTANCE, "Finished DB instance backup", ["backup"],
                      backup + pd.Timedelta("11min 37s"))
    # CloudWatch alarms (moto keeps no alarm history: the state changes are planted)
    cw_backend = sb.backend("cloudwatch")
    for a in plan.alarms:
        cw.put_metric_alarm(AlarmName=a["name"], AlarmDescription=a["description"], Namespace=a["namespace"],
                            MetricName=a["metric"], Dimensions=a["dimensions"], Statistic=a["statistic"],
                            Period=60, EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=a["threshold"],
                            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
                            AlarmActions=[f"arn:aws:sns:{plan.region}:{plan.account_id}:scr-oncall-pager"])
        stamp = a["breach"].strftime("%d/%m/%y %H:%M:%S")
        reason = (f"Threshold Crossed: 1 out of the last 1 datapoints [{a['value']} ({stamp})] was greater than "
                  f"or equal to the threshold ({a['threshold']}) (minimum 1 datapoint for OK -> ALARM transition).")
        ext.add_alarm_history(cw_backend, a["name"], "OK", "ALARM", a["time"], reason=reason, reason_data={
            "version": "1.0", "queryDate": a["time"].strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "startDate": a["breach"].strftime("%Y-%m-%dT%H:%M:%S.000+0000"), "statistic": a["statistic"],
            "period": 60, "recentDatapoints": [a["value"]], "threshold": a["threshold"],
            "evaluatedDatapoints": [{"timestamp": a["breach"].strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                                     "sampleCount": 1.0, "value": a["value"]}]})
    return {"load_balancer_arn": lb_arn, "target_group_arn": tg_arn, "log_events": n_events,
            "pg_connection_refusals": sum(PG_SLOTS_FATAL in line for _, line in next(iter(pg_log.values()))),
            "access_log_requests": len(requests),
            "new_task_definition_arn": new_td, "previous_task_definition_arn": old_td}


def start_workload(cluster) -> tuple[Workload, dict]:
    """Tables, then pg_stat_statements_reset(), then the sessions of the incident."""
    create_schema(cluster)
    reset_statements(cluster)
    w = Workload(cluster)
    try:
        holder = w.idle_in_transaction(API_APP, HOLDER_SQL, (1299, 1))
        rng = np.random.default_rng(SEED + 1)
        for acct in rng.choice(np.arange(2, 51), N_IDLE_IN_TX_SELECT, replace=False):
            w.idle_in_transaction(API_APP, IDLE_TX_SQL, (int(acct), 50))
        w.idle(API_APP, N_IDLE_API)
        w.idle(WORKER_APP, N_IDLE_WORKER)
        waiters = [w.blocked(WORKER_APP, WAITER_SQL, (5000 + i, 1)) for i in range(N_WAITERS)]
        # A pause between runs: a report job, not a spinning core (the machine runs the notebooks too).
        slow = w.loop(REPORTS_APP, SLOW_SQL, SLOW_PARAMS, pause=1.0)
        w.wait_ready()
    except BaseException:
        w.stop()
        raise
    counts: dict[str, int] = {}
    for s in w.sessions:
        counts[s.app] = counts.get(s.app, 0) + 1
    return w, {"lock_holder_pid": holder.pid, "blocked_pids": [s.pid for s in waiters], "slow_pid": slow.pid,
               "sessions_by_app": counts}


@register("pool-exhaustion")
def play(sb) -> Played:
    # The PostgreSQL side waits on the server most of the time, the AWS side is Python: run them together.
    with ThreadPoolExecutor(1, thread_name_prefix="sandbox-pg") as pool:
        pg_future = pool.submit(lambda: start_workload(sb.cluster))
        try:
            plan = Plan(sb.now, max_connections=sb.max_connections, account_id=sb.account_id, region=sb.region)
            aws = load_aws(sb, plan)
        except BaseException:
            try:
                pg_future.result()[0].stop()
            except BaseException:  # noqa: BLE001 - the first error is the one to report
                pass
            raise
        workload, pg = pg_future.result()
    t = plan.t
    queuepool = [(ts, msg) for events in plan.log_events.values() for ts, msg in events if "QueuePool limit" in msg]
    truth = {
        "scenario": "pool-exhaustion",
        "data_start": t["start"], "window_start": t["window_start"], "window_end": t["end"], "deploy_time": t["deploy"], "onset": t["onset"],
        "deployment_id": plan.deployment_id, "previous_deployment_id": plan.previous_deployment_id,
        "new_task_definition": f"{FAMILY}:{NEW_REVISION}", "previous_task_definition": f"{FAMILY}:{PREVIOUS_REVISION}",
        "new_task_definition_arn": aws["new_task_definition_arn"],
        "previous_task_definition_arn": aws["previous_task_definition_arn"],
        "max_connections": sb.cluster.max_connections,
        "idle_in_transaction_app": API_APP, "idle_in_transaction_count": N_IDLE_IN_TX_SELECT + 1,
        "top_holder": API_APP, "sessions_by_app": pg["sessions_by_app"],
        "slow_statement": SLOW_MARKER, "slow_app": REPORTS_APP, "slow_pid": pg["slow_pid"],
        "blocked_app": WORKER_APP, "blocker_app": API_APP,
        "lock_holder_pid": pg["lock_holder_pid"], "blocked_pids": pg["blocked_pids"],
        "error_signature": "QueuePool limit of size 5 overflow 10 reached",
        "baseline_error_signature": BASELINE_ERROR,
        "first_error_time": pd.Timestamp(min(ts for ts, _ in queuepool), unit="ms", tz="UTC"),
        "queuepool_error_events": len(queuepool), "log_events": aws["log_events"],
        "log_group": LOG_GROUP, "load_balancer": LB_DIMENSION, "target_group": TG_DIMENSION,
        "load_balancer_arn": aws["load_balancer_arn"], "target_group_arn": aws["target_group_arn"],
        "ecs_cluster": ECS_CLUSTER, "ecs_service": SERVICE, "rds_instance": RDS_INSTANCE,
        "old_tasks": [x["id"] for x in plan.tasks if x["revision"] == PREVIOUS_REVISION],
        "new_tasks": [x["id"] for x in plan.tasks if x["revision"] == NEW_REVISION],
        "alarms": {a["name"]: {"state": "ALARM", "time": a["time"], "metric": a["metric"]} for a in plan.alarms},
        "failing_endpoint": FAILING_ENDPOINT, "access_log_requests": aws["access_log_requests"],
        "pg_log_group": PG_LOG_GROUP, "pg_connection_refusals": aws["pg_connection_refusals"],
    }
    incident = incident_fields("SANDBOX-POOL-EXHAUSTION",
                               f"scr-api 5xx spike and timeouts after deploy of {FAMILY}:{NEW_REVISION}", "P1", t)
    resources = {
        "alb": {"load_balancer": LB_DIMENSION, "target_group": TG_DIMENSION,
                "access_logs": {"bucket": bucket_for(ACCESS_LOG_BUCKET, sb.account_id), "prefix": ACCESS_LOG_PREFIX}},
        "ecs": {"cluster": ECS_CLUSTER, "services": [SERVICE]},
        "rds": {"instance": RDS_INSTANCE},
        "logs": {"app": [LOG_GROUP]},
    }
    return Played(truth=truth, incident=incident, resources=resources, workloads=[workload])


def _traceback() -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/app/.venv/lib/python3.12/site-packages/sqlalchemy/engine/base.py", line 145, in __init__\n'
        "    self._dbapi_connection = engine.raw_connection()\n"
        '  File "/app/.venv/lib/python3.12/site-packages/sqlalchemy/pool/base.py", line 1264, in _checkout\n'
        "    rec = pool._do_get()\n"
        '  File "/app/.venv/lib/python3.12/site-packages/sqlalchemy/pool/impl.py", line 157, in _do_get\n'
        "    raise exc.TimeoutError(\n"
        f"{QUEUEPOOL_ERROR}"
    )


__all__ = ["play", "Plan", "load_aws", "start_workload"]
