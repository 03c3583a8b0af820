"""Scenario "volume": a three-hour incident at a busy service's volume - about a million log events.

The story: ``scr-api`` writes to four log streams. All along, a harmless error fails about 40 times a second
(a partner's webhook signature check: their secret rotated, nobody cares); two thirds of the way in (the
onset) the database pool is exhausted and SQLAlchemy's QueuePool timeout fails about 120 requests a second,
each a 5xx at the ALB. INFO access lines run throughout. Late in the window three secrets leak into error
lines: an AWS secret access key after ``key=``, a database password in a DSN, a bearer token.

What a right answer says: the onset (from the ALB's 5xx) at the planted minute, the QueuePool signature
ranked first by what changed at the onset (the webhook error has more events over the window but the same
rate before and after), its per-minute counts as planted, and no secret anywhere in the record.

Times: end = now floored to the minute; data from end - 3 h; onset = data start + 2 h; window = [data start
+ 30 min, end] (the notebooks' 30-minute context reaches back to the data's start). ``FORENSICS_VOLUME_SCALE``
(default 1.0) scales every rate, for a quicker test; the truth holds the planted counts either way. Events
are loaded through the in-process moto backend in batches (PutLogEvents' own validation, no HTTP).
"""

from __future__ import annotations

import os
import string

import numpy as np
import pandas as pd

from .played import Played, register
from .common import create_alb, ensure_log_group, epoch_ms, iso, log_time, put_metrics

SEED = 20260608
LOG_GROUP = "/ecs/scr-api-volume"
STREAMS = [f"ecs/scr-api/{x}" for x in ("7f3a9c1e52b04d6e", "0b91e4d7a3c65f28", "c4e8a2f61d7b9053", "59d0b3e7f2a14c86")]
LB_NAME, LB_ID = "scr-volume-alb", "5d2e8f0a9c3b7146"
TG_NAME, TG_ID = "scr-api-volume", "a81c4f2e6b9d3057"
LB_DIMENSION = f"app/{LB_NAME}/{LB_ID}"
TG_DIMENSION = f"targetgroup/{TG_NAME}/{TG_ID}"

HOURS = 3
WEBHOOK_PER_S = 40.0
QUEUEPOOL_PER_S = 120.0
INFO_PER_S = 10.0
READTIMEOUT_PER_MIN = 6.0
SECRET_PER_S = 0.5  # events of each kind a second, in the last 20 minutes (enough to be sampled)

QUEUEPOOL = ("{stamp} ERROR [scr_api.db] [req={rid}] request {path} failed after {ms} ms: sqlalchemy.exc.TimeoutError: "
             "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this "
             "error at: https://sqlalche.me/e/20/3o7r)")
WEBHOOK = ("{stamp} ERROR [scr_api.webhooks] [req={rid}] webhook signature verification failed for partner "
           "{partner}: computed sha256={a} does not match header sha256={b}")
READTIMEOUT = ("{stamp} ERROR [scr_api.partners] [req={rid}] partner call to https://api.{partner}.example/v2/quotes "
               "failed: httpx.ReadTimeout: timed out")
INFO = '{stamp} INFO [uvicorn.access] [req={rid}] 10.0.{a}.{b}:{port} - "GET /api/v1/orders/{order} HTTP/1.1" 200 OK'
SECRET_LINES = {
    "aws_secret_key": ("{stamp} ERROR [scr_api.storage] [req={rid}] presigned upload rejected by S3 "
                       "(SignatureDoesNotMatch) key={secret}"),
    "dsn_password": ("{stamp} ERROR [scr_api.reports] [req={rid}] reporting replica unreachable: "
                     "postgresql://scr_reports:{secret}@scr-volume-replica.internal:5432/app"),
    "bearer_token": ("{stamp} ERROR [scr_api.partners] [req={rid}] partner API answered 401 to "
                     "Authorization: Bearer {secret}"),
}
PARTNERS = ["acme-logistics", "northwind-pay", "globex-freight", "initech-billing", "umbrella-parcels",
            "hooli-commerce", "vandelay-imports"]
KINDS = ("webhook", "queuepool", "info", "readtimeout")


def scale() -> float:
    value = float(os.environ.get("FORENSICS_VOLUME_SCALE") or 1.0)
    if not 0 < value <= 1:
        raise ValueError(f"FORENSICS_VOLUME_SCALE must be in (0, 1], not {value}")
    return value


def timeline(now: pd.Timestamp) -> dict[str, pd.Timestamp]:
    end = now.floor("min")
    start = end - pd.Timedelta(hours=HOURS)
    return {"start": start, "end": end, "onset": start + pd.Timedelta(hours=2),
            "window_start": start + pd.Timedelta(minutes=30)}


