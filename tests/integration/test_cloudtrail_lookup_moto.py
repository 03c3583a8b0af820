"""CloudTrail LookupEvents: the sandbox's in-process handler (moto lacks it), read through plain boto3 and
through forensics.sources.cloudtrail against a real moto server on loopback."""

from __future__ import annotations

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from forensics import redact
from forensics_sandbox import moto_ext as ext
from forensics.sources import cloudtrail
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox
T0 = pd.Timestamp("2026-11-23T10:00:00Z")


def _record(i: int, user: str = "alice", ip: str = "192.0.2.10", name: str = "DescribeInstances") -> dict:
    return {"eventTime": (T0 + pd.Timedelta(seconds=30 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventID": f"00000000-0000-4000-8000-{i:012d}", "eventName": name, "eventSource": "ec2.amazonaws.com",
            "sourceIPAddress": ip, "userAgent": "aws-cli/2.15", "awsRegion": "eu-west-1", "readOnly": True,
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::123456789012:user/{user}",
                             "userName": user, "accessKeyId": "AKIAEXAMPLEKEY000001"},
            "resources": [{"type": "AWS::EC2::Instance", "ARN": f"arn:aws:ec2:eu-west-1:1:instance/i-{i:04d}"}]}


@pytest.fixture(scope="module")
def trail(moto_server):
    ext.install()
    backend = moto_server.backend("cloudtrail")
    backend.__dict__.pop("forensics_events", None)
    records = [_record(i) for i in range(120)] + [_record(200, user="mallory", ip="203.0.113.77",
                                                          name="CreateAccessKey")]
    ext.add_cloudtrail_events(backend, records)
    yield records
    backend.__dict__.pop("forensics_events", None)


def test_pages_newest_first_within_the_time_range(moto_server, trail):
    ct = moto_server.client("cloudtrail")
    kwargs = {"StartTime": T0.to_pydatetime(), "EndTime": (T0 + pd.Timedelta(minutes=59)).to_pydatetime()}
    first = ct.lookup_events(MaxResults=50, **kwargs)
    assert len(first["Events"]) == 50 and first["NextToken"]
    times = [e["EventTime"] for e in first["Events"]]
    assert times == sorted(times, reverse=True)
    seen = list(first["Events"])
    token = first["NextToken"]
    while token:
        page = ct.lookup_events(MaxResults=50, NextToken=token, **kwargs)
        seen += page["Events"]
        token = page.get("NextToken")
    assert len(seen) == 119  # 0..118 (every 30 s) fall in [T0, T0+59min]: EndTime is inclusive
    assert len({e["EventId"] for e in seen}) == 119


def test_one_lookup_attribute_and_the_api_limits(moto_server, trail):
    ct = moto_server.client("cloudtrail")
    got = ct.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "mallory"}])
    assert [e["EventName"] for e in got["Events"]] == ["CreateAccessKey"]
    assert got["Events"][0]["AccessKeyId"] == "AKIAEXAMPLEKEY000001"
    got = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                              "AttributeValue": "arn:aws:ec2:eu-west-1:1:instance/i-0007"}])
    assert len(got["Events"]) == 1
    with pytest.raises(ClientError, match="InvalidLookupAttributes"):
        ct.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "a"},
                                           {"AttributeKey": "EventName", "AttributeValue": "b"}])
    with pytest.raises(ClientError, match="InvalidTimeRange"):
        ct.lookup_events(StartTime=(T0 + pd.Timedelta(hours=1)).to_pydatetime(), EndTime=T0.to_pydatetime())


def test_source_frame_and_the_access_key_redacted(aws_env, trail):
    window = IncidentWindow(T0, T0 + pd.Timedelta(hours=2))
    df = cloudtrail.lookup_events(window, aws=aws_env)
    assert len(df) == 121 and df["timestamp"].is_monotonic_increasing
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]"
    last = df.iloc[-1]
    assert (last["kind"], last["principal"], last["source_ip"], last["username"]) == (
        "CreateAccessKey", "arn:aws:iam::123456789012:user/mallory", "203.0.113.77", "mallory")
    assert last["message"] == "mallory called ec2:CreateAccessKey from 203.0.113.77"
    assert last["resource"].startswith("arn:aws:ec2:")
    scrubbed = redact.frame(df)  # what the capture store writes
    assert scrubbed["access_key_id"].str.startswith("[REDACTED:aws-access-key-id:").all()
    assert scrubbed["access_key_id"].nunique() == 1
    few = cloudtrail.lookup_events(window, aws=aws_env, max_events=60)
    assert few.attrs["truncated"] is True and len(few) <= 100
    one = cloudtrail.lookup_events(window, aws=aws_env, attribute=("EventName", "CreateAccessKey"))
    assert one["event_name"].tolist() == ["CreateAccessKey"]


def test_source_error_is_one_line(trail):
    from forensics.errors import SourceError

    with pytest.raises(SourceError, match="LookupEvents failed: endpoint unreachable"):
        cloudtrail.lookup_events(IncidentWindow(T0, T0 + pd.Timedelta(hours=1)),
                                 aws={"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"},
                                 config=__import__("forensics._aws", fromlist=["x"]).client_config(
                                     connect_timeout=1, max_attempts=1))
