"""Capture once, analyse many: every frame a notebook pulls goes through :class:`CaptureStore`.

A capture is keyed by its name. Inside a record folder:

- ``data/<name>.parquet``      the frame as pulled (after redaction)
- ``.captures/<name>.json``    its metadata sidecar: source, call or SQL, arguments, rows, pulled-at,
                               duration, error. The runner folds the sidecars into manifest.json.

Notebooks run in parallel processes; a file lock per capture makes the second notebook that asks
for the same name wait for and reuse the first one's frame, so no source is pulled twice. Inside one
process (a notebook's prefetch threads and its cells, the runner's plan threads) a lock per name does
the same: whoever asks second waits for that one capture only, and is served the first one's frame.

Outside a record, a notebook's prefetch process hands its frames over the same way, through a private folder
(``shared_dir``: the same layout, the same locks), so the kernel reads a frame instead of pulling and parsing it.

Replay serves the frames of an earlier record by the same names, with no network: a capture
that failed in the original fails the same way in the replay, so the findings come out equal.
A source that fails does not stop the notebook: the capture returns an empty frame with the
expected columns and the error, and the error is recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import contracts, redact
from .errors import RecordError
from .sources.call import Call
from .window import iso, utcnow

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,80}$")
#: frame.attrs a source sets about its own reading, recorded in the manifest (CaptureMeta.reading)
READING_ATTRS = ("engine", "bytes_read", "bytes_scanned", "objects_listed", "objects_read", "prefixes", "errors",
                 "bad_lines", "insights_error", "query_execution_id", "pages", "scanned")


@dataclass
class CaptureMeta:
    name: str
    source: str
    call: str
    args: dict = field(default_factory=dict)
    rows: int | None = None
    columns: list[str] = field(default_factory=list)
    pulled_at: str | None = None
    duration_s: float | None = None
    error: str | None = None
    file: str | None = None
    notebook: str | None = None
    volatile: bool = False
    replayed_from: str | None = None
    truncated: bool = False
    query: str | None = None
    #: what the source said about its own reading (frame.attrs): engine, bytes read or scanned, objects,
    #: per-object or per-line problems, a fallback taken. Partial problems are evidence too.
    reading: dict = field(default_factory=dict)

    @property
    def problems(self) -> str:
        """A one-line summary of the partial problems of a capture that did not fail as a whole."""
        r = self.reading or {}
        parts = []
        if r.get("errors"):
            first = r["errors"][0]
            parts.append(f"{len(r['errors'])} object(s) unreadable ({first.get('key')}: {first.get('error')})")
        if r.get("bad_lines"):
            parts.append(f"{r['bad_lines']} line(s) not in the format")
        if r.get("insights_error"):
            parts.append(f"Logs Insights unavailable, bounded sample instead ({r['insights_error']})")
        if self.truncated:
            parts.append("truncated at its cap")
        return "; ".join(parts)

    def to_json(self) -> dict:
        return asdict(self)


class CaptureStore:
    """Where a notebook's captures go (``record_dir``) and, for a replay, where they come from."""

    def __init__(self, record_dir: str | os.PathLike | None = None, replay_from: str | os.PathLike | None = None,
                 notebook: str | None = None):
        self.record_dir = Path(record_dir) if record_dir else None
        self.replay_from = Path(replay_from) if replay_from else None
        self.notebook = notebook
        self._memory: dict[str, tuple[pd.DataFrame, CaptureMeta]] = {}
        #: outside a record: where another process of this session (the prefetch process) hands frames over
        self.shared_dir: Path | None = None
        self._names: dict[str, threading.Lock] = {}  # one lock per capture name, in this process
        self._names_lock = threading.Lock()
        self._replay_manifest: dict | None = None
        if self.replay_from is not None:
            manifest = self.replay_from / contracts.MANIFEST_FILE
            if not manifest.exists():
                raise RecordError(f"{self.replay_from}: not an evidence record (no manifest.json)")
            self._replay_manifest = {c["name"]: c for c in json.loads(manifest.read_text())["captures"]}

    # -- public -----------------------------------------------------------------------------------
    def get(self, name: str, build: Callable[[], Call], *, source: str, call: str,
            columns: list[str] | None = None, volatile: bool = False,
            query: str | None = None) -> tuple[pd.DataFrame, CaptureMeta]:
        """The frame called ``name``: from this record if already captured, else from the replayed
        record, else pulled now: ``build()`` makes the :class:`~forensics.sources.call.Call` whose
        ``run()`` is the frame and whose ``args`` are recorded (``call``: the api when the Call names
        none). Never raises for a failing source. ``build`` is only called when the capture is pulled
        (building it may read other captures)."""
        if not _NAME.match(name):
            raise ValueError(f"capture name {name!r}: use lower-case letters, digits, '_', '-', '.'")
        if name in self._memory:
            return self._memory[name]
        with self._name_lock(name):
            if name in self._memory:  # pulled by another thread while this one waited
                return self._memory[name]
            with self._lock(name):
                existing = self._read_existing(name)
                if existing is None:
                    if self._replay_manifest is not None:
                        existing = self._replay(name, source, call, {}, columns)
                    else:
                        existing = self._pull(name, build, source, call, columns, volatile, query)
                    self._write(*existing)
            self._memory[name] = existing
        return existing

    def has(self, name: str) -> bool:
        """Whether ``name`` is already served from memory (asking for it will not wait)."""
        return name in self._memory

    def meta(self, name: str) -> CaptureMeta | None:
        """The metadata of ``name`` if this store holds it or another process of the session has written it (None
        while it is not pulled yet)."""
        held = self._memory.get(name)
        if held:
            return held[1]
        if not _NAME.match(name):
            return None
        try:
            written = self._written(name)
        except (OSError, ValueError, TypeError):
            return None
        return self._served(*written) if written else None

    def forget(self, name: str) -> None:
        """Drop ``name`` so the next :meth:`get` pulls it again (an explicit refresh): from memory and, in a
        record, its frame and sidecar (the refreshed pull replaces them). A replay serves the record again."""
        with self._name_lock(name):
            self._memory.pop(name, None)
            base = self._base()
            if base is not None:
                with self._lock(name):
                    for path in (base / contracts.SIDECAR_DIR / f"{name}.json",
                                 base / contracts.DATA_DIR / f"{name}.parquet"):
                        path.unlink(missing_ok=True)

    # -- internals --------------------------------------------------------------------------------
    def _base(self) -> Path | None:
        """The folder frames are handed over in between processes: the record, else the shared folder."""
        return self.record_dir if self.record_dir is not None else self.shared_dir

    def _name_lock(self, name: str) -> threading.Lock:
        with self._names_lock:
            return self._names.setdefault(name, threading.Lock())

    @contextlib.contextmanager
    def _lock(self, name: str):
        base = self._base()
        if base is None:
            yield
            return
        sidecars = base / contracts.SIDECAR_DIR
        sidecars.mkdir(parents=True, exist_ok=True)
        with open(sidecars / f"{name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _written(self, name: str) -> tuple[Path, CaptureMeta] | None:
        """The folder ``name`` is written in (the record or the shared folder) and its sidecar's metadata."""
        base = self._base()
        sidecar = base / contracts.SIDECAR_DIR / f"{name}.json" if base is not None else None
        if sidecar is None or not sidecar.exists():
            return None
        return base, CaptureMeta(**json.loads(sidecar.read_text()))

    def _served(self, base: Path, meta: CaptureMeta) -> CaptureMeta:
        """From the shared folder a capture's metadata names no file: that folder is not a record, its files go
        with it."""
        if base is not self.record_dir:
            meta.file = None
        return meta

    def _read_existing(self, name: str):
        written = self._written(name)
        if written is None:
            return None
        base, meta = written
        frame = _read_frame(base, meta)
        return frame, self._served(base, meta)

    def _pull(self, name, build, source, call, columns, volatile, query=None):
        meta = CaptureMeta(name=name, source=source, call=redact.text(call), notebook=self.notebook,
                           volatile=volatile, query=query)
        meta.pulled_at = iso_ms(utcnow())
        t0 = time.perf_counter()
        try:
            made = build()
            meta.call = redact.text(made.api or call)
            meta.args = redact.obj(dict(made.args or {}))
            run = made.run
        except Exception as exc:  # noqa: BLE001 - the call could not be built: it is the capture's error
            meta.args = {"unknown": redact.text(_one_line(exc))}
            run = _raising(exc)
        try:
            frame = run()
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(f"source returned {type(frame).__name__}, not a DataFrame")
            meta.truncated = bool(frame.attrs.get("truncated", False))
            meta.reading = redact.obj(json_safe({k: frame.attrs[k] for k in READING_ATTRS if k in frame.attrs}))
            frame = redact.frame(frame)
        except Exception as exc:  # noqa: BLE001 - a failing source is evidence, not a crash
            meta.error = redact.text(_one_line(exc))
            frame = _empty(columns)
        meta.duration_s = round(time.perf_counter() - t0, 3)
        meta.rows = int(len(frame))
        meta.columns = [str(c) for c in frame.columns]
        return frame, meta

    def _replay(self, name, source, call, args, columns):
        original = self._replay_manifest.get(name)
        if original is None:
            meta = CaptureMeta(name=name, source=source, call=call, args=args, notebook=self.notebook,
                               error="not in the replayed record", pulled_at=iso_ms(utcnow()))
            return _empty(columns), meta
        meta = CaptureMeta(**{k: v for k, v in original.items() if k in CaptureMeta.__dataclass_fields__})
        meta.replayed_from = str(self.replay_from)
        meta.notebook = self.notebook
        frame = _read_frame(self.replay_from, meta) if not meta.error else _empty(columns or meta.columns)
        return frame, meta

    def _write(self, frame: pd.DataFrame, meta: CaptureMeta) -> None:
        base = self._base()
        if base is None:
            return
        if not meta.error:
            path = base / contracts.DATA_DIR / f"{meta.name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".parquet.tmp")
            if meta.replayed_from and meta.file:  # a replay carries the original bytes, not a re-encoding
                shutil.copyfile(Path(meta.replayed_from) / meta.file, tmp)
            else:
                _to_parquet(frame, tmp)
            os.replace(tmp, path)
            meta.file = f"{contracts.DATA_DIR}/{meta.name}.parquet"
        sidecar = base / contracts.SIDECAR_DIR / f"{meta.name}.json"
        tmp = sidecar.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta.to_json(), indent=1, default=str))
        os.replace(tmp, sidecar)
        self._served(base, meta)


