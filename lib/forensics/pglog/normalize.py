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
_STRING = r"(?:[EeBbXxNn]|[Uu]&)?'(?:[^']|'')*'"
_NUMBER = r"(^|[^\w$.\x01])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
#: a minus sign right after an operator, a comma or a parenthesis belongs to the constant (PostgreSQL folds it)
_NEGATIVE = r"([=<>(,+*/%-]\s*)-\x01"
_PARAM = re.compile(r"\$(\d+)")


def prenormalise(texts: pa.Array) -> pa.Array:
    """Step 1 on an Arrow string array (vectorised)."""
    t = pc.utf8_trim_whitespace(texts.cast(pa.large_string()))
    t = pc.replace_substring_regex(t, _STRING, MARK)
    t = pc.replace_substring_regex(t, _NUMBER, "\\1" + MARK)
    t = pc.replace_substring_regex(t, _NEGATIVE, "\\1" + MARK)
    t = pc.replace_substring_regex(t, r"\s+", " ")
    return pc.utf8_rtrim(pc.utf8_rtrim_whitespace(t), characters="; ")


def number(shape: str) -> str:
    """Placeholders numbered ``$k``, from one past the highest ``$n`` already in the text."""
    if MARK not in shape:
        return shape
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


def normalise(texts) -> pd.DataFrame:
    """``query`` (pg_stat_statements' shape) and ``fingerprint`` for each text (an Arrow array or sequence)."""
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(list(texts), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    shapes = pc.dictionary_encode(prenormalise(arr).cast(pa.string()))
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
    return " ".join(q.replace(";", " ").split())
