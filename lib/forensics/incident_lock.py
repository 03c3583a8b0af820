"""The incident folder's lock: one run at a time writes a record of an incident (evidence.Record holds it)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable

from . import contracts
from .errors import DiskFull, RecordBusy


class IncidentLock:
    """The incident folder's lock (``<incident>/.lock``, flock): held by the run writing a record of that
    incident from its creation to its seal, so two runs never interleave and the chain (the previous
    record's digest) is read at seal time by the only writer."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / contracts.LOCK_FILE
        self._fd: int | None = None

    def acquire(self, wait: bool = True, echo: Callable[[str], None] = print) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno in DiskFull.ERRNOS:
                raise DiskFull(f"{self.path}: {os.strerror(exc.errno).lower()}") from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            if not wait:
                os.close(fd)
                raise RecordBusy(f"{self.path.parent}: another run of this incident (pid {holder}) is writing a "
                                 "record; wait for it to finish") from None
            echo(f"waiting  for the run of this incident that holds {self.path} (pid {holder}) to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)  # also for the copies forked worker processes hold
            os.close(fd)
