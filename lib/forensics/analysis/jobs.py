"""Scheduled jobs: which stopped, which ran late, which schedules failed to invoke their targets.

A job's **runs** are its heartbeats (:mod:`forensics.heartbeats`): log events matching its pattern,
or datapoints above zero of its metric. A job is **silent** when, at ``as_of``, its last run is older than
``period x (1 + tolerance)`` (both declared in the environment: no threshold here is fitted to data); a
job never seen over the whole lookback is silent since the lookback's start. A **late run** is a run that
came after a gap longer than that. **Failed invocations** are EventBridge's ``FailedInvocations`` per rule
and Scheduler's ``TargetErrorCount``/``InvocationDroppedCount`` per group, summed over the window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import contracts, defaults, heartbeats
from ..window import heartbeat_span

#: How late, in periods, a run may be before it counts as missing, unless a job declares its own.
DEFAULT_TOLERANCE = defaults.JOB_TOLERANCE
SILENT_COLUMNS = ["job", "last_seen", "expected_period_min", "overdue_since", "silent_for_min", "heartbeat"]
LATE_COLUMNS = ["job", "previous_run", "run", "gap_min", "expected_period_min", "late_by_min"]
FAILED_COLUMNS = ["name", "kind", "metric", "failed", "invocations", "first_failed", "last_failed"]
#: Metrics that count a failure (everything else counts attempts).
FAILURE_METRICS = ("FailedInvocations", "TargetErrorCount", "InvocationDroppedCount")
ATTEMPT_METRICS = ("Invocations", "InvocationAttemptCount")


def _utc(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _minutes(td: pd.Timedelta) -> float:
    return round(td.total_seconds() / 60, 1)


def runs(heartbeat_logs: pd.DataFrame | None, heartbeat_metrics: pd.DataFrame | None, beats) -> pd.DataFrame:
    """Every run of every declared job, ``[job, timestamp]`` sorted: a log event of the job, or a metric
    datapoint above zero labelled with the job's name."""
    names = {b.name for b in beats}
    parts = []
    if heartbeat_logs is not None and len(heartbeat_logs):
        parts.append(heartbeat_logs.loc[heartbeat_logs["job"].isin(names), ["job", "timestamp"]])
    if heartbeat_metrics is not None and len(heartbeat_metrics):
        m = heartbeat_metrics[(heartbeat_metrics["label"].isin(names)) & (heartbeat_metrics["value"] > 0)]
        parts.append(m.rename(columns={"label": "job"})[["job", "timestamp"]])
    if not parts:
        return pd.DataFrame({"job": pd.Series(dtype="str"), "timestamp": pd.Series(dtype=contracts.TS_DTYPE)})
    out = pd.concat(parts, ignore_index=True)
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype(contracts.TS_DTYPE)
    return out.dropna().sort_values(["job", "timestamp"], kind="stable").reset_index(drop=True)


def silent_jobs(run_frame: pd.DataFrame, beats, as_of, since) -> pd.DataFrame:
    """Jobs overdue at ``as_of``: ``job, last_seen`` (None when no run since ``since``, the lookback's
    start), ``expected_period_min, overdue_since, silent_for_min`` (since the last run, or since
    ``since``), ``heartbeat``. Longest silence first."""
    as_of, since = _utc(as_of), _utc(since)
    rows = []
    for b in beats:
        mine = run_frame.loc[(run_frame["job"] == b.name) & (run_frame["timestamp"] <= as_of), "timestamp"]
        last = mine.max() if len(mine) else None
        overdue = (last if last is not None else since) + b.overdue_after
        if as_of > overdue:
            rows.append({"job": b.name, "last_seen": last, "expected_period_min": _minutes(pd.Timedelta(
                seconds=b.period_s)), "overdue_since": overdue,
                "silent_for_min": _minutes(as_of - (last if last is not None else since)),
                "heartbeat": b.describe()})
    out = pd.DataFrame(rows, columns=SILENT_COLUMNS)
    return out.sort_values("silent_for_min", ascending=False, kind="stable").reset_index(drop=True)


def late_runs(run_frame: pd.DataFrame, beats, start, as_of) -> pd.DataFrame:
    """Runs in ``[start, as_of]`` that came after a gap longer than the job's overdue span: ``job,
    previous_run, run, gap_min, expected_period_min, late_by_min`` (beyond the period). Latest first."""
    start, as_of = _utc(start), _utc(as_of)
    rows = []
    for b in beats:
        ts = run_frame.loc[run_frame["job"] == b.name, "timestamp"].sort_values()
        ts = ts[ts <= as_of].reset_index(drop=True)
        for prev, cur in zip(ts[:-1], ts[1:]):
            gap = cur - prev
            if cur >= start and gap > b.overdue_after:
                period = pd.Timedelta(seconds=b.period_s)
                rows.append({"job": b.name, "previous_run": prev, "run": cur, "gap_min": _minutes(gap),
                             "expected_period_min": _minutes(period), "late_by_min": _minutes(gap - period)})
    out = pd.DataFrame(rows, columns=LATE_COLUMNS)
    return out.sort_values("run", ascending=False, kind="stable").reset_index(drop=True)


