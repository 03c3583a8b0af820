"""Logs Insights on the sandbox's moto server (sandbox/moto_ext/logs_insights.py): events put with boto3,
queried with StartQuery / GetQueryResults / StopQuery through plain boto3 and through the project's
client (forensics.sources.logs.insights_query), answers checked against what was put."""

from __future__ import annotations

import collections
import random
import time
import uuid

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from forensics.errors import SourceError
from forensics_sandbox.moto_ext import logs_insights as ext_logs_insights
from forensics.sources import TS_DTYPE, logs
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox
TENANTS = ["acme", "globex", "initech", "umbrella"]


def _ms(ts: pd.Timestamp) -> int:
    return int((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))


@pytest.fixture(scope="module")
def loaded(moto_server):
    """30 minutes, three streams, a random mix of errors per minute (the truth kept here), plus events
    1 ms before the window and exactly at its end (both outside)."""
    ext_logs_insights.install()
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=10)
    window = IncidentWindow(end - pd.Timedelta(minutes=30), end)
    group = f"/app/insights-{uuid.uuid4().hex[:8]}"
    client = moto_server.client("logs")
    client.create_log_group(logGroupName=group)
    rng = random.Random(8)
    per_stream = collections.defaultdict(list)
    errors_per_minute, tenants, pool = collections.Counter(), collections.Counter(), 0
    start_ms = _ms(window.start)
    for minute in range(30):
        for _ in range(rng.randint(20, 80)):
            ts = start_ms + minute * 60_000 + rng.randrange(60_000)
            kind = rng.random()
            tenant = rng.choice(TENANTS)
            if kind < 0.3:
                msg = (f"ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached "
                       f"tenant={tenant} ")
                pool += 1
            elif kind < 0.5:
                msg = f"ERROR webhook signature mismatch tenant={tenant} "
            else:
                msg = f"INFO GET /api/items 200 tenant={tenant} "
            if msg.startswith("ERROR"):
                errors_per_minute[window.start + pd.Timedelta(minutes=minute)] += 1
                tenants[tenant] += 1
            per_stream[f"web-{rng.randint(1, 3)}"].append((ts, msg))
    per_stream["web-1"].append((start_ms - 1, "ERROR before the window tenant=acme "))
    per_stream["web-2"].append((_ms(window.end), "ERROR at the window end tenant=acme "))
    total = 0
    for stream, events in per_stream.items():
        client.create_log_stream(logGroupName=group, logStreamName=stream)
        events.sort()
        client.put_log_events(logGroupName=group, logStreamName=stream,
                              logEvents=[{"timestamp": t, "message": m} for t, m in events])
        total += len(events)
    arn = f"arn:aws:logs:{moto_server.region}:123456789012:log-group:{group}:*"
    return {"group": group, "arn": arn, "window": window, "errors_per_minute": errors_per_minute,
            "tenants": tenants, "pool": pool, "in_window": total - 2, "client": client}


def _run(loaded, query, **kw):
    client, window = loaded["client"], loaded["window"]
    args = {"logGroupNames": [loaded["group"]], "startTime": int(window.start.timestamp()),
            "endTime": int(window.end.timestamp()) - 1, "queryString": query, **kw}
    return _wait(client, client.start_query(**args)["queryId"])


def _wait(client, query_id):
    """Poll GetQueryResults until the query is no longer Running (it must end Complete)."""
    deadline = time.monotonic() + 30
    while (resp := client.get_query_results(queryId=query_id))["status"] == "Running" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert resp["status"] == "Complete"
    return resp


def _rows(resp):
    return [{f["field"]: f["value"] for f in row} for row in resp["results"]]


