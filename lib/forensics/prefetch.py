"""Pulling a capture plan: the volatile captures first, one at a time, then the rest concurrently.

One code path for both users of a plan:

- ``forensics run`` plans every capture of the selected notebooks, pulls the volatile ones
  (:func:`pull_volatile`), then submits the rest to its thread pool (:func:`submit`) while the notebooks run;
- an interactive notebook (JupyterLab, or papermill outside ``forensics run``) starts a :class:`Prefetch`
  at ``open_incident``: the same two steps, for the captures the notebook's cells declare, in background
  threads while the first cells run.

Either way the capture store's lock per name makes a cell that asks for a capture wait for that one only,
and each API is held to its documented rate (:mod:`forensics.rates`) whatever the number of threads.

The runner writes the names it plans into the record (``.captures/plan.list``): a notebook opened in that
record does not prefetch them again (:func:`planned_in`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable

from . import contracts, defaults

#: ``FORENSICS_PREFETCH=0`` turns the interactive prefetch off (the benchmark's baseline; a slow link).
ENV = "FORENSICS_PREFETCH"
PLAN_FILE = "plan.list"


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def in_threads() -> bool:
    """``FORENSICS_PREFETCH=threads``: prefetch in the kernel's own threads, not in a process of its own."""
    return os.environ.get(ENV, "").strip().lower() == "threads"


# ---- the shared plan machinery ----------------------------------------------------------------------------
def pull_volatile(session, planned: list, on_pulled: Callable[[int, str], None] | None = None, *,
                  pull: Callable[[str], object] | None = None, mark: bool = True) -> list:
    """Mark ``planned`` as this session's plan in its record (if it writes one and ``mark``), then pull the plan's volatile
    captures one at a time, most volatile first (RFC 3227), calling ``on_pulled(i, name)`` after the i-th.
    Returns them."""
    from . import captures

    if mark and session.record_dir is not None:
        mark = Path(session.record_dir) / contracts.SIDECAR_DIR / PLAN_FILE
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text("".join(f"{c.name}\n" for c in planned))
    pull = pull or session.pull
    volatile = captures.volatile(planned)
    for i, cap in enumerate(volatile, 1):
        pull(cap.name)
        if on_pulled:
            on_pulled(i, cap.name)
    return volatile


def submit(executor: ThreadPoolExecutor, session, caps: Iterable, *,
           pull: Callable[[str], object] | None = None) -> dict[Future, str]:
    """Submit the pull of each capture of ``caps`` to ``executor``: future -> capture name."""
    pull = pull or session.pull
    return {executor.submit(pull, c.name): c.name for c in caps}


def planned_in(record_dir) -> set[str]:
    """The captures the runner plans in this record (a notebook of the run does not prefetch them)."""
    if record_dir is None:
        return set()
    mark = Path(record_dir) / contracts.SIDECAR_DIR / PLAN_FILE
    return set(mark.read_text().split()) if mark.exists() else set()


def declared(notebook: str) -> tuple[str, ...]:
    """The captures ``notebook`` declares, read from its cells (as the catalogue reads them); () for a name
    that is not a notebook of the catalogue."""
    from . import notebooks
    from .pull import PULLS

    path = Path(notebooks.NOTEBOOK_DIR) / f"{notebook}.ipynb"
    if not path.exists():
        return ()
    code = notebooks.code(path)
    return tuple(dict.fromkeys([*(c for name in notebooks.pulls(code) for c in PULLS.get(name, (name,))),
                                *notebooks.optional(code)]))


# ---- the interactive prefetch -------------------------------------------------------------------------------
def in_cell_order(planned: list, names: Iterable[str]) -> list:
    """``planned`` in the order the notebook's cells ask for them (``names``: declared order), each capture
    right before the first one that reads it; captures not named keep their place at the end."""
    from . import captures

    rank: dict[str, int] = {}

    def mark(name: str, i: int) -> None:
        for dep in captures.get(name).after:
            mark(dep, i)
        rank.setdefault(name, i)

    for i, n in enumerate(names):
        if n in captures.CAPTURES:
            mark(n, i)
    end = len(rank) + 1
    return sorted(planned, key=lambda c: rank.get(c.name, end))  # stable: ties keep the plan's order


