"""What did the database spend its time on *during the window*? The delta of two pg_stat_statements
snapshots.

pg_stat_statements is cumulative since the last reset, and entries are evicted (least used first)
when ``pg_stat_statements.max`` is reached, then re-created from zero if the statement runs again.
A naive ``after - before`` is then silently wrong, so every way a delta can be wrong is flagged:

- per row: ``new`` (no entry before: all its counts are in the window), ``evicted`` (gone after:
  its window counts are unknown, NaN), ``reset_suspected`` (a counter went backwards: the entry was
  reset or evicted and re-created; the delta is then the counts since, a lower bound);
- per frame, from ``pg_stat_statements_info``: ``attrs["stats_reset"]`` (True when its stats_reset
  changed between the snapshots: every delta is then "since the reset", a lower bound) and
  ``attrs["dealloc_delta"]`` (entries deallocated in between: any row may be a re-created entry).
  ``attrs["warnings"]`` says it in words for the notebook.

:func:`by_time_spent` is the one ranking every notebook and the postmortem use for "slow statements":
time spent in the window (the delta) when two snapshots bracket it, else total time since the last
reset; one-off utility, DDL and bulk-load statements and our own collector's are listed apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

KEY = ("queryid", "userid", "dbid", "toplevel")
#: Cumulative counters (mean/min/max/stddev are not: they are derived or not additive).
COUNTERS = (
    "calls",
    "total_exec_time",
    "total_plan_time",
    "plans",
    "rows",
    "shared_blks_hit",
    "shared_blks_read",
    "shared_blks_dirtied",
    "shared_blks_written",
    "local_blks_hit",
    "local_blks_read",
    "local_blks_dirtied",
    "local_blks_written",
    "temp_blks_read",
    "temp_blks_written",
    "blk_read_time",
    "blk_write_time",
    "shared_blk_read_time",
    "shared_blk_write_time",
    "wal_records",
    "wal_fpi",
    "wal_bytes",
)
LABELS = ("query", "usename", "datname")


def _info(info) -> dict:
    """pg_stat_statements_info as a dict, from a dict, a Series or a one-row frame."""
    if info is None:
        return {}
    if isinstance(info, pd.DataFrame):
        return {} if info.empty else info.iloc[0].to_dict()
    if isinstance(info, (pd.Series, Mapping)):
        return dict(info)
    raise TypeError(f"info must be a dict or a pg_stat_statements_info frame, not {type(info).__name__}")


def _ts(value) -> pd.Timestamp | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _snapshot_at(frame: pd.DataFrame) -> pd.Timestamp | None:
    if "snapshot_at" not in frame or frame.empty:
        return None
    return _ts(pd.to_datetime(frame["snapshot_at"], utc=True).max())


def delta(
    before: pd.DataFrame,
    after: pd.DataFrame,
    info_before: Mapping | pd.DataFrame | None = None,
    info_after: Mapping | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per statement key seen in either snapshot, with the window's counts.

    Columns: the key (``queryid, userid, dbid`` and ``toplevel`` when captured), ``query`` (and
    ``usename``/``datname`` when present), the delta of every counter present in both snapshots
    under its own name, ``mean_exec_time`` (in the window: d total / d calls), ``mean_exec_time_before``
    (cumulative mean up to the first snapshot), ``calls_per_s``, and the flags ``new``, ``evicted``,
    ``reset_suspected``.
    """
    key = [k for k in KEY if k in before.columns and k in after.columns]
    if "queryid" not in key:
        raise ValueError("pg_stat_statements snapshots need a queryid column")
    counters = [c for c in COUNTERS if c in before.columns and c in after.columns]
    labels = [c for c in LABELS if c in before.columns or c in after.columns]

    b = before.drop_duplicates(key, keep="last").set_index(key)
    a = after.drop_duplicates(key, keep="last").set_index(key)
    index = a.index.union(b.index, sort=False)
    b = b.reindex(index)
    a = a.reindex(index)
    in_before = b["calls"].notna().to_numpy() if "calls" in b else np.ones(len(index), bool)
    in_after = a["calls"].notna().to_numpy() if "calls" in a else np.ones(len(index), bool)

    ib, ia = _info(info_before), _info(info_after)
    reset_b, reset_a = _ts(ib.get("stats_reset")), _ts(ia.get("stats_reset"))
    stats_reset = reset_b is not None and reset_a is not None and reset_a != reset_b
    dealloc_delta = None
    if ib.get("dealloc") is not None and ia.get("dealloc") is not None:
        if pd.notna(ib["dealloc"]) and pd.notna(ia["dealloc"]):
            dealloc_delta = int(ia["dealloc"] - ib["dealloc"])

    out = pd.DataFrame(index=index)
    for col in labels:
        left = a[col] if col in a else pd.Series(pd.NA, index=index)
        right = b[col] if col in b else pd.Series(pd.NA, index=index)
        out[col] = left.where(left.notna(), right)

    after_vals = a[counters].astype("float64")
    before_vals = b[counters].astype("float64")
    backwards = (after_vals < before_vals).any(axis=1).to_numpy() & in_before & in_after
    reset_rows = backwards | (stats_reset & in_after)
    diff = after_vals - before_vals.fillna(0.0)
    # New entries and entries reset in between: the counts since (re)creation are all in the window.
    since = ~in_before | reset_rows
    diff.loc[since] = after_vals.loc[since]
    for col in counters:
        out[col] = diff[col]

    if "calls" in counters and "total_exec_time" in counters:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["mean_exec_time"] = (out["total_exec_time"] / out["calls"].where(out["calls"] > 0)).astype(
                "float64"
            )
            out["mean_exec_time_before"] = (
                b["total_exec_time"].astype("float64") / b["calls"].astype("float64").where(b["calls"] > 0)
            ).astype("float64")
    t0, t1 = _snapshot_at(before), _snapshot_at(after)
    seconds = (t1 - t0).total_seconds() if t0 is not None and t1 is not None else None
    if "calls" in counters:
        out["calls_per_s"] = out["calls"] / seconds if seconds and seconds > 0 else np.nan
    out["new"] = ~in_before
    out["evicted"] = in_before & ~in_after
    out["reset_suspected"] = reset_rows
    out = out.reset_index()
    if "total_exec_time" in out:
        out = out.sort_values("total_exec_time", ascending=False, na_position="last", kind="stable")
    out = out.reset_index(drop=True)

    warnings = []
    if stats_reset:
        warnings.append(
            f"pg_stat_statements was reset at {reset_a.isoformat()} between the snapshots: "
            "every delta counts only since the reset (a lower bound)"
        )
    if dealloc_delta:
        warnings.append(
            f"{dealloc_delta} pg_stat_statements entries were deallocated between the snapshots "
            "(pg_stat_statements.max reached): any statement may have been evicted and re-created"
        )
    if out["reset_suspected"].any() and not stats_reset:
        warnings.append(
            f"{int(out['reset_suspected'].sum())} statements' counters went backwards (reset or re-created)"
        )
    if out["evicted"].any():
        warnings.append(
            f"{int(out['evicted'].sum())} statements were evicted: their window counts are unknown"
        )
    out.attrs.update(
        {
            "stats_reset": bool(stats_reset),
            "stats_reset_at": reset_a.isoformat() if stats_reset else None,
            "dealloc_delta": dealloc_delta,
            "before_at": t0.isoformat() if t0 is not None else None,
            "after_at": t1.isoformat() if t1 is not None else None,
            "seconds": seconds,
            "warnings": warnings,
        }
    )
    return out


