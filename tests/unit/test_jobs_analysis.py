"""Scheduled jobs: heartbeats declared in the environment, silent jobs, late runs, failed invocations,
their timeline events, and the environment's validation of them."""

from __future__ import annotations

import pandas as pd
import pytest

from forensics import contracts
from forensics.analysis import jobs
from forensics.sources import schedules
from forensics.heartbeats import longest_overdue
from forensics.window import IncidentWindow, heartbeat_span

T0 = pd.Timestamp("2026-11-23T10:00:00Z")
BEATS = schedules.heartbeats({"heartbeats": [
    {"name": "sweep", "log_group": "/ecs/api", "pattern": "_maybe_sweep completed", "period": "5m"},
    {"name": "export", "metric": {"namespace": "SCR/Jobs", "name": "JobCompleted", "dimensions": {"Job": "x"}},
     "period": "15m", "tolerance": 1},
    {"name": "nightly", "log_group": "/ecs/beat", "pattern": "purge", "period": "1d"},
]})


def _logs(job: str, times) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime(list(times), utc=True), "log_group": "g", "log_stream": "s",
                         "message": "m", "event_id": "e", "job": job})


def _metric(label: str, times, value=1.0) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime(list(times), utc=True), "id": "x", "label": label,
                         "value": value, "stat": "Sum", "unit": None})


def _runs():
    sweep = [T0 + pd.Timedelta(minutes=5 * k) for k in range(7)]  # until T0+30, then nothing
    export = [T0 + pd.Timedelta(minutes=15 * k) for k in range(5)]  # every 15 min until T0+60
    nightly = [T0 - pd.Timedelta(hours=20)]
    logs = pd.concat([_logs("sweep", sweep), _logs("nightly", nightly), _logs("someone-else", [T0])])
    metrics = pd.concat([_metric("export", export), _metric("export", [T0 + pd.Timedelta(minutes=7)], 0.0)])
    return jobs.runs(logs, metrics, BEATS)


@pytest.mark.parametrize("text,seconds", [("5m", 300), ("90s", 90), ("1h", 3600), ("1d", 86400), (600, 600),
                                          ("2 days", 172800), ("15min", 900)])
def test_periods_read_as_durations(text, seconds):
    assert schedules.period_seconds(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "0s", True, "-5m", ""])
def test_bad_periods_are_refused(bad):
    with pytest.raises(ValueError, match="period"):
        schedules.period_seconds(bad)


def test_rate_expressions_have_a_period_cron_does_not():
    assert schedules.rate_seconds("rate(15 minutes)") == 900 and schedules.rate_seconds("rate(1 day)") == 86400
    assert schedules.rate_seconds("cron(0 6 ? * MON *)") is None and schedules.rate_seconds(None) is None


@pytest.mark.parametrize("entry,message", [
    ({"name": "a", "period": "5m"}, "either log_group"),
    ({"name": "a", "period": "5m", "log_group": "g"}, "needs a pattern"),
    ({"name": "a", "log_group": "g", "pattern": "p"}, "period is missing"),
    ({"name": "a", "period": "5m", "metric": {"name": "m"}}, "namespace and name"),
    ({"name": "a", "period": "5m", "log_group": "g", "pattern": "p", "tolerance": -1}, "tolerance"),
    ({"name": "a", "period": "5m", "log_group": "g", "pattern": "p", "every": 3}, "unknown field every"),
])
def test_a_bad_heartbeat_names_its_entry_and_field(entry, message):
    with pytest.raises(ValueError, match=message):
        schedules.heartbeats({"heartbeats": [entry]})


def test_runs_take_log_events_of_declared_jobs_and_metric_points_above_zero():
    runs = _runs()
    assert set(runs["job"]) == {"sweep", "export", "nightly"}
    assert (runs["job"] == "export").sum() == 5  # the zero datapoint is no run
    assert str(runs["timestamp"].dtype) == contracts.TS_DTYPE


