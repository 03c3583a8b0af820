"""verify_chain, non-service writers: chains written by the sandbox application's own audit writer code
(forensics_sandbox.audit_server.digest, an implementation independent of the analysis)."""

from __future__ import annotations

import json

import pandas as pd

from forensics.analysis import integrity
from forensics_sandbox import audit_server
from forensics.sources import audit


def _chain(n=6, tenant="t1", start="2026-11-23T10:00:00Z", actor="service:scr-api"):
    rows, prev = [], audit_server.GENESIS
    t0 = pd.Timestamp(start)
    for i in range(n):
        e = {"ts": (t0 + pd.Timedelta(seconds=37 * i + 0.123456)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
             "event_id": f"00000000-0000-4000-8000-{tenant[-1]}{i:011d}", "tenant": tenant, "actor": actor,
             "action": "grant.create", "entity": f"grant:{i}", "payload": {"role": "viewer", "n": i, "é": "ü"}}
        e["prev_hash"], e["chain_hash"] = prev, audit_server.digest(prev, e)
        prev = e["chain_hash"]
        rows.append(e)
    return rows


def _frame(rows):
    return audit.frame([dict(r) for r in rows])


def test_an_intact_chain_recomputes_equal():
    r = integrity.verify_chain(_frame(_chain() + _chain(tenant="t2")))
    assert r["intact"] is True and r["checked"] == 12 and r["first_broken"] is None
    assert r["tenants"] == {"t1": {"checked": 6, "intact": True, "broken": 0},
                            "t2": {"checked": 6, "intact": True, "broken": 0}}


def test_an_edited_row_is_the_first_broken_link_with_neighbours():
    rows = _chain(8)
    rows[4]["payload"] = {"role": "admin", "n": 4, "é": "ü"}  # edited after the fact
    rows[4]["actor"] = "psql:dba_jane"
    r = integrity.verify_chain(_frame(rows), neighbours=2)
    assert r["intact"] is False and len(r["broken"]) == 1
    first = r["first_broken"]
    assert first["event_id"] == rows[4]["event_id"] and first["reason"].startswith("hash mismatch")
    assert [e["event_id"] for e in first["before"]] == [rows[2]["event_id"], rows[3]["event_id"]]
    assert [e["event_id"] for e in first["after"]] == [rows[5]["event_id"], rows[6]["event_id"]]
    d = integrity.describe_broken(first)
    assert d["actor"] == "psql:dba_jane" and d["after"] == [rows[5]["event_id"], rows[6]["event_id"]]
    assert integrity.markers(r)[0][0] == pd.Timestamp(rows[4]["ts"])


def test_a_deleted_row_is_a_link_mismatch_at_the_next_event():
    rows = _chain(6)
    del rows[2]
    r = integrity.verify_chain(_frame(rows))
    assert r["intact"] is False
    assert r["first_broken"]["event_id"] == rows[2]["event_id"]
    assert r["first_broken"]["reason"].startswith("link mismatch")


def test_a_window_starting_mid_chain_trusts_its_first_prev_hash():
    assert integrity.verify_chain(_frame(_chain(10)[4:]))["intact"] is True


def test_a_redacted_value_is_reported_as_not_recomputable_not_as_tampering():
    rows = _chain(3)
    rows[1]["payload"] = {"note": "[REDACTED:secret-pair:0123abcd]"}
    r = integrity.verify_chain(_frame(rows))
    assert r["first_broken"]["reason"].startswith("cannot recompute")


def test_the_chain_survives_a_parquet_round_trip(tmp_path):
    df = _frame(_chain(5))
    df.to_parquet(tmp_path / "a.parquet")
    assert integrity.verify_chain(pd.read_parquet(tmp_path / "a.parquet"))["intact"] is True


def test_non_service_actors_and_counts():
    rows = _chain(4) + _chain(2, tenant="t2", actor="psql:dba_jane", start="2026-11-23T10:01:00Z")
    df = _frame(rows)
    nsa = integrity.non_service_actors(df)
    assert nsa["actor"].tolist() == ["psql:dba_jane"]
    assert nsa.loc[0, "events"] == 2 and nsa.loc[0, "tenants"] == ["t2"]
    assert integrity.non_service_actors(df, prefixes=("service:", "psql:")).empty
    assert "psql:dba_jane" in integrity.by_actor(df, top=1).columns
    assert integrity.by_actor_action(df).iloc[0]["events"] == 4


def test_empty_input():
    empty = audit.frame([])
    assert integrity.verify_chain(empty)["intact"] is None
    assert integrity.non_service_actors(empty).empty and integrity.by_actor(empty).empty


def test_payload_is_canonical_json_text():
    df = _frame(_chain(1))
    assert json.loads(df.loc[0, "payload"]) == {"role": "viewer", "n": 0, "é": "ü"}
    assert df.loc[0, "payload"] == audit.canonical_payload(df.loc[0, "payload"])
