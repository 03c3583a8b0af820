"""Tenant data integrity from the audit trail: recompute the hash chain, find non-service writers.

The chain (per tenant, in ``ts`` order): ``chain_hash = sha256(prev_hash + canonical(event))`` where
``prev_hash`` is the previous event's ``chain_hash`` (64 zeros for a tenant's first event) and
``canonical(event)`` is the JSON object of ``action, actor, entity, event_id, payload, tenant, ts`` with
sorted keys and no spaces, ``ts`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` and ``payload`` as a JSON value.
If the application canonicalises differently, pass ``canonical=`` (a function of one row).

Two kinds of broken link:

- ``hash mismatch``: the stored ``chain_hash`` is not the hash of the row: the row was written or
  edited by something that did not go through the service's audit writer;
- ``link mismatch``: the row's ``prev_hash`` is not the previous row's ``chain_hash``: a row in
  between was deleted, or rows were re-ordered.

A replay over a window starts mid-chain: its first row's ``prev_hash`` cannot be checked against a row
outside the window and is trusted. A row holding a redaction marker (a secret scrubbed before the
capture was written) cannot be recomputed and is reported as such, not as tampering.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

import pandas as pd

GENESIS = "0" * 64
SERVICE_PREFIXES = ("service:",)
_FIELDS = ("action", "actor", "entity", "event_id", "payload", "tenant", "ts")
BROKEN_COLUMNS = ["tenant", "event_id", "ts", "actor", "action", "entity", "reason", "expected", "stored"]


def _ts_text(ts) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _payload_value(payload) -> Any:
    if payload is None or (isinstance(payload, float) and payload != payload):
        return None
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except ValueError:
            return payload
    return payload


def canonical_event(row) -> str:
    """The canonical text of one event (see the module docstring)."""
    body = {k: (None if pd.isna(row.get(k)) else str(row.get(k))) for k in _FIELDS if k not in ("payload", "ts")}
    body["ts"] = _ts_text(row["ts"])
    body["payload"] = _payload_value(row.get("payload"))
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, row, canonical: Callable = canonical_event) -> str:
    return hashlib.sha256((str(prev_hash or "") + canonical(row)).encode("utf-8")).hexdigest()


def verify_chain(events: pd.DataFrame, canonical: Callable = canonical_event, neighbours: int = 2) -> dict:
    """Recompute every tenant's chain.

    Returns ``{"intact": bool | None, "checked": rows, "tenants": {tenant: {"checked", "intact", "broken"}},
    "broken": DataFrame[BROKEN_COLUMNS], "first_broken": dict | None}``. ``first_broken`` is the earliest
    broken link over all tenants with ``before`` / ``after``: up to ``neighbours`` events on each side
    (dicts). ``intact`` is None when there is nothing to check.
    """
    broken: list[dict] = []
    tenants: dict[str, dict] = {}
    if events is None or not len(events):
        return {"intact": None, "checked": 0, "tenants": {}, "broken": pd.DataFrame(columns=BROKEN_COLUMNS),
                "first_broken": None}
    df = events.reset_index(drop=True)
    df = df.assign(_order=range(len(df))).sort_values(["tenant", "ts", "_order"], kind="stable")
    for tenant, rows in df.groupby("tenant", sort=True):
        previous = None
        n_broken = 0
        for _, row in rows.iterrows():
            reason = None
            expected = None
            stored = str(row.get("chain_hash") or "")
            prev = row.get("prev_hash")
            prev = None if pd.isna(prev) else str(prev)
            if any("[REDACTED:" in str(row.get(k) or "") for k in _FIELDS):
                reason = "cannot recompute: a value was redacted before capture"
            elif previous is not None and prev != previous:
                reason = "link mismatch: prev_hash is not the previous event's chain_hash (event deleted or reordered)"
                expected = previous
                stored = prev or ""
            else:
                expected = chain_hash(prev if prev is not None else GENESIS, row, canonical)
                if expected != stored:
                    reason = "hash mismatch: chain_hash is not sha256(prev_hash + event) (written or edited outside the service)"
            if reason:
                n_broken += 1
                broken.append({"tenant": tenant, "event_id": row["event_id"], "ts": row["ts"], "actor": row["actor"],
                               "action": row["action"], "entity": row.get("entity"), "reason": reason,
                               "expected": expected, "stored": stored, "_order": row["_order"]})
            previous = str(row.get("chain_hash") or "")
        tenants[str(tenant)] = {"checked": int(len(rows)), "intact": n_broken == 0, "broken": n_broken}
    broken_df = pd.DataFrame(broken, columns=[*BROKEN_COLUMNS, "_order"]).sort_values(["ts", "_order"], kind="stable")
    first = None
    if len(broken_df):
        b = broken_df.iloc[0]
        rows = df[df["tenant"] == b["tenant"]].reset_index(drop=True)
        i = int(rows.index[rows["_order"] == b["_order"]][0])
        first = {k: b[k] for k in BROKEN_COLUMNS}
        first["before"] = _records(rows.iloc[max(0, i - neighbours):i])
        first["after"] = _records(rows.iloc[i + 1:i + 1 + neighbours])
    return {"intact": not broken, "checked": int(len(df)), "tenants": tenants,
            "broken": broken_df.drop(columns="_order").reset_index(drop=True), "first_broken": first}


def _records(rows: pd.DataFrame) -> list[dict]:
    keep = ["ts", "event_id", "actor", "action", "entity", "prev_hash", "chain_hash"]
    return [{k: r.get(k) for k in keep} for r in rows.to_dict(orient="records")]


def is_service_actor(actor, prefixes=SERVICE_PREFIXES) -> bool:
    return isinstance(actor, str) and actor.startswith(tuple(prefixes))


def non_service_actors(events: pd.DataFrame, prefixes=SERVICE_PREFIXES) -> pd.DataFrame:
    """Actors that are not the service's own writers (``service:...`` by default): who, how many events,
    which tenants and actions, first and last seen. Empty when every write went through the service."""
    cols = ["actor", "events", "tenants", "actions", "first_seen", "last_seen"]
    if events is None or not len(events):
        return pd.DataFrame(columns=cols)
    other = events[~events["actor"].map(lambda a: is_service_actor(a, prefixes))]
    if not len(other):
        return pd.DataFrame(columns=cols)
    out = other.groupby("actor").agg(events=("event_id", "size"), tenants=("tenant", lambda s: sorted(set(s))),
                                     actions=("action", lambda s: sorted(set(s))), first_seen=("ts", "min"),
                                     last_seen=("ts", "max"))
    return out.reset_index().sort_values(["first_seen", "actor"]).reset_index(drop=True)[cols]


def by_actor(events: pd.DataFrame, freq: str = "5min", top: int = 6) -> pd.DataFrame:
    """Events per ``freq`` by actor (wide: one column per actor; the ``top`` busiest kept, every
    non-service actor always kept)."""
    if events is None or not len(events):
        return pd.DataFrame()
    counts = events.groupby([pd.Grouper(key="ts", freq=freq), "actor"]).size().unstack("actor", fill_value=0)
    busiest = counts.sum().sort_values(ascending=False).index[:top].tolist()
    keep = busiest + [a for a in counts.columns if not is_service_actor(a) and a not in busiest]
    return counts[keep]


def by_actor_action(events: pd.DataFrame) -> pd.DataFrame:
    """Counts per (actor, action), busiest first."""
    if events is None or not len(events):
        return pd.DataFrame(columns=["actor", "action", "events"])
    out = events.groupby(["actor", "action"]).size().rename("events").reset_index()
    return out.sort_values(["events", "actor", "action"], ascending=[False, True, True]).reset_index(drop=True)


def describe_broken(first: dict | None) -> dict | None:
    """The first broken link as a finding (plain values)."""
    if not first:
        return None
    keep = ("tenant", "event_id", "ts", "actor", "action", "entity", "reason")
    out = {k: first.get(k) for k in keep}
    out["before"] = [e.get("event_id") for e in first.get("before", [])]
    out["after"] = [e.get("event_id") for e in first.get("after", [])]
    return out


def markers(result: dict) -> list[tuple]:
    """Chart markers: where each tenant's chain first breaks."""
    broken = result.get("broken") if result else None
    if broken is None or not len(broken):
        return []
    first = broken.groupby("tenant", sort=True).first().reset_index()
    return [(r["ts"], f"chain broken ({r['tenant']}, {r['actor']})") for r in first.to_dict(orient="records")]
