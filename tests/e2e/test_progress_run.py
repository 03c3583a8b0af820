"""`forensics run` reports each notebook's cell while it runs: plain lines when stderr is not a terminal.

Two small notebooks (no source contacted) in a folder of their own, run by the real CLI in a
subprocess with papermill, so the reports cross the worker processes' queue for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import nbformat
import yaml


def _notebook(cells: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("incident_file = None\nrecord_dir = None\nreplay_from = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# a test notebook"), params,
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_run_prints_each_notebooks_cells_and_its_end(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nbformat.write(_notebook(["import time", "time.sleep(0.2)", "# the work\ntotal = sum(range(10))"]),
                   nbdir / "alpha.ipynb")
    nbformat.write(_notebook(["x = 1", "raise RuntimeError('boom')", "print('never')"]), nbdir / "beta.ipynb")
    env = {"name": "t", "aws": {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9", "max_attempts": 1},
           "alb": {"load_balancer": "app/x/1"}, "ecs": {"cluster": "c", "services": ["s"]},
           "rds": {"instance": "db"}, "logs": {"app": ["/ecs/x"]}}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env))
    (tmp_path / "inc.yaml").write_text(yaml.safe_dump({
        "incident": "INC-P", "title": "progress", "severity": "P3", "environment": str(tmp_path / "env.yaml"),
        "window": {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T11:00:00Z"}}))
    proc = subprocess.run(
        [sys.executable, "-m", "forensics.cli", "run", "inc.yaml", "--out", "ev", "--jobs", "2", "--skip-preflight"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "FORENSICS_NOTEBOOK_DIR": str(nbdir), "FORENSICS_PROGRESS_INTERVAL_S": "0"})
    assert proc.returncode == 1, proc.stderr  # beta fails
    err = proc.stderr
    assert "\r" not in err and "\033" not in err
    alpha = re.findall(r"^alpha cell (\d+)/(\d+)(?:: (.*))?$", err, re.M)
    # the parameters cell, papermill's injected parameters, then three cells: 5 in all
    assert [(int(i), int(n)) for i, n, _ in alpha] == [(i, 5) for i in range(1, 6)], err
    assert alpha[4][2] == "total = sum(range(10))"  # the first line that is not a comment
    beta = re.findall(r"^beta cell (\d+)/5", err, re.M)
    assert beta == ["1", "2", "3", "4"], err  # it stopped at the cell that raised
    lines = err.splitlines()
    done_alpha = next(i for i, line in enumerate(lines) if re.match(r"  ok     alpha \(\d+\.\d s\)$", line))
    assert all(i < done_alpha for i, line in enumerate(lines) if line.startswith("alpha cell"))
    assert any(re.match(r"  FAILED beta \(\d+\.\d s\): RuntimeError: boom", line) for line in lines), err
