"""Exact log counts from Logs Insights, in the shapes the notebooks' findings have always had.

Input: the frames of :func:`forensics.sources.log_volume.match_counts` (``minute, hit, events, first_event,
last_event``: one row per minute and text a regex matched) and :func:`~forensics.sources.log_volume.task_counts`
(``task, outcome, exception, events, tasks, first_event, last_event``). Every count here is exact (counted
where the logs are, over the whole window), every first/last time is an event's own time.

- :func:`summary` - ``{count, first_seen, last_seen, peak_per_minute, example}`` (cache-redis' ``app_errors``).
- :func:`by_hit` - per matched text: ``signature, count, first_seen, last_seen`` (ai-cost's provider errors).
- :func:`categorized` / :func:`category_counts` / :func:`category_summary` - PostgreSQL's log by the category
  of ``forensics/data/pglog_patterns.yaml`` each matched text falls in (the ``pglog.counts`` shape).
- :func:`within` - the rows of an incident window (to the minute: a row is a minute of counts).
- :func:`changed` - hits or categories ranked by what changed at the onset (:mod:`.log_change`).
- :func:`fill_minutes` / :func:`rate_per_minute` - per-minute series over every minute of a window: Logs Insights
  returns no row for a minute without events, and a chart joining across the gap draws a sparse stream
  (13 events in 70 minutes) as a flat line at 1 a minute. A missing minute is a zero, so it is one.
- :func:`task_failures` - the worker's failures in the shape of :func:`forensics.analysis.queues.task_failures`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from . import log_change

HIT_COLUMNS = ["signature", "count", "first_seen", "last_seen"]


def _ts(values) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def summary(kinds: pd.DataFrame) -> dict:
    """``{count, first_seen, last_seen, peak_per_minute, example}``: ``example`` is the text matched in the
    first event (what the regex found there, e.g. ``transport closed``)."""
    if kinds is None or not len(kinds):
        return {"count": 0, "first_seen": None, "last_seen": None, "peak_per_minute": 0, "example": None}
    first = _ts(kinds["first_event"])
    per_minute = kinds.groupby(_ts(kinds["minute"]))["events"].sum()
    return {"count": int(kinds["events"].sum()), "first_seen": first.min(), "last_seen": _ts(kinds["last_event"]).max(),
            "peak_per_minute": int(per_minute.max()), "example": str(kinds["hit"].iloc[int(first.to_numpy().argmin())])}


def by_hit(kinds: pd.DataFrame) -> pd.DataFrame:
    """Per text matched: ``signature, count, first_seen, last_seen``, most events first."""
    if kinds is None or not len(kinds):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in HIT_COLUMNS})
    df = kinds.assign(first_event=_ts(kinds["first_event"]), last_event=_ts(kinds["last_event"]))
    g = df.groupby("hit")
    out = pd.DataFrame({"count": g["events"].sum().astype("int64"), "first_seen": g["first_event"].min(),
                        "last_seen": g["last_event"].max()}).rename_axis("signature").reset_index()
    return out.sort_values(["count", "first_seen"], ascending=[False, True], kind="stable").reset_index(drop=True)


def categorized(kinds: pd.DataFrame, classify: Callable[[str], str] | None = None) -> pd.DataFrame:
    """``kinds`` with a ``category`` column: the category of the text matched (default: PostgreSQL's log
    categories, first matching category wins, as :func:`forensics.analysis.pglog.classify_message`)."""
    from . import pglog

    classify = classify or pglog.classify_message
    out = kinds.copy()
    out["category"] = [classify(str(h)) for h in kinds["hit"]] if len(kinds) else pd.Series(dtype="object")
    return out


def within(kinds: pd.DataFrame, window) -> pd.DataFrame:
    """The rows (minutes) of ``kinds`` that start in ``[window.start, window.end)``, the minute that holds the
    window's start included: exact to the minute."""
    if kinds is None or not len(kinds):
        return kinds
    minute = _ts(kinds["minute"])
    keep = (minute >= pd.Timestamp(window.start).floor("min")) & (minute < pd.Timestamp(window.end))
    return kinds[keep.to_numpy()].reset_index(drop=True)


