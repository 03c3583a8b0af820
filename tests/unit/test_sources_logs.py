"""Logs source without a server: Stubber on a real read-only client (requests validated against the
CloudWatch Logs model), regex/pattern agreement, Insights polling and timeout."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from botocore.stub import Stubber

from forensics import _aws
from forensics.errors import SourceError
from forensics.sources import TS_DTYPE
from forensics.sources import logs
from forensics.window import IncidentWindow

WINDOW = IncidentWindow("2026-05-30T09:00:00Z", "2026-05-30T10:00:00Z")
START_MS = 1_780_131_600_000  # 2026-05-30T09:00:00Z
OFFLINE = {"region": "eu-west-1", "profile": None, "endpoint_url": "http://127.0.0.1:9"}
_CLIENT = []


def _client():
    if not _CLIENT:
        _CLIENT.append(_aws.client("logs", OFFLINE))
    return _CLIENT[0]


def _ev(i: int, msg="m", stream="s1"):
    return {"timestamp": START_MS + i * 1000, "message": f"{msg} {i}", "eventId": f"e{i}",
            "logStreamName": stream, "ingestionTime": START_MS + i * 1000 + 5}


def test_start_ms_constant_is_the_window_start():
    assert pd.Timestamp(START_MS, unit="ms", tz="UTC") == WINDOW.start


def test_paginates_sends_inclusive_range_and_sorts_across_groups():
    client = _client()
    base_a = {"logGroupName": "a", "startTime": START_MS, "endTime": START_MS + 3_600_000 - 1,
              "filterPattern": "ERROR"}
    with Stubber(client) as stub:
        stub.add_response("filter_log_events", {"events": [_ev(2), _ev(4)], "nextToken": "t2"}, base_a)
        stub.add_response("filter_log_events", {"events": [_ev(6)]}, {**base_a, "nextToken": "t2"})
        stub.add_response("filter_log_events", {"events": [_ev(1, stream="s9"), _ev(5, stream="s9")]},
                          {**base_a, "logGroupName": "b"})
        df = logs.filter_log_events(["a", "b"], WINDOW, "ERROR", client=client)
        stub.assert_no_pending_responses()
    assert list(df.columns) == ["timestamp", "log_group", "log_stream", "message", "event_id"]
    assert df["event_id"].tolist() == ["e1", "e2", "e4", "e5", "e6"]
    assert df["log_group"].tolist() == ["b", "a", "a", "b", "a"]
    assert str(df["timestamp"].dtype) == TS_DTYPE
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-05-30T09:00:01Z")
    assert df.attrs["pages"] == 3 and df.attrs["truncated"] is False


def test_max_events_truncates_and_says_so():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("filter_log_events", {"events": [_ev(i) for i in range(3)], "nextToken": "t2"})
        stub.add_response("filter_log_events", {"events": [_ev(i) for i in range(3, 6)], "nextToken": "t3"})
        df = logs.filter_log_events("a", WINDOW, client=client, max_events=4)
        # both pages used, and no third asked for (the Stubber would raise): the limit was seen on page two
        stub.assert_no_pending_responses()
    assert len(df) == 4 and df.attrs["truncated"] is True


def test_exactly_max_events_is_not_truncated():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("filter_log_events", {"events": [_ev(i) for i in range(3)], "nextToken": "t2"})
        stub.add_response("filter_log_events", {"events": []})  # CloudWatch may end with an empty page
        df = logs.filter_log_events("a", WINDOW, client=client, max_events=3)
    assert len(df) == 3 and df.attrs["truncated"] is False


def test_client_regex_reapplies_the_selection_and_counts_kept_events():
    client = _client()
    events = [_ev(0, "INFO ok"), _ev(1, "ERROR boom"), _ev(2, "Traceback (most recent call last)"),
              _ev(3, "debug"), _ev(4, "ValueError: x")]
    with Stubber(client) as stub:
        stub.add_response("filter_log_events", {"events": events})
        df = logs.filter_log_events("a", WINDOW, logs.ERROR_PATTERN, client=client,
                                    client_regex=logs.ERROR_REGEX)
    assert df["event_id"].tolist() == ["e1", "e2", "e4"]
    assert df.attrs["scanned"] == 5


@pytest.mark.parametrize("line, hit", [
    ("2026-05-30 ERROR db down", True), ("[Error] x", True), ("psycopg.OperationalError: x", True),
    ("sqlalchemy.exc.TimeoutError: QueuePool limit", True), ("Traceback (most recent call last):", True),
    ("FATAL: remaining connection slots are reserved", True), ("CRITICAL worker lost", True),
    ("error in lower case", False), ("INFO request ok", False), ("WARNING slow", False)])
def test_error_regex_matches_every_term_of_the_error_pattern(line, hit):
    terms = [t.lstrip("?") for t in logs.ERROR_PATTERN.split()]
    by_terms = any(t in line for t in terms)
    assert bool(re.search(logs.ERROR_REGEX, line)) is hit is by_terms


def test_empty_result_has_contract_columns():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("filter_log_events", {"events": []})
        df = logs.filter_log_events("a", WINDOW, client=client)
    assert list(df.columns) == list(logs.COLUMNS) and len(df) == 0
    assert str(df["timestamp"].dtype) == TS_DTYPE
    assert df.attrs["truncated"] is False


def test_missing_group_is_a_source_error_with_cause():
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("filter_log_events", service_error_code="ResourceNotFoundException",
                              service_message="The specified log group does not exist.", http_status_code=400)
        with pytest.raises(SourceError, match="ResourceNotFoundException.*does not exist") as err:
            logs.filter_log_events("nope", WINDOW, client=client)
    assert err.value.source == "logs" and err.value.__cause__ is not None


def test_throttling_after_retries_is_reported_as_such():
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("filter_log_events", service_error_code="ThrottlingException",
                              service_message="Rate exceeded", http_status_code=400)
        with pytest.raises(SourceError, match="ThrottlingException: Rate exceeded .throttled"):
            logs.filter_log_events("a", WINDOW, client=client)


def test_the_call_is_recorded_as_json():
    d = logs.filter_call(["a", "b"], WINDOW, logs.ERROR_PATTERN, client_regex=logs.ERROR_REGEX).args
    assert json.loads(json.dumps(d)) == d
    assert d["api"] == "logs:FilterLogEvents" and d["args"]["filterPattern"] == logs.ERROR_PATTERN
    assert d["args"]["startTime"] == START_MS and d["args"]["endTime"] == START_MS + 3_600_000 - 1


# ---- Insights ------------------------------------------------------------------------------------------
QUERY = "stats count(*) as n by bin(1m)"


def test_insights_polls_until_complete_and_types_columns():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q1"}, {
            "logGroupNames": ["a"], "startTime": START_MS // 1000, "endTime": START_MS // 1000 + 3599,
            "queryString": QUERY})
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q1"})
        stub.add_response("get_query_results", {
            "status": "Complete",
            "statistics": {"recordsMatched": 5.0, "recordsScanned": 10.0, "bytesScanned": 100.0},
            "results": [
                [{"field": "bin(1m)", "value": "2026-05-30 09:01:00.000"}, {"field": "n", "value": "3"}],
                [{"field": "bin(1m)", "value": "2026-05-30 09:00:00.000"}, {"field": "n", "value": "2"}]]},
            {"queryId": "q1"})
        df = logs.insights_query("a", WINDOW, QUERY, client=client, poll=0.01)
        stub.assert_no_pending_responses()
    assert list(df.columns) == ["bin(1m)", "n"]
    assert str(df["bin(1m)"].dtype) == TS_DTYPE
    assert df["bin(1m)"].iloc[0] == pd.Timestamp("2026-05-30T09:01:00Z")
    assert df["n"].dtype == "float64" and df["n"].sum() == 5
    assert df.attrs["statistics"]["recordsMatched"] == 5.0 and df.attrs["truncated"] is False


def test_insights_timeout_stops_the_query():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q2"})
        for _ in range(3):
            stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q2"})
        stub.add_response("stop_query", {"success": True}, {"queryId": "q2"})
        with pytest.raises(SourceError, match="still Running after .*stopped"):
            logs.insights_query("a", WINDOW, QUERY, client=client, poll=0.05, timeout=0.08)
        stub.assert_no_pending_responses()


def test_insights_failed_query_is_a_source_error():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q3"})
        stub.add_response("get_query_results", {"status": "Failed", "results": []})
        with pytest.raises(SourceError, match="Failed"):
            logs.insights_query("a", WINDOW, QUERY, client=client, poll=0.01)


def test_insights_empty_result_keeps_expected_columns():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q4"})
        stub.add_response("get_query_results", {"status": "Complete", "results": []})
        df = logs.insights_query("a", WINDOW, QUERY, client=client, poll=0.01, columns=["bin(1m)", "n"])
    assert list(df.columns) == ["bin(1m)", "n"] and len(df) == 0
    assert str(df["bin(1m)"].dtype) == TS_DTYPE


def test_insights_argument_checks_happen_before_any_call():
    client = _client()
    with Stubber(client):
        with pytest.raises(ValueError):
            logs.insights_query([f"g{i}" for i in range(51)], WINDOW, QUERY, client=client)
        with pytest.raises(ValueError):
            logs.insights_query("a", WINDOW, "  ", client=client)
        with pytest.raises(ValueError):
            logs.filter_log_events("a", WINDOW, client=client, max_events=0)