def test_errors_per_minute_by_bin_1m_exactly_as_put(loaded):
    resp = _run(loaded, "filter @message like /ERROR/ | stats count(*) as errors by bin(1m)")
    got = {pd.Timestamp(r["bin(1m)"], tz="UTC"): int(r["errors"]) for r in _rows(resp)}
    assert got == dict(loaded["errors_per_minute"]) and len(got) == 30
    assert all(len(r["bin(1m)"]) == len("2026-01-01 00:00:00.000") for r in _rows(resp))
    stats = resp["statistics"]
    assert stats["recordsScanned"] == loaded["in_window"]  # the two events outside the range are not scanned
    assert stats["recordsMatched"] == sum(loaded["errors_per_minute"].values())
    assert stats["bytesScanned"] > 0


def test_parse_then_stats_by_field(loaded):
    q = 'filter @message like "ERROR" | parse @message "tenant=* " as tenant | stats count(*) as n by tenant | sort n desc'
    got = {r["tenant"]: int(r["n"]) for r in _rows(_run(loaded, q))}
    assert got == dict(loaded["tenants"])
    counts = [int(r["n"]) for r in _rows(_run(loaded, q))]
    assert counts == sorted(counts, reverse=True)


def test_filter_with_regex(loaded):
    resp = _run(loaded, "fields @timestamp, @message, @logStream | filter @message like /QueuePool|TimeoutError/"
                        " | sort @timestamp asc | limit 10000")
    rows = _rows(resp)
    assert len(rows) == loaded["pool"] and resp["statistics"]["recordsMatched"] == loaded["pool"]
    assert all("QueuePool" in r["@message"] for r in rows)
    assert all(r["@ptr"] for r in rows) and {r["@logStream"] for r in rows} <= {"web-1", "web-2", "web-3"}
    times = [r["@timestamp"] for r in rows]
    assert times == sorted(times)
    assert pd.Timestamp(times[0], tz="UTC") >= loaded["window"].start


def test_unsupported_command_is_a_malformed_query(loaded):
    with pytest.raises(ClientError) as err:
        _run(loaded, "fields @message | pattern @message")
    assert err.value.response["Error"]["Code"] == "MalformedQueryException"
    assert "unsupported command 'pattern'" in err.value.response["Error"]["Message"]


def test_default_limit_api_limit_and_identifiers_by_arn(loaded):
    assert len(_run(loaded, "fields @message")["results"]) == 1000  # StartQuery's default limit
    assert len(_run(loaded, "fields @message", limit=7)["results"]) == 7
    client, window = loaded["client"], loaded["window"]
    qid = client.start_query(logGroupIdentifiers=[loaded["arn"]], startTime=int(window.start.timestamp()),
                             endTime=int(window.end.timestamp()) - 1, queryString="stats count(*)")["queryId"]
    resp = _wait(client, qid)
    assert _rows(resp) == [{"count(*)": str(loaded["in_window"])}]


def test_end_time_second_is_included(loaded):
    """endTime is inclusive to the second: the event at window.end (a whole second) is in with endTime=end."""
    client, window = loaded["client"], loaded["window"]
    qid = client.start_query(logGroupNames=[loaded["group"]], startTime=int(window.start.timestamp()),
                             endTime=int(window.end.timestamp()),
                             queryString="filter @message like /window end/")["queryId"]
    resp = _wait(client, qid)
    assert [r["@message"] for r in _rows(resp)] == ["ERROR at the window end tenant=acme "]


