"""Backups: which failed, which snapshot a restore would start from, how old it is, what the retention
and backup jobs said. Pure functions on the frames of :mod:`forensics.sources.backups` and job logs.

"As of" is the incident's moment (the window's end), never the time the notebook runs: a record
replayed a year later gives the same ages.
"""

from __future__ import annotations

import re

import pandas as pd

from .. import contracts
from ..window import iso
from . import signatures

#: What a job log line is about: the retention sweep or a backup (checked in this order).
JOB_KINDS = (("retention", re.compile(r"(?i)retention|purge|cleanup")),
             ("backup", re.compile(r"(?i)backup|pg_dump|snapshot")))
#: A line reporting a failure, or a success, of the job it names.
_FAILED = re.compile(r"(?i)\b(?:error|failed|failure|traceback|exception|timeout|timed out|denied|killed)\b")
_SUCCEEDED = re.compile(r"(?i)\b(?:succeeded|completed|finished|success|done)\b")
#: The job's own name: an identifier with an underscore naming backups or retention (a Celery task such as
#: backup_database_task or data_retention_cleanup; app.tasks.data_retention, a module path, is not one).
_KEYWORD = r"(?:backup|retention|cleanup|dump|purge)"
_TASK = re.compile(rf"(?<![.\w])([a-z0-9_]*_[a-z0-9_]*{_KEYWORD}[a-z0-9_]*|[a-z0-9_]*{_KEYWORD}[a-z0-9_]*_[a-z0-9_]*)\b")
CLASSIFIED_COLUMNS = ["timestamp", "job", "task", "outcome", "message"]


def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _hours(delta: pd.Timedelta) -> float:
    return round(delta.total_seconds() / 3600, 1)


def last_good_snapshot(snapshots: pd.DataFrame, as_of) -> dict | None:
    """The newest snapshot that is ``available`` and was created at or before ``as_of``: what a restore
    would start from. None when there is none."""
    if snapshots is None or snapshots.empty:
        return None
    as_of = _utc(as_of)
    ok = snapshots[(snapshots["status"] == "available") & (snapshots["timestamp"] <= as_of)]
    if ok.empty:
        return None
    s = ok.sort_values("timestamp", kind="stable").iloc[-1]
    return {"snapshot_id": s["snapshot_id"], "type": s["snapshot_type"], "created": iso(s["timestamp"]),
            "age_hours": _hours(as_of - s["timestamp"])}


def not_ready(snapshots: pd.DataFrame, since, until) -> list[dict]:
    """Snapshots started in [since, until] that are not (yet) a restore point: still creating, or failed.
    A migration run while its pre-migration snapshot is still creating has no way back."""
    if snapshots is None or snapshots.empty:
        return []
    s = snapshots[(snapshots["timestamp"] >= _utc(since)) & (snapshots["timestamp"] <= _utc(until))
                  & (snapshots["status"] != "available")]
    return [{"snapshot_id": r.snapshot_id, "type": r.snapshot_type, "status": r.status,
             "progress": None if pd.isna(r.progress) else float(r.progress), "created": iso(r.timestamp)}
            for r in s.itertuples()]


def classify_job_logs(logs: pd.DataFrame) -> pd.DataFrame:
    """Job log lines as ``[timestamp, job, task, outcome, message]``: job ``retention`` or ``backup``
    (lines about neither are dropped), outcome ``failed``, ``succeeded`` or ``info``."""
    if logs is None or logs.empty:
        return pd.DataFrame({c: pd.Series(dtype=contracts.TS_DTYPE if c == "timestamp" else "str")
                             for c in CLASSIFIED_COLUMNS})
    msg = logs["message"].fillna("").astype(str)
    job = pd.Series(None, index=logs.index, dtype="object")
    for name, rx in reversed(JOB_KINDS):  # the first kind wins: it is written last
        job = job.mask(msg.str.contains(rx), name)
    outcome = pd.Series("info", index=logs.index, dtype="object")
    outcome = outcome.mask(msg.str.contains(_SUCCEEDED), "succeeded").mask(msg.str.contains(_FAILED), "failed")
    task = msg.str.extract(_TASK, expand=False)
    out = pd.DataFrame({"timestamp": logs["timestamp"], "job": job, "task": task.fillna(job), "outcome": outcome,
                        "message": msg})
    return out[out["job"].notna()].sort_values("timestamp", kind="stable").reset_index(drop=True)


def job_runs(classified: pd.DataFrame) -> dict:
    """Per task: its last success and last failure and how many failures, so "has it run since?" is one look."""
    out = {}
    for task, g in classified.groupby("task", sort=True):
        ok, bad = g[g["outcome"] == "succeeded"], g[g["outcome"] == "failed"]
        out[task] = {"job": g["job"].iloc[0], "last_success": iso(ok["timestamp"].max()) if len(ok) else None,
                     "last_failure": iso(bad["timestamp"].max()) if len(bad) else None, "failures": int(len(bad))}
    return out