def periods_since_run(run_frame: pd.DataFrame, beats, start, end, freq: str = "1min") -> pd.DataFrame:
    """Per job (a column each), at every ``freq`` step of ``[start, end]``: the time since its last run in
    periods (1 = on schedule; above ``1 + tolerance`` = overdue). NaN before its first run is seen."""
    index = pd.date_range(_utc(start).floor(freq), _utc(end), freq=freq)
    out = pd.DataFrame(index=index)
    grid = index.tz_convert(None).as_unit("ns").to_numpy()
    for b in beats:
        mine = run_frame.loc[run_frame["job"] == b.name, "timestamp"]
        ts = np.sort(pd.DatetimeIndex(mine).tz_convert(None).as_unit("ns").to_numpy())
        if not len(ts):
            out[b.name] = np.nan
            continue
        pos = np.searchsorted(ts, grid, side="right") - 1
        age = (grid - ts[np.clip(pos, 0, None)]) / np.timedelta64(1, "s") / b.period_s
        out[b.name] = np.where(pos >= 0, age, np.nan)
    return out


def _split_label(label: str) -> tuple[str, str]:
    name, _, metric = str(label).rpartition(" ")
    return name, metric


def failed_invocations(invocation_metrics: pd.DataFrame | None, schedules: pd.DataFrame | None,
                       start=None, end=None) -> pd.DataFrame:
    """Rules and schedule groups with failures in ``[start, end)``: ``name, kind, metric`` (the failure
    metric), ``failed, invocations`` (attempts), ``first_failed, last_failed``. Most failures first."""
    if invocation_metrics is None or not len(invocation_metrics):
        return pd.DataFrame(columns=FAILED_COLUMNS)
    m = invocation_metrics
    if start is not None:
        m = m[m["timestamp"] >= _utc(start)]
    if end is not None:
        m = m[m["timestamp"] < _utc(end)]
    parts = m["label"].map(_split_label)
    m = m.assign(name=parts.str[0], metric=parts.str[1])
    kinds = {}
    if schedules is not None and len(schedules):
        kinds = {**{g: k for g, k in zip(schedules["group"], schedules["kind"]) if k != "eventbridge-rule"},
                 **{n: k for n, k in zip(schedules["name"], schedules["kind"]) if k == "eventbridge-rule"}}
    rows = []
    for name, g in m.groupby("name", sort=True):
        fails = g[g["metric"].isin(FAILURE_METRICS) & (g["value"] > 0)]
        if not len(fails):
            continue
        attempts = g.loc[g["metric"].isin(ATTEMPT_METRICS), "value"].sum()
        rows.append({"name": name, "kind": kinds.get(name, ""),
                     "metric": ", ".join(sorted(set(fails["metric"]))), "failed": int(fails["value"].sum()),
                     "invocations": int(attempts), "first_failed": fails["timestamp"].min(),
                     "last_failed": fails["timestamp"].max()})
    out = pd.DataFrame(rows, columns=FAILED_COLUMNS)
    return out.sort_values("failed", ascending=False, kind="stable").reset_index(drop=True)


def disabled_schedules(schedules: pd.DataFrame | None) -> pd.DataFrame:
    """Rules and schedules whose state is DISABLED (a schedule that is off never fires)."""
    cols = ["name", "kind", "group", "schedule_expression", "targets"]
    if schedules is None or not len(schedules):
        return pd.DataFrame(columns=cols)
    return schedules.loc[schedules["state"].astype(str).str.upper() == "DISABLED", cols].reset_index(drop=True)


