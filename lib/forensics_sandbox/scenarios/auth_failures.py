"""Scenario "auth-failures": a new client hammers sign-in with stolen credentials and forged tokens, then
tries the database.

The story (runbooks 003 *authentication failures* and 004 §7 *unauthorized access*): all along, a few
browsers present expired session tokens (401 ``Signature has expired``: normal, seen in the baseline).
At T0+12 min the address ``203.0.113.201`` (TEST-NET-3; never seen before), with a python-requests user
agent, starts about 35 attempts a minute for 28 minutes: ``POST /api/v1/login/access-token`` with
wrong passwords (401 ``Incorrect email or password``), ``GET /api/v1/users/me`` with tokens signed by
another key (401 ``InvalidSignatureError: Signature verification failed``) and ``GET /api/v1/admin/tenants``
(403). From T0+25 for 8 minutes the same address tries PostgreSQL as ``scr_admin``: ``password
authentication failed`` in the RDS log group.

Every request reaches the ALB, so each is in its access logs too (with pool-exhaustion's traffic, whose
bucket they share): the notebook counts 401/403 by client from there. The application writes one line per
rejected request (logfmt fields: status, method, client_ip from X-Forwarded-For, user_agent, reason,
path) into its log group: the error signatures come from those.
"""

from __future__ import annotations

import random

import pandas as pd

from ..s3_evidence import alb_line, put_alb_logs, rds_log_line
from .played import Played, register
from .common import (ACCESS_LOG_BUCKET, bucket_for, ACCESS_LOG_PREFIX, API_LOG_GROUP, LB_DIMENSION, PG_LOG_GROUP, RDS_INSTANCE,
                     epoch_ms, incident_fields, log_time, put_logs, timeline)

SEED = 20261202
ATTACKER_IP = "203.0.113.201"
ATTACKER_UA = "python-requests/2.31.0"
DB_USER = "scr_admin"
ATTACK_START_MIN, ATTACK_MINUTES, ATTACK_PER_MIN = 12, 28, 35
PG_START_MIN, PG_MINUTES, PG_PER_MIN = 25, 8, 3
BROWSERS = {  # address -> user agent: users whose session token expired (seen before the window too)
    "192.0.2.14": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                  "Version/17.5 Safari/605.1.15",
    "192.0.2.87": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "192.0.2.131": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/131.0.0.0 Safari/537.36",
    "192.0.2.200": "scr-mobile/4.12.0 (iOS 18.1)",
}
EXPIRED = "jwt.exceptions.ExpiredSignatureError: Signature has expired"
BAD_SIGNATURE = "jwt.exceptions.InvalidSignatureError: Signature verification failed"
BAD_PASSWORD = "Incorrect email or password"
FORBIDDEN = "The user doesn't have enough privileges"


def _rejected(ts: pd.Timestamp, rid: str, status: int, method: str, path: str, ip: str, ua: str, reason: str) -> str:
    stamp = log_time(epoch_ms(ts))
    return (f'{stamp} WARNING [scr_api.auth] [req={rid}] auth rejected status={status} method={method} '
            f'client_ip={ip} user_agent="{ua}" reason="{reason}" path={path}')


