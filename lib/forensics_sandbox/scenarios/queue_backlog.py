"""Scenario "queue-backlog": webhook deliveries time out and the Celery ``webhooks`` queue backs up.

The story: from T0+10 min a partner endpoint (``hooks.partner-a.example``) stops answering within the
10 s read timeout. ``scr.tasks.deliver_webhook`` retries (``retry: Retry in 60s: ReadTimeout(...)``) and,
after its last attempt, fails (``raised unexpected: ReadTimeout(...)``); the ``webhooks`` queue
(CloudWatch ``SCR/Celery`` ``QueueDepth``, dimension ``Queue``) grows about 110 messages a minute while
``default`` and ``retention`` stay flat. At T0+45 min the partner recovers and workers drain the
backlog at about 65 a minute. The ``webhook_deliveries`` table holds every delivery with status,
attempts and last error; the nightly-style retention task fails twice on a statement timeout.
"""

from __future__ import annotations

import random
import uuid

import numpy as np
import pandas as pd
import psycopg

from .played import Played, register
from .common import MIGRATIONS_APP, MIN, WORKER_LOG_GROUP, copy_rows, epoch_ms, incident_fields, log_time, \
    put_logs, put_metrics, timeline

SEED = 20261125
NAMESPACE, METRIC, DIMENSION = "SCR/Celery", "QueueDepth", "Queue"
QUEUES = ("default", "webhooks", "retention")
LOG_GROUP = WORKER_LOG_GROUP
STREAMS = ("ecs/scr-worker/3b9e0d5c7a1f4e28b6c4d2a0e9f71c35", "ecs/scr-worker/c81f5a2e9d304b7f8e6a1c0d3b5f9274")
TABLE = "webhook_deliveries"
TASK = "scr.tasks.deliver_webhook"
RETENTION_TASK = "scr.tasks.enforce_retention"
GROWTH, DRAIN = 110.0, 65.0
PARTNER = "hooks.partner-a.example"
READ_TIMEOUT = (f"ReadTimeout(ReadTimeoutError(\"HTTPSConnectionPool(host='{PARTNER}', port=443): "
                "Read timed out. (read timeout=10)\"))")


class Plan:
    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        self.backlog_start = t["deploy"] + pd.Timedelta(minutes=10)
        self.recovered = t["deploy"] + pd.Timedelta(minutes=45)
        rng = np.random.default_rng(seed)
        self.minutes = m = pd.date_range(t["start"], t["end"], freq="min", inclusive="left")
        n = len(m)
        grow = np.clip((m - self.backlog_start) / MIN, 0, (self.recovered - self.backlog_start) / MIN)
        drain = np.clip((m - self.recovered) / MIN, 0, None)
        base = np.abs(rng.normal(6, 3, n))
        webhooks = base + GROWTH * grow - DRAIN * drain + np.where(grow > 0, rng.normal(0, 12, n), 0)
        self.depth = {
            "default": np.round(np.abs(rng.normal(18, 6, n))),
            "webhooks": np.round(np.maximum(webhooks, 0)),
            "retention": np.round(np.abs(rng.normal(1, 1, n))),
        }
        self.r = random.Random(seed + 1)
        self.log_events = self._logs()
        self.deliveries = self._deliveries()

    def _logs(self) -> dict[str, list[tuple[int, str]]]:
        r, t = self.r, self.t
        out = {s: [] for s in STREAMS}

        def line(ts, level, worker, text):  # Celery's worker log format
            ms = epoch_ms(ts)
            out[r.choice(STREAMS)].append((ms, f"[{log_time(ms)}: {level}/ForkPoolWorker-{worker}] {text}"))

        def task_id():
            return uuid.UUID(int=r.getrandbits(128))

        minute = t["start"]
        while minute < t["end"]:
            failing = self.backlog_start <= minute < self.recovered
            for _ in range(r.randint(6, 10)):  # successes (not selected by the failure filter)
                ts = minute + pd.Timedelta(milliseconds=r.randrange(60_000))
                line(ts, "INFO", r.randint(1, 4), f"Task {TASK}[{task_id()}] succeeded in "
                                                 f"{r.uniform(0.08, 0.6):.3f}s: None")
            if failing:
                for _ in range(r.randint(7, 11)):
                    ts = minute + pd.Timedelta(milliseconds=r.randrange(60_000))
                    line(ts, "INFO", r.randint(1, 4), f"Task {TASK}[{task_id()}] retry: "
                                                     f"Retry in 60s: {READ_TIMEOUT}")
                for _ in range(r.randint(2, 4)):
                    ts = minute + pd.Timedelta(milliseconds=r.randrange(60_000))
                    line(ts, "ERROR", r.randint(1, 4), f"Task {TASK}[{task_id()}] raised "
                                                      f"unexpected: {READ_TIMEOUT}")
            minute += MIN
        for k in (15, 30):
            ts = t["deploy"] + pd.Timedelta(minutes=k, seconds=7)
            line(ts, "ERROR", 2, f"Task {RETENTION_TASK}[{task_id()}] raised unexpected: "
                                 "OperationalError('canceling statement due to statement timeout')")
        return {s: sorted(v) for s, v in out.items()}

    def _deliveries(self) -> list[tuple]:
        r, t = self.r, self.t
        rows = []
        minute = t["start"]
        while minute < t["end"]:
            failing = self.backlog_start <= minute < self.recovered
            for _ in range(r.randint(30, 45)):
                ts = minute + pd.Timedelta(milliseconds=r.randrange(60_000))
                partner_a = r.random() < 0.35
                endpoint = f"https://{PARTNER}/scr/events" if partner_a else \
                    f"https://hooks.{r.choice(('acme', 'globex', 'initech', 'umbrella'))}.example/webhooks"
                event = r.choice(("invoice.paid", "order.created", "order.shipped", "subscription.updated"))
                if failing and partner_a:
                    if r.random() < 0.55:
                        rows.append((endpoint, event, "failed", 5, READ_TIMEOUT, ts))
                    else:
                        rows.append((endpoint, event, "retrying", r.randint(1, 4), READ_TIMEOUT, ts))
                else:
                    rows.append((endpoint, event, "delivered", 1, None, ts))
            minute += MIN
        return rows


