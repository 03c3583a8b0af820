"""CRM sync errors (runbook 001 §3h): classification, failures per key, first failure per class, stale
connections, missing columns as unknown."""

from __future__ import annotations

import pandas as pd
import pytest

from forensics.analysis import integrations as crm

T = pd.Timestamp("2026-05-30T10:00:00Z")


def _logs(rows):
    cols = ["minute", "provider", "direction", "org_id", "status", "error_message", "syncs", "first_at", "last_at"]
    frame = pd.DataFrame(rows, columns=cols)
    for c in ("minute", "first_at", "last_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


def _row(minutes, provider, org, status, message, n=1, direction="outbound"):
    ts = T + pd.Timedelta(minutes=minutes)
    return [ts.floor("min"), provider, direction, org, status, message, float(n), ts, ts + pd.Timedelta(seconds=30)]


@pytest.mark.parametrize("message,provider,expected", [
    ("OAuth token expired for portal 123", "hubspot", "oauth-expired"),
    ("HTTP 401 Unauthorized", "salesforce", "oauth-expired"),
    ("429 Too Many Requests: You have reached your secondly limit", "hubspot", "rate-limited"),
    ("INVALID_FIELD: No such column 'Region__c' on entity 'Account'", "salesforce", "invalid-field"),
    ("INSUFFICIENT_ACCESS_RIGHTS: insufficient access rights on cross-reference id", "salesforce",
     "insufficient-access"),
    ("cryptography.fernet.InvalidToken", "hubspot", "decryption-failed"),
    ("connection reset by peer", "hubspot", "other"),
    ("record org-401 not found", "hubspot", "other"),      # an id is not a status code
    ("INVALID_FIELD on the HubSpot side", "hubspot", "other"),  # a Salesforce class is Salesforce's only
])
def test_classify(message, provider, expected):
    assert crm.classify(message, provider) == expected


def test_failures_by_class_first_failure_and_org():
    logs = _logs([
        _row(0, "hubspot", "org-a", "success", None, 50),
        _row(3, "hubspot", "org-b", "failed", "429 Too Many Requests", 2),
        _row(10, "hubspot", "org-a", "failed", "OAuth token expired", 4),
        _row(25, "hubspot", "org-c", "failed", "OAuth token expired", 3),
        _row(40, "salesforce", "org-d", "failed", "INVALID_FIELD: Region__c", 1, "inbound"),
    ])
    failed = crm.failures(logs)
    assert failed["syncs"].sum() == 10
    classes = crm.by_class(failed)
    assert [c["class"] for c in classes] == ["rate-limited", "oauth-expired", "invalid-field"]
    oauth = classes[1]
    assert oauth["failures"] == 7 and oauth["first_org"] == "org-a" and oauth["orgs"] == ["org-a", "org-c"]
    assert pd.Timestamp(oauth["first_failure"]) == T + pd.Timedelta(minutes=10)
    assert "re-authenticate" in oauth["fix"]
    by = crm.failures_by(failed)
    assert by[0] == {"provider": "hubspot", "direction": "outbound", "org_id": "org-a", "failures": 4,
                     "first_failure": oauth["first_failure"], "last_failure": by[0]["last_failure"]}
    assert crm.failure_share(logs, failed) == pytest.approx(10 / 60)
    events = crm.change_events(classes)
    assert list(events["kind"]) == [crm.CRM_SYNC_FAILED] * 3
    assert events["timestamp"].iloc[1] == T + pd.Timedelta(minutes=10)
    assert "org-a" in events["resource"].iloc[1]
    per_min = crm.failures_per_minute(failed)
    assert per_min["oauth-expired"].sum() == 7


def test_no_status_column_reads_error_messages_as_failures():
    logs = _logs([_row(0, None, "org-a", None, None, 5), _row(1, None, "org-a", None, "401 Unauthorized", 2)])
    failed = crm.failures(logs)
    assert failed["syncs"].sum() == 2 and list(failed["error_class"]) == ["oauth-expired"]
    assert crm.failures_by(failed)[0]["provider"] is None


def test_empty_logs_give_no_failures_not_an_error():
    empty = _logs([])
    assert crm.by_class(crm.failures(empty)) == [] and crm.failure_share(empty, crm.failures(empty)) is None


def test_missing_columns_are_named():
    cols = pd.DataFrame({"table_role": ["sync_logs"] * 4, "column_name": ["id", "org_id", "status", "created_at"]})
    missing = crm.missing_columns(cols)
    assert missing["sync_logs"] == ["provider", "direction", "error_message"]
    assert missing["connections"] == list(crm.EXPECTED_COLUMNS["connections"])  # no such table


def test_stale_connections():
    conns = pd.DataFrame({"id": ["1", "2", "3", "4"], "provider": ["hubspot"] * 4, "org_id": ["a", "b", "c", "d"],
                          "is_active": ["true", "true", "false", "true"],
                          "last_synced_at": [(T - pd.Timedelta(hours=30)).isoformat(), (T - pd.Timedelta(minutes=5)).isoformat(),
                                             (T - pd.Timedelta(days=9)).isoformat(), None],
                          "created_at": [None] * 4})
    stale = crm.stale_connections(conns, T)
    assert [s["org_id"] for s in stale] == ["d", "a"]
    assert stale[1]["hours_since_sync"] == 30.0
    assert crm.stale_connections(conns.iloc[:0], T) == [] and crm.stale_connections(None, T) is None