class Plan:
    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        r = random.Random(seed)
        d = t["deploy"]
        self.attack_start = d + pd.Timedelta(minutes=ATTACK_START_MIN)
        self.pg_start = d + pd.Timedelta(minutes=PG_START_MIN)
        app: list[tuple[int, str]] = []
        self.requests: list[tuple[pd.Timestamp, int, str, str, str, str]] = []  # time, status, verb, path, ip, ua
        minutes = pd.date_range(t["start"], t["end"], freq="min", inclusive="left")
        ips = list(BROWSERS)
        for i, m in enumerate(minutes):
            # expired tokens: about one every two minutes; each browser once in the first half hour for sure
            if i % 2 == 0 or i < 2 * len(ips):
                ip = ips[i // 2 % len(ips)] if i < 2 * len(ips) else r.choice(ips)
                ts = m + pd.Timedelta(milliseconds=r.randrange(60_000))
                app.append((epoch_ms(ts), _rejected(ts, f"{r.getrandbits(48):012x}", 401, "GET", "/api/v1/users/me", ip,
                                               BROWSERS[ip], EXPIRED)))
                self.requests.append((ts, 401, "GET", "/api/v1/users/me", ip, BROWSERS[ip]))
        self.attack = []
        for k in range(ATTACK_MINUTES):
            m = self.attack_start + pd.Timedelta(minutes=k)
            for j in range(ATTACK_PER_MIN):
                ts = m + pd.Timedelta(milliseconds=int(j * 60_000 / ATTACK_PER_MIN) + r.randrange(1500))
                kind = r.random()
                if kind < 0.6:
                    req = (401, "POST", "/api/v1/login/access-token", BAD_PASSWORD)
                elif kind < 0.9:
                    req = (401, "GET", "/api/v1/users/me", BAD_SIGNATURE)
                else:
                    req = (403, "GET", "/api/v1/admin/tenants", FORBIDDEN)
                self.attack.append((ts, req))
                app.append((epoch_ms(ts), _rejected(ts, f"{r.getrandbits(48):012x}", *req[:3], ATTACKER_IP, ATTACKER_UA,
                                               req[3])))
                self.requests.append((ts, *req[:3], ATTACKER_IP, ATTACKER_UA))
        self.app_lines = sorted(app)
        pg = []
        for k in range(PG_MINUTES * PG_PER_MIN):
            ts = self.pg_start + pd.Timedelta(seconds=k * 60 // PG_PER_MIN + r.randrange(5))
            kw = {"client": f"{ATTACKER_IP}({r.randrange(40000, 60000)})", "user": DB_USER, "database": "app",
                  "pid": r.randrange(20000, 30000)}
            pg.append((epoch_ms(ts), rds_log_line(ts, "FATAL", f'password authentication failed for user "{DB_USER}"',
                                                  **kw)))
            pg.append((epoch_ms(ts) + 1, rds_log_line(ts, "DETAIL", 'Connection matched pg_hba.conf line 14: '
                                                                    '"host all all 0.0.0.0/0 scram-sha-256"', **kw)))
        self.pg_lines = pg

    def access_log_lines(self) -> list[tuple[pd.Timestamp, str]]:
        """The same requests as the ALB logs them (the application answered: target status = ALB status)."""
        r = random.Random(SEED + 1)
        out = []
        for ts, status, verb, path, ip, ua in sorted(self.requests):
            out.append((ts, alb_line(time=ts, elb=LB_DIMENSION, client=f"{ip}:{r.randrange(1024, 65535)}",
                                     target=f"10.0.1.{r.randrange(2, 250)}:8000",
                                     request=f"{verb} https://api.scr.example:443{path} HTTP/2.0", user_agent=ua,
                                     elb_status=status, target_status=status, target_time=0.004 + r.random() / 100,
                                     target_group_arn="-", trace_id=f"Root=1-{int(ts.timestamp()):08x}-"
                                                                    f"{r.getrandbits(96):024x}")))
        return out

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, (status, _m, _p, reason) in self.attack:
            out[reason] = out.get(reason, 0) + 1
        return out


@register("auth-failures")
def play(sb) -> Played:
    plan = Plan(sb.now)
    logs = sb.client("logs")
    put_logs(logs, API_LOG_GROUP, {"ecs/scr-api/auth-audit": plan.app_lines})
    put_logs(logs, PG_LOG_GROUP, {f"{RDS_INSTANCE}.1": plan.pg_lines})
    put_alb_logs(sb.client("s3"), bucket_for(ACCESS_LOG_BUCKET, sb.account_id), ACCESS_LOG_PREFIX, sb.account_id, sb.region, LB_DIMENSION,
                 plan.access_log_lines(), seed=SEED)
    t = plan.t
    counts = plan.counts()
    truth = {
        "scenario": "auth-failures", "onset": plan.attack_start, "client_ip": ATTACKER_IP, "user_agent": ATTACKER_UA,
        "attack_requests": len(plan.attack), "bad_password": counts.get(BAD_PASSWORD, 0),
        "bad_signature": counts.get(BAD_SIGNATURE, 0), "forbidden": counts.get(FORBIDDEN, 0),
        "known_clients": list(BROWSERS), "pg_failures": PG_MINUTES * PG_PER_MIN, "db_user": DB_USER,
        "pg_start": plan.pg_start,
    }
    incident = incident_fields("SANDBOX-AUTH-FAILURES", "Spike of 401s: credential stuffing suspected", "P1", t)
    resources = {"logs": {"app": [API_LOG_GROUP]}, "rds": {"instance": RDS_INSTANCE},
                 "alb": {"load_balancer": LB_DIMENSION,
                         "access_logs": {"bucket": bucket_for(ACCESS_LOG_BUCKET, sb.account_id), "prefix": ACCESS_LOG_PREFIX}}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan", "ATTACKER_IP"]
