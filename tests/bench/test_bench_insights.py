"""Benchmark: the sandbox's Logs Insights engine on about a million events (three hours, four streams,
a steady harmless error and, from the onset, a failure three times as frequent, among INFO lines),
the query kinds the capture layer pushes down (errors per minute, signature fragments per minute,
parse + stats by field, the newest events). Prints events/s per query, measured in this one run:
on the engine alone (a pandas frame) and end to end through boto3 against the moto server
(StartQuery -> GetQueryResults Complete, events read from moto's backend). Every answer is checked
against the counts planted here; the speed is printed, not asserted."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from forensics_sandbox import insights
from forensics_sandbox.moto_ext import logs_insights as ext_logs_insights

N = 1_000_000
HOURS = 3
STREAMS = ["api-1", "api-2", "api-3", "api-4"]
WEBHOOK = "ERROR scr_api.webhooks signature mismatch for endpoint {} (HMAC)"
POOL = ("ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection "
        "timed out, timeout 30.00 (request {})")
INFO = "INFO uvicorn.access GET /api/v1/items/{} 200 latency_ms={}"

QUERIES = {
    "errors per minute": "filter @message like /ERROR|Exception|Traceback/ | stats count(*) as errors by bin(1m)",
    "signature fragments per minute": ('filter @message like "QueuePool limit of size" or @message like '
                                       '"signature mismatch" | stats count(*) as n by bin(1m)'),
    "parse + stats by field": ('filter @message like "latency_ms=" | parse @message "latency_ms=*" as latency '
                               "| stats count(*) as n, avg(latency), pct(latency, 99) by @logStream"),
    "newest failure events": ("fields @timestamp, @message, @logStream | filter @message like /QueuePool/ "
                              "| sort @timestamp desc | limit 1000"),
}


def volume_events(start_ms: int, n: int = N, seed: int = 1):
    """(timestamps sorted, messages, stream index, truth) for ``n`` events over HOURS from ``start_ms``."""
    rng = np.random.default_rng(seed)
    span = HOURS * 3_600_000
    onset = start_ms + 2 * span // 3
    ts = np.sort(rng.integers(start_ms, start_ms + span, n))
    u = rng.random(n)
    after = ts >= onset
    pool = after & (u < 0.45)
    webhook = ~pool & (u < 0.60)
    kinds = np.where(pool, 1, np.where(webhook, 0, 2))
    messages = [WEBHOOK.format(i % 97) if k == 0 else POOL.format(i) if k == 1 else INFO.format(i % 5000, i % 300)
                for i, k in enumerate(kinds.tolist())]
    streams = rng.integers(0, len(STREAMS), n)
    minute = (ts // 60_000) * 60_000
    errors = pd.Series(minute[kinds < 2]).value_counts().sort_index()
    truth = {"errors": errors, "pool": int(pool.sum()), "webhook": int(webhook.sum()), "info": int((kinds == 2).sum()),
             "latency": pd.Series((np.arange(n) % 300)[kinds == 2]), "info_streams": streams[kinds == 2],
             "onset": onset}
    return ts, messages, streams, truth


def check(name: str, rows: list, truth: dict) -> None:
    got = [{f["field"]: f["value"] for f in r} for r in rows]
    if name == "errors per minute":
        series = pd.Series({_ms(r["bin(1m)"]): int(r["errors"]) for r in got}).sort_index()
        assert series.to_dict() == truth["errors"].to_dict()
    elif name == "signature fragments per minute":
        assert sum(int(r["n"]) for r in got) == truth["pool"] + truth["webhook"]
    elif name == "parse + stats by field":
        assert sum(int(r["n"]) for r in got) == truth["info"]
        counts = np.bincount(truth["info_streams"], minlength=len(STREAMS))
        assert {r["@logStream"]: int(r["n"]) for r in got} == {s: int(c) for s, c in zip(STREAMS, counts)}
        for s, name in enumerate(STREAMS):  # nearest-rank 99th percentile of what was planted
            values = np.sort(truth["latency"].to_numpy()[truth["info_streams"] == s])
            p99 = values[max(1, int(np.ceil(0.99 * len(values)))) - 1]
            assert next(float(r["pct(latency, 99)"]) for r in got if r["@logStream"] == name) == p99
    else:
        assert len(got) == 1000 and all("QueuePool" in r["@message"] for r in got)
        stamps = [r["@timestamp"] for r in got]
        assert stamps == sorted(stamps, reverse=True)


def _ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)


def test_engine_events_per_second():
    start = 1_767_225_600_000
    ts, messages, streams, truth = volume_events(start)
    t0 = time.perf_counter()
    frame = insights.events_frame(ts, messages, pd.Categorical.from_codes(streams, STREAMS), "/ecs/api",
                                  account_id="123456789012")
    build = time.perf_counter() - t0
    print(f"\nLogs Insights engine, {N:,} events: frame built in {build:.2f} s ({N / build:,.0f} events/s)")
    for name, query in QUERIES.items():
        t0 = time.perf_counter()
        result = insights.execute(query, frame, limit=10_000)
        took = time.perf_counter() - t0
        check(name, result.rows, truth)
        print(f"  {name:32s} {took:6.2f} s  {N / took:>12,.0f} events/s  ({len(result.rows)} rows, "
              f"{result.records_matched:,} matched)")


@pytest.mark.sandbox
def test_moto_start_query_to_complete_events_per_second(moto_server):
    ext_logs_insights.install()
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=5)
    start_ms = int((end - pd.Timedelta(hours=HOURS)).value // 1_000_000)
    ts, messages, streams, truth = volume_events(start_ms)
    group = f"/ecs/bench-insights-{time.monotonic_ns()}"
    client = moto_server.client("logs")
    client.create_log_group(logGroupName=group)
    backend = moto_server.backend("logs")
    for s, name in enumerate(STREAMS):  # loaded through the backend: setup, not what is measured
        client.create_log_stream(logGroupName=group, logStreamName=name)
        idx = np.flatnonzero(streams == s)
        for i in range(0, len(idx), 50_000):
            chunk = idx[i:i + 50_000]
            backend.put_log_events(group, name, [{"timestamp": int(ts[j]), "message": messages[j]} for j in chunk])
    try:
        print(f"\nLogs Insights through boto3 on moto, {N:,} events (StartQuery -> Complete; the first query also "
              "converts moto's event objects to arrays, kept for the next ones):")
        for name, query in QUERIES.items():
            t0 = time.perf_counter()
            qid = client.start_query(logGroupNames=[group], startTime=start_ms // 1000,
                                     endTime=int(end.timestamp()), queryString=query, limit=10_000)["queryId"]
            while (resp := client.get_query_results(queryId=qid))["status"] == "Running":
                time.sleep(0.05)
            took = time.perf_counter() - t0
            assert resp["status"] == "Complete" and resp["statistics"]["recordsScanned"] == N
            check(name, resp["results"], truth)
            print(f"  {name:32s} {took:6.2f} s  {N / took:>12,.0f} events/s")
    finally:
        client.delete_log_group(logGroupName=group)
