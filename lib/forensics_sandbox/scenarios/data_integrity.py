"""Scenario "data-integrity": a row in the tenant audit trail was written by hand, outside the service.

The story: the application ``scr-api`` keeps a per-tenant, hash-chained audit trail (``audit_events``):
every write goes through its audit writer, actor ``service:scr-api`` (API) or ``service:scr-worker``
(reconciliation sweeps), and ``chain_hash = sha256(prev_hash + canonical event)``. At T0+35 min a DBA
"fixes" a grant for tenant ``globex`` straight in psql (actor ``psql:dba_jane``): the row copies the
previous row's hash as ``prev_hash`` but its ``chain_hash`` is not the hash of the row, so the chain is
broken at exactly that event. The service keeps writing after it (chaining onto the stored hash), so
only that one link is broken. Customers of ``globex`` then report a user with admin rights nobody granted.

The application's endpoints (``audit-replay``, ``verify-chain``) are served by a real HTTP server on
127.0.0.1 (:mod:`forensics_sandbox.audit_server`) requiring a bearer token. The token is random per
sandbox unless ``$FORENSICS_SANDBOX_AUDIT_TOKEN`` is set; the scenario puts it in that variable of its
own process (so `forensics run` started from it can authenticate) and the environment names the
variable (``audit.token_env``); the background sandbox (``forensics sandbox up``) also writes it to a file
readable only by its user (``<state folder>/audit.token``, the environment's ``audit.token_file``).

Clock: :func:`common.timeline` (events from T0-60 min to the end; the tampering at T0+35 min).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets

import pandas as pd
import psycopg

from ..audit_server import TABLE_SQL, AuditServer, append
from .played import Played, register
from .common import incident_fields, timeline, uuid4

SEED = 7_2026
TOKEN_ENV = "FORENSICS_SANDBOX_AUDIT_TOKEN"
TENANTS = ("acme-corp", "globex", "initech")
TAMPERED_TENANT = "globex"
TAMPER_ACTOR = "psql:dba_jane"
TAMPER_OFFSET = pd.Timedelta(minutes=35)  # after T0
SERVICE_ACTORS = ("service:scr-api", "service:scr-worker")
ACTIONS = (("identity.create", "identity"), ("identity.update", "identity"), ("grant.create", "grant"),
           ("grant.revoke", "grant"), ("recon.diff", "recon"), ("certification.decide", "certification"))


def plan(now: pd.Timestamp, seed: int = SEED) -> dict:
    """Every event (service and tampered), in time order, from ``now`` and the seed."""
    t = timeline(now)
    rng = random.Random(seed)
    events = []
    for tenant in TENANTS:
        ts = t["start"] + pd.Timedelta(seconds=rng.randint(5, 60))
        while ts < t["end"] - pd.Timedelta(seconds=30):
            action, kind = rng.choice(ACTIONS)
            actor = "service:scr-worker" if kind == "recon" else "service:scr-api"
            entity = f"{kind}:{rng.randint(1000, 9999)}"
            payload = {"request_id": uuid4(rng)[:8], "by": f"user:{rng.randint(100, 999)}"}
            if kind == "grant":
                payload.update({"identity": f"identity:{rng.randint(1000, 9999)}",
                                "role": rng.choice(["viewer", "editor", "approver"])})
            elif kind == "recon":
                payload.update({"added": rng.randint(0, 4), "removed": rng.randint(0, 2)})
            events.append({"ts": ts.floor("ms").to_pydatetime(), "event_id": uuid4(rng), "tenant": tenant,
                           "actor": actor, "action": action, "entity": entity, "payload": payload})
            ts += pd.Timedelta(seconds=rng.randint(40, 110))
    tampered = {"ts": (t["deploy"] + TAMPER_OFFSET + pd.Timedelta(seconds=17)).floor("ms").to_pydatetime(),
                "event_id": uuid4(rng), "tenant": TAMPERED_TENANT, "actor": TAMPER_ACTOR, "action": "grant.create",
                "entity": "grant:4711",
                "payload": {"identity": "identity:2931", "role": "admin", "note": "manual fix, ticket OPS-1187"}}
    events.append(tampered)
    events.sort(key=lambda e: (e["ts"], e["tenant"]))
    return {"timeline": t, "events": events, "tampered": tampered}


def load(conn, events: list[dict], tampered_id: str) -> None:
    """Write the events as the service does, except the tampered one, inserted as psql would."""
    conn.execute(TABLE_SQL)
    for e in events:
        if e["event_id"] != tampered_id:
            append(conn, e)
            continue
        prev = conn.execute("SELECT chain_hash FROM audit_events WHERE tenant = %s ORDER BY ts DESC, seq DESC "
                            "LIMIT 1", (e["tenant"],)).fetchone()[0]
        # by hand: the previous hash copied, the row's own hash made up (a hash of the payload alone)
        forged = hashlib.sha256(str(e["payload"]).encode()).hexdigest()
        conn.execute("INSERT INTO audit_events (ts, event_id, tenant, actor, action, entity, payload, prev_hash, "
                     "chain_hash) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)",
                     (e["ts"], e["event_id"], e["tenant"], e["actor"], e["action"], e["entity"],
                      json.dumps(e["payload"]),
                      prev, forged))


@register("data-integrity")
def play(sb) -> Played:
    p = plan(sb.now)
    t = p["timeline"]
    token = os.environ.get(TOKEN_ENV) or secrets.token_hex(24)
    os.environ[TOKEN_ENV] = token  # `forensics run` children inherit it (the background sandbox also puts it
    # in a 0600 file of its state folder, named by the environment's audit.token_file)
    dsn = sb.cluster.dsn("app", application_name="scr-api-audit")
    with psycopg.connect(dsn, autocommit=False) as conn:
        load(conn, p["events"], p["tampered"]["event_id"])
        conn.commit()
    server = AuditServer(dsn, token, port=sb.audit_port).start()
    tampered = p["tampered"]
    truth = {
        "tenants": list(TENANTS), "tampered_tenant": TAMPERED_TENANT, "tampered_event_id": tampered["event_id"],
        "tampered_actor": TAMPER_ACTOR, "tampered_at": pd.Timestamp(tampered["ts"]), "events": len(p["events"]),
        "token_env": TOKEN_ENV, "base_url": server.base_url,
    }
    incident = incident_fields("SANDBOX-DATA-INTEGRITY", "Tenant reports a grant nobody made", "P1", t)
    resources = {"audit": {"base_url": server.base_url, "token_env": TOKEN_ENV, "tenants": list(TENANTS)}}
    return Played(truth=truth, incident=incident, resources=resources, workloads=[server])