def category_summary(kinds: pd.DataFrame) -> pd.DataFrame:
    """Per category (PostgreSQL's patterns file order): ``entries, first_seen, last_seen, example`` (the text
    matched in its first event)."""
    from . import pglog

    cols = ["category", "entries", "first_seen", "last_seen", "example"]
    if kinds is None or not len(kinds):
        return pd.DataFrame(columns=cols)
    df = categorized(kinds) if "category" not in kinds else kinds
    df = df[df["category"] != pglog.OTHER].assign(first_event=lambda d: _ts(d["first_event"]),
                                                   last_event=lambda d: _ts(d["last_event"]))
    rows = []
    for cat, g in df.groupby("category", sort=False):
        rows.append({"category": cat, "entries": int(g["events"].sum()), "first_seen": g["first_event"].min(),
                     "last_seen": g["last_event"].max(), "example": str(g.loc[g["first_event"].idxmin(), "hit"])})
    order = {c.name: i for i, c in enumerate(pglog.CATEGORIES)}
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("category", key=lambda s: s.map(lambda c: order.get(c, len(order)))).reset_index(drop=True)


def category_counts(kinds: pd.DataFrame, categories: Iterable[str] | None = None) -> dict:
    """``{category: {entries, first_seen, example}}`` for the categories asked (all when None), those without
    an event left out: the shape of :func:`forensics.analysis.pglog.counts`, counted exactly."""
    table = category_summary(kinds)
    if categories is not None:
        table = table[table["category"].isin(list(categories))]
    return {r["category"]: {"entries": int(r["entries"]), "first_seen": r["first_seen"], "example": r["example"]}
            for _, r in table.iterrows()}


def fill_minutes(wide: pd.DataFrame | pd.Series, window=None, freq: str = "1min"):
    """``wide`` (indexed by minute, UTC) with every minute of ``window`` present, the absent ones zero.
    Without a window, the gaps between its first and last minute are filled. An empty frame stays empty
    (no column to fill: the chart says "no data", not a line at zero for a series never named)."""
    if wide is None or not len(wide.index) or (isinstance(wide, pd.DataFrame) and not len(wide.columns)):
        return wide
    index = pd.DatetimeIndex(_ts(wide.index))
    wide = wide.copy()
    wide.index = index
    wide = wide.groupby(level=0).sum()
    if window is not None:
        lo, hi = pd.Timestamp(window.start).floor(freq), pd.Timestamp(window.end)
    else:
        lo, hi = index.min(), index.max() + pd.Timedelta(freq)
    full = pd.date_range(lo, hi, freq=freq, inclusive="left")
    full = full.union(index[(index >= lo) & (index < hi)])
    return wide.reindex(full, fill_value=0).rename_axis(wide.index.name)


def per_minute(kinds: pd.DataFrame, by: str = "hit", window=None) -> pd.DataFrame:
    """Events per minute, one column per ``by`` value (``hit`` or ``category``), for a chart: every minute
    of ``window`` (the window counted, e.g. ``inc.context_window``) present, those without events zero."""
    if kinds is None or not len(kinds):
        return pd.DataFrame()
    df = categorized(kinds) if by == "category" and "category" not in kinds else kinds
    if by == "category":
        df = df[df["category"] != "other"]
    wide = df.assign(minute=_ts(df["minute"])).pivot_table(index="minute", columns=by, values="events",
                                                            aggfunc="sum")
    return fill_minutes(wide.fillna(0.0), window)


def rate_per_minute(rate: pd.DataFrame, window=None, by: str = "log_group") -> pd.DataFrame:
    """A ``*_per_minute`` capture (``minute, log_group, events``) as one column per ``by``, every minute of
    ``window`` present (zero where Logs Insights returned no row)."""
    if rate is None or not len(rate):
        return pd.DataFrame()
    wide = rate.assign(minute=_ts(rate["minute"])).pivot_table(index="minute", columns=by, values="events",
                                                                aggfunc="sum")
    return fill_minutes(wide.fillna(0.0), window)


def changed(kinds: pd.DataFrame, onset, window, by: str = "hit") -> pd.DataFrame:
    """Hits or categories ranked by what changed at ``onset`` (exact per-minute counts over ``window``, the
    context window): :func:`forensics.analysis.log_change.from_minutes`, the ``signature`` column naming them."""
    if onset is None or kinds is None or not len(kinds):
        return log_change.rank(pd.DataFrame(columns=["signature", "before", "after"]), 1, 1)
    df = categorized(kinds) if by == "category" and "category" not in kinds else kinds
    if by == "category":
        df = df[df["category"] != "other"]
    frame = pd.DataFrame({"minute": df["minute"], "signature": df[by].astype(str), "events": df["events"]})
    return log_change.from_minutes(frame, onset, window.start, window.end)