def collect_sidecars(record_dir: Path) -> list[dict]:
    """Every capture's metadata in a record, ordered by pulled-at (order of volatility shows)."""
    out = []
    for p in sorted((record_dir / contracts.SIDECAR_DIR).glob("*.json")):
        out.append(json.loads(p.read_text()))
    return sorted(out, key=lambda m: (m.get("pulled_at") or "", m["name"]))


def _read_frame(base: Path, meta: CaptureMeta) -> pd.DataFrame:
    if meta.error or not meta.file:
        return _empty(meta.columns)
    return pd.read_parquet(base / meta.file)


#: Rows per parquet row group: a large frame is converted and written a group at a time, so the Arrow copy of
#: it never exists whole beside the frame (peak memory: the frame plus one group, not the frame twice).
ROW_GROUP = 100_000


def _parquet_column(values: pd.Series) -> pd.Series:
    """Parquet needs homogeneous columns: lists stay lists, dicts and mixed objects become JSON text."""
    if values.dtype != object:
        return values
    sample = values.dropna()
    if len(sample) and not sample.map(lambda v: isinstance(v, (str, list))).all():
        return values.map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v, default=str))
    if len(sample) and sample.map(lambda v: isinstance(v, list)).any():
        return values.map(lambda v: [] if v is None else list(v))
    return values


