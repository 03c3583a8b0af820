"""CloudWatch source without a server: ids, batching and paging (botocore Stubber on a real read-only
client, which validates every request against the CloudWatch service model), frame shape."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from botocore.stub import ANY, Stubber

from forensics import _aws
from forensics.errors import SourceError
from forensics.sources import TS_DTYPE
from forensics.sources import cloudwatch as cw
from forensics.window import IncidentWindow

WINDOW = IncidentWindow("2026-05-30T09:00:00Z", "2026-05-30T10:00:00Z")
# A loopback endpoint that is never contacted: the Stubber answers before any request is sent.
OFFLINE = {"region": "eu-west-1", "profile": None, "endpoint_url": "http://127.0.0.1:9"}
UTC = dt.UTC


_CLIENT = []


def _client():
    """One read-only client for the module (building one loads the service model: ~0.3 s)."""
    if not _CLIENT:
        _CLIENT.append(_aws.client("cloudwatch", OFFLINE))
    return _CLIENT[0]


def _q(i: int, stat="Sum") -> cw.MetricQuery:
    return cw.MetricQuery(f"m{i}", "App", "Requests", {"Service": f"s{i}"}, stat)


@pytest.mark.parametrize("bad", ["", "A1", "1a", "a-b", "a b", "é", "a" * 256, "_a"])
def test_invalid_ids_are_refused_before_any_call(bad):
    client = _client()
    # no response queued: any call would raise UnStubbedResponseError
    with Stubber(client), pytest.raises(ValueError, match="invalid"):
        cw.get_metric_data([cw.MetricQuery(bad, "App", "M", {}, "Sum")], WINDOW, 60, client=client)


@pytest.mark.parametrize("good", ["a", "aB9_", "latency_p99", "x" * 255])
def test_valid_ids_pass(good):
    assert cw.validate([cw.MetricQuery(good, "App", "M", {}, "Sum")])


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="twice"):
        cw.validate([_q(1), _q(1, "Average")])


@pytest.mark.parametrize("period", [0, -60, 45, 61, 90, 1.5])
def test_invalid_period_is_refused(period):
    with pytest.raises(ValueError, match="period"):
        cw.get_metric_data([_q(1)], WINDOW, period, client=_client())


def test_1100_queries_take_three_calls_of_at_most_500():
    queries = [_q(i) for i in range(1100)]
    client = _client()
    start = dt.datetime(2026, 5, 30, 9, 0, tzinfo=UTC)
    with Stubber(client) as stub:
        for lo, hi in ((0, 500), (500, 1000), (1000, 1100)):
            expected = {"MetricDataQueries": [q.to_api(60) for q in queries[lo:hi]],
                        "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampAscending"}
            results = [{"Id": q.id, "Label": q.id, "Timestamps": [start], "Values": [float(i)],
                        "StatusCode": "Complete"} for i, q in enumerate(queries[lo:hi], lo)]
            stub.add_response("get_metric_data", {"MetricDataResults": results}, expected)
        df = cw.get_metric_data(queries, WINDOW, 60, client=client)
        stub.assert_no_pending_responses()
    assert df.attrs["calls"] == 3
    assert len(df) == 1100
    assert df["id"].tolist() == [q.id for q in queries]  # query order kept
    assert df["value"].tolist() == [float(i) for i in range(1100)]


def test_next_token_is_followed_and_pages_are_merged():
    client = _client()
    t = [dt.datetime(2026, 5, 30, 9, m, tzinfo=UTC) for m in range(4)]
    queries = [_q(1), _q(2, "Average")]
    base = {"MetricDataQueries": [q.to_api(60) for q in queries], "StartTime": ANY, "EndTime": ANY,
            "ScanBy": "TimestampAscending"}
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {
            "MetricDataResults": [
                {"Id": "m1", "Label": "m1", "Timestamps": t[:2], "Values": [1.0, 2.0],
                 "StatusCode": "PartialData"},
                {"Id": "m2", "Label": "m2", "Timestamps": t[:1], "Values": [9.0],
                 "StatusCode": "PartialData"}],
            "NextToken": "page-2"}, base)
        stub.add_response("get_metric_data", {
            "MetricDataResults": [
                {"Id": "m1", "Label": "m1", "Timestamps": t[2:], "Values": [3.0, 4.0],
                 "StatusCode": "Complete"},
                {"Id": "m2", "Label": "m2", "Timestamps": t[1:2], "Values": [8.0], "StatusCode": "Complete"},
            ]},
            {**base, "NextToken": "page-2"})
        df = cw.get_metric_data(queries, WINDOW, 60, client=client)
        stub.assert_no_pending_responses()
    assert df.attrs["calls"] == 2
    assert df.attrs["status"] == {}  # PartialData completed by the second page
    assert df[df["id"] == "m1"]["value"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert df[df["id"] == "m2"]["value"].tolist() == [9.0, 8.0]
    assert df["timestamp"].dtype == TS_DTYPE


def test_request_window_is_aligned_to_the_period():
    window = IncidentWindow("2026-05-30T09:03:20Z", "2026-05-30T09:17:01Z")
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": []}, {
            "MetricDataQueries": ANY, "ScanBy": "TimestampAscending",
            "StartTime": dt.datetime(2026, 5, 30, 9, 0, tzinfo=UTC),
            "EndTime": dt.datetime(2026, 5, 30, 9, 20, tzinfo=UTC)})
        cw.get_metric_data([_q(1)], window, 300, client=client)
        stub.assert_no_pending_responses()


def test_empty_result_has_contract_columns_and_dtypes():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [
            {"Id": "m1", "Label": "m1", "Timestamps": [], "Values": [], "StatusCode": "Complete"}]})
        df = cw.get_metric_data([_q(1)], WINDOW, 60, client=client)
    assert list(df.columns) == ["timestamp", "id", "label", "value", "stat", "unit"]
    assert len(df) == 0
    assert str(df["timestamp"].dtype) == TS_DTYPE
    assert df["value"].dtype == "float64"
    assert list(cw.get_metric_data([], WINDOW, 60, client=client).columns) == list(df.columns)


def test_frame_values_units_labels_and_utc():
    client = _client()
    local = dt.timezone(dt.timedelta(hours=2))
    q = cw.MetricQuery("latency", "AWS/ApplicationELB", "TargetResponseTime", {"LoadBalancer": "app/x/1"},
                       "Average")
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [
            {"Id": "latency", "Label": "TargetResponseTime",
             "Timestamps": [dt.datetime(2026, 5, 30, 11, 1, tzinfo=local)], "Values": [0.25],
             "StatusCode": "Complete"}]})
        df = cw.get_metric_data([q], WINDOW, 60, client=client)
    row = df.iloc[0]
    assert row["timestamp"] == pd.Timestamp("2026-05-30T09:01:00Z")
    assert str(row["timestamp"].tz) == "UTC"
    assert (row["label"], row["value"], row["stat"], row["unit"]) == ("TargetResponseTime", 0.25, "Average",
                                                                      "Seconds")


def test_percentile_500_is_a_source_error_naming_the_cause():
    client = _client()
    queries = cw.alb_queries("app/x/1")
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", service_error_code="InternalFailure", http_status_code=500,
                              service_message="<!doctype html><title>500 Internal Server Error</title>")
        with pytest.raises(SourceError) as err:
            cw.get_metric_data(queries, WINDOW, 60, client=client)
    msg = str(err.value)
    assert err.value.source == "cloudwatch"
    assert "percentile" in msg and "p99" in msg and "split_percentiles" in msg
    assert "<" not in msg and "\n" not in msg
    assert err.value.__cause__ is not None


def test_access_denied_is_one_line_with_the_fix():
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", service_error_code="AccessDenied", http_status_code=403,
                              service_message="User is not authorized to perform cloudwatch:GetMetricData")
        with pytest.raises(SourceError, match="AccessDenied.*forensics-read-only.json"):
            cw.get_metric_data([_q(1)], WINDOW, 60, client=client)


def test_split_percentiles():
    queries = cw.alb_queries("app/x/1", latency_stats=("Average", "p50", "p99.9", "tm90"))
    plain, pct = cw.split_percentiles(queries)
    assert {q.stat for q in pct} == {"p50", "p99.9", "tm90"}
    assert all(not q.is_percentile for q in plain) and len(plain) == 5


def test_standard_query_sets():
    alb = cw.alb_queries("app/x/1", "targetgroup/t/2")
    ids = [q.id for q in alb]
    assert ids == ["requests", "target_5xx", "elb_5xx", "target_4xx", "latency_avg", "latency_p50",
                   "latency_p95", "latency_p99", "unhealthy_hosts", "healthy_hosts"]
    hosts = {q.id: q for q in alb}["unhealthy_hosts"]
    assert hosts.dimensions == {"TargetGroup": "targetgroup/t/2", "LoadBalancer": "app/x/1"}
    assert hosts.stat == "Maximum"
    assert "unhealthy_hosts" not in [q.id for q in cw.alb_queries("app/x/1")]
    rds = {q.metric: q.stat for q in cw.rds_queries("db1")}
    assert rds == {"DatabaseConnections": "Maximum", "CPUUtilization": "Average", "FreeableMemory": "Minimum",
                   "ReadLatency": "Average", "WriteLatency": "Average", "FreeStorageSpace": "Minimum"}
    ecs = cw.ecs_queries("c", "api")
    assert sorted((q.metric, q.stat) for q in ecs) == sorted(
        (m, s) for m in ("CPUUtilization", "MemoryUtilization") for s in ("Average", "Maximum"))
    assert all(q.dimensions == {"ClusterName": "c", "ServiceName": "api"} for q in ecs)
    # every set validates, and sets from different sources can share one request
    cw.validate(alb + cw.rds_queries("db1") + ecs + cw.ecs_queries("c", "worker", prefix="worker"))
    with pytest.raises(ValueError):
        cw.ecs_queries("c", "api", prefix="Bad-Prefix")


def test_the_call_is_recorded_as_json_and_names_the_api():
    desc = cw.metric_data_call(cw.rds_queries("db1"), WINDOW, 60).args
    assert json.loads(json.dumps(desc)) == desc
    assert desc["api"] == "cloudwatch:GetMetricData"
    assert desc["args"]["StartTime"] == "2026-05-30T09:00:00Z"
    assert desc["args"]["MetricDataQueries"][0]["MetricStat"]["Period"] == 60
    assert cw.metric_data_call([_q(i) for i in range(501)], WINDOW, 60).args["calls"] == 2


def test_wide_pivots_in_query_order():
    long = pd.DataFrame({
        "timestamp": pd.to_datetime(["2026-05-30T09:01Z", "2026-05-30T09:00Z", "2026-05-30T09:00Z"],
                                    utc=True),
        "id": ["b", "b", "a"], "label": "x", "value": [2.0, 1.0, 5.0], "stat": "Sum", "unit": None})
    w = cw.wide(long)
    assert list(w.columns) == ["b", "a"]
    assert w.index.name == "timestamp" and str(w.index.tz) == "UTC"
    assert w.loc[pd.Timestamp("2026-05-30T09:00Z"), "a"] == 5.0
    assert pd.isna(w.loc[pd.Timestamp("2026-05-30T09:01Z"), "a"])
    empty = cw.wide(cw.get_metric_data([], WINDOW, 60, client=_client()))
    assert empty.empty and str(empty.index.dtype) == TS_DTYPE


def test_metric_query_is_hashable_and_frozen():
    q = _q(1)
    assert hash(q) == hash(_q(1))
    with pytest.raises(AttributeError):
        q.id = "other"  # type: ignore[misc]
