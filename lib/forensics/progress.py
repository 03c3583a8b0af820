"""What a long `forensics run` is doing, while it does it: captures pulled, each notebook's current cell.

    progress = Progress(echo, stream=sys.stderr)    # a terminal: one status line, rewritten in place
    progress.captures(12, 40)                       # captures pulled, n of m
    progress.cell("api-errors", 5, 14, "onset = analysis.onset(...)")
    progress.notebook_done("api-errors", "ok", 41.2)
    progress.close()

On a terminal the running state is one line at the bottom, rewritten with a carriage return, and
lasting messages (a notebook finished) are printed above it. Anywhere else (CI, a log file, a pipe)
every message is a plain line through ``echo`` with no control characters, and the frequent ones
(cells, captures) are rate-limited: per notebook or for the captures, at most one line every
``interval`` seconds (``$FORENSICS_PROGRESS_INTERVAL_S``, default 10), except the first and the last,
so a long run is never silent and never floods.

Notebooks run in worker processes: :func:`cell_hook` makes the nbclient ``on_cell_execute`` callback
that a worker passes to papermill; it sends ``(notebook, index, total, label)`` on a multiprocessing
queue that :meth:`Progress.listen` drains in a thread of the parent.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import IO, Callable

#: seconds between two plain lines about the same thing (a notebook's cells, the captures)
PLAIN_INTERVAL_S = float(os.environ.get("FORENSICS_PROGRESS_INTERVAL_S", "10"))
_LABEL_CHARS = 48


class Progress:
    def __init__(self, echo: Callable[[str], None] | None = None, stream: IO[str] | None = None,
                 tty: bool | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None or not tty else sys.stderr
        self.echo = echo or (lambda msg: print(msg, file=stream or sys.stderr, flush=True))
        if tty is None:
            tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty()
                       and os.environ.get("TERM") != "dumb")
        self.tty = tty
        self.interval = PLAIN_INTERVAL_S if interval is None else interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # key -> clock of its last plain line
        self._state: dict[str, str] = {}  # key -> its part of the status line (tty)
        self._shown = 0  # length of the status line on screen (tty)
        self._done: set[str] = set()  # notebooks finished: a late cell message about one is dropped

    # -- what the runner reports --------------------------------------------------------------------
    def captures(self, done: int, total: int, name: str | None = None) -> None:
        """``done`` of ``total`` captures pulled (``name``: the one that just finished)."""
        text = f"captures {done}/{total}" + (f" ({name})" if name and done < total else "")
        self._update("captures", text, final=done >= total)

    def cell(self, notebook: str, index: int, total: int, label: str = "") -> None:
        """``notebook`` is executing its code cell ``index`` (1-based) of ``total``."""
        if notebook in self._done:
            return
        label = " ".join(label.split())
        if len(label) > _LABEL_CHARS:
            label = label[:_LABEL_CHARS - 3] + "..."
        self._update(f"nb:{notebook}", f"{notebook} cell {index}/{total}" + (f": {label}" if label else ""))

    def notebook_done(self, notebook: str, status: str, duration_s: float, error: str | None = None) -> None:
        """A notebook finished: always printed, and its cell drops off the status line."""
        mark = "ok    " if status == "ok" else "FAILED"
        with self._lock:
            self._done.add(notebook)
            self._state.pop(f"nb:{notebook}", None)
            self._last.pop(f"nb:{notebook}", None)
            self._print(f"  {mark} {notebook} ({duration_s:.1f} s)" + (f": {error}" if error else ""))

    def message(self, text: str) -> None:
        """A lasting line (printed above the status line on a terminal)."""
        with self._lock:
            self._print(text)

    def close(self) -> None:
        """Clear the status line (a terminal); nothing to do otherwise."""
        with self._lock:
            self._state.clear()
            self._draw()

    # -- worker processes -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def listen(self, queue):
        """Drain ``queue`` (of :func:`cell_hook` messages) in a thread until the block ends."""
        def drain():
            while True:
                item = queue.get()
                if item is None:
                    return
                with contextlib.suppress(Exception):  # progress never breaks a run
                    self.cell(*item)

        thread = threading.Thread(target=drain, name="forensics-progress", daemon=True)
        thread.start()
        try:
            yield queue
        finally:
            queue.put(None)
            thread.join(timeout=5)

    # -- output ---------------------------------------------------------------------------------------
    def _update(self, key: str, text: str, final: bool = False) -> None:
        with self._lock:
            if self.tty:
                if final:
                    self._state.pop(key, None)
                    self._print(text)
                else:
                    self._state[key] = text
                    self._draw()
                return
            now = self.clock()
            last = self._last.get(key)
            if final or last is None or now - last >= self.interval:
                self._last[key] = now
                self.echo(text)

    def _print(self, text: str) -> None:
        if not self.tty:
            self.echo(text)
            return
        self._clear()
        self.stream.write(text + "\n")
        self._draw()

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self._shown = 0

    def _draw(self) -> None:
        if not self.tty:
            return
        self._clear()
        line = " | ".join(self._state.values())
        if line:
            width = _columns()
            line = line if len(line) < width else line[:width - 4] + "..."
            self.stream.write(line)
            self._shown = len(line)
        self.stream.flush()


def _columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 100


def cell_hook(queue, notebook: str, cells: list) -> Callable:
    """nbclient's ``on_cell_execute(cell=..., cell_index=...)`` for a worker: puts ``(notebook, n, total,
    first line)`` on ``queue``, n counting the code cells that run (papermill's injected parameters
    cell included), ``cells`` being the source notebook's cells."""
    total = sum(1 for c in cells if c.get("cell_type") == "code" and _source(c).strip()) + 1
    seen = [0]

    def hook(cell=None, cell_index=None, **_):
        seen[0] += 1
        with contextlib.suppress(Exception):
            queue.put_nowait((notebook, seen[0], max(total, seen[0]), _first_line(_source(cell or {}))))

    return hook


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _first_line(source: str) -> str:
    for line in source.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return ""
