"""The final pass over a finished record: every secret found anywhere in it is masked everywhere in it.

Each notebook runs in its own kernel, so a secret found by one capture is unknown to the others. The
pass (1) detects in every text file and every parquet text column, registering what it finds, (2)
recovers, from the markers already in the record, the values of secrets that were redacted in another
process (tokens whose keyed hash equals a marker's digest), (3) masks every known value in every file,
rewriting only the files that change (atomically). Values stay in memory; nothing is written but the
scrubbed files.

Files that already went through detection with these rules when they were written (a fresh capture's
parquet, a notebook and its HTML redacted in the worker) are passed as ``detected``: step 1 skips them
(detecting again finds nothing new and was most of the runner's time after the notebooks), steps 2 and 3
still cover them.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import engine, shape
from .known import Scrubber, _plain

#: YAML is left out: a marker ``[REDACTED:...]`` would turn a scalar into a list, and the record's only
#: YAML (params.yaml) is secret-free by construction (a secret-looking parameter is refused).
TEXT_SUFFIXES = {".html", ".htm", ".md", ".json", ".txt", ".csv", ".log", ".tsv"}

#: known._RUN's delimiters as an RE2 split pattern (Python's \s also matches \v, \x1c-\x1f, \x85 and the
#: Unicode spaces, RE2's does not: they are spelt out) and known._SUB's.
_RUN_SPLIT = r"[\s\v\x{1c}-\x{1f}\x{85}\pZ\"'`<>()\[\]{},;|\\]+"
_SUB_SPLIT = r"[=:@/&?#]+"
_MIN_TOKEN = 8
#: tokens ``shape.worth_registering`` always refuses, as one RE2 pattern: one character class only (all
#: lowercase, all capitals, all digits; shape.classes) or words joined by punctuation (shape._WORDY)
_NEVER_REGISTERED = r"^(?:[a-z]+|[A-Z]+|[0-9]+)$|" + shape._WORDY.pattern


def _files(paths) -> list[Path]:
    out: list[Path] = []
    for p in [paths] if isinstance(paths, (str, Path)) else paths:
        p = Path(p)
        if p.is_dir():
            out.extend(q for q in sorted(p.rglob("*")) if q.is_file())
        elif p.is_file():
            out.append(p)
    return [p for p in out if p.suffix in TEXT_SUFFIXES | {".ipynb", ".parquet"}]


def _walk(value, fn, key=""):
    """Apply ``fn`` to every string of a notebook, except image outputs (base64 is not text)."""
    if isinstance(value, str):
        return value if key.startswith("image/") else fn(value)
    if isinstance(value, list):
        return [_walk(v, fn, key) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, fn, k) for k, v in value.items()}
    return value


def _strings(value, key=""):
    if isinstance(value, str):
        if not key.startswith("image/"):
            yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)


def _arrow_texts(content) -> list:
    """Every text of a file's content as arrow string arrays: a frame's text columns from their own
    buffers (list cells flattened), other cells and documents through Python."""
    if isinstance(content, pa.Table):
        return _table_texts(content)
    if not isinstance(content, pd.DataFrame):
        strings = list(_strings(content)) if isinstance(content, (dict, list)) else [content]
        return [pa.array(strings, type=pa.large_string())]
    out, loose = [], []
    for col in content.columns:
        s = content[col]
        if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)
                or isinstance(s.dtype, pd.CategoricalDtype)):
            continue
        try:
            arr = pa.array(s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            arr = None
        while arr is not None and (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            arr = pc.list_flatten(arr)
        if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            out.append(arr)
        else:  # dicts, mixed cells
            loose.extend(v for cell in s.dropna() for v in _strings(_plain(cell)))
    if loose:
        out.append(pa.array(loose, type=pa.large_string()))
    return out


def _table_texts(table: pa.Table) -> list:
    """A table's string columns (lists of strings flattened); another nested column through pandas."""
    out = []
    for name, col in zip(table.column_names, table.columns):
        t = col.type
        while pa.types.is_list(t) or pa.types.is_large_list(t):
            col, t = pc.list_flatten(col), t.value_type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            out.extend(col.chunks)
        elif pa.types.is_nested(t) or pa.types.is_dictionary(t):
            out.extend(_arrow_texts(pa.table({name: col}).to_pandas()))
    return out


def _large(arrays) -> list:
    return [a.cast(pa.large_string()) if pa.types.is_string(a.type) else a for a in arrays if len(a)]


def _marked(arrays) -> list[str]:
    """The texts that hold a marker, in one vectorised call over all of them."""
    arrays = _large(arrays)
    if not arrays:
        return []
    texts = pa.chunked_array(arrays, type=pa.large_string())
    return [t for t in texts.filter(pc.match_substring(texts, "[REDACTED:")).to_pylist() if t]


