"""The integrations scenario's plan: HubSpot tokens expiring one organisation at a time, background 429s, and
the analysis reading the planted rows as the runbook's classes (no database: the plan's rows as the capture's
per-minute aggregate)."""

from __future__ import annotations

import pandas as pd

from forensics.analysis import integrations as crm
from forensics_sandbox.scenarios.integrations import OAUTH_ERROR, RATE_LIMIT_ERROR, Plan

NOW = pd.Timestamp("2026-05-30T12:00:30Z")


def _aggregate(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["org_id", "provider", "direction", "status", "error_message", "records", "ts"])
    frame["minute"] = frame["ts"].dt.floor("min")
    g = frame.groupby(["minute", "provider", "direction", "org_id", "status", "error_message"], dropna=False)
    return g.agg(syncs=("ts", "size"), first_at=("ts", "min"), last_at=("ts", "max")).reset_index().astype(
        {"syncs": float})


def test_tokens_expire_one_org_at_a_time_among_background_429s():
    plan = Plan(NOW)
    assert len(plan.expiring) == 3 and len(set(plan.expiring.values())) == 3
    classes = {c["class"]: c for c in crm.by_class(crm.failures(_aggregate(plan.rows)))}
    assert set(classes) == {"oauth-expired", "rate-limited", "invalid-field"}
    oauth = classes["oauth-expired"]
    first_org, first_at = min(plan.expiring.items(), key=lambda kv: kv[1])
    assert oauth["first_org"] == first_org and sorted(oauth["orgs"]) == sorted(plan.expiring)
    assert pd.Timestamp(oauth["first_failure"]) - first_at < pd.Timedelta(minutes=2)
    assert oauth["failures"] == sum(r[4] == OAUTH_ERROR for r in plan.rows)
    assert classes["rate-limited"]["orgs"] == [plan.busy_org]
    assert classes["rate-limited"]["failures"] == sum(r[4] == RATE_LIMIT_ERROR for r in plan.rows)
    assert pd.Timestamp(classes["rate-limited"]["first_failure"]) < first_at


def test_expired_orgs_stop_syncing():
    plan = Plan(NOW)
    for org, at in plan.expiring.items():
        assert plan.last_synced[org] < at
    assert Plan(NOW).rows == plan.rows  # seeded
