"""security.data_access (object calls with bursts against each principal's own baseline) and the
sensitive-calls file."""

from __future__ import annotations

import pandas as pd
import pytest

from forensics.analysis import security
from forensics.sources import query_engines

T = pd.Timestamp("2026-11-23T10:00:00Z")


def _get(sec, principal="arn:aws:iam::1:role/app", bucket="orders-exports", key=None, name="GetObject",
         error=None, nbytes=1000.0):
    return {"timestamp": T + pd.Timedelta(seconds=sec), "principal": principal, "bucket": bucket,
            "object_key": key or f"exports/{sec}.csv", "event_name": name, "event_source": "s3.amazonaws.com",
            "event_category": "Data", "error_code": error, "bytes_out": nbytes, "source_ip": "10.0.0.5",
            "event_id": f"{principal}-{sec}-{name}"}


def _frames():
    # baseline: the app reads about 5 objects a minute for 2 hours (600 calls in 120 minutes)
    baseline = pd.DataFrame([_get(-7200 + 12 * i) for i in range(600)])
    events = pd.DataFrame(
        [_get(12 * i) for i in range(300)]  # the same steady rate in the window: no burst
        + [_get(1800 + i * 0.1, principal="arn:aws:iam::1:user/leaked", key=f"exports/{i}.csv", nbytes=5e6)
           for i in range(400)]  # 400 reads in 40 s by a principal never seen on that bucket
        + [_get(2400 + i, principal="arn:aws:iam::1:role/app", name="PutObject") for i in range(3)]
        + [{"timestamp": T, "principal": "arn:aws:iam::1:user/alice", "event_name": "ListUsers",
            "event_source": "iam.amazonaws.com", "event_category": "Management", "event_id": "m1"}])
    return events, baseline


def test_bursts_against_the_principals_own_baseline():
    events, baseline = _frames()
    out = security.data_access(events, baseline, baseline_minutes=120)
    assert len(out) == 3  # management calls are not object calls
    top = out.iloc[0]
    assert (top["principal"], top["bucket"], top["event_name"]) == ("arn:aws:iam::1:user/leaked", "orders-exports",
                                                                   "GetObject")
    assert top["burst"] and top["new_principal"] and top["calls"] == 400 and top["objects"] == 400
    assert top["bytes_out"] == pytest.approx(2e9) and top["peak_per_minute"] >= 200
    app = out[(out["principal"] == "arn:aws:iam::1:role/app") & (out["event_name"] == "GetObject")].iloc[0]
    assert app["baseline_per_minute"] == pytest.approx(5.0) and not app["burst"] and not app["new_principal"]
    assert app["burst_threshold"] == security.poisson_threshold(5.0) == 16
    put = out[out["event_name"] == "PutObject"].iloc[0]
    assert not put["burst"] and put["calls"] == 3  # 3 calls: under min_calls, whatever the baseline


def test_same_principal_bursting_above_its_own_rate():
    events, baseline = _frames()
    burst = pd.DataFrame([_get(3000 + i * 2) for i in range(25)])  # 25 in 50 s, 5x the usual rate
    out = security.data_access(pd.concat([events, burst]), baseline, baseline_minutes=120)
    app = out[(out["principal"] == "arn:aws:iam::1:role/app") & (out["event_name"] == "GetObject")].iloc[0]
    assert app["burst"] and app["burst_minutes"] == 1
    # without a baseline the same minute still needs min_calls
    assert security.data_access(burst, None, min_calls=30).iloc[0]["burst"] == False  # noqa: E712


def test_duckdb_query_gives_the_same_aggregates():
    events, _ = _frames()
    events = events.assign(timestamp=events["timestamp"].astype("datetime64[us, UTC]"))
    sql = query_engines.run_duckdb("cloudtrail_data_access", {"cloudtrail_logs": events},
                                   {"start": T - pd.Timedelta(hours=1), "end": T + pd.Timedelta(hours=2)})
    py = security.data_access(events)
    m = py.merge(sql, on=["principal", "bucket", "event_name"], suffixes=("", "_sql"))
    assert len(m) == len(py) == 3
    for col in ("calls", "objects", "errors", "peak_per_minute"):
        assert (m[col] == m[f"{col}_sql"]).all(), col
    assert (m["bytes_out"] == m["bytes_out_sql"]).all()


def test_poisson_threshold():
    assert security.poisson_threshold(0) == 1
    assert security.poisson_threshold(1.0) == 7  # P(X>=7 | 1) = 8.3e-5 <= 1e-4 < P(X>=6) = 5.9e-4
    assert security.poisson_threshold(1000) > 1000


def test_sensitive_calls_are_data_and_cover_the_playbooks():
    cat = security.SENSITIVE_CATEGORY
    for name in ("PutUserPolicy", "AttachRolePolicy", "CreateAccessKey", "CreateLoginProfile",
                 "UpdateAssumeRolePolicy", "DeactivateMFADevice", "StopLogging", "DeleteTrail", "PutEventSelectors",
                 "DeleteFlowLogs", "DeleteDetector", "PutBucketPolicy", "PutBucketAcl",
                 "DeleteBucketPublicAccessBlock", "DisableKey", "ScheduleKeyDeletion", "GetSecretValue"):
        assert name in security.SENSITIVE_EVENTS, name
    assert cat["UpdateAssumeRolePolicy"] == "role_trust_changes" and cat["StopLogging"] == "logging_and_detection"


def test_sensitive_calls_file_errors(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("a: {events: [StopLogging]}\nb: {events: [StopLogging]}\n")
    with pytest.raises(ValueError, match="StopLogging is listed under both"):
        security.load_sensitive_calls(bad)
    bad.write_text("a: {description: no events}\n")
    with pytest.raises(ValueError, match="needs a list of event names"):
        security.load_sensitive_calls(bad)