def candidate_tokens(arrays) -> set[str]:
    """``_tokens`` over ``arrays`` in as many threads as there are cores (up to 4): the Arrow kernels
    release the GIL, and the texts split into groups of about the same size."""
    arrays = sorted(_large(arrays), key=lambda a: -a.nbytes)
    parts = max(1, min(4, os.cpu_count() or 1, len(arrays)))
    if parts == 1:
        return _tokens(arrays)
    with ThreadPoolExecutor(max_workers=parts) as pool:
        return set().union(*pool.map(_tokens, [arrays[i::parts] for i in range(parts)]))


def _tokens(arrays) -> set[str]:
    """The distinct tokens of ``arrays`` that ``recover`` hashes, the set ``known._raw_tokens`` gives text by
    text, in a few vectorised calls: runs of 8+ characters between whitespace, quotes and brackets, each also
    trimmed of ``.:=/`` and split again at the delimiters of key=value, URLs and DSNs."""
    arrays = _large(arrays)
    if not arrays:
        return set()
    texts = pa.chunked_array(arrays, type=pa.large_string())
    # embedded figures are never masked (engine._PROTECTED) and their base64, split at "/", is most tokens
    texts = pc.replace_substring_regex(texts, engine.DATA_URI, "")
    runs = pc.unique(pc.list_flatten(pc.split_pattern_regex(texts, _RUN_SPLIT)))
    runs = runs.filter(pc.greater_equal(pc.utf8_length(runs), _MIN_TOKEN))
    trimmed = pc.utf8_trim(runs, ".:=/")
    trimmed = trimmed.filter(pc.greater_equal(pc.utf8_length(trimmed), _MIN_TOKEN))
    subs = pc.list_flatten(pc.split_pattern_regex(runs, _SUB_SPLIT))
    subs = subs.filter(pc.greater_equal(pc.utf8_length(subs), _MIN_TOKEN))
    tokens = pc.unique(pa.chunked_array([runs, trimmed, subs], type=pa.large_string()))
    return set(tokens.filter(pc.invert(pc.match_substring_regex(tokens, _NEVER_REGISTERED))).to_pylist())


class Ahead:
    """The final pass's reading of parquet captures done ahead, while the notebooks run: each file's Arrow
    table and texts, the marker digests in it, and its candidate tokens by keyed hash (in memory only).
    ``scrub_record_files`` uses an entry for a file whose size and modification time are unchanged, and
    reads any other file itself. Only for files in its ``detected`` (already scrubbed when written)."""

    def __init__(self) -> None:
        self._entries: dict[Path, tuple] = {}
        self._lock = threading.Lock()

    def add(self, paths) -> None:
        """Read ``paths`` now (one thread, beside the notebooks); a file that cannot be read is skipped."""
        for path in paths:
            path = Path(path)
            try:
                stamp, table = _stamp(path), pq.read_table(path)
            except (OSError, pa.ArrowInvalid):
                continue
            texts = _table_texts(table)
            by_digest: dict[str, list[str]] = {}
            for token in _tokens(texts):
                by_digest.setdefault(engine.digest(token), []).append(token)
            with self._lock:
                self._entries[path.resolve()] = (stamp, table, texts, _marker_kinds(texts), by_digest)

    def entry(self, path: Path) -> tuple | None:
        """(table, texts, marker kinds, tokens by digest) of ``path`` when it is as it was read, else None."""
        with self._lock:
            e = self._entries.get(Path(path).resolve())
        try:
            return e[1:] if e is not None and e[0] == _stamp(Path(path)) else None
        except OSError:
            return None


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _marker_kinds(arrays) -> dict[str, str]:
    """digest -> kind of every marker in ``arrays``."""
    kinds: dict[str, str] = {}
    for text in _marked(arrays):
        for m in engine.MARKER.finditer(text):
            kind, dig = m.group(0)[10:-1].rsplit(":", 1)
            kinds.setdefault(dig, kind)
    return kinds


