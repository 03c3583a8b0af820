"""Evidence that real incidents leave in S3 and in RDS's log export, written the way AWS delivers it.

- :func:`put_trail`: CloudTrail delivery files, ``<prefix>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
  <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz``, one per 5 minutes of events, each a
  gzip JSON ``{"Records": [...]}``; the time in the name is the end of the interval (as AWS's is, at most
  a few minutes after its events).
- :func:`put_alb_logs`: ALB access logs, ``<prefix>/AWSLogs/<account>/elasticloadbalancing/<region>/
  YYYY/MM/DD/<account>_elasticloadbalancing_<region>_app.<name>.<id>_<YYYYMMDDTHHMMZ>_<ip>_<random>.log.gz``,
  one file per 5 minutes named by the interval's end, lines in AWS's documented field order.
- :func:`alb_line`: one access-log line from a request's fields.
- :func:`rds_log_line`: one PostgreSQL log line with RDS's prefix ``%t:%r:%u@%d:[%p]:``.

The scenarios call these with their own planted requests and records; :mod:`forensics.sources` reads them
back through S3 exactly as from a real account.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from collections.abc import Iterable

import pandas as pd

INTERVAL = pd.Timedelta("5min")


def _stamp(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y%m%dT%H%MZ")


def _day(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y/%m/%d")


def _interval_end(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.floor(INTERVAL) + INTERVAL


def _ensure_bucket(s3, bucket: str, region: str) -> None:
    names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket in names:
        return
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **kwargs)


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as fh:
        fh.write(data)
    return buf.getvalue()


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def put_trail(s3, bucket: str, prefix: str, account: str, region: str, records: Iterable[dict], *,
              seed: int = 7) -> dict:
    """Deliver ``records`` (CloudTrail records with ``eventTime``) as a trail would; returns counts."""
    rng = random.Random(seed)
    _ensure_bucket(s3, bucket, region)
    by_file: dict[pd.Timestamp, list[dict]] = {}
    for r in records:
        by_file.setdefault(_interval_end(pd.Timestamp(r["eventTime"])), []).append(r)
    keys = []
    for end, recs in sorted(by_file.items()):
        name = f"{account}_CloudTrail_{region}_{_stamp(end)}_{''.join(rng.choices('abcdefghijkLMNOPQ0123456789', k=16))}"
        key = _join(prefix, "AWSLogs", account, "CloudTrail", region, _day(end), f"{name}.json.gz")
        recs = sorted(recs, key=lambda r: r["eventTime"])
        s3.put_object(Bucket=bucket, Key=key, Body=_gzip(json.dumps({"Records": recs}).encode()))
        keys.append(key)
    return {"bucket": bucket, "files": len(keys), "records": sum(len(v) for v in by_file.values())}


def alb_line(*, time: pd.Timestamp, elb: str, client: str, target: str | None, request: str, user_agent: str,
             elb_status: int, target_status: int | None, target_time: float | None, target_group_arn: str,
             trace_id: str, received: int = 320, sent: int = 1200, error_reason: str | None = None,
             classification: str | None = None) -> str:
    """One line of an ALB access log (https, AWS's field order). ``target`` None: the ALB answered itself
    (no target reached: ``-`` and ``-1`` as AWS writes them)."""
    ts = time.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    created = (time - pd.Timedelta(milliseconds=1)).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def q(v):
        return f'"{v if v is not None else "-"}"'

    fields = [
        "https", ts, elb, client, target or "-",
        "0.000", f"{target_time:.3f}" if target_time is not None else "-1", "0.000" if target else "-1",
        str(elb_status), str(target_status) if target_status is not None else "-", str(received),
        str(sent), q(request), q(user_agent), "ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2", target_group_arn,
        q(trace_id), q("api.scr.example"), q("arn:aws:acm:eu-west-1:123456789012:certificate/0f5e7c1a"), "1",
        created, q("forward"), q(None), q(error_reason), q(target), q(target_status),
        q(classification), q(None), "TID_" + trace_id[-12:],
    ]
    return " ".join(fields)


def put_alb_logs(s3, bucket: str, prefix: str, account: str, region: str, lb_dimension: str,
                 lines: Iterable[tuple[pd.Timestamp, str]], *, seed: int = 11) -> dict:
    """Deliver ``(time, line)`` pairs as the ALB ``lb_dimension`` (``app/<name>/<id>``) would."""
    rng = random.Random(seed)
    _ensure_bucket(s3, bucket, region)
    _, name, lb_id = lb_dimension.split("/")
    by_file: dict[pd.Timestamp, list[tuple[pd.Timestamp, str]]] = {}
    for ts, line in lines:
        by_file.setdefault(_interval_end(ts), []).append((ts, line))
    for end, rows in sorted(by_file.items()):
        ip = f"10.0.{rng.randint(0, 3)}.{rng.randint(2, 250)}"
        key = _join(prefix, "AWSLogs", account, "elasticloadbalancing", region, _day(end),
                    f"{account}_elasticloadbalancing_{region}_app.{name}.{lb_id}_{_stamp(end)}_{ip}_"
                    f"{''.join(rng.choices('abcdefghijklmnopqrstuvwxyz0123456789', k=8))}.log.gz")
        body = "\n".join(line for _, line in sorted(rows, key=lambda r: r[0])) + "\n"
        s3.put_object(Bucket=bucket, Key=key, Body=_gzip(body.encode()))
    return {"bucket": bucket, "files": len(by_file), "lines": sum(len(v) for v in by_file.values())}


def rds_log_line(ts: pd.Timestamp, severity: str, message: str, *, client: str = "10.0.1.23(51234)",
                 user: str = "app", database: str = "app", pid: int = 12345) -> str:
    """A PostgreSQL log line as RDS writes it (``log_line_prefix = %t:%r:%u@%d:[%p]:``)."""
    return f"{ts.tz_convert('UTC').strftime('%Y-%m-%d %H:%M:%S')} UTC:{client}:{user}@{database}:[{pid}]:" \
           f"{severity}:  {message}"
