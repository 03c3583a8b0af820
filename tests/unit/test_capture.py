"""The capture store: pulled once per record, failures recorded not raised, replay by name."""

import json
import multiprocessing as mp
import time

import pandas as pd
import pytest

from forensics.capture import CaptureStore, collect_sidecars
from forensics.sources.call import Call


def made(fetch, args=None, api=None):
    """A capture's build: the one Call whose run is ``fetch`` and whose ``args`` are recorded."""
    return lambda: Call(api, args or {}, fetch)


def frame():
    return pd.DataFrame({"timestamp": pd.to_datetime(["2026-11-23T09:00:00Z"] * 2, utc=True),
                         "message": ["ok", "password=hunter2 in a log line"], "n": [1, 2]})


def test_capture_writes_parquet_and_sidecar_once(tmp_path):
    calls = []
    store = CaptureStore(tmp_path, notebook="a")
    df, meta = store.get("logs", made(lambda: calls.append(1) or frame(), {"group": "/ecs/x"}), source="logs",
                         call="FilterLogEvents")
    assert meta.rows == 2 and meta.file == "data/logs.parquet" and meta.error is None
    assert meta.args == {"group": "/ecs/x"} and meta.call == "FilterLogEvents"
    again, _ = CaptureStore(tmp_path, notebook="b").get("logs", made(lambda: calls.append(1) or frame()),
                                                         source="logs", call="FilterLogEvents")
    assert calls == [1]
    assert again["timestamp"].dt.tz is not None
    # Redacted before it was written
    stored = pd.read_parquet(tmp_path / "data" / "logs.parquet")
    assert "hunter2" not in " ".join(stored["message"])
    assert stored["message"][1].startswith("password=[REDACTED:")


def test_failing_source_is_recorded_not_raised(tmp_path):
    def down():
        raise ConnectionRefusedError("connection refused to 127.0.0.1:9")

    store = CaptureStore(tmp_path, notebook="a")
    df, meta = store.get("alb_metrics", made(down), source="cloudwatch", call="GetMetricData",
                         columns=["timestamp", "value"])
    assert list(df.columns) == ["timestamp", "value"] and df.empty
    assert meta.error == "ConnectionRefusedError: connection refused to 127.0.0.1:9"
    assert not (tmp_path / "data" / "alb_metrics.parquet").exists()
    [side] = collect_sidecars(tmp_path)
    assert side["error"].startswith("ConnectionRefusedError")


def test_replay_serves_frames_and_reproduces_failures(tmp_path):
    orig = tmp_path / "orig"
    store = CaptureStore(orig, notebook="a")
    store.get("logs", made(frame), source="logs", call="FilterLogEvents")
    store.get("pg_activity", made(lambda: 1 / 0), source="postgres", call="SELECT", columns=["pid"])
    (orig / "manifest.json").write_text(json.dumps({"captures": collect_sidecars(orig)}))

    replay = CaptureStore(tmp_path / "new", replay_from=orig, notebook="a")
    df, meta = replay.get("logs", lambda: pytest.fail("replay must not pull"), source="logs", call="x")
    assert len(df) == 2 and meta.replayed_from == str(orig)
    df, meta = replay.get("pg_activity", lambda: pytest.fail("no"), source="postgres", call="x")
    assert df.empty and meta.error.startswith("ZeroDivisionError")
    _, meta = replay.get("never_captured", lambda: pytest.fail("no"), source="x", call="x")
    assert meta.error == "not in the replayed record"


def _slow_capture(record, out):
    def fetch():
        time.sleep(0.5)
        with open(out, "a") as f:
            f.write("pulled\n")
        return frame()

    CaptureStore(record, notebook="p").get("shared", made(fetch), source="x", call="x")


def test_parallel_notebooks_pull_a_shared_capture_once(tmp_path):
    out = tmp_path / "pulls.txt"
    procs = [mp.get_context("spawn").Process(target=_slow_capture, args=(tmp_path / "rec", out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert out.read_text() == "pulled\n"


def test_bad_capture_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="capture name"):
        CaptureStore(tmp_path).get("../etc/passwd", made(frame), source="x", call="x")


def test_a_large_frame_is_written_in_row_groups_and_read_back_equal(tmp_path):
    import pyarrow.parquet as pq

    from forensics import capture

    n = 25_001
    frame = pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=n, freq="s", tz="UTC"),
                          "message": [f"m{i}" for i in range(n)],
                          "late": [None] * 20_000 + ["x"] * (n - 20_000),  # all null in the first group
                          "obj": [{"a": i} if i % 2 else None for i in range(n)]})
    frame.attrs["truncated"] = True
    capture._to_parquet(frame, tmp_path / "f.parquet", row_group=10_000)
    assert pq.ParquetFile(tmp_path / "f.parquet").metadata.num_row_groups == 3
    back = pd.read_parquet(tmp_path / "f.parquet")
    assert len(back) == n and back["late"].iloc[-1] == "x" and back["obj"].iloc[1] == '{"a": 1}'
    assert back["message"].tolist() == frame["message"].tolist()
    assert isinstance(frame["obj"].iloc[1], dict) and frame.attrs == {"truncated": True}, "the frame is not changed"


