"""Backups analysis: the restore point, what is not ready, which backups failed, the jobs' logs, the verdict."""

from __future__ import annotations

import pandas as pd
import pytest

from forensics import contracts
from forensics.analysis import backups as ab
from forensics.sources import _typed
from forensics.sources.backups import JOB_COLUMNS, OBJECT_COLUMNS, SNAPSHOT_COLUMNS

END = pd.Timestamp("2026-11-23T10:00:00Z")


def snapshots(*rows) -> pd.DataFrame:
    """rows: (snapshot_id, type, status, created, progress)"""
    return _typed(pd.DataFrame([{"timestamp": pd.Timestamp(c), "source": "rds", "resource": i, "message": "",
                                 "kind": contracts.BACKUP_FAILED if s == "failed" else contracts.BACKUP,
                                 "snapshot_id": i, "snapshot_type": t, "status": s, "progress": p}
                                for i, t, s, c, p in rows]), SNAPSHOT_COLUMNS)


def logs(*rows) -> pd.DataFrame:
    return _typed(pd.DataFrame([{"timestamp": pd.Timestamp(t), "log_group": "g", "log_stream": "s", "message": m, "event_id": str(i)}
                                for i, (t, m) in enumerate(rows)]), contracts.LOG_COLUMNS)


SNAPS = snapshots(("rds:db-2026-11-21", "automated", "available", "2026-11-21T03:00Z", None),
                  ("rds:db-2026-11-22", "automated", "available", "2026-11-22T03:00Z", None),
                  ("broken", "manual", "failed", "2026-11-23T08:00Z", None),
                  ("pre-migration", "manual", "creating", "2026-11-23T09:20Z", 35),
                  ("after", "manual", "available", "2026-11-23T11:00Z", None))


def test_the_restore_point_is_the_newest_available_snapshot_at_the_incident_not_later_ones():
    last = ab.last_good_snapshot(SNAPS, END)
    assert last == {"snapshot_id": "rds:db-2026-11-22", "type": "automated", "created": "2026-11-22T03:00:00Z",
                    "age_hours": 31.0}
    assert ab.last_good_snapshot(SNAPS, "2026-11-21T02:00Z") is None
    assert ab.last_good_snapshot(snapshots(), END) is None


def test_snapshots_started_around_the_window_that_are_not_restore_points():
    got = ab.not_ready(SNAPS, "2026-11-23T07:00Z", END)
    assert [(s["snapshot_id"], s["status"], s["progress"]) for s in got] == [("broken", "failed", None),
                                                                          ("pre-migration", "creating", 35.0)]
    assert ab.not_ready(SNAPS, "2026-11-23T09:30Z", END) == []


def test_restore_point_age_is_a_saw_that_drops_at_every_good_snapshot():
    age = ab.restore_point_age(SNAPS, "2026-11-21T00:00Z", END, freq="1h")
    assert pd.isna(age.iloc[0])  # before the first snapshot
    assert age[pd.Timestamp("2026-11-21T04:00Z")] == pytest.approx(1.0)
    assert age[pd.Timestamp("2026-11-22T02:00Z")] == pytest.approx(23.0)
    assert age[pd.Timestamp("2026-11-22T03:00Z")] == pytest.approx(0.0)
    assert age[END] == pytest.approx(31.0)  # the failed and the creating ones do not count


JOB_LOGS = logs(
    ("2026-11-22T02:00Z", "INFO app.tasks.backup: backup_database_task started"),
    ("2026-11-22T02:09Z", "INFO app.tasks.backup: backup_database_task succeeded: 2026-11-22.dump uploaded"),
    ("2026-11-23T02:02Z", "ERROR app.tasks.backup: backup_database_task failed: AccessDenied on PutObject"),
    ("2026-11-23T02:02:30Z", "ERROR app.tasks.backup: backup_database_task failed: AccessDenied on PutObject"),
    ("2026-11-22T04:06Z", "ERROR app.tasks.data_retention: data_retention_cleanup failed on usage_events: "
                          "canceling statement due to statement timeout"),
    ("2026-11-23T04:06Z", "ERROR app.tasks.data_retention: data_retention_cleanup failed on usage_events: "
                          "canceling statement due to statement timeout"),
    ("2026-11-23T04:01Z", "INFO app.tasks.data_retention: data_retention_cleanup deleted 10000 rows from digest_logs"),
    ("2026-11-23T05:00Z", "INFO celery.worker: Task app.tasks.webhooks.deliver succeeded in 0.2s"))


