"""CloudTrail delivery files and ALB access logs read from S3 in their real layout, on the real moto
server on loopback; named queries on DuckDB and on moto's Athena; error shapes moto cannot produce
(AccessDenied, Athena pagination and failure) with botocore's Stubber.

Data: the sandbox's invictus-ir CloudTrail subset (MIT, lib/forensics_sandbox/data/cloudtrail) and, when
../shared is present, the whole invictus-ir trail (55 delivery files, 2,900 records)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from botocore.stub import Stubber

from forensics.errors import ReadOnlyViolation, SourceError
from forensics.sources import alb_logs, cloudtrail_s3, query_engines
from forensics.sources import s3_objects as so
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox
REPO = Path(__file__).resolve().parents[2]
SUBSET = REPO / "lib" / "forensics_sandbox" / "data" / "cloudtrail" / "invictus-ir-aws-dataset-subset.json.gz"
TRAIL = "forensics-test-outside-cw-trail"
LOGS = "forensics-test-outside-cw-alb"
ACCOUNT, REGION = "123456789012", "us-east-1"
WINDOW = IncidentWindow("2023-07-10T12:00:00Z", "2023-07-10T12:30:00Z")


def _gz(data: bytes) -> bytes:
    return gzip.compress(data)


def _stamp(ts: pd.Timestamp) -> pd.Timestamp:
    """When CloudTrail would deliver a record: the next 5-minute mark after it."""
    return ts.floor("5min") + pd.Timedelta("5min")


def _trail_key(base: str, stamp: pd.Timestamp, suffix: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return (f"{base}/{stamp:%Y/%m/%d}/{account}_CloudTrail_{region}_{stamp:%Y%m%dT%H%MZ}_{suffix}.json.gz")


def _data_event(i: int, ts: pd.Timestamp) -> dict:
    return {"eventVersion": "1.09", "eventTime": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject", "awsRegion": REGION, "sourceIPAddress": "198.51.100.77",
            "userAgent": "[aws-cli/2.15.0]", "eventID": f"00000000-0000-4000-8000-{i:012d}", "readOnly": True,
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/exfil",
                             "accountId": ACCOUNT, "accessKeyId": "AKIAEXAMPLEKEY000009", "userName": "exfil"},
            "requestParameters": {"bucketName": "customer-exports", "key": f"exports/{i}.csv",
                                  "Host": "customer-exports.s3.amazonaws.com"},
            "additionalEventData": {"bytesTransferredOut": 1048576},
            "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::customer-exports/exports/{i}.csv"},
                          {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::customer-exports"}],
            "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": ACCOUNT,
            "eventCategory": "Data"}


@pytest.fixture(scope="module")
def trail(moto_server):
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=TRAIL, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    records = json.loads(gzip.decompress(SUBSET.read_bytes()))
    data_events = [_data_event(i, pd.Timestamp("2023-07-10T12:20:00Z") + pd.Timedelta(seconds=i // 10))
                   for i in range(300)]
    base = f"trail/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}"
    files: dict[str, list] = {}
    for r in records + data_events:
        key = _trail_key(base, _stamp(pd.Timestamp(r["eventTime"])), "mgmt" if r not in data_events else "data")
        files.setdefault(key, []).append(r)
    # a file of the day before and one stamped hours after the window: on their day prefixes, never read
    files[_trail_key(base, pd.Timestamp("2023-07-09T23:55Z"), "old")] = [dict(records[0], eventTime="2023-07-09T23:51:00Z")]
    files[_trail_key(base, pd.Timestamp("2023-07-10T18:00Z"), "late")] = [dict(records[0], eventTime="2023-07-10T17:58:00Z")]
    for key, recs in files.items():
        s3.put_object(Bucket=TRAIL, Key=key, Body=_gz(json.dumps({"Records": recs}).encode()))
    bad = {_trail_key(base, pd.Timestamp("2023-07-10T12:10Z"), "plain"): json.dumps({"Records": []}).encode(),
           _trail_key(base, pd.Timestamp("2023-07-10T12:15Z"), "notjson"): _gz(b"<html>not json</html>"),
           _trail_key(base, pd.Timestamp("2023-07-10T12:25Z"), "cut"): _gz(json.dumps({"Records": records}).encode())[:300]}
    for key, body in bad.items():
        s3.put_object(Bucket=TRAIL, Key=key, Body=body)
    # an organisation trail in another prefix, another region
    org = f"org/AWSLogs/o-abcdefghij/{ACCOUNT}/CloudTrail/eu-west-1"
    s3.put_object(Bucket=TRAIL, Key=_trail_key(org, pd.Timestamp("2023-07-10T12:05Z"), "org", region="eu-west-1"),
                  Body=_gz(json.dumps({"Records": data_events[:5]}).encode()))
    in_window = [r for r in records + data_events if "2023-07-10T12:00:00Z" <= r["eventTime"] < "2023-07-10T12:30:00Z"]
    return {"records": records, "data_events": data_events, "in_window": in_window, "files": files, "bad": bad}


def test_trail_from_its_bucket_reads_only_the_window(aws_env, trail):
    df = cloudtrail_s3.trail_events({"bucket": TRAIL, "prefix": "trail"}, WINDOW, aws_env)
    assert len(df) == len(trail["in_window"]) and df["timestamp"].is_monotonic_increasing
    assert df["timestamp"].min() >= WINDOW.start and df["timestamp"].max() < WINDOW.end
    data = df[df["event_category"] == "Data"]
    assert len(data) == 300 and set(data["bucket"]) == {"customer-exports"}
    row = data.iloc[0]
    assert (row["event_name"], row["principal"], row["username"], row["object_key"], row["bytes_out"]) == (
        "GetObject", f"arn:aws:iam::{ACCOUNT}:user/exfil", "exfil", "exports/0.csv", 1048576.0)
    assert json.loads(row["resources"])[1] == "arn:aws:s3:::customer-exports"
    assert set(df["event_category"]) == {"Management", "Data"}
    a = df.attrs
    # one day prefix: [11:55, 13:30] is all on the 10th; the day before is never listed
    assert a["prefixes"] == [f"trail/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2023/07/10/"]
    stamps = [so.key_time(k) for k in list(trail["files"]) + list(trail["bad"])]
    assert a["objects_listed"] == sum(t.day == 10 for t in stamps)
    readable = [k for k in trail["files"] if pd.Timestamp("2023-07-10T11:55Z") < so.key_time(k)
                <= pd.Timestamp("2023-07-10T13:30Z")]
    assert a["objects_read"] == len(readable) < len(trail["files"]) - 2  # not the 11:xx files, not 18:00
    errors = {e["key"].rsplit("_", 1)[-1]: e["error"] for e in a["errors"]}
    assert errors.keys() == {"plain.json.gz", "notjson.json.gz", "cut.json.gz"}
    assert errors["plain.json.gz"].startswith("not gzip") and errors["notjson.json.gz"].startswith("not JSON")
    assert errors["cut.json.gz"].startswith("gzip stream cut short")
    assert a["bytes_read"] > 0 and a["engine"] == "python" and a["bytes_scanned"] == a["bytes_read"]


def test_accounts_regions_and_organisation_discovered(aws_env, trail):
    bases = cloudtrail_s3.trail_bases({"bucket": TRAIL, "prefix": "org"}, aws_env)
    assert bases == [f"org/AWSLogs/o-abcdefghij/{ACCOUNT}/CloudTrail/eu-west-1"]
    df = cloudtrail_s3.trail_events({"bucket": TRAIL, "prefix": "org", "organization_id": "o-abcdefghij"},
                                    IncidentWindow("2023-07-10T11:55Z", "2023-07-10T12:30Z"), aws_env)
    assert len(df) == 5
    assert cloudtrail_s3.trail_bases({"bucket": TRAIL, "prefix": "trail", "accounts": [ACCOUNT],
                                      "regions": ["ap-south-1"]}, aws_env) == [
        f"trail/AWSLogs/{ACCOUNT}/CloudTrail/ap-south-1"]


def test_missing_bucket_and_writes_refused(aws_env):
    with pytest.raises(SourceError, match="bucket 'no-such-trail-bucket' does not exist"):
        cloudtrail_s3.trail_events({"bucket": "no-such-trail-bucket"}, WINDOW, aws_env)
    s3 = so.read_client("s3", aws_env)
    with pytest.raises(ReadOnlyViolation, match="s3:PutObject is not a read operation"):
        s3.put_object(Bucket=TRAIL, Key="x", Body=b"x")
    with pytest.raises(ValueError, match="bucket is required"):
        cloudtrail_s3.trail_events({"prefix": "x"}, WINDOW, aws_env)


def test_access_denied_is_one_clear_line(aws_env):
    """moto does not enforce bucket policies, so the AccessDenied shape comes from the Stubber."""
    s3 = so.read_client("s3", aws_env)
    with Stubber(s3) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
        with pytest.raises(SourceError, match=r"s3:ListObjectsV2 s3://t/AWSLogs/ failed: AccessDenied.*"
                                              r"missing this permission"):
            cloudtrail_s3.trail_events({"bucket": "t"}, WINDOW, aws_env, client=s3)


def test_one_object_denied_the_others_still_read(aws_env, trail):
    """A delivery file encrypted with a KMS key the collector may not use fails alone."""
    s3 = so.read_client("s3", aws_env)
    reading = so.Reading(TRAIL)
    keys = ["a_CloudTrail_x_20230710T1205Z_1.json.gz", "a_CloudTrail_x_20230710T1210Z_2.json.gz"]
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
        body = _gz(json.dumps({"Records": [trail["records"][0]]}).encode())
        from botocore.response import StreamingBody

        stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))},
                          {"Bucket": TRAIL, "Key": keys[1]})
        # threads=1: the Stubber answers calls in the order they were queued
        got = list(so.read_each(s3, keys, reading, lambda k: so.read_json(s3, TRAIL, k, reading), threads=1))
    assert [k for k, _ in got] == [keys[1]] and reading.objects == 1 and reading.bytes_read == len(body)
    assert reading.errors[0]["key"] == keys[0] and "AccessDenied" in reading.errors[0]["error"]


def test_reading_objects_at_once_is_reading_them_one_at_a_time(aws_env, trail, moto_server):
    """Eight GETs at once hand over the same objects, in key order, with the same errors, bytes and truncation
    as one at a time, whichever GET answers first; a bound on bytes stops at the same object."""
    s3 = so.read_client("s3", aws_env)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=TRAIL, Prefix="trail/")["Contents"])
    assert len(keys) > 8  # more objects than threads, and the planted bad ones among them

    def read_all(threads, max_bytes=so.DEFAULT_MAX_BYTES):
        reading = so.Reading(TRAIL)
        got = [(k, len(doc["Records"])) for k, doc in so.read_each(
            s3, keys, reading, lambda k: so.read_json(s3, TRAIL, k, reading), threads=threads, max_bytes=max_bytes)]
        return got, reading.errors, reading.bytes_read, reading.objects, reading.truncated

    one = read_all(1)
    assert one[1] and one[2] > 0 and not one[4]  # the planted bad files are errors, named by key
    assert read_all(8) == one
    bound = one[2] // 3
    cut = read_all(1, bound)
    assert cut[4] and 0 < len(cut[0]) < len(one[0])
    assert read_all(8, bound) == cut


@pytest.mark.skipif(not (REPO.parent / "shared" / "data" / "real" / "cloudtrail").exists(),
                    reason="shared/data/real is not beside this checkout")
def test_the_whole_real_trail_in_its_layout(moto_server, aws_env):
    src = REPO.parent / "shared" / "data" / "real" / "cloudtrail" / "invictus-ir_aws_dataset"
    s3 = moto_server.client("s3")
    bucket = "forensics-test-outside-cw-realtrail"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    total = 0
    for path in sorted(src.glob("*_CloudTrail_*.json")):
        account, _, region, stamp = path.name.split("_")[:4]
        key = f"AWSLogs/{account}/CloudTrail/{region}/{stamp[:4]}/{stamp[4:6]}/{stamp[6:8]}/{path.name}.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=_gz(path.read_bytes()))
        total += len(json.loads(path.read_text())["Records"])
    df = cloudtrail_s3.trail_events({"bucket": bucket}, IncidentWindow("2023-07-10T11:00Z", "2023-07-10T13:00Z"),
                                    aws_env)
    assert total == 2900 and len(df) == 2900 and df.attrs["objects_read"] == 55 and not df.attrs["errors"]
    assert df["event_id"].is_unique and (df["event_category"] == "Management").all()


# ---- ALB access logs -------------------------------------------------------------------------------
def _alb_line(ts: pd.Timestamp, path: str, status: int, client: str = "198.51.100.7:4000") -> str:
    t = ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    tgt = "-" if status == 504 else str(status)
    target, times = ("-", "-1 -1 -1") if status == 504 else ("10.0.1.20:8080", "0.001 0.120 0.000")
    return (f'https {t} app/web/0123456789abcdef {client} {target} {times} {status} {tgt} 300 900 '
            f'"GET https://shop.example.com:443{path} HTTP/1.1" "curl/8.5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
            f'arn:aws:elasticloadbalancing:eu-west-1:{ACCOUNT}:targetgroup/web/1a2b "Root=1-abc" "shop.example.com" '
            f'"-" 1 {t} "forward" "-" "-" "{target}" "{tgt}" "-" "-" TID_0001')


def _alb_key(end: pd.Timestamp, lb: str = "app.web.0123456789abcdef", node: str = "10.0.0.5") -> str:
    return (f"lb/AWSLogs/{ACCOUNT}/elasticloadbalancing/eu-west-1/{end:%Y/%m/%d}/{ACCOUNT}_elasticloadbalancing_"
            f"eu-west-1_{lb}_{end:%Y%m%dT%H%MZ}_{node}_r{end:%H%M}.log.gz")


@pytest.fixture(scope="module")
def access_log_bucket(moto_server):
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=LOGS, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    start = pd.Timestamp("2026-05-30T08:45Z")
    for k in range(10):  # files ending 08:50 ... 09:35, each holding its 5 minutes
        end = start + pd.Timedelta(minutes=5 * (k + 1))
        lines = [_alb_line(end - pd.Timedelta(seconds=290 - 10 * j), f"/api/orders/{k * 100 + j}",
                           504 if "09:1" in f"{end:%H:%M}" and j % 3 == 0 else 200) for j in range(29)]
        if k == 5:
            lines.insert(3, lines[3][:120])  # a line cut short
        s3.put_object(Bucket=LOGS, Key=_alb_key(end), Body=_gz(("\n".join(lines) + "\n").encode()))
    s3.put_object(Bucket=LOGS, Key=_alb_key(pd.Timestamp("2026-05-30T09:10Z"), lb="app.other.ffff"),
                  Body=_gz(_alb_line(pd.Timestamp("2026-05-30T09:07Z"), "/x", 200).encode()))
    s3.put_object(Bucket=LOGS, Key=_alb_key(pd.Timestamp("2026-05-30T09:15Z"), node="10.0.0.6"), Body=b"not gzip")
    return s3


def test_access_logs_of_the_window(aws_env, access_log_bucket):
    window = IncidentWindow("2026-05-30T09:00Z", "2026-05-30T09:20Z")
    alb = {"load_balancer": "app/web/0123456789abcdef", "access_logs": {"bucket": LOGS, "prefix": "lb"}}
    df = alb_logs.access_logs(alb, window, aws_env)
    a = df.attrs
    # files ending 09:05..09:25 overlap [09:00, 09:20); the other load balancer's file is not read
    assert a["objects_read"] == 5 and a["objects_listed"] == 12
    assert df["timestamp"].min() >= window.start and df["timestamp"].max() < window.end
    assert len(df) == 4 * 29  # 09:00-09:20: four whole 5-minute files' lines
    assert a["bad_lines"] == 1 and any("fewer fields" in e["error"] for e in a["errors"])
    assert any(e["error"].startswith("not gzip") for e in a["errors"])
    assert set(df.loc[df["elb_status_code"] == 504, "target_ip"].isna()) == {True}
    # the same frame through the named query on DuckDB, bytes read carried into the query's record
    out = query_engines.run("alb_endpoints", tables={"alb_logs": df},
                            params={"start": window.start, "end": window.end})
    assert out.attrs["engine"] == "duckdb" and out.attrs["bytes_scanned"] == a["bytes_read"] > 0
    assert out.iloc[0]["endpoint"] == "GET /api/orders/{n}" and out.iloc[0]["elb_5xx"] == 20


# ---- Athena ----------------------------------------------------------------------------------------
def test_named_query_on_moto_athena(moto_server, aws_env):
    from moto.athena.models import QueryResults

    backend = moto_server.backend("athena")
    cols = [{"Name": "endpoint", "Type": "varchar"}, {"Name": "requests", "Type": "bigint"},
            {"Name": "p95", "Type": "double"}]
    rows = [{"Data": [{"VarCharValue": "endpoint"}, {"VarCharValue": "requests"}, {"VarCharValue": "p95"}]},
            {"Data": [{"VarCharValue": "POST /api/checkout/{n}"}, {"VarCharValue": "60"}, {"VarCharValue": "2.5"}]}]
    backend.query_results_queue.append(QueryResults(rows=rows, column_info=cols))
    athena = {"workgroup": "primary", "database": "logs", "output_location": "s3://athena-results/forensics/"}
    out = query_engines.run("alb_endpoints", athena=athena, aws=aws_env,
                            params={"start": "2026-05-30T09:00:00Z", "end": "2026-05-30T10:00:00Z",
                                    "table": "web_alb_logs"}, tables=None)
    assert out["endpoint"].tolist() == ["POST /api/checkout/{n}"] and out["requests"].tolist() == [60]
    assert str(out["requests"].dtype) == "Int64" and out.loc[0, "p95"] == 2.5
    assert out.attrs["engine"] == "athena" and out.attrs["bytes_scanned"] == 0
    sent = backend.executions[out.attrs["query_execution_id"]].query
    assert "FROM web_alb_logs" in sent and "from_iso8601_timestamp('2026-05-30T09:00:00.000Z')" in sent
    assert "{start}" not in sent and "{table}" not in sent


def test_athena_request_shapes_pagination_and_failure(aws_env):
    ath = so.read_client("athena", aws_env)
    athena = {"workgroup": "forensics", "database": "trail", "output_location": "s3://r/"}
    params = {"start": "2026-05-30T09:00:00Z", "end": "2026-05-30T10:00:00Z"}
    cols = [{"Name": "principal", "Type": "varchar"}, {"Name": "calls", "Type": "bigint"},
            {"Name": "first_seen", "Type": "timestamp with time zone"}]

    def page(values, token=None):
        out = {"ResultSet": {"Rows": [{"Data": [{"VarCharValue": v} for v in r]} for r in values],
                             "ResultSetMetadata": {"ColumnInfo": cols}}}
        return {**out, **({"NextToken": token} if token else {})}

    with Stubber(ath) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, {
            "QueryString": query_engines.render(query_engines.load_query("cloudtrail_data_access", "athena"), params),
            "WorkGroup": "forensics", "QueryExecutionContext": {"Database": "trail"},
            "ResultConfiguration": {"OutputLocation": "s3://r/"}})
        stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}},
                          {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_execution", {"QueryExecution": {
            "Status": {"State": "SUCCEEDED"}, "Statistics": {"DataScannedInBytes": 123456}}}, {"QueryExecutionId": "q-1"})
        stub.add_response("get_query_results", page([["principal", "calls", "first_seen"],
                                                     ["user/exfil", "300", "2026-05-30 09:20:00.000 UTC"]], "t2"),
                          {"QueryExecutionId": "q-1", "MaxResults": 1000})
        stub.add_response("get_query_results", page([["role/app", "12", "2026-05-30 09:01:00.000 UTC"]]),
                          {"QueryExecutionId": "q-1", "MaxResults": 1000, "NextToken": "t2"})
        out = query_engines.run_athena("cloudtrail_data_access", athena, aws_env, params, poll_s=0, client=ath)
        stub.assert_no_pending_responses()
    assert out["principal"].tolist() == ["user/exfil", "role/app"] and out["calls"].tolist() == [300, 12]
    assert out.loc[0, "first_seen"] == pd.Timestamp("2026-05-30T09:20:00Z")
    assert out.attrs == {"engine": "athena", "query": "cloudtrail_data_access", "query_execution_id": "q-1",
                         "bytes_scanned": 123456}
    with Stubber(ath) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
        stub.add_response("get_query_execution", {"QueryExecution": {"Status": {
            "State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND: line 1:1: Table trail.cloudtrail_logs does not exist"}}})
        with pytest.raises(SourceError, match=r"athena: query cloudtrail_data_access \(q-2\) failed: TABLE_NOT_FOUND"):
            query_engines.run_athena("cloudtrail_data_access", athena, aws_env, params, poll_s=0, client=ath)
