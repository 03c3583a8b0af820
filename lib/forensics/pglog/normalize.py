"""Statements normalised to pg_stat_statements' shape (constants as ``$1``, ``$2``...) and fingerprinted.

Two steps, so the cost is per distinct statement shape, not per logged statement:

1. vectorised (RE2 over every statement at once): string literals (``'...'``, ``E'...'``, ``B'...'``,
   ``X'...'``) and numbers (not inside identifiers or ``$n``) become a placeholder, whitespace runs one
   space, a trailing ``;`` dropped;
2. per distinct shape: placeholders numbered from one past the statement's own highest ``$n`` (what
   pg_stat_statements does for an extended-protocol statement), and the fingerprint: libpg_query's
   (``pglast.parser.fingerprint``, the parse tree without its constants: two texts differing only in
   constants, case or spacing share it) when the text parses, else a hash of the normalised text.

The fingerprint of a pg_stat_statements ``query`` is computed the same way (:func:`fingerprint`), so the
log's statements and pg_stat_statements' rows join on it. Measured against pg_stat_statements' own
normalisation on a real server: ``tests/integration/test_pglog_normalize_live.py``.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MARK = "\x01"
#: string literals (E'', B'', X'', N'', U&''), doubled quotes inside
_STRING = r"(?:[EeBbXxNn]|[Uu]&)?'(?:[^']|'')*'"
#: numbers starting a word (``t1`` and ``$1`` keep theirs: ``$`` is made ``$_`` first, a word character);
#: no capture group, so RE2 replaces with its DFA
_NUMBER = r"\b(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_PARAM = re.compile(r"\$(\d+)")


_WORD = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$", dtype=np.uint8)


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(offsets relative to the data, the data bytes, a validity mask or None) of a string array."""
    arr = arr.cast(pa.large_string())
    validity, offs, data = arr.buffers()
    offsets = np.frombuffer(offs, dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    valid = np.asarray(arr.is_valid()) if arr.null_count else None
    return offsets, raw, valid


def _after(a: np.ndarray, fill) -> np.ndarray:
    """``a`` shifted one to the right (each element's predecessor), ``fill`` first."""
    out = np.empty_like(a)
    out[0:1] = fill
    out[1:] = a[:-1]
    return out


def _before(a: np.ndarray, fill) -> np.ndarray:
    """``a`` shifted one to the left (each element's successor), ``fill`` last."""
    out = np.empty_like(a)
    out[-1:] = fill
    out[:-1] = a[1:]
    return out


def _skipped(texts: pa.Array, skip: np.ndarray) -> pa.Array:
    """Each text without its first ``skip`` bytes, as views on the same data (no copy of the texts)."""
    offsets, raw, valid = _buffers(texts)
    starts = offsets[:-1] + np.minimum(skip.astype(np.int64), np.diff(offsets))
    spans = np.empty(2 * len(starts) + 1, dtype=np.int64)
    spans[0:-1:2], spans[1:-1:2], spans[-1] = starts, offsets[1:], offsets[-1]
    data = texts.cast(pa.large_string()).buffers()[2]
    views = pa.LargeStringArray.from_buffers(2 * len(starts), pa.py_buffer(spans.tobytes()), data)
    out = views.take(pa.array(np.arange(0, 2 * len(starts), 2)))
    return out if valid is None else pc.if_else(pa.array(valid), out, pa.scalar(None, pa.large_string()))


def prenormalise(texts: pa.Array, skip: np.ndarray | None = None) -> pa.Array:
    """Step 1 on an Arrow string array, on its bytes with numpy (no regex): each string literal and each
    number starting a word becomes one :data:`MARK`, whitespace runs one space, the ends trimmed and a
    trailing ``;`` dropped. ``skip``: bytes to leave out at each text's start (the ``duration: ... statement:``
    head of a log message)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    n = len(texts)
    if n == 0:
        return pa.array([], type=pa.large_string())
    offsets, raw, valid = _buffers(texts)
    starts = offsets[:-1] + (np.minimum(skip.astype(np.int64), np.diff(offsets)) if skip is not None else 0)
    ends = offsets[1:]
    base = int(offsets[0])
    b = raw[base: int(offsets[-1])]
    lens = ends - starts
    if skip is not None and int(lens.sum()) != len(b):
        inside = (np.bincount(starts - base, minlength=len(b) + 1).astype(np.int32)
                  - np.bincount(ends - base, minlength=len(b) + 1).astype(np.int32))
        b = b[np.cumsum(inside[:-1], dtype=np.int32) > 0]
    if not len(b):
        return pc.if_else(texts.is_valid(), pa.scalar("", pa.large_string()), pa.scalar(None, pa.large_string()))
    new_starts = np.concatenate((np.zeros(1, np.int64), np.cumsum(lens)[:-1]))
    first = np.zeros(len(b), dtype=bool)
    first[new_starts[lens > 0]] = True
    prev = _after(b, 32)
    prev[first] = 32
    # string literals: quote parity, restarted at each text (a text with an odd count cannot leak)
    q = b == 39
    par = np.bitwise_xor.accumulate(q.view(np.uint8))
    carry = _after(par, 0)[new_starts.clip(max=len(b) - 1)]
    carry[lens == 0] = 0
    parity = par ^ np.repeat(carry, lens)
    opening = q & (parity == 1)
    closing = q & (parity == 0)
    in_str = (parity == 1) & ~opening | closing
    prev_closing = _after(closing, False)
    prev_closing[first] = False
    opening_mark = opening & ~prev_closing  # 'a''b' is one literal
    in_str |= opening & prev_closing
    # numbers starting a word, outside literals
    isd = (b >= 48) & (b <= 57) & ~in_str & ~opening
    nxt = _before(isd, False)
    prv = _after(isd, False)
    prv[first] = False
    nxt2 = _before(nxt, False)
    is_e = (b == 101) | (b == 69)
    is_sign = (b == 43) | (b == 45)
    exp = is_e & prv & (nxt | (_before(is_sign, False) & nxt2))  # 1.5e3, 2E-4
    exp_sign = is_sign & _after(exp, False) & nxt
    num = isd | ((b == 46) & prv & nxt) | exp | exp_sign
    num_prev = _after(num, False)
    num_prev[first] = False
    run_start = num & ~num_prev
    starts_at = np.flatnonzero(run_start)
    p = prev[starts_at]
    wordish = ((p >= 65) & (p <= 90)) | ((p >= 97) & (p <= 122)) | (p == 95) | (p == 36) | (p >= 128)
    # a run is a number unless it continues a word: spread each run's verdict over its bytes
    at_num = np.flatnonzero(num)
    run_len = np.diff(np.append(np.searchsorted(at_num, starts_at), len(at_num)))
    num_char = np.zeros(len(b), dtype=bool)
    num_char[at_num] = np.repeat(~wordish, run_len)
    # E'...', B'...', X'...', N'...': the prefix letter belongs to the literal (when it starts a word)
    at = np.flatnonzero(opening_mark & ~first)
    letter = at[np.isin(b[at - 1], np.frombuffer(b"EeBbXxNn", dtype=np.uint8))]
    ok = ~first[letter - 1] & ~np.isin(b[np.maximum(letter - 2, 0)], _WORD)
    ok |= first[letter - 1]
    in_str[letter[ok] - 1] = True
    mark = opening_mark | (num_char & run_start)
    drop = in_str | (num_char & ~run_start)
    # whitespace: runs to one space (outside literals)
    ws = ((b == 32) | (b == 9) | (b == 10) | (b == 13)) & ~in_str
    ws_prev = _after(ws, False)
    ws_prev[first] = False
    drop |= ws & ws_prev
    out = b.copy()
    out[ws] = 32
    out[mark] = 1
    keep = ~drop
    bounds = np.append(new_starts, len(b))
    new_offsets = bounds - np.searchsorted(np.flatnonzero(drop), bounds)  # few bytes are dropped: count those
    data = out[keep]
    mask = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(new_offsets.astype(np.int64).tobytes()),
                                           pa.py_buffer(data.tobytes()), mask)
    return pc.utf8_rtrim(pc.utf8_trim_whitespace(arr), characters="; ")


_NEG = re.compile(r"([=<>(,+*/%-]\s*)-\x01")


def number(shape: str) -> str:
    """Placeholders numbered ``$k``, from one past the highest ``$n`` already in the text; a minus sign
    folded into the constant after an operator, a comma or a parenthesis, as PostgreSQL's grammar does."""
    if MARK not in shape:
        return shape
    if "-" + MARK in shape:
        shape = _NEG.sub("\\1" + MARK, shape)
    used = [int(m) for m in _PARAM.findall(shape)]
    k = max(used, default=0)
    parts = shape.split(MARK)
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${k + i}")
        out.append(part)
    return "".join(out)


def fingerprint(query: str) -> str:
    """libpg_query's fingerprint of a (normalised or literal) statement, else ``t`` + a hash of its text."""
    try:
        from pglast.parser import fingerprint as fp

        return fp(query)
    except Exception:  # noqa: BLE001 - not SQL pglast can parse (a truncated or non-SQL text): its text hash
        return "t" + hashlib.sha1(" ".join(str(query).split()).lower().encode()).hexdigest()[:15]


def normalise(texts, skip: np.ndarray | None = None) -> pd.DataFrame:
    """``query`` (pg_stat_statements' shape) and ``fingerprint`` for each text (an Arrow array or sequence);
    ``skip`` as in :func:`prenormalise`."""
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(list(texts), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if skip is not None:
        arr = _skipped(arr, skip)
    distinct = pc.dictionary_encode(arr)  # exact repeats (bind parameters, ORMs) normalised once
    shapes = pc.dictionary_encode(pc.take(prenormalise(distinct.dictionary).cast(pa.string()), distinct.indices))
    uniq = shapes.dictionary.to_pylist()
    queries = [number(s) for s in uniq]
    prints = [fingerprint(q) for q in queries]
    idx = np.asarray(shapes.indices.fill_null(0), dtype=np.int64)
    q = np.asarray(queries, dtype=object)[idx] if uniq else np.array([], dtype=object)
    f = np.asarray(prints, dtype=object)[idx] if uniq else np.array([], dtype=object)
    if shapes.indices.null_count:
        nulls = np.asarray(shapes.indices.is_null())
        q[nulls] = None
        f[nulls] = None
    return pd.DataFrame({"query": pd.array(q, dtype="str"), "fingerprint": pd.array(f, dtype="str")})


def comparable(query: str) -> str:
    """A key for comparing normalisations written differently (pgbadger's ``?``, lower case, ``in (...)``)."""
    q = re.sub(r"\$\d+|\?|'[^']*'|\b\d+(?:\.\d+)?\b", "?", str(query).lower())
    q = re.sub(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(?)", q)
    q = " ".join(q.replace(";", " ").split())
    return re.sub(r"^(?:begin|start transaction) (?=\S)", "", q)  # pgbadger drops a leading BEGIN