class Prefetch:
    """A notebook's plan pulled in background threads. The frames land in the session's store; the session
    records a capture as the notebook's when a cell asks for it (so ``inc.sources()`` lists what the cells
    read, as without prefetch).

    The volatile captures come first (RFC 3227), then the rest in the order the cells ask for them, and a
    cell goes first: while a cell waits for a capture, no background pull starts (those under way finish).
    On a laptop the pulls share its cores with the cell; on a slow link they overlap the waiting."""

    def __init__(self, session, planned: list, threads: int = defaults.PREFETCH_THREADS, order: Iterable[str] = ()):
        self.session = session
        self.planned = list(planned)
        self.names = [c.name for c in self.planned]
        self.order = list(order)
        self.arrived: list[str] = []
        self.errors: list[str] = []  # a bug in a pull (a failing source is recorded, not raised)
        self.started = time.perf_counter()
        self.finished: float | None = None
        self._threads = threads
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self._cells = 0  # cells waiting for a capture now
        self._turn = threading.Condition()

    def start(self) -> Prefetch:
        self._thread.start()
        return self

    @contextlib.contextmanager
    def cell_waits(self):
        """Around a cell's pull: background pulls do not start meanwhile."""
        with self._turn:
            self._cells += 1
        try:
            yield
        finally:
            with self._turn:
                self._cells -= 1
                self._turn.notify_all()

    def _pull(self, name: str):
        with self._turn:  # the cell's pull first
            self._turn.wait_for(lambda: self._cells == 0 or self._stop.is_set())
        if self._stop.is_set():
            return None
        return self.session._pull_ahead(name)

    def _arrived(self, name: str) -> None:
        self.arrived.append(name)

    def _run(self) -> None:
        try:
            volatile = pull_volatile(self.session, self.planned, lambda _, name: self._arrived(name), pull=self._pull,
                                     mark=False)
            rest = in_cell_order([c for c in self.planned if c not in volatile], self.order)
            with ThreadPoolExecutor(max_workers=max(1, min(self._threads, len(rest) or 1)),
                                    thread_name_prefix="prefetch") as pool:
                self._pool = pool
                futures = submit(pool, self.session, rest, pull=self._pull)
                for fut in as_completed(futures):
                    if not fut.cancelled() and fut.exception() is not None:
                        exc = fut.exception()
                        self.errors.append(f"{futures[fut]}: {type(exc).__name__}: {exc}")
                    self._arrived(futures[fut])
        except Exception as exc:  # noqa: BLE001 - a prefetch that breaks leaves the cells to pull as before
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.finished = time.perf_counter()

    @property
    def done(self) -> bool:
        return self.finished is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the whole plan (tests, the benchmark); True when it is done."""
        self._thread.join(timeout)
        return self.done

    def close(self) -> None:
        """The session is done with it: pull nothing more."""
        self.cancel()

    def cancel(self) -> None:
        """Pull nothing more (captures being pulled finish)."""
        self._stop.set()
        with self._turn:
            self._turn.notify_all()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def line(self, waiting: str | None = None) -> str:
        """The one-line progress display: captures arrived of planned, failed ones, what a cell waits for."""
        store = self.session.store
        failed = [m.name for m in (store.meta(x) for x in self.names) if m is not None and m.error]
        elapsed = (self.finished or time.perf_counter()) - self.started
        return progress_line(len(set(self.arrived)), len(self.names), failed, elapsed, self.done, waiting)


def progress_line(arrived: int, total: int, failed: list[str], elapsed: float, done: bool,
                  waiting: str | None = None) -> str:
    """``captures 5/8 arriving (2.1 s) · 1 failed (x) · waiting for y``; ``captures 8/8 in 4.3 s`` when done."""
    text = (f"captures {arrived}/{total} in {elapsed:.1f} s" if done else
            f"captures {arrived}/{total} arriving ({elapsed:.1f} s)")
    if failed:
        text += f" · {len(failed)} failed ({', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''})"
    if waiting and not done:
        text += f" · waiting for {waiting}"
    return text
