"""security: principals, new source IPs (against a baseline and known ranges), sensitive calls, bursts."""

from __future__ import annotations

import pandas as pd

from forensics.analysis import security

T = pd.Timestamp("2026-11-23T10:00:00Z")


def _ev(minute, principal, ip, name, error=None, i=[0]):  # noqa: B006 - a counter for unique ids
    i[0] += 1
    return {"timestamp": T + pd.Timedelta(seconds=60 * minute + i[0] % 50), "principal": principal, "source_ip": ip,
            "event_name": name, "error_code": error, "event_id": f"e{i[0]}"}


def _frames():
    baseline = pd.DataFrame([_ev(-300, "arn:aws:iam::1:user/alice", "192.0.2.10", "ListUsers"),
                             _ev(-200, "arn:aws:iam::1:user/ci", "10.1.2.3", "GetSecretValue")])
    events = pd.DataFrame(
        [_ev(1, "arn:aws:iam::1:user/alice", "192.0.2.10", "DescribeInstances"),
         _ev(2, "arn:aws:iam::1:user/ci", "10.1.9.9", "GetSecretValue"),  # new IP, but in a known range
         _ev(3, "secretsmanager.amazonaws.com", "secretsmanager.amazonaws.com", "Decrypt"),
         _ev(4, "arn:aws:iam::1:user/leaked", "203.0.113.77", "CreateAccessKey")]
        + [_ev(5, "arn:aws:iam::1:user/leaked", "203.0.113.77", "GetSecretValue") for _ in range(12)]
        + [_ev(6, "arn:aws:iam::1:user/alice", "192.0.2.10", "StopLogging", error="AccessDenied")])
    return events, baseline


def test_principals_new_first():
    events, baseline = _frames()
    who = security.principals(events, baseline)
    assert who.iloc[0]["principal"] == "arn:aws:iam::1:user/leaked" and who.iloc[0]["new"]
    assert who.iloc[0]["sensitive_calls"] == 13 and who.iloc[0]["source_ips"] == ["203.0.113.77"]
    alice = who[who["principal"].str.endswith("alice")].iloc[0]
    assert not alice["new"] and alice["errors"] == 1


def test_new_source_ips_skip_known_ranges_and_service_names():
    events, baseline = _frames()
    assert security.new_source_ips(events, baseline)["source_ip"].tolist() == ["10.1.9.9", "203.0.113.77"]
    new = security.new_source_ips(events, baseline, known=["10.0.0.0/8"])
    assert new["source_ip"].tolist() == ["203.0.113.77"]
    assert new.iloc[0]["sensitive_calls"] == 13 and new.iloc[0]["principals"] == ["arn:aws:iam::1:user/leaked"]
    # without a baseline everything addressable is new; service names never are
    assert "secretsmanager.amazonaws.com" not in security.new_source_ips(events, None)["source_ip"].tolist()


def test_sensitive_calls_new_actors_first_and_bursts():
    events, baseline = _frames()
    calls = security.sensitive_calls(events, baseline, known=["10.0.0.0/8"])
    top = calls.iloc[0]
    assert (top["event_name"], top["calls"], top["new_principal"], top["new_ip"]) == ("GetSecretValue", 12, True, True)
    assert calls.iloc[1]["event_name"] == "CreateAccessKey"
    stop = calls[calls["event_name"] == "StopLogging"].iloc[0]
    assert stop["failed"] == 1 and not stop["new_principal"]
    b = security.bursts(events)
    assert b.iloc[0]["calls"] == 12 and b.iloc[0]["event_name"] == "GetSecretValue"
    marks = security.key_moments(events, baseline, known=["10.0.0.0/8"])
    assert marks[0][1] == "CreateAccessKey by user/leaked"
    rec = security.as_records(calls, limit=1, short=True)
    assert rec[0]["principal"] == "user/leaked"


def test_empty_frames_and_bad_known_range():
    empty = pd.DataFrame(columns=["timestamp", "principal", "source_ip", "event_name", "error_code", "event_id"])
    assert security.principals(empty).empty and security.new_source_ips(empty).empty
    assert security.sensitive_calls(empty).empty and security.bursts(empty).empty
    events, _ = _frames()
    import pytest

    with pytest.raises(ValueError, match="known_ips"):
        security.new_source_ips(events, None, known=["not-a-range"])