class Plan:
    """Every planted event as arrays (time, kind, stream) and the metrics, from ``now`` and the seed."""

    def __init__(self, now: pd.Timestamp, factor: float | None = None, seed: int = SEED):
        self.t = timeline(now)
        self.factor = scale() if factor is None else factor
        self.rng = np.random.default_rng(seed)
        t, rng = self.t, self.rng
        start, end, onset = epoch_ms(t["start"]), epoch_ms(t["end"]), epoch_ms(t["onset"])

        def poisson(per_s: float, lo: int, hi: int) -> np.ndarray:
            n = rng.poisson(per_s * self.factor * (hi - lo) / 1000)
            return rng.integers(lo, hi, n)

        times = [poisson(WEBHOOK_PER_S, start, end), poisson(QUEUEPOOL_PER_S, onset, end),
                 poisson(INFO_PER_S, start, end), poisson(READTIMEOUT_PER_MIN / 60, start, end)]
        kinds = np.concatenate([np.full(len(x), k, dtype="int8") for k, x in enumerate(times)])
        ts = np.concatenate(times)
        order = np.argsort(ts, kind="stable")
        self.ts, self.kind = ts[order], kinds[order]
        self.stream = rng.integers(0, len(STREAMS), len(self.ts)).astype("int8")
        self.minutes = pd.date_range(t["start"], t["end"], freq="min", inclusive="left")
        self.secrets = self._secrets()
        self.metrics = self._metrics()

    # -- truth ---------------------------------------------------------------------------------------
    def per_minute(self, kind: str) -> pd.Series:
        """Planted events of ``kind`` per minute (every minute of the data, zeros included)."""
        k = KINDS.index(kind)
        minute = (self.ts[self.kind == k] - epoch_ms(self.t["start"])) // 60_000
        counts = np.bincount(minute, minlength=len(self.minutes))[: len(self.minutes)]
        return pd.Series(counts, index=self.minutes, name=kind)

    def _secrets(self) -> dict[str, list[tuple[int, str]]]:
        """Three kinds of secret, each leaked in error lines of the last 20 minutes (SECRET_PER_S)."""
        rng = self.rng
        b64 = np.array(list(string.ascii_letters + string.digits + "/+"))
        alnum = np.array(list(string.ascii_letters + string.digits))
        values = {"aws_secret_key": "".join(rng.choice(b64, 40)),
                  "dsn_password": "Vx" + "".join(rng.choice(alnum, 18)) + "-q7",
                  "bearer_token": "".join(rng.choice(alnum, 48))}
        lo, hi = epoch_ms(self.t["end"] - pd.Timedelta(minutes=20)), epoch_ms(self.t["end"]) - 1
        n = int(SECRET_PER_S * 20 * 60)
        return {kind: [(int(ms), value) for ms in np.sort(rng.integers(lo, hi, n))]
                for kind, value in values.items()}

    def _metrics(self) -> list[dict]:
        """ALB per minute: requests, target 5xx (one per QueuePool failure, a few before), latency."""
        rng = self.rng
        n = len(self.minutes)
        failures = self.per_minute("queuepool").to_numpy()
        requests = np.round(rng.normal(12_000, 400, n) * self.factor) + failures
        before = self.minutes < self.t["onset"]
        target_5xx = np.where(before, rng.integers(0, 6, n), failures)
        latency = np.where(before, rng.normal(0.085, 0.01, n), rng.normal(6.5, 1.2, n)).clip(0.01)
        lb = [{"Name": "LoadBalancer", "Value": LB_DIMENSION}]
        lb_tg = lb + [{"Name": "TargetGroup", "Value": TG_DIMENSION}]
        out = []
        for i, m in enumerate(self.minutes):
            when = m.to_pydatetime()
            out.append({"MetricName": "RequestCount", "Dimensions": lb, "Timestamp": when,
                        "Value": float(requests[i]), "Unit": "Count"})
            if target_5xx[i]:
                out.append({"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": lb, "Timestamp": when,
                            "Value": float(target_5xx[i]), "Unit": "Count"})
            out.append({"MetricName": "TargetResponseTime", "Dimensions": lb, "Timestamp": when,
                        "Values": [float(v) for v in np.abs(rng.normal(latency[i], latency[i] / 4, 12))],
                        "Unit": "Seconds"})
            out.append({"MetricName": "HealthyHostCount", "Dimensions": lb_tg, "Timestamp": when,
                        "Value": 4.0, "Unit": "Count"})
        self.series = {"HTTPCode_Target_5XX_Count": target_5xx, "RequestCount": requests}
        return out

    # -- the events, as PutLogEvents batches ------------------------------------------------------------
    def batches(self, size: int = 10_000):
        """``(stream, [{"timestamp", "message"}, ...])`` in time order per stream, secrets included."""
        rng = np.random.default_rng(SEED + 1)
        secret_events = [(ms, kind, value) for kind, items in self.secrets.items() for ms, value in items]
        secret_stream = rng.integers(0, len(STREAMS), len(secret_events))
        for s, name in enumerate(STREAMS):
            idx = np.flatnonzero(self.stream == s)
            extra = sorted((ms, kind, value) for (ms, kind, value), x in zip(secret_events, secret_stream) if x == s)
            for lo in range(0, len(idx), size):
                chunk = idx[lo:lo + size]
                ts = self.ts[chunk]
                events = self._messages(ts, self.kind[chunk], rng)
                hi_ms = int(ts[-1]) if lo + size < len(idx) else 2**62
                while extra and extra[0][0] <= hi_ms:
                    ms, kind, value = extra.pop(0)
                    events.append({"timestamp": ms, "message": SECRET_LINES[kind].format(
                        stamp=_stamp(ms), rid=f"{rng.integers(16**12):012x}", secret=value)})
                events.sort(key=lambda e: e["timestamp"])
                yield name, events

    def _messages(self, ts: np.ndarray, kinds: np.ndarray, rng) -> list[dict]:
        rid = rng.integers(0, 16**12, len(ts))
        pick = rng.integers(0, 1 << 30, len(ts))
        digest = rng.integers(0, 2**63, (len(ts), 2))
        out = []
        for ms, k, r, p, (a, b) in zip(ts.tolist(), kinds.tolist(), rid.tolist(), pick.tolist(), digest.tolist()):
            stamp = _stamp(ms)
            if k == 0:
                msg = WEBHOOK.format(stamp=stamp, rid=f"{r:012x}", partner=PARTNERS[p % len(PARTNERS)],
                                     a=f"{a:016x}", b=f"{b:016x}")
            elif k == 1:
                msg = QUEUEPOOL.format(stamp=stamp, rid=f"{r:012x}",
                                       path=f"/api/v1/orders/{p % 400_000 + 1}", ms=30_000 + p % 60)
            elif k == 2:
                msg = INFO.format(stamp=stamp, rid=f"{r:012x}", a=p % 3, b=p % 250, port=32768 + p % 28000,
                                  order=p % 400_000 + 1)
            else:
                msg = READTIMEOUT.format(stamp=stamp, rid=f"{r:012x}", partner=PARTNERS[p % len(PARTNERS)])
            out.append({"timestamp": ms, "message": msg})
        return out


