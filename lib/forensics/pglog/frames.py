"""The common ground of the PostgreSQL log extractors (:mod:`.extract`, :mod:`.activity`): Arrow/pandas
conversions, bounded texts, and each entry's kind (what its message starts with)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import normalize, sqlstate  # noqa: F401

MAX_TEXT = 2000
ERROR_LEVELS = ("ERROR", "FATAL", "PANIC", "WARNING")
_STR = {pa.string(): pd.StringDtype("pyarrow", na_value=np.nan)}


def _arrow(s: pd.Series) -> pa.Array:
    a = pa.array(s, type=pa.string(), from_pandas=True)
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _pd(a, index=None) -> pd.Series:
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    s = a.cast(pa.string()).to_pandas(types_mapper=_STR.get)
    if index is not None:
        s.index = index
    return s


def _bounded(s: pd.Series, limit: int = MAX_TEXT) -> pd.Series:
    return _pd(pc.utf8_slice_codeunits(_arrow(s), 0, limit), s.index)


def _nonempty(a: pa.Array, valid=None) -> pa.Array:
    """Arrow's extract_regex gives '' for a group that took no part (and for a row that did not match)."""
    keep = pc.not_equal(a, "")
    if valid is not None:
        keep = pc.and_(keep, valid)
    return pc.if_else(keep, a, pa.scalar(None, a.type))


def _num(a: pa.Array) -> np.ndarray:
    a = _nonempty(a)
    return np.asarray(pc.cast(a, pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=float)


#: the kinds of entry, by how the message starts (PostgreSQL's own English words), first match wins
KINDS = (("duration", ("duration: ",)), ("logged_statement", ("statement: ", "execute ")),
         ("conn_received", ("connection received: ",)), ("conn_authorized", ("connection authorized: ",)),
         ("disconnection", ("disconnection: ",)),
         ("ckpt_start", ("checkpoint starting: ", "restartpoint starting: ")),
         ("ckpt_done", ("checkpoint complete: ", "restartpoint complete: ")),
         ("ckpt_warn", ("checkpoints are occurring too frequently",)), ("temp_file", ("temporary file: ",)),
         ("autovacuum", ("automatic vacuum of table ", "automatic aggressive vacuum", "automatic analyze of table ")),
         ("lock", ("process ",)), ("deadlock", ("deadlock detected",)),
         ("cancel", ("canceling ", "terminating connection due to ")),
         ("conn_refused", ("sorry, too many clients", "remaining connection slots are reserved",
                           "too many connections for")))


def kinds(entries: pd.DataFrame) -> np.ndarray:
    """Each entry's kind (:data:`KINDS`; ``""`` for the rest), from its message's first 48 characters. The
    frame's own ``kind`` column when it has one (:func:`analyse` adds it once)."""
    if "kind" in entries:
        return entries["kind"].to_numpy(dtype=object)
    head = pc.utf8_slice_codeunits(_arrow(entries["message"]), 0, 48)
    out = np.full(len(entries), "", dtype=object)
    for kind, prefixes in reversed(KINDS):
        for p in prefixes:
            hit = np.asarray(pc.fill_null(pc.starts_with(head, p), False))
            out[hit] = kind
    return out


def _of(entries: pd.DataFrame, *wanted: str) -> pd.DataFrame:
    return entries[np.isin(kinds(entries), wanted)]


def _starts(entries: pd.DataFrame, *prefixes: str) -> np.ndarray:
    msg = _arrow(entries["message"])
    mask = np.zeros(len(entries), dtype=bool)
    for p in prefixes:
        mask |= np.asarray(pc.fill_null(pc.starts_with(msg, p), False))
    return mask


def _fields(entries: pd.DataFrame, rx: str, limit: int = 400) -> pd.DataFrame:
    """Named groups of ``rx`` (RE2) on each message's first ``limit`` characters (NaN where it fails)."""
    st = pc.extract_regex(pc.utf8_slice_codeunits(_arrow(entries["message"]), 0, limit), rx)
    valid = st.is_valid()
    return pd.DataFrame({f.name: _pd(_nonempty(st.field(i), valid), entries.index) for i, f in enumerate(st.type)},
                        index=entries.index)


def _who(entries: pd.DataFrame) -> pd.DataFrame:
    return entries[["timestamp", "pid", "user", "database", "client", "application"]]
