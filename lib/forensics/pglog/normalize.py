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


def prenormalise(texts: pa.Array, skip: np.ndarray | None = None) -> pa.Array:
    """Step 1 on an Arrow string array, on its bytes with numpy (no regex): each string literal and each
    number starting a word becomes one :data:`MARK`, whitespace runs one space, the ends trimmed and a
    trailing ``;`` dropped. ``skip``: bytes to leave out at each text's start (the ``duration: ... statement:``
    head of a log message)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    n = len(texts)
    offsets, raw, valid = _buffers(texts)
    starts = offsets[:-1] + (np.minimum(skip.astype(np.int64), np.diff(offsets)) if skip is not None else 0)
    ends = offsets[1:]
    if n == 0:
        return pa.array([], type=pa.large_string())
    base = int(offsets[0])
    b = raw[base: int(offsets[-1])]
    lens = ends - starts
    # the bytes of the texts (skipped heads dropped), with each byte's text number
    if skip is not None and int(lens.sum()) != len(b):
        inside = (np.bincount(starts - base, minlength=len(b) + 1).astype(np.int32)
                  - np.bincount(ends - base, minlength=len(b) + 1).astype(np.int32))
        b = b[np.cumsum(inside[:-1], dtype=np.int32) > 0]
    sid = np.repeat(np.arange(n, dtype=np.int32), lens)
    first = np.zeros(len(b), dtype=bool)
    new_starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    first[new_starts[lens > 0]] = True
    prev = np.concatenate(([32], b[:-1])).astype(np.uint8)
    prev[first] = 32
    # string literals: quote parity within each text
    q = b == 39
    cq = np.cumsum(q, dtype=np.int32)
    before = np.concatenate((np.zeros(1, np.int32), cq))[new_starts]
    parity = (cq - before[sid]) % 2
    opening = q & (parity == 1)
    in_str = (parity == 1) & ~opening | (q & (parity == 0))
    prev_closing = np.concatenate(([False], q[:-1] & (parity[:-1] == 0)))
    prev_closing[first] = False
    opening_mark = opening & ~prev_closing  # 'a''b' is one literal
    in_str |= opening & prev_closing
    # numbers starting a word, outside literals
    isd = (b >= 48) & (b <= 57) & ~in_str & ~opening
    nxt = np.concatenate((isd[1:], [False]))
    prv = np.concatenate(([False], isd[:-1]))
    prv[first] = False
    nxt2 = np.concatenate((isd[2:], [False, False]))
    is_e = (b == 101) | (b == 69)
    is_sign = (b == 43) | (b == 45)
    exp = is_e & prv & (nxt | (np.concatenate((is_sign[1:], [False])) & nxt2))  # 1.5e3, 2E-4
    exp_sign = is_sign & np.concatenate(([False], exp[:-1])) & nxt
    num = isd | ((b == 46) & prv & nxt) | exp | exp_sign
    num_prev = np.concatenate(([False], num[:-1]))
    num_prev[first] = False
    run_start = num & ~num_prev
    wordish = ((prev >= 65) & (prev <= 90)) | ((prev >= 97) & (prev <= 122)) | (prev == 95) | (prev == 36) | (prev >= 128)
    label = np.cumsum(run_start, dtype=np.int32)
    is_number = np.zeros(int(label[-1]) + 1 if len(label) else 1, dtype=bool)
    is_number[label[run_start]] = ~wordish[run_start]
    num_char = num & is_number[label]
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
    ws_prev = np.concatenate(([False], ws[:-1]))
    ws_prev[first] = False
    drop |= ws & ws_prev
    out = b.copy()
    out[ws] = 32
    out[mark] = 1
    keep = ~drop
    ck = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    new_offsets = ck[np.append(new_starts, len(b))]
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
    shapes = pc.dictionary_encode(prenormalise(arr, skip).cast(pa.string()))
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
