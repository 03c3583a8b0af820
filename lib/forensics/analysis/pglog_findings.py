"""Findings and chart series from the PostgreSQL log captures (``pg_log_*``, :mod:`forensics.captures.pg_log`):
small JSON-able summaries the notebooks record, so the notebooks stay thin."""

from __future__ import annotations

import pandas as pd

from . import statements as stmts


def _iso(ts):
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()


def _short(text, width: int = 200):
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def top_statements(top: pd.DataFrame) -> list[dict]:
    """``queryid`` (None from the log), ``fingerprint``, ``query, total_ms, calls, mean_ms`` per statement,
    whichever source ranked them (:func:`forensics.analysis.statements.statements_source`)."""
    out = []
    for r in top.itertuples():
        qid = getattr(r, "queryid", None)
        out.append({"queryid": int(qid) if qid is not None and pd.notna(qid) else None,
                    "fingerprint": getattr(r, "fingerprint", None), "query": _short(r.query),
                    "total_ms": round(float(r.total_exec_time), 3), "calls": int(r.calls),
                    "mean_ms": round(float(r.mean_exec_time), 3) if pd.notna(r.mean_exec_time) else None})
    return out


def ranked_statements(source: dict, log_statements: pd.DataFrame, pss_ranked: pd.DataFrame) -> pd.DataFrame:
    """The ranking the chosen source gives (the log's when ``source`` says log)."""
    return stmts.from_log(log_statements) if source.get("source") == stmts.SOURCE_LOG else pss_ranked


def counted(frame: pd.DataFrame, ts: str = "timestamp") -> dict:
    """``{count, first_seen, last_seen}`` of an event frame."""
    if frame is None or not len(frame):
        return {"count": 0, "first_seen": None, "last_seen": None}
    return {"count": int(len(frame)), "first_seen": _iso(frame[ts].min()), "last_seen": _iso(frame[ts].max())}


def lock_trouble(waits: pd.DataFrame, deadlocks: pd.DataFrame) -> dict:
    """Lock waits (waiting / acquired, longest wait) and deadlocks with both statements."""
    w = waits if waits is not None else pd.DataFrame(columns=["state", "waited_ms"])
    return {"lock_waits": counted(w[w["state"] == "waiting"]) if len(w) else counted(None),
            "lock_acquired_after_wait": counted(w[w["state"] == "acquired"]) if len(w) else counted(None),
            "longest_wait_ms": float(w["waited_ms"].max()) if len(w) else None,
            "deadlocks": counted(deadlocks),
            "deadlock_statements": [[_short(r.statement_1), _short(r.statement_2)]
                                    for r in (deadlocks.head(5).itertuples() if deadlocks is not None else [])]}


def temp_files(temp: pd.DataFrame) -> dict:
    """Temporary files: count, total and largest size, and the statements that wrote the most."""
    if temp is None or not len(temp):
        return {**counted(None), "bytes": 0, "largest_bytes": None, "top_statements": []}
    by = temp.groupby(temp["query"].fillna("(no statement logged)"))["size_bytes"].agg(["count", "sum"])
    by = by.sort_values("sum", ascending=False).head(5)
    return {**counted(temp), "bytes": int(temp["size_bytes"].sum()), "largest_bytes": int(temp["size_bytes"].max()),
            "top_statements": [{"query": _short(q), "files": int(r["count"]), "bytes": int(r["sum"])}
                               for q, r in by.iterrows()]}


def checkpoints(ckpt: pd.DataFrame) -> dict:
    """Checkpoints completed (count, write seconds, by reason) and 'too frequently' warnings."""
    if ckpt is None or not len(ckpt):
        return {"checkpoints": 0, "write_s": 0.0, "by_reason": {}, "too_frequent": counted(None)}
    done = ckpt[ckpt["event"] == "complete"]
    reasons = done["reason"].fillna("unknown").value_counts()
    return {"checkpoints": int(len(done)), "write_s": round(float(done["write_s"].sum()), 3),
            "by_reason": {str(k): int(v) for k, v in reasons.items()},
            "too_frequent": counted(ckpt[ckpt["event"] == "too_frequent"])}


def by_column(frame: pd.DataFrame, column: str) -> dict:
    """Counts per value of ``column`` (missing as ``unknown``), most first."""
    if frame is None or not len(frame) or column not in frame:
        return {}
    return {str(k): int(v) for k, v in frame[column].fillna("unknown").value_counts().items()}


def sessions(sess: pd.DataFrame) -> dict:
    """Sessions ended: count, median and longest length (s)."""
    if sess is None or not len(sess):
        return {**counted(None), "median_s": None, "longest_s": None}
    return {**counted(sess), "median_s": round(float(sess["session_s"].median()), 3),
            "longest_s": round(float(sess["session_s"].max()), 3)}


def per_minute_series(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A wide, minute-indexed frame of ``columns`` for :func:`forensics.charts.timeseries`."""
    if frame is None or not len(frame):
        return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], tz="UTC"))
    return frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["minute"], utc=True)))[columns].astype(float)


def events_per_minute(frame: pd.DataFrame, by: str | None = None, value: str | None = None) -> pd.DataFrame:
    """Events (or the sum of ``value``) per minute, one column per value of ``by``."""
    if frame is None or not len(frame):
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    df = frame.assign(_k=frame[by].fillna("unknown") if by else "events", _v=frame[value] if value else 1.0)
    return (df.groupby([pd.Grouper(key="timestamp", freq="1min"), "_k"])["_v"].sum().unstack("_k", fill_value=0)
            .rename_axis(None, axis=1).astype(float))