def test_a_job_is_silent_once_its_last_run_is_older_than_its_overdue_span():
    runs = _runs()
    since = T0 - pd.Timedelta(days=2)
    silent = jobs.silent_jobs(runs, BEATS, T0 + pd.Timedelta(minutes=60), since)
    assert silent["job"].tolist() == ["sweep"]  # export ran at T0+60; nightly ran 21 h ago, daily job
    row = silent.iloc[0]
    assert row["last_seen"] == T0 + pd.Timedelta(minutes=30) and row["expected_period_min"] == 5.0
    assert row["overdue_since"] == T0 + pd.Timedelta(minutes=37, seconds=30) and row["silent_for_min"] == 30.0
    # just before the overdue moment the sweep is not yet silent
    assert jobs.silent_jobs(runs, BEATS, T0 + pd.Timedelta(minutes=37), since).empty
    # a day and a half later the nightly job is silent too; export's tolerance of 1 period is its own
    later = jobs.silent_jobs(runs, BEATS, T0 + pd.Timedelta(hours=17), since)
    assert set(later["job"]) == {"sweep", "export", "nightly"}


def test_a_job_never_seen_is_silent_since_the_lookback_start():
    since = T0 - pd.Timedelta(hours=1)
    silent = jobs.silent_jobs(jobs.runs(None, None, BEATS), BEATS[:1], T0, since)
    assert silent.iloc[0]["last_seen"] is None and silent.iloc[0]["silent_for_min"] == 60.0


def test_late_runs_are_gaps_longer_than_the_overdue_span_ending_in_the_window():
    times = [T0 + pd.Timedelta(minutes=m) for m in (0, 5, 10, 30, 35, 80)]
    runs = jobs.runs(_logs("sweep", times), None, BEATS)
    late = jobs.late_runs(runs, BEATS, T0 + pd.Timedelta(minutes=20), T0 + pd.Timedelta(minutes=90))
    assert late["run"].tolist() == [T0 + pd.Timedelta(minutes=80), T0 + pd.Timedelta(minutes=30)]
    assert late.iloc[1][["gap_min", "late_by_min"]].tolist() == [20.0, 15.0]
    # a gap ending before the window's start is not reported
    assert jobs.late_runs(runs, BEATS, T0 + pd.Timedelta(minutes=31), T0 + pd.Timedelta(minutes=60)).empty


def test_periods_since_run_climbs_while_a_job_is_silent():
    runs = jobs.runs(_logs("sweep", [T0, T0 + pd.Timedelta(minutes=5)]), None, BEATS)
    frame = jobs.periods_since_run(runs, BEATS[:1], T0 - pd.Timedelta(minutes=2), T0 + pd.Timedelta(minutes=25))
    s = frame["sweep"]
    assert s.iloc[:2].isna().all()  # before the first run: unknown
    assert s[T0 + pd.Timedelta(minutes=5)] == 0 and s[T0 + pd.Timedelta(minutes=25)] == 4.0


def _schedule_frame():
    return pd.DataFrame({"name": ["backup", "report", "digest"],
                         "kind": [schedules.RULE, schedules.RULE, schedules.SCHEDULE],
                         "group": ["default", "default", "jobs"], "schedule_expression": ["rate(15 minutes)",
                                                                                          "cron(0 6 * * ? *)",
                                                                                          "rate(1 day)"],
                         "period_s": [900, None, 86400], "state": ["ENABLED", "DISABLED", "ENABLED"],
                         "targets": ["arn:ecs", None, "arn:lambda"], "description": None, "arn": "arn"})


def test_invocation_queries_per_rule_and_per_schedule_group():
    queries = schedules.invocation_queries(_schedule_frame())
    labels = [q.label for q in queries]
    assert labels[:2] == ["backup Invocations", "backup FailedInvocations"]
    assert "jobs TargetErrorCount" in labels and all(q.namespace in ("AWS/Events", "AWS/Scheduler") for q in queries)
    assert len({q.id for q in queries}) == len(queries)


