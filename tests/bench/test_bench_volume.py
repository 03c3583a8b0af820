"""Benchmark: api-errors on the full "volume" scenario (about a million events, three hours) against a plain
boto3 FilterLogEvents pull of the same events from the same moto server, and the peak memory of the run.

Prints, measured in this one run: the wall time of `forensics run --only api-errors` (a subprocess, as a user
runs it), the wall time of paginating FilterLogEvents over the same log group and window (the events api-errors
would otherwise have read one by one; moto ignores OR filter patterns, so every event of the window comes back,
as it does for a pattern-less pull), their ratio beside the goal of 0.1, and the peak resident memory of the
run's process tree (the runner and its notebook kernels, sampled every 50 ms) beside the goal of 1 GiB. The
findings are checked; the figures are printed, not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.sandbox
GIB = 1024**3


def _peak_tree_rss(proc: subprocess.Popen, out: dict) -> None:
    """Sum of the RSS of ``proc`` and its descendants, sampled until it exits; the highest sum in ``out``."""
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, total)
        except psutil.Error:
            pass
        time.sleep(0.05)
    out["peak"] = peak


def test_api_errors_at_volume_against_filter_log_events(tmp_path):
    from forensics_sandbox.sandbox import Sandbox
    from forensics.sources import logs as logs_source

    old = os.environ.get("FORENSICS_VOLUME_SCALE")
    os.environ["FORENSICS_VOLUME_SCALE"] = "1"
    try:
        t0 = time.perf_counter()
        with Sandbox(tmp_path / "sandbox", scenario="volume") as sb:
            loaded = time.perf_counter() - t0
            sb.write_params(tmp_path / "env.yaml", tmp_path / "incident.yaml")
            truth = sb.truth
            # Warm-up so neither side pays moto's one-off costs: one Insights query converts the events to
            # arrays (kept), one FilterLogEvents page.
            logs = sb.client("logs")
            start_s = int(truth["data_start"].timestamp())
            end_s = int(truth["window_end"].timestamp()) - 1
            qid = logs.start_query(logGroupName=truth["log_group"], startTime=start_s, endTime=end_s,
                                   queryString="stats count(*)")["queryId"]
            while logs.get_query_results(queryId=qid)["status"] == "Running":
                time.sleep(0.1)

            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "forensics.cli", "run", str(tmp_path / "incident.yaml"),
                                     "--only", "api-errors", "--out", str(tmp_path / "evidence"), "--jobs", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            rss: dict = {}
            watcher = threading.Thread(target=_peak_tree_rss, args=(proc, rss))
            watcher.start()
            stdout, stderr = proc.communicate(timeout=1800)
            watcher.join()
            run_s = time.perf_counter() - t0
            assert proc.returncode == 0, stdout + stderr

            t0 = time.perf_counter()
            pulled = 0
            pages = 0
            for page in logs.get_paginator("filter_log_events").paginate(
                    logGroupName=truth["log_group"], startTime=start_s * 1000, endTime=end_s * 1000 + 999,
                    filterPattern=logs_source.ERROR_PATTERN):
                pulled += len(page.get("events") or [])
                pages += 1
            pull_s = time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("FORENSICS_VOLUME_SCALE", None)
        else:
            os.environ["FORENSICS_VOLUME_SCALE"] = old

    record = Path(stdout.strip().splitlines()[-1])
    findings = json.loads((record / "findings.json").read_text())["api-errors"]
    manifest = json.loads((record / "manifest.json").read_text())
    assert "QueuePool limit of size" in findings["top_error_signatures"][0]
    durations = {c["name"]: c["duration_s"] for c in manifest["captures"] if c["name"].startswith("app_error")}
    nb = next(n for n in manifest["notebooks"] if n["name"] == "api-errors")
    print(f"\nvolume scenario: {truth['log_events']:,} events loaded in {loaded:.1f} s "
          f"({truth['queuepool_events']:,} QueuePool, {truth['webhook_events']:,} webhook)")
    print(f"  forensics run --only api-errors   {run_s:7.1f} s  (notebook {nb['duration_s']:.1f} s; captures "
          + ", ".join(f"{k} {v:.1f} s" for k, v in durations.items()) + ")")
    print(f"  boto3 FilterLogEvents, same events {pull_s:7.1f} s  ({pulled:,} events, {pages} pages)")
    print(f"  ratio run / pull                  {run_s / pull_s:7.3f}   (goal <= 0.1)")
    print(f"  peak RSS of the run (process tree) {rss['peak'] / 2**20:7.0f} MiB (goal <= {GIB / 2**20:.0f} MiB)")
