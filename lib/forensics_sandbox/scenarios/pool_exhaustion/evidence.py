"""The pool-exhaustion scenario's evidence outside CloudWatch: ALB access-log lines (S3) and PostgreSQL's
own log lines, from the plan."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..common import epoch_ms, LB_DIMENSION, RDS_INSTANCE
from .names import ACCESS_LOG_PER_MINUTE, PG_SLOTS_FATAL
from .plan import Plan


# ---- evidence outside CloudWatch ---------------------------------------------------------------------------
def access_log_lines(plan: Plan) -> list[tuple[pd.Timestamp, str]]:
    """A sample of the API's requests as the ALB logs them: from the onset, the orders endpoint (the one
    that holds a database connection) fails with 500s and 504s after seconds of waiting; checkout fails
    now and then; the catalogue (served from cache) and the profile keep answering."""
    from ...s3_evidence import alb_line

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
    from ...s3_evidence import rds_log_line

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
