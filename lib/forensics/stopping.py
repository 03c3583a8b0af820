"""How a run stops early: on SIGINT/SIGTERM, or when the disk fills, with nothing left running.

The notebooks run in worker processes, each with a Jupyter kernel that jupyter_client starts in a
session of its own (so a terminal's Ctrl-C does not reach it, and killing a worker orphans it). To stop,
:func:`end_children` freezes (SIGSTOP) the workers of the running pool (:func:`watching`) and all their
descendants, looking again until no new one appears (a frozen process cannot start another), then kills
them all: no worker or kernel writes into the record after that. The handler of :func:`on_signals` then
prints one line naming the unfinished ``.partial`` folder and exits at once with 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM): no traceback, no clean-up that could wait on a source or write a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
from typing import Callable, Iterable

import psutil

SIGNALS = (signal.SIGINT, signal.SIGTERM)


#: while a pool of worker processes runs: callables giving its workers' pids (worker.pool registers one)
_POOLS: list[Callable[[], Iterable[int]]] = []
#: folders of theirs that :func:`end_children` removes once they are dead (their kernels' sockets)
_FOLDERS: list[str] = []


@contextlib.contextmanager
def watching(pids: Callable[[], Iterable[int]], folder: str | None = None):
    """While the block runs, :func:`end_children` ends the processes ``pids()`` and their descendants, then
    removes ``folder``."""
    _POOLS.append(pids)
    if folder:
        _FOLDERS.append(folder)
    try:
        yield
    finally:
        _POOLS.remove(pids)
        if folder:
            _FOLDERS.remove(folder)


def end_children(timeout: float = 1.0) -> None:
    """Freeze, then kill, the running pools' workers and every descendant of theirs (their kernels). Only
    those: a process that started a sandbox as its children (`forensics demo`, the tests) keeps it."""
    roots = []
    for pids in list(_POOLS):
        for pid in list(pids()):
            with contextlib.suppress(psutil.Error):
                roots.append(psutil.Process(pid))
    frozen: dict[int, psutil.Process] = {}
    for _ in range(20):  # a frozen process starts no other: look again until nothing new appears
        new = []
        for root in roots:
            with contextlib.suppress(psutil.Error):
                new += [p for p in (root, *root.children(recursive=True)) if p.pid not in frozen]
        if not new:
            break
        for p in new:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGSTOP)
            frozen[p.pid] = p
    for p in frozen.values():
        with contextlib.suppress(psutil.Error):
            p.kill()
    # reap our own children (the workers); a kernel goes to init, which reaps it: waiting for it here could
    # last as long as init takes, and SIGKILL ends a frozen process anyway
    mine = {p.pid for p in psutil.Process().children()}
    psutil.wait_procs([p for p in frozen.values() if p.pid in mine], timeout=timeout)
    for folder in list(_FOLDERS):  # the killed kernels' sockets and connection files (their signing keys)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def on_signals(where: Callable[[], str | None], enabled: bool = True):
    """While the block runs, SIGINT/SIGTERM end the run: its children killed, one line on stderr naming
    ``where()`` (the record folder left, or None before there is one), exit 128 + signal. Only in the
    main thread (the only one Python delivers signals to) and when ``enabled``."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):  # noqa: ARG001
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        end_children()
        place = where()
        place = os.path.abspath(place) if place else None
        name = signal.Signals(signum).name
        line = (f"stopped by {name}: the unfinished record is left in {place}" if place
                else f"stopped by {name} before a record was started")
        clear = "\r\033[K" if sys.stderr.isatty() else ""
        with contextlib.suppress(OSError):
            os.write(2, (clear + line + "\n").encode())
        os._exit(128 + signum)

    previous = {s: signal.signal(s, stop) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
