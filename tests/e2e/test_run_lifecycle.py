"""How a `forensics run` ends when it does not end well (issue 17): stopped by SIGINT/SIGTERM, a second run
of the same incident at once, a disk that fills.

Each test runs the real CLI in a subprocess with small notebooks of its own (FORENSICS_NOTEBOOK_DIR) that
contact no source: one keeps writing into the record from its kernel, so a kernel left alive after the run
exits would show as a file that still changes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
import pytest
import yaml

pytestmark = [pytest.mark.e2e]
FORENSICS = [sys.executable, "-m", "forensics.cli"]

#: a kernel that writes into the record every 0.1 s for ten minutes
TICKING = ("import time, pathlib\np = pathlib.Path(record_dir or '.') / 'ticks.txt'\n"
           "for i in range(6000):\n    p.write_text(str(i))\n    time.sleep(0.1)")


def _notebook(cells: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("incident_file = None\nrecord_dir = None\nreplay_from = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _setup(tmp_path: Path, notebooks: dict[str, list[str]]) -> dict:
    """Notebooks of one's own over an environment whose AWS endpoint refuses: the runs skip preflight (it
    would stop them at the caller identity, tests/e2e/test_preflight.py); what is tested is the run itself."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    for name, cells in notebooks.items():
        nbformat.write(_notebook(cells), nbdir / f"{name}.ipynb")
    env = {"name": "t", "aws": {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9", "max_attempts": 1},
           "alb": {"load_balancer": "app/x/1"}, "logs": {"app": ["/ecs/x"]}}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env))
    (tmp_path / "inc.yaml").write_text(yaml.safe_dump({
        "incident": "INC-L", "title": "lifecycle", "severity": "P3", "environment": str(tmp_path / "env.yaml"),
        "window": {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T11:00:00Z"}}))
    return {**os.environ, "FORENSICS_NOTEBOOK_DIR": str(nbdir), "FORENSICS_PROGRESS_INTERVAL_S": "0"}


def _start(tmp_path: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*FORENSICS, "run", "inc.yaml", "--skip-preflight", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _kernels(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(proc.pid).children(recursive=True)
                if "ipykernel" in " ".join(p.cmdline())]
    except psutil.Error:
        return []


def _alive(procs) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_its_workers_and_kernels_and_nothing_is_written_after(tmp_path, sig, code):
    env = _setup(tmp_path, {"ticker": [TICKING], "sleeper": ["import time\ntime.sleep(600)"]})
    proc = _start(tmp_path, env, "--out", "ev", "--jobs", "2")
    try:
        _wait_for(lambda: len(_kernels(proc)) == 2 and list((tmp_path / "ev").glob("*/*.partial/ticks.txt")),
                  180, "both kernels running and the ticker writing")
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert len(tree) >= 4, tree  # two workers, two kernels
        # each kernel's connection file (its signing key) sits beside its sockets in the run's kernels folder
        files = [Path(k.cmdline()[k.cmdline().index("-f") + 1]) for k in _kernels(proc)]
        run_dirs = {f.parent.parent for f in files}
        assert len(run_dirs) == 1 and all(f.is_file() for f in files), files
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=5)
        assert time.monotonic() - sent < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert _wait_for(lambda: not _alive(tree), 2, "no process of the run alive") or True
    assert not _alive(tree), [p.cmdline() for p in _alive(tree)]
    assert not [d for d in run_dirs if d.exists()], "the killed kernels' sockets and keys were left"
    partial = next((tmp_path / "ev").glob("*/*.partial"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "Error" not in err, err
    stop_lines = [line for line in lines if line.startswith("stopped by")]
    assert stop_lines == [f"stopped by {sig.name}: the unfinished record is left in {partial}"], err
    assert lines[-1] == stop_lines[0], err  # nothing after it
    before = _snapshot(partial)
    time.sleep(2)
    assert _snapshot(partial) == before, "something still writes into the record"
    assert not [p for p in partial.parent.iterdir() if p.is_dir() and not p.name.endswith(".partial")]


#: a notebook that waits until the test opens its gate (a file named by $FORENSICS_TEST_GATE)
GATED = ("import os, pathlib, time\ngate = pathlib.Path(os.environ['FORENSICS_TEST_GATE'])\n"
         "while not gate.exists():\n    time.sleep(0.1)")


def test_two_runs_of_one_incident_take_turns_and_keep_the_chain(tmp_path):
    env = _setup(tmp_path, {"gated": [GATED]})
    gate = tmp_path / "gate"
    env["FORENSICS_TEST_GATE"] = str(gate)
    first = _start(tmp_path, env, "--out", "ev", "--jobs", "1")
    try:
        _wait_for(lambda: list((tmp_path / "ev").glob("*/*.partial")), 300, "the first run's record folder")
        with open(tmp_path / "second.err", "w") as err2:
            second = subprocess.Popen([*FORENSICS, "run", "inc.yaml", "--skip-preflight", "--out", "ev", "--jobs", "1"], cwd=tmp_path,
                                      env=env, text=True, stdout=subprocess.PIPE, stderr=err2)
        _wait_for(lambda: "waiting  for the run of this incident" in (tmp_path / "second.err").read_text(), 300,
                  "the second run to wait for the first")
        # a third one, asked not to wait, refuses in one line while the first holds the incident
        refused = subprocess.run([*FORENSICS, "run", "inc.yaml", "--skip-preflight", "--out", "ev", "--no-wait"], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip().count("\n") == 0, refused.stderr
        assert refused.stderr.startswith("error: ") and "another run of this incident" in refused.stderr
        assert len([p for p in (tmp_path / "ev").glob("*/*") if p.is_dir()]) == 1, "the refused run wrote nothing"
        gate.touch()
        out1, err1 = first.communicate(timeout=300)
        out2, _ = second.communicate(timeout=300)
    finally:
        gate.touch()
        for p in (first, locals().get("second")):
            if p is not None and p.poll() is None:
                p.kill()
    assert first.returncode == 0 and second.returncode == 0, err1 + (tmp_path / "second.err").read_text()
    a, b = (tmp_path / out.strip().splitlines()[-1] for out in (out1, out2))
    assert a.parent == b.parent and a.name < b.name
    assert not list(a.parent.glob("*.partial"))
    mb = json.loads((b / "manifest.json").read_text())
    ma = json.loads((a / "manifest.json").read_text())
    assert mb["previous_record"] == a.name and mb["previous_record_digest"] == ma["digest"]
    for rec in (a, b):
        proc = subprocess.run([*FORENSICS, "verify", str(rec)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def small_disk():
    """A 2 MiB tmpfs (needs root: mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="forensics-full-"))
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)
    where.rmdir()


#: a notebook that fills the disk quietly and succeeds: what fails is the next write, wherever it is
FILL = ("import pathlib\np = pathlib.Path(record_dir or '.') / 'filler.bin'\n"
        "try:\n    with open(p, 'wb') as f:\n        while True:\n            f.write(b'x' * 65536)\n"
        "            f.flush()\nexcept OSError:\n    pass\nok = True")


def test_a_full_disk_is_one_line_naming_the_path_and_the_run_stops(tmp_path, small_disk):
    env = _setup(tmp_path, {"filler": [FILL], "sleeper": ["import time\ntime.sleep(600)"]})
    started = time.monotonic()
    proc = subprocess.run([*FORENSICS, "run", "inc.yaml", "--skip-preflight", "--out", str(small_disk / "ev"), "--jobs", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert time.monotonic() - started < 200, "the run waited for the sleeping notebook"
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    partial = next((small_disk / "ev").glob("*/*.partial"))
    assert last.startswith("error: ") and "no space left on device" in last.lower(), proc.stderr
    assert str(small_disk) in last and f"the unfinished record is left in {partial}" in last, last
    assert proc.stdout == ""


@pytest.mark.sandbox
def test_sigterm_stops_a_run_of_real_notebooks_against_the_sandbox(tmp_path, sandbox_params):
    """The same against the session sandbox: real notebooks pulling from moto and PostgreSQL."""
    proc = subprocess.Popen([*FORENSICS, "run", str(sandbox_params["incident"]), "--out", str(tmp_path / "ev"),
                             "--jobs", "2", "--only", "api-errors", "--only", "db-connections"],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: len(_kernels(proc)) == 2, 300, "both notebooks' kernels running")
        time.sleep(2)  # well into their captures
        tree = psutil.Process(proc.pid).children(recursive=True)
        run_dirs = {Path(k.cmdline()[k.cmdline().index("-f") + 1]).parent.parent for k in _kernels(proc)}
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
        assert time.monotonic() - sent < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    time.sleep(0.5)
    assert not _alive(tree), [p.cmdline() for p in _alive(tree)]
    assert not [d for d in run_dirs if d.exists()], "the killed kernels' sockets and keys were left"
    partial = next((tmp_path / "ev").glob("*/*.partial"))
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == f"stopped by SIGTERM: the unfinished record is left in {partial}", err
    assert out == ""
    before = _snapshot(partial)
    time.sleep(3)
    assert _snapshot(partial) == before, "something still writes into the record"