_SECONDS: dict[int, str] = {}


def _stamp(ms: int) -> str:
    """common.log_time, its seconds part formatted once per second (a million events share 10,800)."""
    sec = ms // 1000
    head = _SECONDS.get(sec)
    if head is None:
        head = _SECONDS.setdefault(sec, log_time(sec * 1000)[:-3])
    return f"{head}{ms % 1000:03d}"


def load(sb, plan: Plan) -> int:
    """The load balancer and its target group (preflight checks they exist), ALB metrics through the API; log
    events through the in-process backend, one batch at a time."""
    create_alb(sb, cidr="10.50", lb=(LB_NAME, LB_ID), tg=(TG_NAME, TG_ID), port=8000)
    put_metrics(sb.client("cloudwatch"), "AWS/ApplicationELB", plan.metrics)
    logs = sb.client("logs")
    ensure_log_group(logs, LOG_GROUP)
    for name in STREAMS:
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=name)
    backend = sb.backend("logs")
    n = 0
    for stream, events in plan.batches():
        backend.put_log_events(LOG_GROUP, stream, events)
        n += len(events)
    return n


@register("volume")
def play(sb) -> Played:
    plan = Plan(sb.now)
    n_events = load(sb, plan)
    t = plan.t
    queuepool = plan.per_minute("queuepool")
    truth = {
        "scenario": "volume", "data_start": t["start"], "window_start": t["window_start"], "window_end": t["end"],
        "onset": t["onset"], "scale": plan.factor, "log_group": LOG_GROUP, "log_events": n_events,
        "error_signature": "QueuePool limit of size 5 overflow 10 reached",
        "steady_error_signature": "webhook signature verification failed",
        "queuepool_per_minute": {m.isoformat(): int(v) for m, v in queuepool.items()},
        "webhook_per_minute": {m.isoformat(): int(v) for m, v in plan.per_minute("webhook").items()},
        "queuepool_events": int(queuepool.sum()), "webhook_events": int(plan.per_minute("webhook").sum()),
        "secrets": {kind: items[0][1] for kind, items in plan.secrets.items()},
        "load_balancer": LB_DIMENSION,
    }
    incident = {"incident": "SANDBOX-VOLUME", "severity": "P1",
                "title": "scr-api 5xx at volume: QueuePool exhaustion among a million error events",
                "window": {"start": iso(t["window_start"]), "end": iso(t["end"])},
                "notebooks": ["api-errors"]}
    resources = {"alb": {"load_balancer": LB_DIMENSION, "target_group": TG_DIMENSION},
                 "logs": {"app": [LOG_GROUP]}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan", "timeline", "load"]
