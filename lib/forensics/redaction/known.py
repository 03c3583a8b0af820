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
        self._patterns: list[str] | None = None  # RE2 patterns of the known values (frame's mask pass)
        self._lock = threading.Lock()

    # -- registry -------------------------------------------------------------------------------
    def register(self, value: str, kind: str = "known-secret") -> bool:
        """Remember ``value`` as a secret; False when it is too word-like to be masked everywhere."""
        if not isinstance(value, str) or not shape.worth_registering(value) or engine.MARKER.search(value) \
                or kind == "aws-access-key-id":
            return False  # a key id is masked beside its secret only, never everywhere (rules.KEY_ID)
        with self._lock:
            if value not in self._known:
                self._known[value] = kind
                self._auto = self._patterns = None
        return True

    def forget(self) -> None:
        with self._lock:
            self._known.clear()
            self._auto = self._patterns = None

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
        return self.recover_texts([value], digests, kinds)

    def recover_texts(self, texts, digests: set[str], kinds: dict[str, str] | None = None) -> int:
        """``recover`` over many texts: each distinct candidate token is hashed once, and only the few
        whose hash is a wanted digest are judged by their shape."""
        if not digests:
            return 0
        tokens: set[str] = set()
        for value in texts:
            if isinstance(value, str):
                tokens |= _raw_tokens(value)
        return self.register_digests(tokens, digests, kinds)

    def register_digests(self, tokens, digests: set[str], kinds: dict[str, str] | None = None) -> int:
        """Register the ``tokens`` (distinct candidate tokens) whose keyed hash is one of ``digests``."""
        n = 0
        for token in tokens:
            d = engine.digest(token)
            if d not in digests:
                continue
            kind = (kinds or {}).get(d, "known-secret")
            if engine.plausible(kind, token) and self.register(token, kind):
                n += 1
        return n

    # -- containers -----------------------------------------------------------------------------
    def obj(self, value):
        """Detect and mask every string inside nested dicts/lists."""
        return _walk(value, self.text, self._pair)

    def mask_obj(self, value):
        """Mask known values in every string inside nested dicts/lists."""
        return _walk(value, self.mask)

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` with every text cell (and text inside list/dict cells) scrubbed."""
        return self.frames([df])[0]

    def frames(self, dfs: list[pd.DataFrame], detect: bool = True) -> list[pd.DataFrame]:
        """``frame`` over several frames at once (a secret found in one is masked in all); with
        ``detect=False`` only the known values are masked.

        Two passes over the text columns, each one vectorised call for all of them (RE2 through pyarrow,
        on a column's own arrow buffer when it has one, on its distinct values when it repeats): (1) the
        prefilter flags the texts a rule could change and only those are detected in Python, registering
        what is found; (2) once everything is detected, one pass for every known value (including those
        just found in a later row, column or frame) selects the texts to mask."""
        outs = [df.copy(deep=False) for df in dfs]
        cols = [(k, j, c) for k, out in enumerate(outs) for j in range(out.shape[1])
                if (c := _Column.of(out.iloc[:, j])) is not None]
        columns = [c for _, _, c in cols]
        if detect:
            for c, flagged in zip(columns, _batched(columns, engine.flag, _SMALL_DETECT)):
                c.detect(self, flagged)
        if self._known:
            for c, hits in zip(columns, _batched(columns, self._known_hits, _SMALL_MASK)):
                c.mask(self, hits)
        for k, j, c in cols:
            if c.changed:
                outs[k].isetitem(j, c.result())
        for out, df in zip(outs, dfs):
            out.attrs = dict(df.attrs)
        return outs

    def _detect(self, value: str) -> str:
        """Detection only (no masking): ``value`` with detected secrets replaced, found ones registered."""
        found: list[tuple[str, str]] = []
        new = engine.detect(value, found)
        for kind, secret in found:
            self.register(secret, kind)
        return new

    def _pair(self, key: str, value: str) -> str:
        """``value`` of a dict item named ``key``, judged as the field rule judges ``"key": "value"`` in JSON:
        the secret it holds becomes its marker and is registered."""
        secret = engine.field_secret(key, '"' + value + '"', ":", True, "")
        if secret is None or secret not in value:
            return value
        self.register(secret, "secret-pair")
        return value.replace(secret, engine.marker("secret-pair", secret))

    def _known_hits(self, texts) -> np.ndarray:
        """Which of ``texts`` (arrow strings) hold a known value, through RE2."""
        import pyarrow.compute as pc

        if not self._known:
            return np.zeros(len(texts), bool)

        with self._lock:
            if self._patterns is None:
                lits = [_re2_literal(v) for v in self._known]
                self._patterns = ["|".join(lits[i:i + _PATTERN_VALUES]) for i in range(0, len(lits), _PATTERN_VALUES)]
            patterns = self._patterns
        hit = np.zeros(len(texts), bool)
        for pattern in patterns:
            m = pc.match_substring_regex(texts, pattern)
            hit |= np.asarray(m.fill_null(False).to_numpy(zero_copy_only=False), bool)
        return hit


#: Known values per RE2 pattern (a pattern of thousands of literals can exceed RE2's program budget).
_PATTERN_VALUES = 500
#: Up to this many texts in a frame, detection (AC-gated, per text) and masking (one Aho-Corasick pass
#: per text) run on every text, without the RE2 prefilter: cheaper than building its automaton.
_SMALL_DETECT, _SMALL_MASK = 256, 4096
#: Columns at least this long are checked for repetition on a sample; the texts are deduplicated
#: (dictionary-encoded) when at most half of the sample is distinct.
_DEDUP_MIN_ROWS, _DEDUP_SAMPLE = 4096, 1024
#: Up to this many changed texts, a column's new arrow data is chunks around them, not a copy.
_FEW_CHANGES = 2048
#: Object columns inferred as one of these hold no text: skipped without looking at a cell.
_NO_TEXT = frozenset({"integer", "floating", "mixed-integer-float", "decimal", "complex", "boolean", "datetime64",
                      "datetime", "date", "timedelta64", "timedelta", "time", "period", "interval", "bytes", "empty"})


class _Column:
    """One text column, as an arrow string array of the texts to scan (all rows, or the distinct values
    with ``codes`` mapping rows to them), plus the non-text cells (lists, dicts) of an object column."""

    def __init__(self, s: pd.Series, texts, codes=None, rows=None, others=None, kind: str = "arrow"):
        self.s, self.texts, self.codes, self.rows, self.kind = s, texts, codes, rows, kind
        self.others: dict[int, object] = others or {}  # row position -> container cell
        self.changes: dict[int, str] = {}  # index in texts -> new text
        self.other_changes: dict[int, object] = {}

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.other_changes)

    @classmethod
    def of(cls, s: pd.Series) -> _Column | None:
        import pyarrow as pa

        dtype = s.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            if not (pd.api.types.is_string_dtype(cats.dtype) or cats.dtype == object) or \
                    pd.api.types.infer_dtype(cats, skipna=True) != "string":
                return None
            return cls(s, pa.array(cats.to_numpy(dtype=object), type=pa.large_string()),
                       codes=s.cat.codes.to_numpy(), kind="category")
        if not (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)):
            return None
        if not pd.api.types.is_object_dtype(dtype):
            try:  # arrow-backed text (pandas' default str dtype): its buffer, no copy
                arr = pa.array(s.array)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                arr = None
            if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
                if isinstance(arr, pa.ChunkedArray):
                    arr = arr.combine_chunks()
                return cls._deduplicated(s, arr)
        values = s.to_numpy(dtype=object)
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred in _NO_TEXT:
            return None
        if inferred == "string":
            arr = pa.array(values, type=pa.large_string(), from_pandas=True)
            return cls._deduplicated(s, arr, kind="object")
        is_str = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
        others = {int(i): values[i] for i in np.flatnonzero(~is_str)
                  if isinstance(values[i], (list, tuple, dict, np.ndarray))}
        rows = np.flatnonzero(is_str)
        return cls(s, pa.array(values[rows], type=pa.large_string()), rows=rows, others=others, kind="object")

    @classmethod
    def _deduplicated(cls, s: pd.Series, arr, kind: str = "arrow") -> _Column:
        """Scan the distinct texts only when a sample says the column repeats (levels, hosts, messages of
        a flood); a column of distinct lines is scanned as it is (encoding it would cost more than it saves)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(arr)
        if n >= _DEDUP_MIN_ROWS:
            sample = arr.take(pa.array(np.linspace(0, n - 1, _DEDUP_SAMPLE).astype(np.int64)))
            if pc.count_distinct(sample, mode="all").as_py() <= _DEDUP_SAMPLE // 2:
                enc = pc.dictionary_encode(arr)
                codes = enc.indices.to_numpy(zero_copy_only=False)
                codes = np.where(enc.indices.is_null().to_numpy(zero_copy_only=False), -1, codes) \
                    if enc.indices.null_count else codes
                return cls(s, enc.dictionary, codes=codes.astype(np.int64), kind=kind)
        return cls(s, arr, kind=kind)

    # -- passes ---------------------------------------------------------------------------------
    def detect(self, scrubber: Scrubber, flagged: np.ndarray) -> None:
        """Detect in the texts the prefilter flagged (``flagged``: a boolean mask over ``texts``)."""
        import pyarrow as pa

        flagged = np.flatnonzero(flagged)
        if len(flagged):
            cache: dict[str, str] = {}
            for i, v in zip(flagged.tolist(), self.texts.take(pa.array(flagged)).to_pylist()):
                if v is None:
                    continue
                new = cache.get(v)
                if new is None:
                    new = cache[v] = scrubber._detect(v)
                if new != v:
                    self.changes[i] = new
        for pos, cell in self.others.items():
            new = _walk(cell, scrubber._detect, scrubber._pair)
            if not _same(new, cell):
                self.other_changes[pos] = new

    def mask(self, scrubber: Scrubber, hits: np.ndarray) -> None:
        """Mask the known values in the texts that hold one (``hits``: a boolean mask over ``texts``)."""
        import pyarrow as pa

        hits = np.flatnonzero(hits)
        if len(hits):
            for i, v in zip(hits.tolist(), self.texts.take(pa.array(hits)).to_pylist()):
                if v is None:
                    continue
                new = scrubber.mask(self.changes.get(i, v))
                if new != v:
                    self.changes[i] = new
        for pos, cell in self.others.items():
            cur = self.other_changes.get(pos, cell)
            new = scrubber.mask_obj(cur)
            if not _same(new, cell):
                self.other_changes[pos] = new

    # -- output ---------------------------------------------------------------------------------
    def _new_texts(self):
        """``texts`` with the changed ones replaced: unchanged runs are zero-copy slices, left as the chunks
        of a chunked array when the changes are few (copying a column of long lines costs as much as
        scanning it), concatenated once otherwise."""
        import pyarrow as pa

        if not self.changes:
            return self.texts
        idx = sorted(self.changes)
        repl = pa.array([self.changes[i] for i in idx], type=self.texts.type)
        parts, prev = [], 0
        for k, i in enumerate(idx):
            parts += [self.texts.slice(prev, i - prev), repl.slice(k, 1)]
            prev = i + 1
        parts.append(self.texts.slice(prev))
        return pa.chunked_array(parts) if len(idx) <= _FEW_CHANGES else pa.concat_arrays(parts)

    def result(self) -> pd.Series:
        import pyarrow as pa

        s = self.s
        texts = self._new_texts()
        codes = None if self.codes is None else pa.array(self.codes, mask=self.codes < 0)
        if self.kind == "category":
            new = texts.to_pylist()
            if len(set(new)) == len(new):
                return s.cat.rename_categories(new)
            return pd.Series(pd.Categorical(texts.take(codes).to_numpy(zero_copy_only=False)),
                             index=s.index, name=s.name)
        if self.kind == "arrow":
            return pd.Series(pd.array(texts if codes is None else texts.take(codes), dtype=s.dtype),
                             index=s.index, name=s.name)
        values = s.to_numpy(dtype=object).copy()
        if codes is not None:
            rows = np.flatnonzero(np.isin(self.codes, np.fromiter(self.changes, np.int64, len(self.changes))))
            values[rows] = texts.take(pa.array(self.codes[rows])).to_pylist()
        else:
            for i, v in self.changes.items():
                values[i if self.rows is None else self.rows[i]] = v
        for pos, v in self.other_changes.items():
            values[pos] = v
        out = pd.Series(values, index=s.index, name=s.name, dtype=object)
        return out if s.dtype == object else out.astype(s.dtype)


def _batched(cols: list[_Column], test, small: int) -> list[np.ndarray]:
    """``test`` (a vectorised RE2 test: arrow strings -> boolean mask) run once over the texts of every
    column: pyarrow builds a pattern's automaton on each call (~10-25 ms for the prefilter), more than
    scanning a small column costs. At most ``small`` texts in all: every text is selected (what the test
    would have ruled out, the Python pass leaves unchanged anyway)."""
    import pyarrow as pa

    if not cols:
        return []
    if sum(len(c.texts) for c in cols) <= small:
        return [np.ones(len(c.texts), bool) for c in cols]
    arrays = [c.texts if pa.types.is_large_string(c.texts.type) else c.texts.cast(pa.large_string()) for c in cols]
    mask = test(arrays[0] if len(arrays) == 1 else pa.chunked_array(arrays, type=pa.large_string()))
    bounds = np.cumsum([0] + [len(a) for a in arrays])
    return [mask[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _walk(value, fn, pair=None):
    """``fn`` on every string inside ``value``; with ``pair``, each string value of a dict first goes through
    ``pair(key, value)`` (the field rule on a ``{"password": "..."}`` the text rules never see as one)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _walk(pair(k, v) if pair is not None and isinstance(k, str) and isinstance(v, str) else v, fn, pair)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype == object):
        return [_walk(v, fn, pair) for v in value]
    return value


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


def _raw_tokens(value: str) -> set[str]:
    out = set()
    for run in _RUN.findall(value):
        out.add(run)
        stripped = run.strip(".:=/")
        if stripped != run and len(stripped) >= 8:
            out.add(stripped)
        out.update(_SUB.findall(run))
    return out
