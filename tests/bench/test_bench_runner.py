"""Benchmark: the batch runner (notebooks in parallel) against running the same notebooks one after
another, on the sandbox. Prints the wall-clock ratio measured in this one run."""

import time

import pytest

from forensics import runner

pytestmark = pytest.mark.sandbox


def test_parallel_runner_vs_sequential(sandbox_params, tmp_path):
    names = ["api-errors", "db-connections", "overview"]
    t0 = time.perf_counter()
    seq = runner.run(sandbox_params["incident"], out=tmp_path / "seq", jobs=1, only=names, echo=lambda *_: None)
    sequential = time.perf_counter() - t0
    t0 = time.perf_counter()
    par = runner.run(sandbox_params["incident"], out=tmp_path / "par", jobs=2, only=names, echo=lambda *_: None)
    parallel = time.perf_counter() - t0
    print(f"\n{len(names)} notebooks: sequential (jobs=1) {sequential:.1f} s, parallel (jobs=2) {parallel:.1f} s, "
          f"speed-up x{sequential / parallel:.2f}")
    assert seq.ok and par.ok
    assert {k: v.get("onset") for k, v in seq.findings.items()} == {k: v.get("onset") for k, v in par.findings.items()}
