"""Exact log counts by kind, category and task from Logs Insights on the sandbox's moto server, checked
against the project's own classifiers run over every event put (cache.redis_errors, ai.provider_errors,
pglog.parse_events, queues.task_failures): the same answers, in the same finding shapes. Without
logs:StartQuery the counts fail, the finding is unknown and the categories are ranked from the sample."""

from __future__ import annotations

import random
import uuid

import pandas as pd
import pytest

import forensics
from forensics import params
from forensics.analysis import ai, cache, log_counts, pglog, queues
from forensics_sandbox.moto_ext import logs_insights as ext_logs_insights
from forensics_sandbox.s3_evidence import rds_log_line
from tests.loopback_proxy import LoopbackProxy

pytestmark = pytest.mark.sandbox

APP_LINES = [
    "cache GET session:1 failed: RuntimeError: transport closed",
    "redis.exceptions.ConnectionError: Error 104 while writing to socket. Connection reset by peer.",
    "redis.exceptions.ReadOnlyError: You can't write against a read only replica.",
    "openai.RateLimitError: Error code: 429",
    "anthropic.APIStatusError: overloaded",
    "provider failed, falling back to gpt-4o",
    "GET /api/v1/orders 200 12ms",
    "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out",
]
PG_LINES = [  # (severity, message, client)
    ("FATAL", "remaining connection slots are reserved for non-replication superuser connections", "10.0.1.5(4000)"),
    ("FATAL", 'password authentication failed for user "app"', "203.0.113.9(5123)"),
    ("FATAL", 'password authentication failed for user "admin"', "198.51.100.7(6001)"),
    ("ERROR", "deadlock detected", "10.0.1.5(4001)"),
    ("LOG", "process 4242 still waiting for ShareLock on transaction 77 after 1000.052 ms", "10.0.1.6(4002)"),
    ("ERROR", "canceling statement due to statement timeout", "10.0.1.6(4003)"),
    ("ERROR", 'relation "missing" does not exist', "10.0.1.6(4004)"),
    ("LOG", "checkpoints are occurring too frequently (9 seconds apart)", ""),
]
TASK_LINES = [
    "Task app.tasks.deliver_webhook[{id}] retry: Retry in 30s: ReadTimeout('partner')",
    "Task app.tasks.deliver_webhook[{id}] raised unexpected: ReadTimeout('partner')",
    "Task app.tasks.purge_old[{id}] raised unexpected: OperationalError('timeout')",
    "Task app.tasks.sync[{id}] failed",
    "worker ready.",
]


def _ms(ts: pd.Timestamp) -> int:
    return int((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))


@pytest.fixture(scope="module")
def planted(moto_server):
    """40 minutes of app, worker and PostgreSQL lines, more of them after minute 25 (the onset)."""
    ext_logs_insights.install()
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=5)
    start = end - pd.Timedelta(minutes=40)
    onset = start + pd.Timedelta(minutes=25)
    rng = random.Random(11)
    tag = uuid.uuid4().hex[:8]
    groups = {"app": f"/app/counts-{tag}", "worker": f"/worker/counts-{tag}", "pg": f"/aws/rds/instance/db-{tag}/postgresql"}
    events: dict[str, list[tuple[int, str]]] = {k: [] for k in groups}
    for i in range(2400):
        ts = start + pd.Timedelta(milliseconds=rng.randrange(40 * 60_000))
        weight = 4 if ts >= onset else 1
        if rng.random() * 4 > weight:
            continue
        ms = _ms(ts)
        events["app"].append((ms, f"{ts:%Y-%m-%d %H:%M:%S},000 ERROR [api] {rng.choice(APP_LINES)}"))
        task = rng.choice(TASK_LINES).format(id=uuid.UUID(int=rng.getrandbits(128)))
        events["worker"].append((ms, f"[{ts:%Y-%m-%d %H:%M:%S},000: ERROR/ForkPoolWorker-1] {task}"))
        if ts >= onset or i % 3 == 0:
            sev, msg, client = rng.choice(PG_LINES)
            events["pg"].append((ms, rds_log_line(ts, sev, msg, client=client) if client else
                                 rds_log_line(ts, sev, msg, client="", user="", database="")))
    logs = moto_server.client("logs")
    for key, group in groups.items():
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        batch = sorted(events[key])
        for k in range(0, len(batch), 5000):
            logs.put_log_events(logGroupName=group, logStreamName="s",
                                logEvents=[{"timestamp": t, "message": m} for t, m in batch[k:k + 5000]])
    frames = {k: pd.DataFrame({"timestamp": pd.to_datetime([t for t, _ in v], unit="ms", utc=True),
                               "message": [m for _, m in v]}) for k, v in events.items()}
    yield {"groups": groups, "frames": frames, "start": start, "end": end, "onset": onset}
    for group in groups.values():
        logs.delete_log_group(logGroupName=group)


def _session(tmp_path, endpoint, planted):
    g = planted["groups"]
    env = {"name": "counts", "aws": {"region": "eu-west-1", "endpoint_url": endpoint}, "logs": {"app": [g["app"]]},
           "rds": {"instance": "db", "log_group": g["pg"]},
           "queues": {"namespace": "x", "metric": "y", "dimension": "z", "names": ["q"], "log_groups": [g["worker"]]}}
    (tmp_path / "env.yaml").write_text(params.dump(env))
    (tmp_path / "incident.yaml").write_text(params.dump({
        "incident": "COUNTS", "title": "t", "severity": "P2", "environment": str(tmp_path / "env.yaml"),
        "window": {"start": (planted["start"] + pd.Timedelta(minutes=30)).isoformat(),
                   "end": planted["end"].isoformat()}}))
    return forensics.open_incident(tmp_path / "incident.yaml", notebook="counts")