def load(sb, plan: Plan) -> None:
    cw = sb.client("cloudwatch")
    items = [{"MetricName": METRIC, "Dimensions": [{"Name": DIMENSION, "Value": q}], "Timestamp": m.to_pydatetime(),
              "Value": float(v), "Unit": "Count"}
             for q, values in plan.depth.items() for m, v in zip(plan.minutes, values)]
    put_metrics(cw, NAMESPACE, items)
    put_logs(sb.client("logs"), LOG_GROUP, plan.log_events)
    with psycopg.connect(sb.cluster.dsn("app", application_name=MIGRATIONS_APP), autocommit=True) as conn:
        conn.execute(f"""
            CREATE TABLE {TABLE} (
                id bigserial PRIMARY KEY,
                endpoint text NOT NULL,
                event_type text NOT NULL,
                status text NOT NULL,
                attempts integer NOT NULL,
                last_error text,
                created_at timestamptz NOT NULL
            )""")
        copy_rows(conn, TABLE, ["endpoint", "event_type", "status", "attempts", "last_error", "created_at"],
                  plan.deliveries)


@register("queue-backlog")
def play(sb) -> Played:
    plan = Plan(sb.now)
    load(sb, plan)
    t = plan.t
    webhooks = plan.depth["webhooks"]
    failed = sum(1 for d in plan.deliveries if d[2] == "failed" and d[5] >= t["window_start"] - pd.Timedelta("30min"))
    truth = {
        "scenario": "queue-backlog", "queue": "webhooks", "backlog_start": plan.backlog_start,
        "recovered": plan.recovered, "peak_depth": float(webhooks.max()), "depth_at_end": float(webhooks[-1]),
        "drain_rate_per_minute": DRAIN, "drain_eta_minutes": float(webhooks[-1]) / DRAIN,
        "failing_task": TASK, "exception": "ReadTimeout", "other_failing_task": RETENTION_TASK,
        "failed_deliveries": failed, "table": TABLE, "log_group": LOG_GROUP,
    }
    incident = incident_fields("SANDBOX-QUEUE-BACKLOG", "Webhook deliveries delayed: Celery webhooks queue backlog",
                               "P2", t)
    resources = {"queues": {"namespace": NAMESPACE, "metric": METRIC, "dimension": DIMENSION, "names": list(QUEUES),
                            "log_groups": [LOG_GROUP], "failed_table": TABLE}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan"]