def retention_errors(classified: pd.DataFrame, n: int = 10) -> list[dict]:
    """The retention job's failures grouped by signature: count, first and last seen, one example."""
    bad = classified[(classified["job"] == "retention") & (classified["outcome"] == "failed")]
    if bad.empty:
        return []
    top = signatures.top(bad["message"].reset_index(drop=True), bad["timestamp"].reset_index(drop=True), n=n)
    return [{"signature": r.signature, "count": int(r.count), "first_seen": iso(r.first_seen),
             "last_seen": iso(r.last_seen), "example": str(r.example)} for r in top.itertuples()]


def failed_backups(jobs: pd.DataFrame | None = None, snapshots: pd.DataFrame | None = None,
                   rds_events: pd.DataFrame | None = None, classified: pd.DataFrame | None = None) -> list[dict]:
    """Every backup that did not complete, oldest first: AWS Backup jobs, snapshots, RDS backup events
    and the application's backup job (its failed log lines, one per task and minute)."""
    rows = []
    for frame in (jobs, snapshots, rds_events):
        if frame is None or frame.empty:
            continue
        for r in frame[frame["kind"] == contracts.BACKUP_FAILED].itertuples():
            rows.append({"time": r.timestamp, "source": r.source, "resource": r.resource, "message": r.message})
    if classified is not None and len(classified):
        bad = classified[(classified["job"] == "backup") & (classified["outcome"] == "failed")]
        bad = bad.assign(minute=bad["timestamp"].dt.floor("min")).drop_duplicates(["task", "minute"])
        rows += [{"time": r.timestamp, "source": "app", "resource": r.task, "message": r.message}
                 for r in bad.itertuples()]
    rows.sort(key=lambda r: (_utc(r["time"]), r["source"], r["resource"]))
    return [{**r, "time": iso(r["time"])} for r in rows]


def last_dump(objects: pd.DataFrame, as_of) -> dict | None:
    """The application's newest non-empty dump in S3 at ``as_of``: key, time, age, size."""
    if objects is None or objects.empty:
        return None
    as_of = _utc(as_of)
    ok = objects[(objects["last_modified"] <= as_of) & (objects["size_bytes"].fillna(0) > 0)]
    if ok.empty:
        return None
    o = ok.sort_values("last_modified", kind="stable").iloc[-1]
    return {"key": o["key"], "last_modified": iso(o["last_modified"]), "age_hours": _hours(as_of - o["last_modified"]),
            "size_bytes": int(o["size_bytes"])}


def restore_point_age(snapshots: pd.DataFrame, start, end, freq: str = "15min") -> pd.Series:
    """Hours since the newest available snapshot at each step of [start, end]: a saw that drops at every
    good snapshot and keeps climbing when backups stop. NaN before the first snapshot."""
    grid = pd.DataFrame({"t": pd.date_range(_utc(start), _utc(end), freq=freq).astype(contracts.TS_DTYPE)})
    made = pd.Series(dtype=contracts.TS_DTYPE) if snapshots is None or snapshots.empty else \
        snapshots.loc[snapshots["status"] == "available", "timestamp"].dropna().astype(contracts.TS_DTYPE)
    made = pd.DataFrame({"t": made.sort_values().to_numpy(), "made": made.sort_values().to_numpy()})
    m = pd.merge_asof(grid, made.astype({"t": contracts.TS_DTYPE, "made": contracts.TS_DTYPE}), on="t")
    age = (m["t"] - m["made"]).dt.total_seconds() / 3600
    return pd.Series(age.to_numpy(), index=pd.DatetimeIndex(grid["t"]), name="hours since the last good snapshot")


def verdict(findings: dict, lookback_hours: float, max_age_hours: float, unknown=()) -> str:
    """One plain paragraph: what is wrong with the backups, or that nothing is (``unknown``: the findings whose
    sources failed, said as such rather than as "nothing")."""
    problems = []
    failed = findings.get("failed_backups") or []
    if failed:
        sources = ", ".join(sorted({f["source"] for f in failed}))
        problems.append(f"{len(failed)} backup(s) failed in the last {lookback_hours:g} h ({sources}), the last at "
                        f"{failed[-1]['time']}")
    last, age = findings.get("last_good_snapshot"), findings.get("snapshot_age_hours")
    if last is None and "last_good_snapshot" in findings and "last_good_snapshot" not in unknown:
        problems.append("no available snapshot at all: nothing to restore from")
    elif age is not None and age > max_age_hours:
        problems.append(f"the newest restore point ({last['snapshot_id']}) is {age:g} h old (over {max_age_hours:g} h)")
    for s in findings.get("snapshots_not_ready") or []:
        progress = f", {s['progress']:g} %" if s.get("progress") is not None else ""
        problems.append(f"snapshot {s['snapshot_id']} started {s['created']} is {s['status']}{progress}: not a "
                        "restore point")
    if findings.get("retention_errors"):
        problems.append(f"the retention job failed ({sum(e['count'] for e in findings['retention_errors'])} time(s))")
    if unknown:
        problems.append(f"not known (a source failed): {', '.join(unknown)}")
    if not problems:
        where = f" ({last['snapshot_id']}, {age:g} h old)" if last else ""
        return (f"Nothing to find: no backup failed in the last {lookback_hours:g} h, the newest restore point is "
                f"recent enough{where}, and the retention job reported no error.")
    return "Found: " + "; ".join(problems) + "."