def test_exact_counts_equal_the_classifiers_over_every_event(tmp_path, moto_server, planted):
    inc = _session(tmp_path, moto_server.endpoint_url, planted)
    app, worker, pg = (planted["frames"][k] for k in ("app", "worker", "pg"))

    assert log_counts.summary(inc.pull("redis_error_kinds")) == cache.error_summary(cache.redis_errors(app))

    provider = log_counts.by_hit(inc.pull("provider_error_kinds"))
    expected = ai.provider_errors(app)
    assert dict(zip(provider["signature"], provider["count"])) == dict(zip(expected["signature"], expected["count"]))
    assert len(expected) == 3

    redis = log_counts.summary(inc.pull("redis_error_kinds"))
    assert redis["count"] > 0 and redis["first_seen"] == cache.redis_errors(app)["timestamp"].min()

    kinds = inc.pull("pg_log_category_counts")
    entries = pglog.parse_events(pg)
    exact, parsed = log_counts.category_counts(kinds), pglog.counts(entries)
    assert {c: v["entries"] for c, v in exact.items()} == {c: v["entries"] for c, v in parsed.items()}
    for cat, v in exact.items():  # the event's own time (ms) against its line's (RDS writes whole seconds)
        assert pd.Timedelta(0) <= v["first_seen"] - parsed[cat]["first_seen"] < pd.Timedelta(seconds=1)
        assert parsed[cat]["example"].startswith(v["example"])  # the text the category's pattern matched
    assert set(pglog.counts(entries)) == {"connection_exhaustion", "authentication_failure", "deadlock",
                                          "lock_waits", "statement_timeout", "checkpoint_pressure"}
    clients = log_counts.top_hits(inc.pull("pg_auth_failure_clients"))
    assert set(clients) == {"203.0.113.9", "198.51.100.7"}

    tasks = log_counts.task_failures(inc.pull("worker_task_counts"))
    assert queues.failing_tasks(tasks) == queues.failing_tasks(queues.task_failures(worker))
    assert tasks["tasks"].sum() == tasks["count"].sum()  # one id per line here: distinct ids are exact

    # categories ranked by change at the onset from the exact counts: the planted rise is "grew"
    changed, basis = log_counts.categories_changed(kinds, inc.pull("pg_log_sample"),
                                                   inc.captures["pg_log_sample"].args["sampling"],
                                                   planted["onset"], inc.context_window)
    assert basis.startswith("exact") and set(changed["change"].head(3)) == {"grew"}


def test_without_insights_the_counts_are_unknown_and_the_sample_ranks(tmp_path, moto_server, planted):
    proxy = LoopbackProxy(moto_server.endpoint_url, deny={"StartQuery"}).start()
    try:
        inc = _session(tmp_path, proxy.endpoint_url, planted)
        kinds = inc.pull("pg_log_category_counts")
        sample = inc.pull("pg_log_sample")
    finally:
        proxy.stop()
    sources = inc.sources().set_index("capture")
    assert sources.loc["pg_log_category_counts", "status"] == "FAILED"
    assert "AccessDenied" in sources.loc["pg_log_category_counts", "error"]
    assert len(sample) and (sample["via"] == "filter_log_events").all()
    inc.finding("pg_log_errors", log_counts.category_counts(kinds), needs=["pg_log_category_counts"])
    assert "pg_log_errors" in inc.unknown
    changed, basis = log_counts.categories_changed(kinds, sample, inc.captures["pg_log_sample"].args["sampling"],
                                                   planted["onset"], inc.context_window)
    assert basis.startswith("bounded sample") and "AccessDenied" in basis
    assert len(changed) and set(changed["signature"]) <= {c.name for c in pglog.CATEGORIES} | {"other"}


def test_packed_slices_give_the_frame_slice_by_slice_queries_give(moto_server, planted):
    """The sample's slices read in groups by one query each (their span holds few events by the per-minute
    counts) and cut into slices here: the same frame as one query per slice, with fewer queries; with a cap
    that binds inside a group, and with counts that are short (a group's query comes back full and is read
    again slice by slice)."""
    from forensics.sources import log_volume as lv
    from forensics.window import IncidentWindow

    aws = {"region": moto_server.region, "profile": None, "endpoint_url": moto_server.endpoint_url}
    groups = [planted["groups"]["app"]]
    window = IncidentWindow(planted["start"], planted["end"])
    slices = lv.slice_plan(window, planted["onset"], spread=24, near_onset=12, slice_s=20, onset_span="10min")
    per_minute = lv.events_per_minute(groups, window, "ERROR", aws=aws)
    assert per_minute["events"].sum() > 1000

    def read(per_slice, **kw):
        df = lv.sample(groups, slices, "ERROR", None, per_slice=per_slice, aws=aws, **kw)
        return df, df.attrs.get("insights_queries")

    one_by_one, n = read(300)
    assert n == len(slices) and one_by_one["slice"].nunique() > 20
    packed, m = read(300, per_minute=per_minute)
    assert m < n / 4, (m, n)
    pd.testing.assert_frame_equal(packed, one_by_one)

    capped, _ = read(2)  # a cap of 2 binds in most slices: the oldest two of each
    assert capped.groupby("slice").size().max() == 2
    packed_capped, m = read(2, per_minute=per_minute)
    assert m < n / 4
    pd.testing.assert_frame_equal(packed_capped, capped)

    short = per_minute.assign(events=per_minute["events"] / 100)  # counts far below the events there
    again, m = read(300, per_minute=short, max_rows=50)
    pd.testing.assert_frame_equal(again, one_by_one)
    assert m > n  # the full groups were read again slice by slice
