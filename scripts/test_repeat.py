#!/usr/bin/env python3
"""Run `make test` N times, each in a fresh clone of this checkout, optionally under CPU load, and report
every failure with its test id (issue 23: a suite that passes every time).

    make test-repeat N=5 [LOAD=1 | LOADED=2]
    python3 scripts/test_repeat.py --runs 5 --loaded-runs 2

Each run clones the checkout's HEAD with `git clone` into a temporary folder (nothing installed by hand:
`make test` sets up its own .venv there), runs `make test`, keeps its log and removes the clone. With
--load, one busy loop per core runs beside the suite; each stops by itself after --load-seconds (or when
the run ends, whichever is first); --loaded-runs K puts only the last K runs under that load. Exit status 0
only when every run passed. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: pytest's short summary lines ("FAILED tests/x.py::test_y - AssertionError: ...", "ERROR ...")
_SUMMARY = re.compile(r"^(FAILED|ERROR) (.+?)(?: - (.*))?$")
_BUSY = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def failures(log: str) -> list[tuple[str, str, str]]:
    """(FAILED|ERROR, test id, reason) of each line of pytest's short test summary in ``log``."""
    return [(m.group(1), m.group(2), (m.group(3) or "").strip()) for m in map(_SUMMARY.match, log.splitlines()) if m]


def _busy_loops(seconds: float) -> list[subprocess.Popen]:
    """One busy loop per core, each ending by itself after ``seconds``."""
    code = _BUSY.format(seconds=float(seconds))
    return [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
            for _ in range(os.cpu_count() or 1)]


def loaded_runs(runs: int, load: bool, last: int | None) -> list[bool]:
    """Which of ``runs`` runs are under load: every one with ``load``, only the ``last`` ones if given."""
    if last is None:
        return [load] * runs
    return [i >= runs - last for i in range(runs)]


def run_once(i: int, args, logs: Path, loaded: bool) -> tuple[int, float, list]:
    work = Path(tempfile.mkdtemp(prefix=f"forensics-repeat-{i}-"))
    clone = work / "checkout"
    load: list[subprocess.Popen] = []
    try:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        if loaded:
            load = _busy_loops(args.load_seconds)
        t0 = time.monotonic()
        log = logs / f"run-{i}.log"
        with open(log, "w") as fh:
            code = subprocess.run(["make", args.target], cwd=clone, stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL).returncode
        return code, time.monotonic() - t0, failures(log.read_text(errors="replace"))
    finally:
        for p in load:  # only the loops this script started, by their own process
            if p.poll() is None:
                p.kill()
            p.wait()
        if (clone / "Makefile").exists():  # a stopped sandbox's files; never evidence/
            subprocess.run(["make", "-s", "clean"], cwd=clone, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="how many fresh-clone runs [5]")
    ap.add_argument("--load", action="store_true", help="a busy loop on every core beside each run")
    ap.add_argument("--loaded-runs", type=int, default=None, metavar="K",
                    help="only the last K runs under that load (implies --load)")
    ap.add_argument("--load-seconds", type=float, default=3600, help="each busy loop stops by itself after this [3600]")
    ap.add_argument("--target", default="test", help="the make target each run runs [test]")
    ap.add_argument("--logs", type=Path, default=None, help="where each run's log goes [a temporary folder]")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.loaded_runs is not None and not 0 <= args.loaded_runs <= args.runs:
        ap.error(f"--loaded-runs must be between 0 and --runs ({args.runs})")
    under_load = loaded_runs(args.runs, args.load, args.loaded_runs)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="forensics-repeat-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    bad = 0
    for i in range(1, args.runs + 1):
        loaded = under_load[i - 1]
        code, took, failed = run_once(i, args, logs, loaded)
        state = "passed" if code == 0 else f"FAILED (make exit {code})"
        print(f"run {i}/{args.runs}{' under load' if loaded else ''}: {state} in {took / 60:.1f} min; "
              f"log {logs / f'run-{i}.log'}", flush=True)
        for kind, test, reason in failed:
            print(f"  {kind} {test}" + (f" - {reason}" if reason else ""), flush=True)
        if code != 0 and not failed:
            print("  (no test id in the log: the failure is in the setup; see the log's end)", flush=True)
        bad += code != 0
    print(f"{args.runs - bad} of {args.runs} runs passed")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
