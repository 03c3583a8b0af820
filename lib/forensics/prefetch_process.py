"""A notebook's prefetch in a process of its own, so that pulling and parsing the captures runs on another core
than the cells.

In one process the cells and the prefetch threads share one interpreter lock: parsing botocore responses,
S3 delivery files and Logs Insights results, and redacting them, is CPU work, so background threads overlap
waiting, not computing (docs/interactive.md measures it). :class:`PrefetchProcess` forks the kernel at
``open_incident`` (the child starts pulling at once, with everything already imported, where a new
interpreter would spend a second and a half importing first); the child pulls with the same machinery
(:class:`forensics.prefetch.Prefetch`: volatile captures first, then in the order the cells ask, each API
within its rate) into a capture store. The kernel's store reads from the same folder, under the same lock per
capture that hands frames over between `forensics run`'s processes: a cell that asks for a capture being
pulled waits for it and reads its frame; one not started yet the cell pulls itself (and the child then finds
it there).

The child shares nothing live with the kernel: it makes its own AWS clients and database connection (the
caches are per process: ``forensics._aws``), writes its output to a log file, not to the kernel's streams,
ignores the kernel's interrupts (it is in a session of its own) and ends with ``os._exit`` (none of the
kernel's exit handlers runs twice). It runs at the kernel's priority: a lower one (``nice`` 10) made
api-errors and auth-failures 2-3 s slower on the 2-core sandbox machine, since the cells mostly wait for it.

Where the frames go: into the session's record when it writes one; otherwise into a private folder (0700)
that is removed when the session closes or the kernel exits, or by the child itself once it sees the kernel
gone (killed, restarted). Closing the session stops the child: the pulls under way finish, no new one starts.

Only captures declared by this package are prefetched in a child (a capture declared at run time, in a
notebook or a test, is prefetched in the kernel's threads, as before), and only where forking is safe (not
on macOS: :func:`available`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
import weakref
from pathlib import Path

import psutil

from . import contracts, defaults

PREFIX = "forensics-prefetch-"
DONE_FILE = "prefetch-done.json"
LOG_FILE = "prefetch.log"


def available() -> bool:
    """Where a child can be forked safely. Not on macOS: a forked child that reaches Apple's frameworks (urllib
    reads the system proxy settings through them for botocore) can crash, which is why Python starts
    multiprocessing's children there anew (the threads are used instead)."""
    return hasattr(os, "fork") and sys.platform != "darwin"


