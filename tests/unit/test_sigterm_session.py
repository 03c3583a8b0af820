"""SIGTERM ends the test session, never one test (issue 23: `pytest plugin exception: 143`).

The root conftest's handler used to raise SystemExit(143) inside whichever test was running; pytest took
it for that test's failure and went on. Now the session stops its sandbox and dies of the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_ends_the_session_instead_of_failing_the_running_test(tmp_path):
    started = tmp_path / "started"
    (tmp_path / "test_slow.py").write_text(
        "import time, pathlib\n"
        f"def test_waits():\n    pathlib.Path({str(started)!r}).touch()\n    time.sleep(120)\n"
        "def test_after():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
                             "-q", "--rootdir", str(tmp_path), str(tmp_path / "test_slow.py")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120  # its own bound: the child's start, however slow the machine
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else ""
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM, out
    assert "passed" not in out and "failed" not in out and "143" not in out, out