def top(delta_frame: pd.DataFrame, n: int = 10, by: str = "total_exec_time") -> pd.DataFrame:
    """The ``n`` statements with the most ``by`` in the window (evicted ones, unknown, left out)."""
    sel = delta_frame[delta_frame[by].notna()]
    if "evicted" in sel:
        sel = sel[~sel["evicted"].astype(bool)]
    out = sel.sort_values(by, ascending=False, kind="stable").head(n).reset_index(drop=True)
    out.attrs = dict(delta_frame.attrs)
    return out


#: Absolute floors of :func:`regressed`: at least this many calls in the window, and at least this
#: mean time per call (ms) now. Below them a ratio is noise.
REGRESSION_MIN_CALLS = 5
REGRESSION_MIN_MEAN_MS = 1.0


def regressed(
    delta_frame: pd.DataFrame, before: pd.DataFrame | None = None, factor: float = 2.0,
    min_calls: int = REGRESSION_MIN_CALLS, min_mean_ms: float = REGRESSION_MIN_MEAN_MS,
) -> pd.DataFrame:
    """Statements whose mean time in the window is at least ``factor`` x their mean before it.

    A ratio alone is noise for cheap or rare statements (0.006 -> 0.03 ms from one call is "5x"): a
    statement must also have run at least ``min_calls`` times in the window and take at least
    ``min_mean_ms`` per call now (docs/diagnosis-bank.md, "Absolute floors").

    The mean before comes from ``delta_frame["mean_exec_time_before"]`` or, when ``before`` is
    given, from its cumulative totals. Ordered by the time the regression cost in the window
    (``excess_time = calls x (mean now - mean before)``), with ``ratio``. New statements have no
    "before" and are not listed (see ``delta_frame["new"]``).
    """
    d = delta_frame.copy()
    if before is not None and {"calls", "total_exec_time"} <= set(before.columns):
        key = [k for k in KEY if k in before.columns and k in d.columns]
        b = before.drop_duplicates(key, keep="last")[[*key, "calls", "total_exec_time"]].copy()
        b["mean_exec_time_before"] = b["total_exec_time"] / b["calls"].where(b["calls"] > 0)
        d = d.drop(columns=["mean_exec_time_before"], errors="ignore").merge(
            b[[*key, "mean_exec_time_before"]], on=key, how="left"
        )
    d = d[(d["calls"] >= min_calls) & d["mean_exec_time_before"].gt(0) & d["mean_exec_time"].notna()
          & d["mean_exec_time"].ge(min_mean_ms)]
    d = d.assign(ratio=d["mean_exec_time"] / d["mean_exec_time_before"])
    d = d[d["ratio"] >= factor]
    d = d.assign(excess_time=d["calls"] * (d["mean_exec_time"] - d["mean_exec_time_before"]))
    out = d.sort_values("excess_time", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs = dict(delta_frame.attrs)
    return out


#: The collector's own statements (snapshots, session set-up) and catalog reads: not the application's.
COLLECTOR = re.compile(
    r"pg_stat_statements|^\s*SHOW\s+default_transaction_read_only|^\s*SET\s+SESSION|pg_stat_activity|pg_locks"
    r"|pg_blocking_pids|current_setting\('server_version'\)",
    re.IGNORECASE,
)
#: Utility and DDL statements: run once by a migration, an operator or a maintenance job, however long
#: they took, they are not the load an incident is made of.
UTILITY = re.compile(
    r"^\s*(CREATE|ALTER|DROP|COPY|VACUUM|ANALYZE|REINDEX|CLUSTER|TRUNCATE|GRANT|REVOKE|COMMENT|SECURITY"
    r"|REFRESH|SET|SHOW|RESET|DISCARD|LOCK|CHECKPOINT|LOAD|IMPORT|REASSIGN)\b",
    re.IGNORECASE,
)
#: Bulk loads: INSERT ... SELECT ... generate_series (synthetic fill), INSERT ... SELECT ... FROM a
#: file or another database.
BULK = re.compile(r"^\s*(WITH\b.*)?INSERT\b.*\bSELECT\b.*\b(generate_series|pg_read_file|dblink)\s*\(",
                  re.IGNORECASE | re.DOTALL)
#: ``kind`` of a statement: only ``application`` ones are the incident's slow statements.
KINDS = ("application", "utility", "bulk load", "collector")


def kind(query) -> str:
    """``collector``, ``utility`` (DDL and maintenance), ``bulk load`` or ``application``."""
    text = _strip_comments(str(query or ""))
    if COLLECTOR.search(text):
        return "collector"
    if UTILITY.match(text):
        return "utility"
    if BULK.match(text):
        return "bulk load"
    return "application"


def _strip_comments(text: str) -> str:
    """Leading ``/* ... */`` and ``-- ...`` comments (sqlcommenter tags, ORMs) hide the first keyword."""
    return re.sub(r"^(\s*(/\*.*?\*/|--[^\n]*\n))*", "", text, flags=re.DOTALL)


def by_time_spent(
    after: pd.DataFrame,
    before: pd.DataFrame | None = None,
    info_before: Mapping | pd.DataFrame | None = None,
    info_after: Mapping | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every statement, most execution time first, with ``kind`` (see :func:`kind`).

    With ``before`` (a snapshot taken earlier), the time is the window's (:func:`delta`, with its
    flags and warnings); without, it is the total since pg_stat_statements was last reset.
    ``attrs["ranking"]`` says which in a sentence for the notebook and the postmortem.
    """
    if before is not None:
        ranked = delta(before, after, info_before, info_after)
        how = ("ranked by execution time spent between the two pg_stat_statements snapshots "
               f"({ranked.attrs.get('before_at') or '?'} to {ranked.attrs.get('after_at') or '?'})")
    else:
        ranked = after.copy()
        reset = _ts(_info(info_after).get("stats_reset"))
        how = ("ranked by total execution time since pg_stat_statements was last reset"
               + (f" ({reset.isoformat()})" if reset is not None else "")
               + "; one snapshot only, so not limited to the incident window")
        ranked.attrs = {"warnings": []}
    for col in ("queryid", "query", "calls", "total_exec_time", "mean_exec_time"):
        if col not in ranked:  # a failed capture arrives as a frame without columns
            ranked[col] = pd.Series(dtype="object" if col == "query" else "float64")
    ranked["kind"] = [kind(q) for q in ranked["query"]]
    ranked = ranked.sort_values("total_exec_time", ascending=False, na_position="last", kind="stable")
    ranked = ranked.reset_index(drop=True)
    ranked.attrs["ranking"] = (how + "; utility, DDL and bulk-load statements and the collector's own are "
                               "listed apart")
    return ranked


def _select(ranked: pd.DataFrame, keep, n: int, min_mean_ms: float) -> pd.DataFrame:
    sel = ranked[keep & ranked["total_exec_time"].notna()]
    if "evicted" in sel:
        sel = sel[~sel["evicted"].astype(bool)]
    if min_mean_ms and "mean_exec_time" in sel:
        sel = sel[sel["mean_exec_time"] >= min_mean_ms]
    out = sel.head(n).reset_index(drop=True)
    out.attrs = dict(ranked.attrs)
    return out


def slow(ranked: pd.DataFrame, n: int = 10, min_mean_ms: float = 0.0) -> pd.DataFrame:
    """The incident's slow statements: the ``n`` application statements that took the most time
    (optionally only those averaging at least ``min_mean_ms`` a call), from :func:`by_time_spent`."""
    return _select(ranked, ranked["kind"] == "application", n, min_mean_ms)


def one_offs(ranked: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Utility, DDL and bulk-load statements (not the collector's), most time first: listed apart."""
    return _select(ranked, ranked["kind"].isin(["utility", "bulk load"]), n, 0.0)


# ---- the log's statements when pg_stat_statements cannot answer (issue 20) ----------------------------------
#: pg_stat_statements read this long after the window's end is stale: its totals are mostly other hours'.
STALE_AFTER = pd.Timedelta(hours=6)
SOURCE_PSS, SOURCE_LOG = "pg_stat_statements", "log"


def statements_source(snapshot: pd.DataFrame | None, log_statements: pd.DataFrame | None, window=None,
                      info: Mapping | pd.DataFrame | None = None) -> dict:
    """Which source ranks the slow statements, and why: ``{"source": "pg_stat_statements" | "log" | None,
    "why": ...}``. pg_stat_statements when it answered and covers the window; the statements PostgreSQL's
    log timed (``duration:`` lines, :mod:`forensics.pglog`) when pg_stat_statements is missing (not
    installed, no connection, capture failed), was reset after the window started (the window's counts
    are gone) or was read more than :data:`STALE_AFTER` after the window (its totals are other hours').
    None when neither answered (unknown, not "no slow statement")."""
    has_log = log_statements is not None and len(log_statements) > 0 and not log_statements.attrs.get("capture_error")
    problem = None
    if snapshot is None or snapshot.attrs.get("capture_error") or not len(snapshot) or "query" not in snapshot:
        err = snapshot.attrs.get("capture_error") if snapshot is not None else None
        problem = f"pg_stat_statements did not answer ({err})" if err else "pg_stat_statements has no rows"
    elif window is not None:
        reset = _ts(_info(info).get("stats_reset"))
        taken = _snapshot_at(snapshot)
        if reset is not None and reset > window.start:
            problem = f"pg_stat_statements was reset at {reset.isoformat()}, after the window began"
        elif taken is not None and taken - window.end > STALE_AFTER:
            problem = (f"pg_stat_statements was read at {taken.isoformat()}, "
                       f"{(taken - window.end).total_seconds() / 3600:.0f} h after the window: stale")
    if problem is None:
        return {"source": SOURCE_PSS, "why": "pg_stat_statements answered and covers the window"}
    if has_log:
        return {"source": SOURCE_LOG, "why": problem + "; ranked from the statements PostgreSQL's log timed"}
    if snapshot is not None and len(snapshot) and "query" in snapshot and not snapshot.attrs.get("capture_error"):
        return {"source": SOURCE_PSS, "why": problem + "; the log timed no statement, so pg_stat_statements ranks "
                                                       "them anyway (its counts are a lower bound)"}
    return {"source": None, "why": problem + "; the log timed no statement either"}


def from_log(log_statements: pd.DataFrame, collector_application: str | None = None) -> pd.DataFrame:
    """The log's statements (``pg_log_statements``) in :func:`by_time_spent`'s shape (``query, calls,
    total_exec_time, mean_exec_time, kind``; ``queryid`` unknown, ``fingerprint`` kept), so :func:`slow`,
    :func:`one_offs` and the notebooks' tables read them unchanged. A statement only the collector ran
    (``applications`` is its application_name, :data:`forensics.contracts.APPLICATION_NAME`) is of kind
    ``collector``: classified by who ran it, never by a word in its text."""
    from .. import contracts

    own = collector_application or contracts.APPLICATION_NAME
    cols = ["queryid", "query", "calls", "total_exec_time", "mean_exec_time", "max_exec_time", "first_seen",
            "last_seen", "fingerprint", "kind"]
    if log_statements is None or not len(log_statements):
        out = pd.DataFrame(columns=cols)
    else:
        ls = log_statements
        out = pd.DataFrame({"queryid": pd.array([pd.NA] * len(ls), dtype="Int64"), "query": ls["query"].to_numpy(),
                            "calls": ls["calls"].astype(float).to_numpy(),
                            "total_exec_time": ls["total_ms"].astype(float).to_numpy(),
                            "mean_exec_time": ls["mean_ms"].astype(float).to_numpy(),
                            "max_exec_time": ls["max_ms"].astype(float).to_numpy(),
                            "first_seen": ls["first_seen"].to_numpy(), "last_seen": ls["last_seen"].to_numpy(),
                            "fingerprint": ls["fingerprint"].to_numpy()})
        apps = ls["applications"].fillna("").astype(str).to_numpy() if "applications" in ls else [""] * len(ls)
        out["kind"] = [("collector" if a.strip() == own else kind(q)) for q, a in zip(out["query"], apps)]
        out = out.sort_values("total_exec_time", ascending=False, kind="stable").reset_index(drop=True)
    first = out["first_seen"].min() if len(out) else None
    last = out["last_seen"].max() if len(out) else None
    out.attrs = {"warnings": [], "source": SOURCE_LOG,
                 "ranking": ("ranked by total time of the statements PostgreSQL's log timed (duration: lines; "
                             "only those over log_min_duration_statement, unless log_duration is on)"
                             + (f", {pd.Timestamp(first).isoformat()} to {pd.Timestamp(last).isoformat()}"
                                if first is not None and pd.notna(first) else "")
                             + "; utility, DDL and bulk-load statements and the collector's own are listed apart")}
    return out


def join_log(snapshot: pd.DataFrame, log_statements: pd.DataFrame) -> pd.DataFrame:
    """pg_stat_statements rows with the log's figures for the same statement (joined on the libpg_query
    fingerprint of both texts): ``log_calls, log_total_ms, log_first_seen, log_last_seen``."""
    from ..pglog import normalize

    if snapshot is None or not len(snapshot) or log_statements is None or not len(log_statements):
        return snapshot
    fp = [normalize.fingerprint(q) for q in snapshot["query"].astype(str)]
    log = log_statements.set_index("fingerprint")[["calls", "total_ms", "first_seen", "last_seen"]]
    log = log[~log.index.duplicated()].add_prefix("log_")
    return snapshot.assign(fingerprint=fp).join(log, on="fingerprint")
