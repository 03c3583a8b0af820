"""Logs source against the sandbox's moto server: events put with boto3, read back through
``filter_log_events`` (paging past moto's 10,000-event pages) and ``insights_query`` (answered by
the sandbox's Insights engine once ``ext_logs_insights.install()`` ran in this process)."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from forensics.errors import SourceError
from forensics_sandbox.moto_ext import logs_insights as ext_logs_insights
from forensics.sources import TS_DTYPE
from forensics.sources import logs
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox

N = 12_000  # more than one FilterLogEvents page (10,000 events)


def _ms(ts: pd.Timestamp) -> int:
    return int((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))


@pytest.fixture(scope="module")
def loaded(moto_server):
    """One group, two streams, N events in the window (every 7th an error), plus events just outside."""
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=5)
    window = IncidentWindow(end - pd.Timedelta(minutes=20), end)
    group = f"/app/it-{uuid.uuid4().hex[:8]}"
    client = moto_server.client("logs")
    client.create_log_group(logGroupName=group)
    step = window.duration / N
    per_stream = {"web-1": [], "web-2": []}
    for i in range(N):
        ts = window.start + step * i
        msg = f"ERROR request {i} failed: psycopg.OperationalError" if i % 7 == 0 else f"INFO request {i} ok"
        per_stream["web-1" if i % 2 else "web-2"].append({"timestamp": _ms(ts), "message": msg})
    per_stream["web-1"].insert(0, {"timestamp": _ms(window.start) - 1, "message": "ERROR before the window"})
    per_stream["web-2"].append({"timestamp": _ms(window.end), "message": "ERROR at the window end"})
    for stream, events in per_stream.items():
        client.create_log_stream(logGroupName=group, logStreamName=stream)
        for i in range(0, len(events), 5000):
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i:i + 5000])
    errors = sum(1 for i in range(N) if i % 7 == 0)
    return {"group": group, "window": window, "errors": errors}


def test_pages_past_10k_in_utc_within_the_window(loaded, aws_env):
    df = logs.filter_log_events(loaded["group"], loaded["window"], aws=aws_env)
    assert len(df) == N
    assert df.attrs["pages"] >= 2 and df.attrs["truncated"] is False
    assert list(df.columns) == ["timestamp", "log_group", "log_stream", "message", "event_id"]
    assert str(df["timestamp"].dtype) == TS_DTYPE
    assert df["timestamp"].is_monotonic_increasing
    assert df["timestamp"].iloc[0] == loaded["window"].start  # start included, end excluded
    assert df["timestamp"].iloc[-1] < loaded["window"].end
    assert df["event_id"].is_unique
    assert set(df["log_stream"]) == {"web-1", "web-2"} and set(df["log_group"]) == {loaded["group"]}
    assert not df["message"].str.contains("window").any()


def test_moto_ignores_or_patterns_and_client_regex_restores_the_selection(loaded, aws_env):
    everything = logs.filter_log_events(loaded["group"], loaded["window"], logs.ERROR_PATTERN, aws=aws_env)
    assert len(everything) == N  # moto limitation (sandbox-facts): the OR pattern is ignored
    errors = logs.filter_log_events(loaded["group"], loaded["window"], logs.ERROR_PATTERN, aws=aws_env,
                                    client_regex=logs.ERROR_REGEX)
    assert len(errors) == loaded["errors"]
    assert errors["message"].str.startswith("ERROR request").all()
    assert errors.attrs["scanned"] == N


def test_max_events_truncates(loaded, aws_env):
    df = logs.filter_log_events(loaded["group"], loaded["window"], aws=aws_env, max_events=1000)
    assert len(df) == 1000 and df.attrs["truncated"] is True
    exact = logs.filter_log_events(loaded["group"], loaded["window"], aws=aws_env, max_events=N)
    assert len(exact) == N and exact.attrs["truncated"] is False


def test_several_groups_merge_in_time_order(loaded, moto_server, aws_env):
    other = f"/worker/it-{uuid.uuid4().hex[:8]}"
    client = moto_server.client("logs")
    client.create_log_group(logGroupName=other)
    client.create_log_stream(logGroupName=other, logStreamName="w")
    mid = loaded["window"].start + loaded["window"].duration / 2
    client.put_log_events(logGroupName=other, logStreamName="w",
                          logEvents=[{"timestamp": _ms(mid), "message": "ERROR worker lost"}])
    df = logs.filter_log_events([loaded["group"], other], loaded["window"], aws=aws_env,
                                client_regex=logs.ERROR_REGEX)
    assert len(df) == loaded["errors"] + 1 and df["timestamp"].is_monotonic_increasing
    row = df[df["log_group"] == other].iloc[0]
    assert row["timestamp"] == mid.floor("ms") and row["message"] == "ERROR worker lost"


def test_quiet_window_is_an_empty_frame(loaded, aws_env):
    quiet = IncidentWindow(loaded["window"].start - pd.Timedelta(hours=3),
                           loaded["window"].start - pd.Timedelta(hours=2))
    df = logs.filter_log_events(loaded["group"], quiet, aws=aws_env)
    assert df.empty and list(df.columns) == list(logs.COLUMNS) and str(df["timestamp"].dtype) == TS_DTYPE


def test_missing_group_is_a_source_error(aws_env, loaded):
    with pytest.raises(SourceError, match="ResourceNotFoundException") as err:
        logs.filter_log_events("/does/not/exist", loaded["window"], aws=aws_env)
    assert err.value.source == "logs"


def test_insights_fields_sort_limit_on_moto(loaded, aws_env):
    q = "fields @timestamp, @message, @logStream | sort @timestamp asc | limit 25"
    df = logs.insights_query(loaded["group"], loaded["window"], q, aws=aws_env, poll=0.05)
    assert len(df) == 25 and df.attrs["status"] == "Complete"
    assert list(df.columns) == ["@timestamp", "@message", "@logStream"]
    assert str(df["@timestamp"].dtype) == TS_DTYPE  # Insights' "YYYY-MM-DD HH:MM:SS.mmm" (moto alone: epoch ms)
    assert df["@timestamp"].iloc[0] == loaded["window"].start
    assert df["@timestamp"].is_monotonic_increasing
    assert "ERROR before the window" not in df["@message"].tolist()


def test_insights_on_the_sandbox_applies_filter(loaded, aws_env):
    """moto alone drops ``filter``; the sandbox's Insights engine (ext_logs_insights) applies it."""
    ext_logs_insights.install()
    q = "fields @message | filter @message like /ERROR/ | limit 50"
    df = logs.insights_query(loaded["group"], loaded["window"], q, aws=aws_env, poll=0.05)
    assert len(df) == 50 and df["@message"].str.startswith("ERROR request").all()
    assert df.attrs["statistics"]["recordsMatched"] == loaded["errors"]


def test_insights_unknown_group_is_a_source_error(aws_env, loaded):
    with pytest.raises(SourceError, match="StartQuery"):
        logs.insights_query("/does/not/exist", loaded["window"], "fields @message", aws=aws_env)
