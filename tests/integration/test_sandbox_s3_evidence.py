"""The sandbox writes S3 evidence the way AWS delivers it, and the project's readers read it back."""

from __future__ import annotations

import pandas as pd
import pytest

from forensics_sandbox import s3_evidence as s3e
from forensics.sources import alb_logs, cloudtrail_s3
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox
ACCOUNT, REGION = "123456789012", "eu-west-1"
T = pd.Timestamp("2026-11-23T10:00:00Z")
LB = "app/scr-production-alb/4361f80389f5693e"


def _line(i: int, status: int = 200, target: str | None = "10.0.1.23:8000", path: str = "/api/v1/orders/42"):
    return s3e.alb_line(time=T + pd.Timedelta(seconds=7 * i), elb=LB, client=f"198.51.100.{i % 9}:443",
                        target=target, request=f"GET https://api.scr.example:443{path}?page=2 HTTP/1.1",
                        user_agent="Mozilla/5.0 (X11; Linux x86_64)", elb_status=status,
                        target_status=status if target else None, target_time=0.042 if target else None,
                        target_group_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api/1",
                        trace_id=f"Root=1-6541d2a0-{i:024d}")


def test_an_alb_line_parses_back_field_for_field():
    row = alb_logs.parse_line(_line(3, 502, target=None))
    assert row["elb_status_code"] == 502 and row["target_status_code"] is None
    assert row["target_ip"] is None and row["target_processing_time"] is None  # "-" and -1
    assert row["request_verb"] == "GET" and row["path"] == "/api/v1/orders/42" and row["query"] == "page=2"
    assert row["user_agent"].startswith("Mozilla/5.0") and row["client_ip"] == "198.51.100.3"
    ok = alb_logs.parse_line(_line(4))
    assert ok["target_ip"] == "10.0.1.23" and ok["target_port"] == 8000 and ok["target_processing_time"] == 0.042


def test_trail_and_access_logs_written_in_the_delivery_layout_read_back(moto_server):
    s3 = moto_server.client("s3")
    aws = {"region": REGION, "endpoint_url": moto_server.endpoint_url}
    records = [{"eventVersion": "1.08", "eventTime": (T + pd.Timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": REGION,
                "sourceIPAddress": "203.0.113.77", "eventID": f"e{m}", "eventCategory": "Data",
                "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/u"},
                "requestParameters": {"bucketName": "exports", "key": f"k{m}"}, "recipientAccountId": ACCOUNT}
               for m in range(0, 30, 2)]
    got = s3e.put_trail(s3, "sandbox-trail-test", "trail", ACCOUNT, REGION, records)
    assert got["files"] == 6 and got["records"] == 15
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sandbox-trail-test")["Contents"]]
    assert all(k.startswith(f"trail/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/11/23/{ACCOUNT}_CloudTrail_") for k in keys)
    window = IncidentWindow(T + pd.Timedelta(minutes=10), T + pd.Timedelta(minutes=20))
    events = cloudtrail_s3.trail_events({"bucket": "sandbox-trail-test", "prefix": "trail"}, window, aws)
    assert len(events) == 5 and set(events["event_category"]) == {"Data"}

    lines = [(T + pd.Timedelta(seconds=7 * i), _line(i)) for i in range(200)]
    got = s3e.put_alb_logs(s3, "sandbox-alb-test", "lb", ACCOUNT, REGION, LB, lines)
    assert got["lines"] == 200 and got["files"] == 5
    logs = alb_logs.access_logs({"access_logs": {"bucket": "sandbox-alb-test", "prefix": "lb"}},
                                IncidentWindow(T, T + pd.Timedelta(minutes=10)), aws)
    assert len(logs) == sum(ts < T + pd.Timedelta(minutes=10) for ts, _ in lines)
    assert logs.attrs["bad_lines"] == 0 and not logs.attrs["errors"]


def test_rds_log_line_is_classified_by_the_postgresql_log_reader():
    from forensics.analysis import pglog

    line = s3e.rds_log_line(T, "FATAL", "remaining connection slots are reserved for non-replication superuser "
                                       "connections")
    entries = pglog.parse_stderr([line])
    assert entries["category"].tolist() == ["connection_exhaustion"]
    assert entries["user"].iloc[0] == "app" and entries["timestamp"].iloc[0] == T