def test_job_logs_are_classified_by_job_task_and_outcome():
    c = ab.classify_job_logs(JOB_LOGS)
    assert len(c) == 7  # the webhook line is about neither job
    assert set(c["task"]) == {"backup_database_task", "data_retention_cleanup"}  # not the module app.tasks.backup
    assert c.groupby(["job", "outcome"]).size().to_dict() == {
        ("backup", "failed"): 2, ("backup", "info"): 1, ("backup", "succeeded"): 1, ("retention", "failed"): 2,
        ("retention", "info"): 1}
    runs = ab.job_runs(c)
    assert runs["backup_database_task"] == {"job": "backup", "last_success": "2026-11-22T02:09:00Z",
                                            "last_failure": "2026-11-23T02:02:30Z", "failures": 2}
    assert runs["data_retention_cleanup"]["last_success"] is None


def test_retention_errors_are_grouped_and_empty_when_the_sweep_is_clean():
    errors = ab.retention_errors(ab.classify_job_logs(JOB_LOGS))
    assert len(errors) == 1 and errors[0]["count"] == 2
    assert errors[0]["first_seen"] == "2026-11-22T04:06:00Z" and "statement timeout" in errors[0]["example"]
    clean = logs(("2026-11-23T04:06Z", "INFO app.tasks.data_retention: data_retention_cleanup succeeded"))
    assert ab.retention_errors(ab.classify_job_logs(clean)) == []
    assert ab.retention_errors(ab.classify_job_logs(logs())) == []


def test_failed_backups_merge_every_source_oldest_first_one_line_per_failed_run():
    jobs = _typed(pd.DataFrame([
        {"timestamp": pd.Timestamp("2026-11-23T03:00Z"), "source": "backup", "resource": "db", "kind": contracts.BACKUP_FAILED,
         "message": "AWS Backup job of RDS db: FAILED", "state": "FAILED"},
        {"timestamp": pd.Timestamp("2026-11-22T03:00Z"), "source": "backup", "resource": "db", "kind": contracts.BACKUP,
         "message": "AWS Backup job of RDS db: COMPLETED", "state": "COMPLETED"}]), JOB_COLUMNS)
    got = ab.failed_backups(jobs, SNAPS, None, ab.classify_job_logs(JOB_LOGS))
    assert [(f["time"], f["source"], f["resource"]) for f in got] == [
        ("2026-11-23T02:02:00Z", "app", "backup_database_task"), ("2026-11-23T03:00:00Z", "backup", "db"),
        ("2026-11-23T08:00:00Z", "rds", "broken")]
    assert ab.failed_backups(jobs[jobs["state"] == "COMPLETED"], SNAPS[SNAPS["status"] != "failed"], None,
                             ab.classify_job_logs(logs())) == []


def test_the_newest_dump_ignores_empty_objects_and_later_ones():
    objs = _typed(pd.DataFrame([{"last_modified": pd.Timestamp(t), "bucket": "b", "key": k, "size_bytes": n} for t, k, n in (
        ("2026-11-21T02:09Z", "pg_dump/21.dump", 100), ("2026-11-22T02:09Z", "pg_dump/22.dump", 0),
        ("2026-11-23T12:00Z", "pg_dump/later.dump", 100))]), OBJECT_COLUMNS)
    assert ab.last_dump(objs, END) == {"key": "pg_dump/21.dump", "last_modified": "2026-11-21T02:09:00Z",
                                       "age_hours": 55.9, "size_bytes": 100}


def test_the_verdict_says_plainly_when_there_is_nothing_to_find_and_lists_problems_otherwise():
    fine = {"failed_backups": [], "last_good_snapshot": {"snapshot_id": "s1", "age_hours": 5.0},
            "snapshot_age_hours": 5.0, "snapshots_not_ready": [], "retention_errors": []}
    assert ab.verdict(fine, 48, 26).startswith("Nothing to find: no backup failed in the last 48 h")
    bad = {**fine, "snapshot_age_hours": 31.0, "last_good_snapshot": {"snapshot_id": "s1", "age_hours": 31.0},
           "snapshots_not_ready": [{"snapshot_id": "pre", "status": "creating", "progress": 35.0, "created": "t"}]}
    text = ab.verdict(bad, 48, 26)
    assert text.startswith("Found:") and "31 h old" in text and "pre" in text and "35 %" in text
    assert "not known (a source failed): failed_backups" in ab.verdict({**fine, "failed_backups": None}, 48, 26,
                                                                       ["failed_backups"])
    assert "nothing to restore from" in ab.verdict({**fine, "last_good_snapshot": None,
                                                    "snapshot_age_hours": None}, 48, 26)
