"""The pool-exhaustion scenario's plan: every value it plants, computed from ``now`` and the seed before
anything is loaded (no servers needed: unit-testable)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from ..common import (
    app_log_line, ECS_CLUSTER, epoch_ms, hex_id, LB_DIMENSION, MIN, RDS_INSTANCE, timeline, uuid4,
)
from .names import (
    ALARM_5XX, ALARM_CONNECTIONS, BASELINE_ERROR, CONTAINER, FAMILY, IMAGE_REPO, LOG_GROUP,
    NEW_REVISION, PREVIOUS_REVISION, QUEUEPOOL_ERROR, SEED, SERVICE, SLOTS_ERROR, STREAM_PREFIX,
    TG_DIMENSION, _traceback,
)


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