def _to_parquet(frame: pd.DataFrame, path: Path, row_group: int = ROW_GROUP) -> None:
    """Write ``frame`` (never modified) in row groups of ``row_group`` rows; columns that need converting are
    converted one group at a time. The schema is the first group's, with columns that are all null there
    typed from the whole column (so a later group's values fit)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [str(c) for c in frame.columns]

    def table(part: pd.DataFrame, schema=None) -> pa.Table:
        data = pd.DataFrame({n: _parquet_column(part.iloc[:, i]).reset_index(drop=True)
                             for i, n in enumerate(names)})
        return pa.Table.from_pandas(data, schema=schema, preserve_index=False)

    if len(frame) <= row_group:
        pq.write_table(table(frame), path)
        return
    first = table(frame.iloc[:row_group])
    fields = []
    for i, f in enumerate(first.schema):
        if pa.types.is_null(f.type):  # all null in the first group: type it from the whole column
            f = pa.field(f.name, pa.Table.from_pandas(pd.DataFrame({f.name: _parquet_column(frame.iloc[:, i])}),
                                                      preserve_index=False).schema[0].type)
        fields.append(f)
    schema = pa.schema(fields, metadata=first.schema.metadata)  # pandas' metadata: dtypes come back as written
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, len(frame), row_group):
            writer.write_table(table(frame.iloc[lo:lo + row_group], schema))


def _empty(columns: list[str] | None) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (columns or [])})


def _raising(exc: BaseException) -> Callable[[], pd.DataFrame]:
    def run():
        raise exc

    return run


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}"[:500]


def iso_ms(ts) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_safe(value: Any) -> Any:
    """Findings hold plain JSON: timestamps as ISO-8601 UTC, numpy scalars as Python numbers."""
    import numpy as np

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, pd.Timestamp):
        return iso(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if v != v else round(v, 6)
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [json_safe(r) for r in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return json_safe(value.to_dict())
    if value is pd.NaT:
        return None
    return str(value)