def test_what_a_source_says_about_its_reading_is_recorded_and_shown(tmp_path):
    """An S3 reading that could not read one object, a log with short lines: the capture answered, so it is
    not FAILED, but the manifest and the notebook's sources table say what was not read, and how much was."""
    from forensics.params import Incident
    from forensics.session import IncidentSession
    from forensics.window import IncidentWindow

    def fetch():
        df = pd.DataFrame({"x": [1, 2]})
        df.attrs.update(engine="duckdb", bytes_scanned=4096, bad_lines=3,
                        errors=[{"key": "AWSLogs/1/x.log.gz", "error": "not gzip"}], not_recorded="ignored")
        return df

    inc = IncidentSession(Incident("I-1", "t", "P3", IncidentWindow("2026-01-01T00:00Z", "2026-01-01T01:00Z"),
                                   {"name": "t", "aws": {"region": "eu-west-1"}}),
                          CaptureStore(tmp_path, notebook="nb"), "nb")
    inc.capture("alb_endpoints", made(fetch), source="alb_access_logs", call="query:alb_endpoints")
    row = inc.sources().set_index("capture").loc["alb_endpoints"]
    assert row["status"] == "partial" and row["engine"] == "duckdb" and row["bytes_read"] == 4096
    assert "1 object(s) unreadable (AWSLogs/1/x.log.gz: not gzip)" in row["error"] and "3 line(s)" in row["error"]
    [sidecar] = collect_sidecars(tmp_path)
    assert sidecar["reading"] == {"engine": "duckdb", "bytes_scanned": 4096, "bad_lines": 3,
                                  "errors": [{"key": "AWSLogs/1/x.log.gz", "error": "not gzip"}]}
    assert inc.finding("endpoints", 1, needs=["alb_endpoints"]) == 1  # partial is not unknown


def test_the_call_that_runs_is_the_one_recorded_and_a_call_that_cannot_be_built_is_the_error(tmp_path):
    store = CaptureStore(tmp_path, notebook="a")
    _, meta = store.get("trail", made(frame, {"api": "s3:ListObjectsV2+GetObject", "token": "password=hunter2"},
                                      api="s3:ListObjectsV2+GetObject"), source="cloudtrail", call="declared")
    assert meta.call == "s3:ListObjectsV2+GetObject", "the Call's api, not the declared one"
    assert "hunter2" not in json.dumps(meta.args) and meta.args["api"] == "s3:ListObjectsV2+GetObject"

    def build():
        raise LookupError("the environment's queues section names no log_groups")

    df, meta = store.get("workers", build, source="logs", call="FilterLogEvents", columns=["message"])
    assert df.empty and list(df.columns) == ["message"]
    assert meta.error == meta.args["unknown"] == "LookupError: the environment's queues section names no log_groups"


def test_a_shared_folder_hands_frames_over_without_making_a_record(tmp_path):
    """Outside a record (record_dir None) a store with a shared folder reads what another store of the session
    (the prefetch process) wrote there, and writes what it pulls itself there so the other one skips it; its
    metas point at no file (the folder is not kept); forget removes the frame from the folder too."""
    calls = []
    child = CaptureStore(tmp_path, notebook="nb")  # the prefetch process writes into the folder as into a record
    child.get("logs", made(lambda: calls.append("child") or frame()), source="logs", call="FilterLogEvents")
    kernel = CaptureStore(None, notebook="nb")
    kernel.shared_dir = tmp_path
    assert kernel.record_dir is None and kernel.meta("logs").rows == 2 and kernel.meta("logs").file is None
    df, meta = kernel.get("logs", made(lambda: calls.append("kernel") or frame()), source="logs",
                          call="FilterLogEvents")
    assert calls == ["child"] and len(df) == 2 and meta.file is None
    assert "hunter2" not in " ".join(df["message"])
    kernel.get("metrics", made(lambda: calls.append("kernel") or frame()), source="cloudwatch", call="GetMetricData")
    again, _ = CaptureStore(tmp_path, notebook="nb").get("metrics", made(lambda: calls.append("child") or frame()),
                                                          source="cloudwatch", call="GetMetricData")
    assert calls == ["child", "kernel"] and len(again) == 2  # pulled once, by whoever asked first
    kernel.forget("logs")
    assert not (tmp_path / ".captures" / "logs.json").exists() and not (tmp_path / "data" / "logs.parquet").exists()
    kernel.shared_dir = None  # the folder is gone: the store keeps what it was served, in memory
    assert kernel.meta("metrics").rows == 2 and kernel.meta("logs") is None
