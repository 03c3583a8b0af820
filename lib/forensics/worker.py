"""One notebook in a worker process of `forensics run`: papermill, then its redaction and HTML views.

The runner starts a pool of these processes (:func:`pool`); each executes one notebook at a time
(:func:`run_notebook`) in its own Jupyter kernel, writing ``notebooks/<name>.ipynb`` into the record,
scrubbing it of secrets a traceback or a printed value may carry, then rendering ``html/<name>.html``
and its report view. Progress (the cell being executed) goes back to the runner on a queue.

A worker ignores SIGINT: Ctrl-C in a terminal reaches the whole foreground process group, and the
runner, not each worker, decides how a run stops (it ends the workers and their kernels itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import contracts, defaults, lean_imports, redact, report_html, stopping
from .progress import cell_hook

CELL_TIMEOUT_S = defaults.CELL_TIMEOUT_S
SKIPPED = "skipped"
#: Run in each kernel before the notebook: tables show whole messages (pandas cuts a cell at 50
#: characters by default), so the notebook and its report page carry them; the page wraps them (CSS).
KERNEL_EXEC_LINES = ["import pandas as _pd; _pd.set_option('display.max_colwidth', None); del _pd"]


@dataclass
class NotebookRun:
    """How one notebook ran: ok, failed or skipped (its sources are not configured)."""

    name: str
    status: str
    duration_s: float
    error: str | None = None
    html: str | None = None
    #: seconds the worker spent after the notebook: redacting it and rendering its HTML views
    render_s: float | None = None
    #: the executed notebook, relative to the record; None when none was written (skipped, crashed worker)
    notebook: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "duration_s": self.duration_s, "error": self.error,
                "notebook": self.notebook, "html": self.html, "render_s": self.render_s}


_QUEUE = None  # a worker's end of the progress queue (set by _init)
_KERNELS_DIR = None  # where this worker's kernels keep their sockets (set by _init; None: the system's temp)


@contextlib.contextmanager
def pool(jobs: int):
    """A process pool of ``jobs`` workers and the progress queue they report on: yields (pool, queue)."""
    import multiprocessing

    queue = multiprocessing.Queue()
    # the workers' kernels keep their sockets and connection files in here: removed with the pool, and by a
    # run stopped by a signal (whose kernels are killed and cannot remove their own)
    kernels_dir = tempfile.mkdtemp(prefix="forensics-kernels-")
    try:
        with ProcessPoolExecutor(max_workers=max(1, jobs), initializer=_init,
                                 initargs=(queue, kernels_dir)) as executor, \
                stopping.watching(lambda: list(getattr(executor, "_processes", None) or {}), folder=kernels_dir):
            yield executor, queue
    finally:
        # never wait on the queue's feeder thread: a worker ended while it held the queue's write lock
        # (forensics.stopping) would leave it waiting forever; what is still unsent is only progress
        queue.cancel_join_thread()
        queue.close()
        shutil.rmtree(kernels_dir, ignore_errors=True)


#: the kernel this worker keeps for its notebooks (forensics.kernels), and the record it was started in
_KEPT: dict = {}


def _init(queue, kernels_dir: str | None = None) -> None:
    global _QUEUE, _KERNELS_DIR
    _QUEUE, _KERNELS_DIR = queue, kernels_dir
    lean_imports.without_iri_format_checker()  # before papermill imports nbformat (2 s of CPU otherwise)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner stops the run (runner._stopping)
    from multiprocessing.util import Finalize

    Finalize(None, _stop_kept, exitpriority=10)  # the worker's kernel ends with the worker


def _stop_kept() -> None:
    from . import kernels

    kernels.stop(_KEPT.pop("km", None))
    _KEPT.clear()


def _kernel(record: str, extra_arguments: list[str]):
    """This worker's kernel for a notebook of ``record``: the kept one, reset, or a new one."""
    from . import kernels

    km = _KEPT.get("km")
    if km is not None and (_KEPT.get("record") != record or not kernels.reset(km)):
        _stop_kept()
        km = None
    if km is None:
        km = kernels.start(record, extra_arguments, parent=_KERNELS_DIR)
        _KEPT.update(km=km, record=record)
    return km


def run_notebook(nb_path: str, record: str, name: str, params: dict) -> NotebookRun:
    """One notebook: papermill in this worker's kept kernel (forensics.kernels), saving it at most every few
    seconds while it runs (forensics.notebook_engine), then nbconvert to HTML (also for a failed one)."""
    import papermill as pm

    from . import notebook_engine

    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    rel_nb = f"{contracts.NOTEBOOKS_DIR}/{name}.ipynb"
    out_nb = Path(record) / rel_nb
    # ipykernel 7 warns on stderr that loopback TCP is unencrypted, per kernel.
    extra = ["--IPKernelApp.log_level=CRITICAL", *(f"--IPKernelApp.exec_lines={line}" for line in KERNEL_EXEC_LINES)]
    t0 = time.perf_counter()
    status, error, km = "ok", None, None
    try:
        km = _kernel(record, extra)
        pm.execute_notebook(nb_path, str(out_nb), parameters=params, cwd=record, kernel_name="python3",
                            progress_bar=False, log_output=False, execution_timeout=CELL_TIMEOUT_S,
                            request_save_on_cell_execute=True,
                            on_cell_execute=cell_hook(_QUEUE, name, json.loads(Path(nb_path).read_text())["cells"])
                            if _QUEUE is not None else None,
                            extra_arguments=extra, km=km, engine_name=notebook_engine.NAME)
    except Exception as exc:  # noqa: BLE001 - PapermillExecutionError, DeadKernelError, timeouts
        status = "failed"
        error = redact.text(exec_error(exc))
    finally:
        if km is not None:
            km.close_clients()
            if status != "ok":  # a failed cell, a timeout, a dead kernel: the next notebook gets a new kernel
                _stop_kept()
    duration = round(time.perf_counter() - t0, 2)
    html = None
    t0 = time.perf_counter()
    if out_nb.exists():
        try:
            redact_notebook(out_nb)
        except OSError as exc:  # a full disk: the error says so, and the runner stops the run
            error = (error + "; " if error else "") + f"redacting the notebook failed: {exc}"
        try:
            html = report_html.render_notebook(out_nb, Path(record) / contracts.HTML_DIR, name)
        except Exception as exc:  # noqa: BLE001
            error = (error + "; " if error else "") + f"HTML rendering failed: {exc}"
    return NotebookRun(name, status, duration, error, html, round(time.perf_counter() - t0, 2),
                       rel_nb if out_nb.exists() else None)


def redact_notebook(path: Path) -> None:
    """Scrub secrets from an executed notebook: a traceback or a printed value may carry one that no
    capture saw (captures are redacted when pulled). Images are left alone (base64 is not text). A notebook
    that is not JSON (its last save was cut short) is scrubbed as text."""

    def walk(value, key=""):
        if isinstance(value, str):
            return value if key.startswith("image/") else redact.text(value)
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        return value

    raw = path.read_text(encoding="utf-8", errors="replace")
    try:
        nb = json.loads(raw)
    except ValueError:  # cut short (its last save hit a full disk): scrubbed as text, as the final pass would
        clean_text = redact.text(raw)
        if clean_text != raw:
            path.write_text(clean_text, encoding="utf-8")
        return
    clean = walk(nb)
    if clean != nb:
        path.write_text(json.dumps(clean, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def exec_error(exc: Exception) -> str:
    """One line for a notebook that failed: the cell's exception, or why the kernel stopped."""
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        cell = getattr(exc, "exec_count", None)
        return f"{ename}: {evalue}" + (f" (cell [{cell}])" if cell else "")
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