def test_bad_requests(loaded):
    client, window = loaded["client"], loaded["window"]
    base = {"startTime": int(window.start.timestamp()), "endTime": int(window.end.timestamp()),
            "queryString": "fields @message"}
    cases = [({"logGroupNames": ["/does/not/exist"]}, "ResourceNotFoundException"),
             ({"logGroupNames": [loaded["group"]], "logGroupName": loaded["group"]}, "InvalidParameterException"),
             ({"logGroupNames": [loaded["group"]], "limit": 10_001}, "InvalidParameterException"),
             ({"logGroupNames": [loaded["group"]], "endTime": base["startTime"] - 1}, "InvalidParameterException"),
             ({"logGroupNames": [loaded["group"]], "queryLanguage": "SQL"}, "InvalidParameterException"),
             ({"logGroupNames": [loaded["group"]], "queryString": "stats count(*) by bin(1parsec)"},
              "MalformedQueryException")]
    for extra, code in cases:
        with pytest.raises(ClientError) as err:
            client.start_query(**{**base, **extra})
        assert err.value.response["Error"]["Code"] == code, extra
    with pytest.raises(ClientError) as err:
        client.get_query_results(queryId="no-such-query")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_stop_query_after_completion_is_an_error_and_describe_queries_lists_it(loaded):
    resp_id = loaded["client"].start_query(
        logGroupNames=[loaded["group"]], startTime=int(loaded["window"].start.timestamp()),
        endTime=int(loaded["window"].end.timestamp()), queryString="stats count(*)")["queryId"]
    _wait(loaded["client"], resp_id)
    with pytest.raises(ClientError) as err:
        loaded["client"].stop_query(queryId=resp_id)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    listed = loaded["client"].describe_queries(logGroupName=loaded["group"])["queries"]
    assert any(q["queryId"] == resp_id and q["status"] == "Complete" for q in listed)


def test_running_query_can_be_stopped(moto_server, loaded):
    backend = moto_server.backend("logs")
    query = ext_logs_insights.InsightsQuery("q-test", "fields @message", [loaded["group"]], 0, 1)
    backend.queries[query.query_id] = query  # never scheduled: stays Running until stopped
    assert loaded["client"].get_query_results(queryId="q-test")["status"] == "Running"
    assert loaded["client"].stop_query(queryId="q-test")["success"] is True
    assert loaded["client"].get_query_results(queryId="q-test")["status"] == "Cancelled"


# ---- the project's client, end to end -------------------------------------------------------------
def test_insights_query_client_per_minute_frame(loaded, aws_env):
    q = "filter @message like /ERROR/ | stats count(*) as errors by bin(1m) | sort bin(1m) asc"
    df = logs.insights_query(loaded["group"], loaded["window"], q, aws=aws_env, poll=0.05)
    assert list(df.columns) == ["bin(1m)", "errors"] and str(df["bin(1m)"].dtype) == TS_DTYPE
    assert str(df["errors"].dtype) == "float64"
    truth = pd.Series(loaded["errors_per_minute"]).sort_index()
    assert df["bin(1m)"].tolist() == truth.index.tolist()
    assert df["errors"].astype(int).tolist() == truth.tolist()
    assert df.attrs["status"] == "Complete" and df.attrs["truncated"] is False
    assert df.attrs["statistics"]["recordsScanned"] == loaded["in_window"]


def test_insights_query_client_events_and_malformed(loaded, aws_env):
    df = logs.insights_query(loaded["group"], loaded["window"],
                             "fields @timestamp, @message | filter @message like /before the window|window end/",
                             aws=aws_env, poll=0.05, columns=["@timestamp", "@message"])
    assert df.empty and list(df.columns) == ["@timestamp", "@message"]  # both lie outside the window
    with pytest.raises(SourceError, match="MalformedQueryException"):
        logs.insights_query(loaded["group"], loaded["window"], "fields @message | unnest @message", aws=aws_env)


def test_insights_query_client_flags_the_default_1000_row_cap(loaded, aws_env):
    df = logs.insights_query(loaded["group"], loaded["window"], "fields @timestamp, @message", aws=aws_env, poll=0.05)
    assert len(df) == 1000 and df.attrs["truncated"] is True  # StartQuery's default limit was reached
    assert df["@timestamp"].is_monotonic_decreasing  # newest first without sort
    small = logs.insights_query(loaded["group"], loaded["window"], "stats count(*) by @logStream", aws=aws_env,
                                poll=0.05)
    assert len(small) == 3 and small.attrs["truncated"] is False