class _Child:
    """A forked child's pid, reaped once (from whichever thread asks first)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler): it has ended
                    self.returncode = -1
                else:
                    if pid:
                        self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() >= end:
                return None
            time.sleep(0.02)
        return self.returncode

    def terminate(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)


class PrefetchProcess:
    """The kernel's side: fork the child, say what has arrived, stop it. Same surface as
    :class:`forensics.prefetch.Prefetch` (``names``, ``planned``, ``done``, ``wait``, ``cancel``, ``close``,
    ``line``)."""

    def __init__(self, session, planned: list, order=(), threads: int = defaults.PREFETCH_THREADS):
        self.session = session
        self.planned = list(planned)
        self.names = [c.name for c in self.planned]
        self.order = list(order)
        self.threads = threads
        self.errors: list[str] = []
        self.started = time.perf_counter()
        self.finished: float | None = None
        _sweep()
        self.control = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))  # 0700: the log, the outcome
        record = session.record_dir
        self.store_dir = Path(record) if record is not None else self.control
        if record is None:
            session.store.shared_dir = self.control
        self._child: _Child | None = None
        self._finalizer = None

    def start(self) -> PrefetchProcess:
        parent = os.getpid()
        with warnings.catch_warnings():  # Python 3.12+ warns of forking a threaded process; the child only runs
            warnings.simplefilter("ignore", DeprecationWarning)  # this module's code and ends with os._exit
            pid = os.fork()
        if pid == 0:  # the child: never returns
            _child_main(self.session.incident, self.session.notebook, self.store_dir, self.control, self.names,
                        self.order, self.threads, parent)
        self._child = _Child(pid)
        self._finalizer = weakref.finalize(self, _stop, self._child, self.control)  # also at the kernel's exit
        return self

    def cell_waits(self):
        """A cell's pull holds nothing back here: the child is another process, on another core."""
        return contextlib.nullcontext()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    @property
    def done(self) -> bool:
        if self.finished is None and self._child is not None and self._child.poll() is not None:
            self.finished = time.perf_counter()
            self._read_outcome()
        return self.finished is not None

    @property
    def arrived(self) -> list[str]:
        sidecars = self.store_dir / contracts.SIDECAR_DIR
        return [n for n in self.names if (sidecars / f"{n}.json").exists()]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the whole plan; True when it is done."""
        if self._child is not None:
            self._child.wait(timeout)
        return self.done

    def cancel(self) -> None:
        """Pull nothing more: the child finishes the pulls under way and exits."""
        if self._child is not None:
            self._child.terminate()

    def close(self) -> None:
        """Stop the child and remove the private folder (the session keeps the frames it was served)."""
        if self.session.store.shared_dir == self.control:
            self.session.store.shared_dir = None
        if self._finalizer is not None:
            self._finalizer()
        else:
            shutil.rmtree(self.control, ignore_errors=True)

    def line(self, waiting: str | None = None) -> str:
        from .prefetch import progress_line

        done = self.done
        arrived = self.arrived
        store = self.session.store  # it reads the sidecars the child wrote
        failed = [n for n in arrived if (m := store.meta(n)) is not None and m.error]
        elapsed = (self.finished or time.perf_counter()) - self.started
        return progress_line(len(arrived), len(self.names), failed, elapsed, done, waiting)

    def _read_outcome(self) -> None:
        try:
            self.errors = list(json.loads((self.control / DONE_FILE).read_text()).get("errors", []))
        except (OSError, ValueError):
            code = self._child.returncode
            if code not in (0, -signal.SIGTERM):
                from .redact import text

                tail = text(_last_line(self.control / LOG_FILE))
                self.errors = [f"the prefetch process ended with exit code {code}" + (f": {tail}" if tail else "")]


def _stop(child: _Child, control: Path) -> None:
    """Remove the private folder. A child still pulling is told to stop (SIGTERM: it finishes the pulls under
    way, which still write there) and the folder goes when it has ended, without waiting for it here; if the
    kernel exits first, the child sees it gone and removes the folder itself."""
    def remove_when_ended():
        child.wait()
        shutil.rmtree(control, ignore_errors=True)

    if child.poll() is None:
        child.terminate()
        with contextlib.suppress(RuntimeError):  # no new thread while the interpreter exits (3.12+): the child
            threading.Thread(target=remove_when_ended, name="prefetch-stop", daemon=True).start()  # cleans up
        return
    shutil.rmtree(control, ignore_errors=True)


def _sweep() -> None:
    """Remove the private folders of kernels that are gone (named after their pid): one killed in the
    moment its child was ending leaves its folder behind, which the next prefetch on this machine removes."""
    uid = os.getuid()
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        with contextlib.suppress(OSError, ValueError):
            if folder.stat().st_uid == uid and not psutil.pid_exists(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


# ---- the child -----------------------------------------------------------------------------------------------
def _watch_parent(parent: int, control: Path) -> None:
    """Exit when the kernel that forked this child is gone (killed, restarted): remove its private folder."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            shutil.rmtree(control, ignore_errors=True)
            os._exit(3)


def _child_main(incident, notebook: str, store_dir: Path, control: Path, names: list[str], order: list[str],
                threads: int, parent: int) -> None:
    code = 1
    try:
        os.setsid()  # the kernel's interrupts (sent to its process group) are not for the child
        log = os.open(control / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdout = sys.stderr = open(log, "w", buffering=1, closefd=False)  # not the kernel's streams
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(target=_watch_parent, args=(parent, control), name="prefetch-parent", daemon=True).start()

        from . import captures
        from .capture import CaptureStore
        from .prefetch import Prefetch
        from .session import IncidentSession

        session = IncidentSession(incident, CaptureStore(record_dir=store_dir, notebook=notebook), notebook)
        ahead = Prefetch(session, [captures.get(n) for n in names], threads=threads, order=order)
        signal.signal(signal.SIGTERM, lambda *_: ahead.cancel())
        ahead.start()
        while not ahead.wait(0.2):
            pass
        session.close()
        if os.getppid() != parent:  # the kernel died meanwhile: nobody reads the folder
            shutil.rmtree(control, ignore_errors=True)
            os._exit(3)
        tmp = control / "done.tmp"
        tmp.write_text(json.dumps({"errors": ahead.errors}))
        os.replace(tmp, control / DONE_FILE)
        code = 0
    except BaseException:  # noqa: BLE001 - the kernel reads the last line of the log
        with contextlib.suppress(Exception):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)
