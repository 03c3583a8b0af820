"""Benchmark (issue: captures declared once): the whole catalogue on the demo incident, `forensics run
--jobs 2` (the capture plan pulled once, concurrently, while the kernels start) against a sequential loop of
plain papermill over the same notebooks and sandbox (each notebook pulls its own sources, one call after
another). Then the same with every AWS call delayed by 150 ms, as a real Region answers.

Prints the ratios measured in this one run beside their goals (issue 22: ≤ 0.25 on loopback, ≤ 0.15 with the
delay; before it, ≤ 0.4 and ≤ 0.3), and what the runner spends after the notebooks against the slowest
notebook's HTML rendering (goal ≤ 1)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from forensics import runner
from forensics.notebooks import catalogue

from tests.loopback_proxy import LoopbackProxy, incident_through

pytestmark = pytest.mark.sandbox


def _sequential_papermill(incident: Path, names: list[str], out: Path) -> float:
    import papermill as pm

    cat = catalogue()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for n in names:
        pm.execute_notebook(str(cat[n].path), str(out / f"{n}.ipynb"), parameters={"incident_file": str(incident)},
                            kernel_name="python3", progress_bar=False, log_output=False,
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    return time.perf_counter() - t0


def _runner(incident: Path, names: list[str], out: Path) -> tuple[float, runner.RunResult]:
    t0 = time.perf_counter()
    result = runner.run(incident, out=out, jobs=2, only=names, echo=lambda *_: None)
    return time.perf_counter() - t0, result


def test_catalogue_run_vs_sequential_papermill(sandbox_params, tmp_path):
    names = list(catalogue())
    incident = Path(sandbox_params["incident"])
    seq = _sequential_papermill(incident, names, tmp_path / "seq")
    run_s, result = _runner(incident, names, tmp_path / "run")
    assert result.ok, result.failed
    ratio = run_s / seq
    print(f"\ncatalogue ({len(names)} notebooks) on loopback: forensics run --jobs 2 {run_s:.1f} s, "
          f"sequential papermill {seq:.1f} s, ratio {ratio:.2f} (goal <= 0.25)")
    slowest_render = max(r.render_s or 0.0 for r in result.notebooks)
    print(f"the runner after the notebooks (findings, index, final redaction pass, manifest, seal) "
          f"{result.after_notebooks_s:.2f} s, the slowest notebook's rendering {slowest_render:.2f} s, ratio "
          f"{result.after_notebooks_s / slowest_render:.2f} (goal <= 1)")

    env = yaml.safe_load(Path(sandbox_params["environment"]).read_text())
    proxy = LoopbackProxy(env["aws"]["endpoint_url"], delay_s=0.15).start()
    try:
        delayed = incident_through(sandbox_params, proxy.endpoint_url, tmp_path)
        before = proxy.requests
        seq_d = _sequential_papermill(delayed, names, tmp_path / "seq-delayed")
        seq_requests = proxy.requests - before
        before = proxy.requests
        run_d, result_d = _runner(delayed, names, tmp_path / "run-delayed")
        run_requests = proxy.requests - before
    finally:
        proxy.stop()
    assert result_d.ok, result_d.failed
    print(f"catalogue with 150 ms per AWS call: forensics run --jobs 2 {run_d:.1f} s ({run_requests} AWS requests), "
          f"sequential papermill {seq_d:.1f} s ({seq_requests} requests), ratio {run_d / seq_d:.2f} (goal <= 0.15)")
    assert run_requests < seq_requests, "the plan pulls each capture once"