def as_events(silent: pd.DataFrame, failed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Change events for the timeline: a job going silent (kind ``job-silent``, when it became overdue)
    and a schedule's first failed invocation (kind ``job-failed``)."""
    rows = []
    for r in silent.itertuples():
        last = "never seen in the lookback" if r.last_seen is None or pd.isna(r.last_seen) else \
            f"last run {pd.Timestamp(r.last_seen).strftime('%H:%M:%SZ')}"
        rows.append({"timestamp": r.overdue_since, "source": "jobs", "resource": r.job,
                     "kind": contracts.JOB_SILENT,
                     "message": f"{r.job} went silent: {last}, expected every {r.expected_period_min:g} min"})
    for r in (failed.itertuples() if failed is not None else ()):
        rows.append({"timestamp": r.first_failed, "source": "jobs", "resource": r.name,
                     "kind": contracts.JOB_FAILED,
                     "message": f"{r.name}: {r.failed} failed invocations ({r.metric}) of {r.invocations}"})
    cols = list(contracts.EVENT_COLUMNS)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=contracts.TS_DTYPE if c == "timestamp" else "str") for c in cols})
    out = pd.DataFrame(rows, columns=cols)
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype(contracts.TS_DTYPE)
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


def verdict(silent: pd.DataFrame, late: pd.DataFrame, failed: pd.DataFrame, disabled: pd.DataFrame,
            n_jobs: int, n_schedules: int) -> str:
    """One plain sentence for the reader, including when there is nothing to find."""
    parts = []
    if len(silent):
        parts.append(f"{len(silent)} job(s) silent: " + ", ".join(silent["job"]))
    if len(late):
        parts.append(f"{len(late)} late run(s) of " + ", ".join(sorted(set(late["job"]))))
    if len(failed):
        parts.append("failed invocations on " + ", ".join(failed["name"]))
    if len(disabled):
        parts.append("disabled: " + ", ".join(disabled["name"]))
    if not parts:
        return (f"Nothing to find: every one of the {n_jobs} declared job(s) ran on schedule and none of the "
                f"{n_schedules} schedule(s) failed to invoke its target.")
    return "; ".join(parts) + "."



def as_of(window_end, pulled_at=None) -> pd.Timestamp:
    """The moment silence is judged at: the window's end, or when the heartbeats were pulled if that was
    earlier (a window ending in the future must not make every job look silent)."""
    end = _utc(window_end)
    if pulled_at:
        end = min(end, _utc(pulled_at))
    return end


def declared(env: dict):
    """The environment's ``jobs.heartbeats``, validated (:func:`forensics.heartbeats.heartbeats`)."""
    return heartbeats.heartbeats((env or {}).get("jobs"))


def lookback_start(beats, window) -> pd.Timestamp:
    """Where the heartbeat captures start (the window, the context, or two overdue spans of the slowest job)."""
    return heartbeat_span(window, defaults.CONTEXT, heartbeats.longest_overdue(beats)).start


def change_events(beats, heartbeat_logs: pd.DataFrame, heartbeat_metrics: pd.DataFrame, pulled_at,
                  invocation_metrics: pd.DataFrame, schedules: pd.DataFrame, window) -> pd.DataFrame:
    """The jobs' change events for the timeline (:func:`as_events`): jobs silent at the window's end (or when
    the heartbeats were pulled, if earlier) and schedules whose invocations failed in the window."""
    as_of_ = as_of(window.end, pulled_at)
    silent = silent_jobs(runs(heartbeat_logs, heartbeat_metrics, beats), beats, as_of_, lookback_start(beats, window))
    failed = failed_invocations(invocation_metrics, schedules, window.start, window.end)
    return as_events(silent, failed)


def schedule_table(rules: pd.DataFrame | None, schedules: pd.DataFrame | None) -> pd.DataFrame:
    """EventBridge rules and Scheduler schedules (:data:`forensics.sources.schedules.RULE_COLUMNS`) in one frame."""
    parts = [f for f in (rules, schedules) if f is not None and len(f)]
    if not parts:
        return rules if rules is not None else pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def invocation_counts(invocation_metrics: pd.DataFrame | None, schedules: pd.DataFrame | None, start,
                      end) -> pd.DataFrame:
    """Invocations and failures per schedule (a column per ``<name> <metric>``) summed into buckets as long
    as the fastest ``rate()`` schedule's period (5 min to 1 h; 15 min when none has one), zeros included:
    a sparse metric drawn as buckets, not as a line between its datapoints."""
    periods = schedules["period_s"].dropna() if schedules is not None and len(schedules) else pd.Series([], dtype=float)
    seconds = int(min(max(periods.min() if len(periods) else 900, 300), 3600))
    freq = f"{seconds}s"
    index = pd.date_range(_utc(start).floor(freq), _utc(end), freq=freq, inclusive="left")
    if invocation_metrics is None or not len(invocation_metrics):
        return pd.DataFrame(index=index)
    m = invocation_metrics
    wide = m.groupby([m["timestamp"].dt.floor(freq), "label"])["value"].sum().unstack("label", fill_value=0.0)
    return wide.reindex(index, fill_value=0.0)