def test_failed_invocations_in_the_window_and_disabled_schedules():
    fires = [T0 + pd.Timedelta(minutes=15 * k) for k in range(6)]
    metrics = pd.concat([_metric("backup Invocations", fires), _metric("backup FailedInvocations", fires[3:]),
                         _metric("report Invocations", fires[:1]), _metric("jobs TargetErrorCount", fires[:1], 0.0)])
    failed = jobs.failed_invocations(metrics, _schedule_frame(), T0, T0 + pd.Timedelta(minutes=75))
    assert failed.to_dict("records") == [{"name": "backup", "kind": schedules.RULE, "metric": "FailedInvocations",
                                          "failed": 2, "invocations": 5, "first_failed": fires[3],
                                          "last_failed": fires[4]}]
    assert jobs.disabled_schedules(_schedule_frame())["name"].tolist() == ["report"]


def test_silences_and_failures_become_timeline_events_of_the_contract():
    silent = jobs.silent_jobs(_runs(), BEATS, T0 + pd.Timedelta(minutes=60), T0 - pd.Timedelta(days=2))
    failed = pd.DataFrame([{"name": "backup", "kind": "r", "metric": "FailedInvocations", "failed": 2,
                            "invocations": 5, "first_failed": T0 + pd.Timedelta(minutes=45), "last_failed": T0}])
    ev = jobs.as_events(silent, failed)
    assert list(ev.columns) == list(contracts.EVENT_COLUMNS) and str(ev["timestamp"].dtype) == contracts.TS_DTYPE
    assert ev["kind"].tolist() == [contracts.JOB_SILENT, contracts.JOB_FAILED]
    assert "sweep went silent: last run 10:30:00Z, expected every 5 min" in ev.iloc[0]["message"]
    assert jobs.as_events(silent.iloc[0:0]).empty


def test_nothing_to_find_is_said_plainly():
    empty = pd.DataFrame()
    assert jobs.verdict(empty, empty, empty, empty, 3, 2).startswith("Nothing to find: every one of the 3")
    silent = pd.DataFrame({"job": ["sweep"]})
    assert jobs.verdict(silent, empty, empty, empty, 3, 2) == "1 job(s) silent: sweep."


def test_as_of_is_the_earlier_of_the_window_end_and_the_pull():
    assert jobs.as_of("2026-11-23T12:00:00Z", "2026-11-23T11:00:00Z") == pd.Timestamp("2026-11-23T11:00:00Z")
    assert jobs.as_of("2026-11-23T12:00:00Z", None) == pd.Timestamp("2026-11-23T12:00:00Z")


def test_lookback_covers_two_overdue_spans_of_the_slowest_job():
    w = IncidentWindow("2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z")
    assert heartbeat_span(w, "30min", longest_overdue(BEATS)).start == w.start - pd.Timedelta(days=3)
    assert heartbeat_span(w, "30min", longest_overdue(BEATS[:1])).start == w.start - pd.Timedelta(minutes=30)


def test_the_environment_refuses_a_bad_heartbeat_with_one_line(tmp_path):
    from forensics.errors import ParamsError
    from forensics.params import load_environment

    path = tmp_path / "env.yaml"
    path.write_text("name: t\naws: {region: eu-west-1}\njobs:\n  heartbeats:\n    - {name: sweep, period: soon, "
                    "log_group: g, pattern: p}\n")
    with pytest.raises(ParamsError, match="period must be a duration"):
        load_environment(path)
    path.write_text("name: t\naws: {region: eu-west-1}\njobs:\n  heartbeats:\n    - {name: sweep, period: 5m, "
                    "log_group: g, pattern: p}\n  rule_prefix: scr-\n")
    assert load_environment(path)["jobs"]["rule_prefix"] == "scr-"