_OUTCOME = {"raised unexpected": "raised", "retry": "retry", "failed": "failed"}


def task_failures(tasks: pd.DataFrame) -> pd.DataFrame:
    """The worker's task failures and retries (:func:`forensics.sources.log_volume.task_counts`) in the shape of
    :func:`forensics.analysis.queues.task_failures`: ``[task, outcome, exception, count, tasks, first_seen,
    last_seen]``, most frequent first."""
    from .queues import FAILURE_COLUMNS

    if tasks is None or not len(tasks):
        out = pd.DataFrame({c: pd.Series(dtype="object") for c in FAILURE_COLUMNS})
        return out.astype({"count": "int64", "tasks": "int64"})
    df = pd.DataFrame({"task": tasks["task"].astype(str), "outcome": tasks["outcome"].map(_OUTCOME).fillna("failed"),
                       "exception": tasks["exception"].fillna("").astype(str),
                       "count": tasks["events"].astype("int64"), "tasks": tasks["tasks"].fillna(0).astype("int64"),
                       "first_seen": _ts(tasks["first_event"]), "last_seen": _ts(tasks["last_event"])})
    df = df.groupby(["task", "outcome", "exception"], sort=False, as_index=False).agg(
        count=("count", "sum"), tasks=("tasks", "sum"), first_seen=("first_seen", "min"), last_seen=("last_seen", "max"))
    df = df.sort_values(["count", "first_seen", "task"], ascending=[False, True, True], kind="stable")
    return df[FAILURE_COLUMNS].reset_index(drop=True)


def top_hits(kinds: pd.DataFrame, n: int = 5) -> list[str]:
    """The ``n`` texts matched most often (e.g. the clients of refused sign-ins), most first."""
    if kinds is None or not len(kinds):
        return []
    return by_hit(kinds)["signature"].head(n).astype(str).tolist()


def pg_categories(messages: pd.Series) -> pd.Series:
    """The category of each PostgreSQL log event (its first entry's), ``other`` when none: the label of the
    bounded sample's events when the exact counts are unavailable."""
    from . import pglog

    def one(text: str) -> str:
        entries = pglog.parse_stderr(str(text).splitlines() or [""])
        return str(entries["category"].iloc[0]) if len(entries) else pglog.OTHER

    return pd.Series([one(m) for m in messages], index=messages.index, dtype="object")


def categories_changed(kinds: pd.DataFrame, sample: pd.DataFrame, sampling, onset, window) -> tuple[pd.DataFrame, str]:
    """PostgreSQL's log categories ranked by what changed at ``onset``: from the exact counts when they came,
    else from the bounded sample classified (:func:`forensics.analysis.log_change.changed_at_onset`)."""
    counts = pd.DataFrame(columns=["minute", "signature", "events"])
    if kinds is not None and len(kinds):
        cat = categorized(kinds)
        cat = cat[cat["category"] != "other"]
        counts = pd.DataFrame({"minute": cat["minute"], "signature": cat["category"], "events": cat["events"]})
    if kinds is not None:
        counts.attrs.update(kinds.attrs)
    return log_change.changed_at_onset(counts, sample, sampling or {}, onset, window, label=pg_categories)


def replace_row(table: pd.DataFrame, signature: str, values: dict, sort_by: str = "events") -> pd.DataFrame:
    """``table`` with the row of ``signature`` updated from ``values`` (added when absent), re-sorted by
    ``sort_by``, most first: exact counts replacing a sample's."""
    rows = table.to_dict("records")
    mine = [r for r in rows if r.get("signature") == signature]
    if not mine:
        mine = [{"signature": signature}]
        rows.append(mine[0])
    for r in mine:
        r.update(values)
    out = pd.DataFrame(rows, columns=list(dict.fromkeys([*table.columns, "signature", *values])))
    return out.sort_values([sort_by, "signature"], ascending=[False, True], kind="stable").reset_index(drop=True)
