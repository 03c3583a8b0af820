"""End to end at volume: the "volume" scenario (three hours, a steady harmless error all along, QueuePool
exhaustion from the onset two thirds in, secrets leaked late), `forensics run` of api-errors as a user runs it.

`make test` plays it at a quarter of its rates (about 250,000 events: FORENSICS_VOLUME_SCALE=0.25) to stay
within its budget; tests/bench/test_bench_volume.py plays the full million. The findings must not depend on
the scale: the failure's signature ranked first (the webhook error has more events but the same rate before
and after), the onset within two minutes, its per-minute counts within 1 % of what was planted, and no
planted secret anywhere in the record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]
SCALE = "0.25"


@pytest.fixture(scope="module")
def volume_run(tmp_path_factory):
    from forensics_sandbox.sandbox import Sandbox

    tmp = tmp_path_factory.mktemp("volume")
    old = os.environ.get("FORENSICS_VOLUME_SCALE")
    os.environ["FORENSICS_VOLUME_SCALE"] = SCALE
    try:
        with Sandbox(tmp / "sandbox", scenario="volume") as sb:
            sb.write_params(tmp / "env.yaml", tmp / "incident.yaml")
            proc = subprocess.run([sys.executable, "-m", "forensics.cli", "run", str(tmp / "incident.yaml"),
                                   "--only", "api-errors", "--out", str(tmp / "evidence"), "--jobs", "1"],
                                  capture_output=True, text=True, timeout=600)
            truth = sb.truth
    finally:
        if old is None:
            os.environ.pop("FORENSICS_VOLUME_SCALE", None)
        else:
            os.environ["FORENSICS_VOLUME_SCALE"] = old
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = Path(proc.stdout.strip().splitlines()[-1])
    return record, truth


def test_the_failure_is_ranked_first_not_the_most_frequent_error(volume_run):
    record, truth = volume_run
    f = json.loads((record / "findings.json").read_text())["api-errors"]
    assert f["status"] == "ok", f
    assert truth["webhook_events"] > truth["queuepool_events"]  # the steady error has more events overall
    assert truth["error_signature"].split(" of size")[0] in f["top_error_signatures"][0]
    first, *rest = f["error_signatures_changed"]
    assert first["change"] == "new" and first["before"] == 0
    webhook = next(r for r in rest if truth["steady_error_signature"] in r["signature"])
    assert webhook["change"] == "steady", webhook
    assert f["error_signature_counts"].startswith("exact")
    assert "error_signature_counts" not in f["unknown"]


def test_onset_within_two_minutes(volume_run):
    record, truth = volume_run
    f = json.loads((record / "findings.json").read_text())["api-errors"]
    assert abs(pd.Timestamp(f["onset"]) - pd.Timestamp(truth["onset"])) <= pd.Timedelta(minutes=2)


def test_per_minute_counts_as_planted(volume_run):
    record, truth = volume_run
    counts = pd.read_parquet(record / "data" / "app_error_signature_counts.parquet")
    mine = counts[counts["signature"].str.contains("QueuePool limit of size", regex=False)]
    got = mine.groupby(pd.to_datetime(mine["minute"], utc=True))["events"].sum()
    planted = pd.Series(truth["queuepool_per_minute"])
    planted.index = pd.to_datetime(planted.index, utc=True)
    got = got.reindex(planted.index, fill_value=0)
    busy = planted >= 100
    assert busy.sum() >= 55
    assert ((got[busy] - planted[busy]).abs() <= 0.01 * planted[busy]).all()
    assert abs(got.sum() - planted.sum()) <= 0.01 * planted.sum()
    assert got[~busy].sum() <= 0.01 * planted.sum()


def test_the_sampling_is_recorded_and_spread_over_the_window(volume_run):
    record, truth = volume_run
    manifest = json.loads((record / "manifest.json").read_text())
    sample = next(c for c in manifest["captures"] if c["name"] == "app_error_sample")
    slices = sample["args"]["sampling"]["slices"]
    starts = pd.to_datetime([s["start"] for s in slices], utc=True)
    assert len(slices) >= 24 and starts.min() < pd.Timestamp(truth["data_start"]) + pd.Timedelta(minutes=15)
    assert starts.max() > pd.Timestamp(truth["window_end"]) - pd.Timedelta(minutes=15)
    near = [s for s in slices if s["near_onset"]]
    assert near and all(abs(pd.Timestamp(s["start"]) - pd.Timestamp(truth["onset"])) <= pd.Timedelta(minutes=16)
                        for s in near)
    counts = next(c for c in manifest["captures"] if c["name"] == "app_error_signature_counts")
    assert "strcontains(@message" in counts["args"]["rendered"] and counts["args"]["engine"] == "insights"


def _every_text(record: Path):
    for path in sorted(p for p in record.rglob("*") if p.is_file()):
        yield path, path.read_bytes().decode("utf-8", "replace")
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            yield path, frame.astype(str).to_csv(index=False)


@pytest.mark.parametrize("kind", ["dsn_password", "bearer_token", "aws_secret_key"])
def test_no_planted_secret_anywhere_in_the_record(volume_run, kind):
    record, truth = volume_run
    sample = pd.read_parquet(record / "data" / "app_error_sample.parquet")
    assert sample["message"].str.contains("[REDACTED:", regex=False).any(), "the sample saw no leaked secret"
    secret = truth["secrets"][kind]
    leaks = [str(p.relative_to(record)) for p, text in _every_text(record) if secret in text]
    assert not leaks, f"the planted {kind} is in {leaks}"
