"""Known-secret masking: once a secret is found anywhere, every other occurrence of it is replaced too,
whatever precedes it (the way CI systems mask a registered secret in every log line).

A ``Scrubber`` holds the values found so far, in memory only (never written anywhere). ``text`` and
``frame`` first detect (registering what they find), then replace every known value. Only values that
cannot be an ordinary word are registered (shape.worth_registering): masking ``postgres`` at every
occurrence would wreck a record.

Across processes (each notebook runs in its own kernel) the values are gone, but their markers are in
the record: ``recover`` hashes the candidate tokens of a text and registers the ones whose keyed hash is
the digest of a marker already in the record. ``scrub_record_files`` uses that for the final pass.
"""

from __future__ import annotations

import re
import threading

import ahocorasick
import numpy as np
import pandas as pd

from . import engine, shape

#: Candidate tokens for ``recover``: runs without whitespace, quotes or brackets, split again at the
#: usual delimiters of key=value, URLs and DSNs.
_RUN = re.compile(r"[^\s\"'`<>()\[\]{},;|\\]{8,}")
_SUB = re.compile(r"[^=:@/&?#]{8,}")


class Scrubber:
    """Detects secrets and masks every known one. Thread-safe; one per process is the usual use."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}  # value -> kind it was first found as
        self._auto: ahocorasick.Automaton | None = None
        self._lock = threading.Lock()

    # -- registry -------------------------------------------------------------------------------
    def register(self, value: str, kind: str = "known-secret") -> bool:
        """Remember ``value`` as a secret; False when it is too word-like to be masked everywhere."""
        if not isinstance(value, str) or not shape.worth_registering(value) or engine.MARKER.search(value):
            return False
        with self._lock:
            if value not in self._known:
                self._known[value] = kind
                self._auto = None
        return True

    def forget(self) -> None:
        with self._lock:
            self._known.clear()
            self._auto = None

    def __len__(self) -> int:
        return len(self._known)

    def digests(self) -> set[str]:
        return {engine.digest(v) for v in self._known}

    def _automaton(self) -> ahocorasick.Automaton | None:
        with self._lock:
            if self._auto is None and self._known:
                auto = ahocorasick.Automaton()
                for value, kind in self._known.items():
                    auto.add_word(value, (value, kind))
                auto.make_automaton()
                self._auto = auto
            return self._auto

    # -- text -----------------------------------------------------------------------------------
    def text(self, value):
        """``value`` with every detected and every known secret replaced by its marker."""
        if not isinstance(value, str) or not value:
            return value
        found: list[tuple[str, str]] = []
        value = engine.detect(value, found)
        for kind, secret in found:
            self.register(secret, kind)
        return self.mask(value)

    def mask(self, value: str) -> str:
        """Replace known values only (no detection), never inside a marker or a data URI."""
        auto = self._automaton()
        if auto is None or not value:
            return value
        hits = list(auto.iter_long(value))
        if not hits:
            return value
        protected = [m.span() for m in engine._PROTECTED.finditer(value)] if "[REDACTED:" in value or \
            ";base64," in value else []
        out, pos = [], 0
        for end, (secret, kind) in hits:
            start = end - len(secret) + 1
            if start < pos or any(a < end + 1 and start < b for a, b in protected):
                continue
            out.append(value[pos:start])
            out.append(engine.marker(kind, secret))
            pos = end + 1
        out.append(value[pos:])
        return "".join(out)

    def recover(self, value: str, digests: set[str], kinds: dict[str, str] | None = None) -> int:
        """Register the tokens of ``value`` whose keyed hash is one of ``digests`` (markers seen in the
        record). Returns how many were registered."""
        n = 0
        if not digests or not isinstance(value, str):
            return 0
        for token in candidate_tokens(value):
            d = engine.digest(token)
            if d in digests and self.register(token, (kinds or {}).get(d, "known-secret")):
                n += 1
        return n

    # -- containers -----------------------------------------------------------------------------
    def obj(self, value):
        """Detect and mask every string inside nested dicts/lists."""
        return _walk(value, self.text)

    def mask_obj(self, value):
        """Mask known values in every string inside nested dicts/lists."""
        return _walk(value, self.mask)

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` with every text cell (and text inside list/dict cells) scrubbed. Text columns
        are prefiltered vectorised (RE2 through pyarrow) and each distinct flagged text is scrubbed once;
        a secret found in a later row or column is masked in the earlier ones too."""
        out = df.copy()
        text_cols = [c for c in out.columns
                     if pd.api.types.is_string_dtype(out[c].dtype) or out[c].dtype == object]
        before = len(self._known)
        for col in text_cols:
            out[col] = self._series(out[col])
        if len(self._known) > before and len(text_cols) > 1:  # found in a later column
            for col in text_cols:
                out[col] = self._mask_series(out[col])
        out.attrs = dict(df.attrs)
        return out

    def _series(self, s: pd.Series) -> pd.Series:
        import pyarrow as pa

        values = s.to_numpy(dtype=object, na_value=None)
        changes: dict[int, object] = {}
        try:  # the common case: only text and nulls, converted to arrow in one call
            arr = pa.array(values, type=pa.large_string(), from_pandas=True)
            str_idx = None
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            is_str = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
            for i in np.flatnonzero(~is_str):  # lists, dicts, arrays in object columns
                if isinstance(values[i], (list, tuple, dict, np.ndarray)):
                    new = self.obj(values[i])
                    if not _same(new, values[i]):
                        changes[i] = new
            str_idx = np.flatnonzero(is_str)
            arr = pa.array(values[str_idx], type=pa.large_string())
        known_before = len(self._known)
        hits = np.flatnonzero(self._flag(arr))
        cache: dict[str, str] = {}
        for i in hits if str_idx is None else str_idx[hits]:
            v = values[i]
            new = cache.get(v)
            if new is None:
                new = cache[v] = self.text(v)
            if new != v:
                changes[i] = new
        if len(self._known) > known_before:  # found in a later row: mask it in the rows before too
            hits = np.flatnonzero(self._flag(arr, known_only=True))
            for i in hits if str_idx is None else str_idx[hits]:
                cur = changes.get(i, values[i])
                new = self.mask_obj(cur)
                if not _same(new, cur):
                    changes[i] = new
        if not changes:
            return s
        return _with_changes(s, changes)

    def _mask_series(self, s: pd.Series) -> pd.Series:
        import pyarrow as pa

        values = s.to_numpy(dtype=object, na_value=None).copy()
        try:
            rows = np.flatnonzero(self._flag(pa.array(values, type=pa.large_string(), from_pandas=True), True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            rows = range(len(values))
        changed = False
        for i in rows:
            new = self.mask_obj(values[i])
            if not _same(new, values[i]):
                values[i], changed = new, True
        if not changed:
            return s
        out = pd.Series(values, index=s.index, name=s.name)
        return out if s.dtype == object else out.astype(s.dtype)

    def _flag(self, arr, known_only: bool = False) -> np.ndarray:
        """Rows that may hold a secret (prefilter) or hold a known one."""
        import pyarrow.compute as pc

        hit = np.zeros(len(arr), bool) if known_only else engine.flag(arr)
        if self._known:
            known = pc.match_substring_regex(arr, "|".join(_re2_literal(v) for v in self._known))
            hit |= np.asarray(known.fill_null(False).to_numpy(zero_copy_only=False), bool)
        return hit


def _walk(value, fn):
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype == object):
        return [_walk(v, fn) for v in value]
    return value


def _with_changes(s: pd.Series, changes: dict) -> pd.Series:
    if s.dtype == object or all(isinstance(v, str) for v in changes.values()):
        out = s.copy()
        idx = list(changes)
        if s.dtype == object:  # lists stay lists: assign cell by cell through the numpy view
            arr = out.to_numpy(copy=False)
            if arr.flags.writeable:
                for i in idx:
                    arr[i] = changes[i]
                return out
        out.iloc[idx] = [changes[i] for i in idx]
        return out
    values = s.to_numpy(dtype=object, na_value=None).copy()
    for i, v in changes.items():
        values[i] = v
    out = pd.Series(values, index=s.index, name=s.name)
    return out if s.dtype == object else out.astype(s.dtype)


def _plain(value):
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _same(a, b) -> bool:
    """Equal as plain Python values (parquet list cells come back as numpy arrays)."""
    try:
        return bool(_plain(a) == _plain(b))
    except (ValueError, TypeError):
        return False


def _re2_literal(value: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "\\" + c if c.isascii() else c for c in value)


def candidate_tokens(value: str) -> set[str]:
    out = set()
    for run in _RUN.findall(value):
        out.add(run)
        stripped = run.strip(".:=/")
        if stripped != run and len(stripped) >= 8:
            out.add(stripped)
        for sub in _SUB.findall(run):
            out.add(sub)
    return {t for t in out if shape.worth_registering(t)}