def scrub_record_files(paths, scrubber: Scrubber | None = None, detected=(), ahead: Ahead | None = None,
                       keep=()) -> list[Path]:
    """Scrub the text files (ipynb, html, md, json, txt, csv, log) and parquet text columns under
    ``paths`` (a record directory or a list of files) so that a secret found in any of them is masked
    in all of them. ``detected``: files whose content already went through detection with these rules
    (they are masked, not detected again; a parquet file among them is read as Arrow and decoded into
    pandas only when it holds a known value). ``ahead``: what an :class:`Ahead` already read of them.
    ``keep``: files that are read (what they hold is detected and recovered, so it is masked in the
    others) but never rewritten: a replay's captures, which must stay the very bytes of the original
    record (already through the original's final pass). Returns the files rewritten."""
    scrubber = scrubber or Scrubber()
    detected = {Path(p).resolve() for p in detected}
    keep = {Path(p).resolve() for p in keep}
    files = _files(paths)
    early = {p: e for p in files if p.resolve() in detected and ahead is not None and (e := ahead.entry(p))}
    rest = [p for p in files if p not in early]
    with ThreadPoolExecutor(max_workers=4) as pool:  # parquet decoding releases the GIL
        loaded: dict[Path, object] = dict(zip(rest, pool.map(
            lambda p: _load(p, arrow=p.resolve() in detected), rest)))
    loaded.update({p: e[0] for p, e in early.items()})

    # 1. detect: scrub each file's content, registering the values found
    scrubbed = dict(loaded)
    fresh = [p for p in loaded if p.resolve() not in detected]
    frames = [p for p in fresh if isinstance(loaded[p], pd.DataFrame)]
    scrubbed.update(zip(frames, scrubber.frames([loaded[p] for p in frames])))  # one prefilter call for all
    for path in fresh:
        content = loaded[path]
        if isinstance(content, (dict, list)):
            scrubbed[path] = _walk(content, scrubber.text)
        elif isinstance(content, str):
            scrubbed[path] = scrubber.text(content)
    # 2. recover values redacted in other processes from the markers in the record
    texts = {path: early[path][1] if path in early else _arrow_texts(content) for path, content in scrubbed.items()}
    arrays = [a for path, arrs in texts.items() if path not in early for a in arrs]
    kinds = _marker_kinds(arrays)
    for e in early.values():
        kinds = e[2] | kinds
    digests = set(kinds) - scrubber.digests()
    if digests:
        scrubber.register_digests(candidate_tokens(arrays), digests, kinds)
        for e in early.values():
            for d in digests & e[3].keys():
                for token in e[3][d]:
                    if engine.plausible(kinds[d], token):  # a chance 32-bit match must have the kind's shape
                        scrubber.register(token, kinds[d])
    # 3. mask every known value everywhere; write what changed. An Arrow table without one is left as it is.
    written = []
    tables = [p for p, c in scrubbed.items() if isinstance(c, pa.Table)]
    for path in _holding_known(scrubber, tables, texts):
        scrubbed[path] = loaded[path] = _load(path)
    frames = [p for p, c in scrubbed.items() if isinstance(c, pd.DataFrame) and p.resolve() not in keep]
    masked = dict(zip(frames, scrubber.frames([scrubbed[p] for p in frames], detect=False)))
    for path, content in scrubbed.items():
        if isinstance(content, pa.Table) or path.resolve() in keep:
            continue
        if isinstance(content, pd.DataFrame):
            final = masked[path]
            if not final.equals(loaded[path]):
                tmp = path.with_name(path.name + ".tmp")
                final.to_parquet(tmp, index=False)
                os.replace(tmp, path)
                written.append(path)
            continue
        if isinstance(content, (dict, list)):
            final = _walk(content, scrubber.mask)
            if final != loaded[path]:
                _write_text(path, json.dumps(final, indent=1, ensure_ascii=False) + "\n")
                written.append(path)
            continue
        final = scrubber.mask(content)
        if final != loaded[path]:
            _write_text(path, final)
            written.append(path)
    return written


def _holding_known(scrubber: Scrubber, tables: list[Path], texts: dict[Path, list]) -> list[Path]:
    """The Arrow tables among ``tables`` with a known value in a text, in one RE2 pass over all of them
    (pyarrow compiles the pattern on every call)."""
    if not len(scrubber) or not tables:
        return []
    arrays = [(path, a) for path in tables for a in _large(texts[path])]
    if not arrays:
        return []
    hits = scrubber._known_hits(pa.chunked_array([a for _, a in arrays], type=pa.large_string()))
    bounds = np.cumsum([0] + [len(a) for _, a in arrays])
    return list(dict.fromkeys(path for (path, _), a, b in zip(arrays, bounds[:-1], bounds[1:]) if hits[a:b].any()))


def _load(path: Path, arrow: bool = False):
    if path.suffix == ".parquet":
        return pq.read_table(path) if arrow else pd.read_parquet(path)
    if path.suffix == ".ipynb":
        return json.loads(path.read_text(encoding="utf-8"))
    return path.read_text(encoding="utf-8", errors="surrogateescape")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, path)
