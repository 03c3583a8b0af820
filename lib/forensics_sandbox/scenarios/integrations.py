"""Scenario "integrations": HubSpot OAuth refresh tokens expire one organisation at a time (runbook 001 §3h).

The story: eight organisations sync their CRM every two minutes, both ways (``inbound``: CRM -> platform,
``outbound``: platform -> CRM); five on HubSpot, three on Salesforce. All along, the busiest HubSpot
organisation hits HubSpot's rate limit on about one sync in eight (``429 Too Many Requests``, backed off by
the task: background noise, not the incident). From T0+5 min the HubSpot refresh token of one organisation
after another stops working (T0+5, T0+15, T0+25 min): every later sync of that organisation fails with
``OAuth token expired`` / ``401 Unauthorized`` and its connection, still active, stops advancing
``last_synced_at``. One Salesforce sync fails with ``INVALID_FIELD`` (a custom field mapping) mid-window.

``crm_connections`` holds (fake) Fernet-encrypted tokens: the capture never reads them.
"""

from __future__ import annotations

import random
import uuid

import pandas as pd
import psycopg

from .common import MIGRATIONS_APP, copy_rows, incident_fields, timeline
from .played import Played, register

SEED = 20261207
SYNC_LOGS_TABLE, CONNECTIONS_TABLE = "crm_sync_logs", "crm_connections"
SYNC_EVERY = pd.Timedelta(minutes=2)
#: minutes after T0 at which each expiring organisation's refresh token stops working, in order
EXPIRY_MINUTES = (5, 15, 25)
OAUTH_ERROR = ("OAuth token expired: refresh failed with 401 Unauthorized "
               "(invalid_grant: refresh token is invalid, expired or revoked)")
RATE_LIMIT_ERROR = ("429 Too Many Requests: You have reached your ten_secondly_rolling limit. "
                    "(policyName=TEN_SECONDLY_ROLLING)")
INVALID_FIELD_ERROR = "INVALID_FIELD: No such column 'Region__c' on entity 'Account'"
RATE_LIMIT_SHARE = 0.125


class Plan:
    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        r = random.Random(seed)
        self.orgs = [(str(uuid.UUID(int=r.getrandbits(128), version=4)), "hubspot" if i < 5 else "salesforce")
                     for i in range(8)]
        hubspot = [o for o, p in self.orgs if p == "hubspot"]
        self.busy_org = hubspot[0]
        self.expiring = dict(zip(hubspot[1:1 + len(EXPIRY_MINUTES)],
                                 (t["deploy"] + pd.Timedelta(minutes=m) for m in EXPIRY_MINUTES)))
        invalid_org = next(o for o, p in self.orgs if p == "salesforce")
        self.invalid_field_at = None
        rows = []  # (org_id, provider, direction, status, error_message, records, created_at)
        for org, provider in self.orgs:
            offset = pd.Timedelta(seconds=r.randrange(0, 110))
            at = t["start"] + offset
            while at < t["end"]:
                for direction in ("inbound", "outbound"):
                    ts = at + pd.Timedelta(milliseconds=r.randrange(0, 5000))
                    if ts >= t["end"]:
                        continue
                    expiry = self.expiring.get(org)
                    if expiry is not None and ts >= expiry:
                        rows.append((org, provider, direction, "failed", OAUTH_ERROR, 0, ts))
                    elif org == self.busy_org and r.random() < RATE_LIMIT_SHARE:
                        rows.append((org, provider, direction, "failed", RATE_LIMIT_ERROR, 0, ts))
                    elif (org == invalid_org and direction == "outbound" and self.invalid_field_at is None
                          and ts >= t["deploy"] + pd.Timedelta(minutes=20)):
                        self.invalid_field_at = ts
                        rows.append((org, provider, direction, "failed", INVALID_FIELD_ERROR, 0, ts))
                    else:
                        rows.append((org, provider, direction, "success", None, r.randint(0, 250), ts))
                at += SYNC_EVERY
        self.rows = sorted(rows, key=lambda x: x[6])
        self.last_synced = {}
        for org, _, _, status, _, _, ts in self.rows:
            if status == "success":
                self.last_synced[org] = max(self.last_synced.get(org, ts), ts)

    def first_failure(self, error: str) -> tuple[pd.Timestamp, str]:
        row = next(x for x in self.rows if x[4] == error)
        return row[6], row[0]


def load(sb, plan: Plan) -> None:
    t = plan.t
    with psycopg.connect(sb.cluster.dsn("app", application_name=MIGRATIONS_APP), autocommit=True) as conn:
        conn.execute(f"""
            CREATE TABLE {CONNECTIONS_TABLE} (
                id uuid PRIMARY KEY, org_id uuid NOT NULL, provider text NOT NULL,
                is_active boolean NOT NULL DEFAULT true, access_token_encrypted text NOT NULL,
                refresh_token_encrypted text NOT NULL, last_synced_at timestamptz, created_at timestamptz NOT NULL)""")
        conn.execute(f"""
            CREATE TABLE {SYNC_LOGS_TABLE} (
                id bigserial PRIMARY KEY, org_id uuid NOT NULL, provider text NOT NULL, direction text NOT NULL,
                status text NOT NULL, error_message text, records_synced integer NOT NULL DEFAULT 0,
                created_at timestamptz NOT NULL)""")
        rng = random.Random(SEED + 1)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {CONNECTIONS_TABLE} (id, org_id, provider, is_active, access_token_encrypted, "
                "refresh_token_encrypted, last_synced_at, created_at) VALUES (%s, %s, %s, true, %s, %s, %s, %s)",
                [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), org, provider,
                  "gAAAAA" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(60)),
                  "gAAAAA" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(60)),
                  plan.last_synced[org].to_pydatetime() if org in plan.last_synced else None,
                  (t["start"] - pd.Timedelta(days=90)).to_pydatetime()) for org, provider in plan.orgs])
        copy_rows(conn, SYNC_LOGS_TABLE, ["org_id", "provider", "direction", "status", "error_message",
                                          "records_synced", "created_at"], plan.rows)
        conn.execute(f"ANALYZE {SYNC_LOGS_TABLE}")


@register("integrations")
def play(sb) -> Played:
    plan = Plan(sb.now)
    load(sb, plan)
    t = plan.t
    oauth_at, oauth_org = plan.first_failure(OAUTH_ERROR)
    rate_at, rate_org = plan.first_failure(RATE_LIMIT_ERROR)
    failed = [x for x in plan.rows if x[3] == "failed"]
    truth = {
        "scenario": "integrations", "provider": "hubspot",
        "oauth_first_failure": oauth_at, "oauth_first_org": oauth_org,
        "oauth_orgs": list(plan.expiring), "oauth_failures": sum(x[4] == OAUTH_ERROR for x in failed),
        "expiry_times": list(plan.expiring.values()),
        "rate_limited_org": rate_org, "rate_limited_first_failure": rate_at,
        "rate_limited_failures": sum(x[4] == RATE_LIMIT_ERROR for x in failed),
        "invalid_field_at": plan.invalid_field_at, "failed_syncs": len(failed), "syncs": len(plan.rows),
        "stale_orgs": list(plan.expiring),
        "sync_logs_table": SYNC_LOGS_TABLE, "connections_table": CONNECTIONS_TABLE,
    }
    incident = incident_fields("SANDBOX-CRM-SYNC", "HubSpot data not syncing for several organisations", "P3", t)
    resources = {"integrations": {"sync_logs_table": SYNC_LOGS_TABLE, "connections_table": CONNECTIONS_TABLE}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan"]
