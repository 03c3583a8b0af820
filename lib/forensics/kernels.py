"""One Jupyter kernel per `forensics run` worker, kept for its notebooks and reset between them.

Starting a kernel and importing pandas, matplotlib, boto3, scipy and forensics in it costs about 2 s of CPU
for every notebook; on 2 cores that was a third of the catalogue's run. A worker keeps one kernel
(:class:`KeptKernel`) and, before each notebook after the first, puts it back as it was when it started
(:func:`restore`, run inside the kernel): IPython's user namespace, history and execution count (a new session),
the working directory, ``os.environ``, ``sys.path``, the warnings filters and their once-registries, pandas'
options and matplotlib's rcParams. What stays is imported modules (the saving) and forensics's process-wide
caches (AWS clients, rate buckets, secrets already found), which a new kernel would rebuild the same way.

A kernel is reused only after a notebook that ended ``ok``: a notebook that failed, timed out or lost its
kernel is followed by a new kernel, as is one whose reset did not answer.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings

#: Run in the kernel when it starts (after the worker's own lines): remember its state for :func:`restore`.
SNAPSHOT_LINE = "import forensics.kernels as _k; _k.snapshot(); del _k"
#: Run in the kernel before a reused notebook: back to that state, then a new IPython session.
RESET_CODE = ("import forensics.kernels as _k; _k.restore(); del _k\n"
              "get_ipython().reset(new_session=True, aggressive=False)")
RESET_TIMEOUT_S = 30
#: pandas options the worker's start lines set (forensics.worker.KERNEL_EXEC_LINES): put back after a reset
PANDAS_OPTIONS = ("display.max_colwidth",)

_STATE: dict = {}


# ---- inside the kernel ----------------------------------------------------------------------------------------
def snapshot() -> None:
    """Remember what :func:`restore` puts back (called once, when the kernel starts)."""
    import matplotlib
    import pandas as pd

    _STATE.update(cwd=os.getcwd(), environ=dict(os.environ), path=list(sys.path), filters=list(warnings.filters),
                  rc=dict(matplotlib.rcParams), pandas={key: pd.get_option(key) for key in PANDAS_OPTIONS})


def restore() -> None:
    """The state :func:`snapshot` saw. A no-op in a kernel that never took one."""
    if not _STATE:
        return
    import matplotlib
    import pandas as pd

    os.chdir(_STATE["cwd"])
    if dict(os.environ) != _STATE["environ"]:
        os.environ.clear()
        os.environ.update(_STATE["environ"])
    sys.path[:] = _STATE["path"]
    warnings.filters[:] = _STATE["filters"]
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:  # CPython: every module's "already shown once" registry is void from here
        mutated()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns about deprecated options it resets
        pd.reset_option("all")
        for key, value in _STATE["pandas"].items():
            pd.set_option(key, value)
        dict.update(matplotlib.rcParams, _STATE["rc"])  # the values were valid when saved: no re-validation


# ---- in the worker ----------------------------------------------------------------------------------------------
def _kept_class():
    from jupyter_client.manager import AsyncKernelManager

    class KeptKernel(AsyncKernelManager):
        """A kernel manager that remembers the clients made of it, so the worker can close their channels
        after each notebook (papermill leaves them open when it does not own the kernel)."""

        sockets: str | None = None  #: the folder of its sockets and connection file (removed by :func:`stop`)

        def client(self, **kwargs):
            c = super().client(**kwargs)
            self.__dict__.setdefault("_made", []).append(c)
            return c

        def close_clients(self) -> None:
            for c in self.__dict__.pop("_made", []):
                try:
                    c.stop_channels()
                except Exception:  # noqa: BLE001 - a channel already closed
                    pass

    return KeptKernel


def start(cwd: str, extra_arguments: list[str], kernel_name: str = "python3", parent: str | None = None):
    """A new kernel in ``cwd``, its state remembered for :func:`restore`; its sockets in a new folder under
    ``parent`` (the system's temporary folder when None)."""
    from jupyter_core.utils import run_sync

    # Unix sockets in a private folder, not TCP ports: jupyter_client picks free ports, releases them and the
    # kernel binds them later, so two workers starting kernels at once could race for a port ("Address already
    # in use", the kernel dies before kernel_info). A socket path is this kernel's alone.
    sockets = tempfile.mkdtemp(prefix="forensics-kernel-", dir=parent)
    # Its connection file (the key that signs its messages) goes there too, not to a /tmp/tmpXXXX.json of its own.
    km = _kept_class()(kernel_name=kernel_name, transport="ipc", ip=os.path.join(sockets, "kernel"),
                       connection_file=os.path.join(sockets, "connection.json"))
    km.sockets = sockets
    run_sync(km.start_kernel)(cwd=cwd, extra_arguments=[*extra_arguments,
                                                        f"--IPKernelApp.exec_lines={SNAPSHOT_LINE}"])
    return km


def reset(km) -> bool:
    """Put a kept kernel back as it started (True), or say it cannot be (False: the caller starts a new one)."""
    try:
        if not alive(km):
            return False
        kc = km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=RESET_TIMEOUT_S)
            reply = kc.execute_interactive(RESET_CODE, silent=True, store_history=False, timeout=RESET_TIMEOUT_S,
                                           output_hook=lambda msg: None)
            return reply.get("content", {}).get("status") == "ok"
        finally:
            kc.stop_channels()
    except Exception:  # noqa: BLE001 - a kernel that does not answer is replaced, not debugged
        return False


def alive(km) -> bool:
    from jupyter_core.utils import run_sync

    try:
        return bool(km.has_kernel and run_sync(km.is_alive)())
    except Exception:  # noqa: BLE001
        return False


def stop(km) -> None:
    """Shut the kernel down (at once: nothing in it is worth waiting for) and remove its connection file."""
    from jupyter_core.utils import run_sync

    if km is None:
        return
    km.close_clients()
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # noqa: BLE001 - already gone
        pass
    try:
        run_sync(km.cleanup_resources)()
    except Exception:  # noqa: BLE001
        pass
    if getattr(km, "sockets", None):
        shutil.rmtree(km.sockets, ignore_errors=True)
