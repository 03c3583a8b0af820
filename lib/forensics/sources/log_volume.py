"""Logs at volume: counting pushed down to Logs Insights, and a bounded sample for signature discovery.

A busy service writes a million error events in a three-hour incident; FilterLogEvents returns 10,000 per
page at 5 requests a second, so pulling them all is slow by construction, and pulling "the first N" sees
only the start of the window. Instead (the named queries of :mod:`forensics.queries`):

1. :func:`events_per_minute` - ``log_events_per_minute``: matching events per minute and log group.
2. :func:`sample` - ``log_sample_slice`` per *slice*: short sub-windows spread evenly over the whole
   window plus more around the onset's first guess (:func:`slice_plan`), each read oldest first up to a cap,
   so every slice covers a known interval exactly (its events are a rate estimate, not "the first N").
   Consecutive slices whose whole span holds few events by the per-minute counts are read by one query
   (:func:`pack_slices`; StartQuery's 5 requests a second made ~36 queries take 7 s even on a quiet log),
   and cut into slices here: the same frame, fewer queries.
   When Logs Insights is unavailable (permission, throttling, timeout) the same slices are read with
   FilterLogEvents and the same cap; the frame's ``via`` column says which.
3. :func:`signature_counts` - ``log_signature_counts``: exact per-minute counts of the sample's candidate
   signatures (chosen by :mod:`forensics.sampling`) over the whole window, in one query.

Each has a ``*_call`` that builds it as one :class:`~forensics.sources.call.Call` (what runs and what the
manifest records, from the same arguments).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pandas as pd

from .. import contracts, defaults, queries
from ..errors import SourceError
from ..window import IncidentWindow, iso
from . import _as_list, _aws_client, _aws_errors, _empty, _typed, logs
from .call import Call

SOURCE = "logs"
SAMPLE_COLUMNS = {**contracts.LOG_COLUMNS, "slice": "int64", "via": "str"}
RATE_COLUMNS = dict(queries.load("log_events_per_minute").columns)
COUNT_COLUMNS = dict(queries.load("log_signature_counts").columns)
VIA_INSIGHTS, VIA_FILTER = "insights", "filter_log_events"


# ---- the slices ----------------------------------------------------------------------------------------
def slice_plan(window: IncidentWindow, onset_guess=None, *, spread: int = defaults.LOG_SAMPLE_SLICES,
               near_onset: int = defaults.LOG_SAMPLE_ONSET_SLICES, slice_s: float = defaults.LOG_SAMPLE_SLICE_S,
               onset_span=defaults.LOG_SAMPLE_ONSET_SPAN) -> list[dict]:
    """Non-overlapping slices of ``slice_s`` seconds: ``spread`` evenly over the window, ``near_onset``
    evenly over ``onset_guess +- onset_span`` (when the guess is in the window). Sorted by start."""
    length = pd.Timedelta(seconds=slice_s)
    start, end = window.start, window.end
    usable = end - start - length
    if usable <= pd.Timedelta(0):
        return [{"slice": 0, "start": iso(start), "end": iso(end), "near_onset": False}]
    starts = {start + usable * (i + 0.5) / spread: False for i in range(spread)}
    if onset_guess is not None and near_onset:
        guess = pd.Timestamp(onset_guess)
        lo = max(start, guess - pd.Timedelta(onset_span))
        hi = min(end - length, guess + pd.Timedelta(onset_span))
        if lo < hi:
            for i in range(near_onset):
                starts[lo + (hi - lo) * (i + 0.5) / near_onset] = True
    kept: list[tuple[pd.Timestamp, bool]] = []
    for s, near in sorted(starts.items()):
        s = s.floor("s")
        if kept and s < kept[-1][0] + length:
            continue  # would overlap the previous slice: an event must belong to one slice only
        kept.append((s, near))
    return [{"slice": i, "start": iso(s), "end": iso(s + length), "near_onset": bool(near)}
            for i, (s, near) in enumerate(kept)]


# ---- Logs Insights, several queries at once ------------------------------------------------------------
def _run_many(groups: list[str], jobs: list[tuple[IncidentWindow, str, int]], aws, *, timeout: float,
              client=None, concurrency: int = defaults.INSIGHTS_CONCURRENCY) -> list[list]:
    """Run ``(window, query, limit)`` jobs, at most ``concurrency`` at a time; their result rows in order.
    Any failure (the API's or a query's status) is a SourceError; queries still running are stopped."""
    api = _aws_client("logs", aws, client)
    results: list[list | None] = [None] * len(jobs)
    pending = list(range(len(jobs)))
    running: dict[int, tuple[str, float]] = {}
    sleep = 0.02
    try:
        while pending or running:
            while pending and len(running) < concurrency:
                i = pending.pop(0)
                window, text, limit = jobs[i]
                start_s, end_s = logs._range_s(window)
                with _aws_errors(SOURCE, "StartQuery"):
                    qid = api.start_query(logGroupNames=groups, startTime=start_s, endTime=end_s, queryString=text,
                                          limit=int(limit))["queryId"]
                running[i] = (qid, time.monotonic() + timeout)
            time.sleep(sleep)
            sleep = min(sleep * 1.5, 1.0)
            for i, (qid, deadline) in list(running.items()):
                with _aws_errors(SOURCE, "GetQueryResults"):
                    resp = api.get_query_results(queryId=qid)
                status = resp.get("status")
                if status == "Complete":
                    results[i] = resp.get("results") or []
                    del running[i]
                elif status in ("Failed", "Cancelled", "Timeout", "Unknown"):
                    raise SourceError(SOURCE, f"Logs Insights query {qid} ended with status {status}")
                elif time.monotonic() >= deadline:
                    raise SourceError(SOURCE, f"Logs Insights query {qid} still {status} after {timeout:g} s")
    finally:
        for qid, _ in running.values():
            try:
                api.stop_query(queryId=qid)
            except Exception:  # noqa: BLE001 - the first error is the one worth reporting
                pass
    return results  # type: ignore[return-value]


def _rows(results: list) -> pd.DataFrame:
    return logs._results_frame(results, None)


def _group_name(log: pd.Series) -> pd.Series:
    """Insights' ``@log`` is ``account-id:log-group-name``: the name."""
    return log.astype(str).str.replace(r"^\d{12}:", "", regex=True)


def _one_query(name: str, values: Mapping, log_groups, window: IncidentWindow, aws, client, timeout: float) -> list:
    """The result rows of the named Insights query ``name`` with ``values`` over ``window``."""
    q = queries.load(name)
    groups = _as_list(log_groups, "log_groups")
    (rows,) = _run_many(groups, [(window, q.insights(dict(values)), logs.INSIGHTS_MAX_ROWS)], aws, timeout=timeout,
                        client=client)
    return rows


def _counted(name: str, values: Mapping, log_groups, window: IncidentWindow, aws, client, timeout: float,
             schema: Mapping[str, str], build, sort: list[str], ascending=True) -> pd.DataFrame:
    """The named counting query's rows as a typed frame (``build`` maps result columns to ``schema``), sorted;
    ``attrs["truncated"]`` when Insights' row cap was reached."""
    rows = _one_query(name, values, log_groups, window, aws, client, timeout)
    df = _rows(rows)
    if df.empty:
        return _empty(schema)
    out = _typed(build(df), schema).sort_values(sort, ascending=ascending, kind="stable").reset_index(drop=True)
    out.attrs["truncated"] = len(rows) >= logs.INSIGHTS_MAX_ROWS
    return out


# ---- 1. events per minute --------------------------------------------------------------------------
def events_per_minute(log_groups, window: IncidentWindow, match: str, *, aws=None, client=None,
                      timeout: float = defaults.INSIGHTS_TIMEOUT_S) -> pd.DataFrame:
    return _counted("log_events_per_minute", {"match": match}, log_groups, window, aws, client, timeout,
                    RATE_COLUMNS, lambda df: pd.DataFrame({"minute": df["bin(1m)"], "log_group": _group_name(df["@log"]),
                                                           "events": pd.to_numeric(df["events"])}),
                    ["minute", "log_group"])


def _insights_args(name: str, log_groups, window: IncidentWindow, values: Mapping, front: Mapping | None = None) -> dict:
    """What the manifest records for a named Insights query: the file's text verbatim, the parameters, the
    text as sent, the log groups and the range (``front``: what the call adds, after the api)."""
    q = queries.load(name)
    start_s, end_s = logs._range_s(window)
    return {"api": logs.INSIGHTS_API, **(front or {}), **q.record(dict(values)), "rendered": q.insights(dict(values)),
            "logGroupNames": _as_list(log_groups, "log_groups"), "startTime": start_s, "endTime": end_s,
            "window": window.as_dict()}


def per_minute_call(log_groups, window: IncidentWindow, match: str, *, aws=None) -> Call:
    """:func:`events_per_minute` as one :class:`~forensics.sources.call.Call`."""
    return Call(None, _insights_args("log_events_per_minute", log_groups, window, {"match": match}),
                lambda: events_per_minute(log_groups, window, match, aws=aws))


# ---- 2. the bounded sample ------------------------------------------------------------------------------
def _slice_window(s: Mapping) -> IncidentWindow:
    return IncidentWindow(pd.Timestamp(s["start"]), pd.Timestamp(s["end"]))


def pack_slices(slices: list[dict], per_minute: pd.DataFrame | None, *,
                max_events: int = defaults.LOG_SAMPLE_PACK_MAX_EVENTS) -> list[list[dict]]:
    """``slices`` (in time order) grouped for one Logs Insights query per group: consecutive slices whose whole
    span, gaps included, holds at most ``max_events`` matching events by ``per_minute`` (the
    ``log_events_per_minute`` frame of the same events; every minute the span touches is counted whole, so
    the estimate is an upper bound). Each slice alone when there is no such guide (None, empty, or a frame
    cut at its row limit)."""
    if per_minute is None or per_minute.empty or per_minute.attrs.get("truncated") or \
            not {"minute", "events"} <= set(per_minute.columns):
        return [[s] for s in slices]
    counts = per_minute.groupby(pd.to_datetime(per_minute["minute"], utc=True))["events"].sum().sort_index()
    minutes, cum = counts.index, counts.cumsum().to_numpy()

    def events_in(start: pd.Timestamp, end: pd.Timestamp) -> float:
        lo = minutes.searchsorted(start.floor("min"), side="left")
        hi = minutes.searchsorted(end, side="left")  # minutes starting before the span's end
        return float(cum[hi - 1] - (cum[lo - 1] if lo else 0)) if hi > lo else 0.0

    packed: list[list[dict]] = []
    for s in slices:
        if packed and events_in(pd.Timestamp(packed[-1][0]["start"]), pd.Timestamp(s["end"])) <= max_events:
            packed[-1].append(s)
        else:
            packed.append([s])
    return packed


def sample(log_groups, slices: list[dict], match: str, pattern: str | None, *, per_slice: int, aws=None,
           client=None, timeout: float = defaults.INSIGHTS_TIMEOUT_S, per_minute: pd.DataFrame | None = None,
           max_rows: int = logs.INSIGHTS_MAX_ROWS) -> pd.DataFrame:
    """Up to ``per_slice`` matching events of each slice, oldest first: Logs Insights, or FilterLogEvents
    with the same cap when Insights is unavailable (``attrs["insights_error"]`` says why).

    With ``per_minute`` (the same events' counts), slices are read in groups (:func:`pack_slices`): one query
    over a group's span, at most ``max_rows`` rows, each slice cut from it oldest first. A group whose query
    comes back full (the counts were short: late events) is read again slice by slice, so the frame is the
    one slice-by-slice queries give. ``attrs["insights_queries"]``: how many queries ran."""
    groups = _as_list(log_groups, "log_groups")
    q = queries.load("log_sample_slice")
    text = q.insights({"match": match, "per_slice": per_slice})
    parts = []
    try:
        packed = pack_slices(slices, per_minute, max_events=min(defaults.LOG_SAMPLE_PACK_MAX_EVENTS, max_rows - 1))
        jobs = [(_slice_window(g[0]), text, per_slice) if len(g) == 1 else
                (IncidentWindow(pd.Timestamp(g[0]["start"]), pd.Timestamp(g[-1]["end"])),
                 q.insights({"match": match, "per_slice": max_rows}), max_rows) for g in packed]
        results = _run_many(groups, jobs, aws, timeout=timeout, client=client)
        queries_run = len(jobs)
        by_slice: dict[int, pd.DataFrame] = {}
        again: list[dict] = []
        for g, rows in zip(packed, results):
            if len(g) == 1:
                by_slice[g[0]["slice"]] = _rows(rows)
            elif len(rows) >= max_rows:
                again += g  # full: the span held more than its counts said
            else:
                df = _rows(rows)
                for s in g:
                    if df.empty:
                        continue
                    w = _slice_window(s)
                    by_slice[s["slice"]] = df[(df["@timestamp"] >= w.start) & (df["@timestamp"] < w.end)].sort_values(
                        "@timestamp", kind="stable").head(per_slice)
        if again:
            for s, rows in zip(again, _run_many(groups, [(_slice_window(s), text, per_slice) for s in again], aws,
                                                timeout=timeout, client=client)):
                by_slice[s["slice"]] = _rows(rows)
            queries_run += len(again)
        for s in slices:
            df = by_slice.get(s["slice"])
            if df is None or df.empty:
                continue
            parts.append(pd.DataFrame({
                "timestamp": df["@timestamp"], "log_group": _group_name(df["@log"]), "log_stream": df["@logStream"],
                "message": df["@message"], "event_id": None, "slice": s["slice"], "via": VIA_INSIGHTS}))
        error = None
    except SourceError as exc:
        error = str(exc)
        parts = []
        for s in slices:
            df = logs.filter_log_events(groups, _slice_window(s), pattern, aws=aws, max_events=per_slice,
                                        client_regex=match, client=client)
            if len(df):
                parts.append(df.assign(slice=s["slice"], via=VIA_FILTER))
    out = pd.concat(parts, ignore_index=True) if parts else _empty(SAMPLE_COLUMNS)
    out = _typed(out, SAMPLE_COLUMNS).sort_values(["timestamp", "slice"], kind="stable").reset_index(drop=True)
    if error:
        out["via"] = VIA_FILTER  # also on an empty sample's schema: the fallback is what ran
        out.attrs["insights_error"] = error
    else:
        out.attrs["insights_queries"] = queries_run
    return out


def sample_call(log_groups, window: IncidentWindow, slices: list[dict], match: str, pattern: str | None, *,
                per_slice: int, sampling: Mapping, aws=None, per_minute: pd.DataFrame | None = None) -> Call:
    """:func:`sample` as one :class:`~forensics.sources.call.Call`; ``sampling`` (the slices, the onset guess
    they were placed around, the fallback) is recorded with it; ``per_minute`` packs the slices' queries."""
    return Call(None, _insights_args("log_sample_slice", log_groups, window, {"match": match, "per_slice": int(per_slice)},
                                     {"sampling": dict(sampling)}),
                lambda: sample(log_groups, slices, match, pattern, per_slice=int(per_slice), aws=aws,
                               per_minute=per_minute))


# ---- 3. exact counts of the sample's candidate signatures ---------------------------------------------
def signature_counts_call(log_groups, window: IncidentWindow, match: str, plan: Mapping, *, aws=None) -> Call:
    """:func:`signature_counts` as one :class:`~forensics.sources.call.Call` (``plan``: ``signatures`` (label to
    fragments), ``labels`` (label to signature), ``coverage`` (label to [own, others] in the sample))."""
    if not plan.get("signatures"):
        args = {"api": logs.INSIGHTS_API, "signatures": {}, "note": "no signature in the sample"}
    else:
        args = _insights_args("log_signature_counts", log_groups, window,
                              {"match": match, "signatures": plan["signatures"]},
                              {"labels": plan["labels"], "coverage_in_sample": plan["coverage"]})
    return Call(None, args, lambda: signature_counts(log_groups, window, match, plan, aws=aws))


def signature_counts(log_groups, window: IncidentWindow, match: str, plan: Mapping, *, aws=None, client=None,
                     timeout: float = defaults.INSIGHTS_TIMEOUT_S) -> pd.DataFrame:
    """Exact events per minute of each planned signature (``plan`` from :func:`matchers`), long format."""
    if not plan.get("signatures"):
        return _empty(COUNT_COLUMNS)
    q = queries.load("log_signature_counts")
    groups = _as_list(log_groups, "log_groups")
    (rows,) = _run_many(groups, [(window, q.insights({"match": match, "signatures": plan["signatures"]}),
                                  logs.INSIGHTS_MAX_ROWS)], aws, timeout=timeout, client=client)
    df = _rows(rows)
    if df.empty:
        return _empty(COUNT_COLUMNS)
    parts = [pd.DataFrame({"minute": df["bin(1m)"], "signature": plan["labels"][label],
                           "events": pd.to_numeric(df[label], errors="coerce").fillna(0)})
             for label in plan["signatures"] if label in df]
    out = pd.concat(parts, ignore_index=True)
    out = _typed(out, COUNT_COLUMNS).sort_values(["minute", "signature"]).reset_index(drop=True)
    return out


# ---- 4. exact counts by what a regex found (kinds, categories, clients) ----------------------------------
MATCH_COLUMNS = dict(queries.load("log_match_counts").columns)
TASK_COLUMNS = dict(queries.load("log_task_counts").columns)


def match_counts(log_groups, window: IncidentWindow, extract: str, *, aws=None, client=None,
                 timeout: float = defaults.INSIGHTS_TIMEOUT_S) -> pd.DataFrame:
    """``log_match_counts``: events per minute by the text ``extract``'s ``(?<hit>...)`` group captured,
    with each row's first and last event (exact, one query over the window)."""
    return _counted("log_match_counts", {"extract": extract}, log_groups, window, aws, client, timeout, MATCH_COLUMNS,
                    lambda df: pd.DataFrame({"minute": df["bin(1m)"], "hit": df["hit"],
                                             "events": pd.to_numeric(df["events"]), "first_event": df["first_event"],
                                             "last_event": df["last_event"]}),
                    ["minute", "hit"])


def counts_call(query: str, log_groups, window: IncidentWindow, extract: str, *, aws=None) -> Call:
    """:func:`match_counts` (``log_match_counts``) or :func:`task_counts` (``log_task_counts``) as one
    :class:`~forensics.sources.call.Call`."""
    run = {"log_match_counts": match_counts, "log_task_counts": task_counts}[query]
    return Call(None, _insights_args(query, log_groups, window, {"extract": extract}),
                lambda: run(log_groups, window, extract, aws=aws))


def task_counts(log_groups, window: IncidentWindow, extract: str, *, aws=None, client=None,
                timeout: float = defaults.INSIGHTS_TIMEOUT_S) -> pd.DataFrame:
    """``log_task_counts``: failed and retried tasks by task, outcome and exception over the window."""

    def build(df):
        out = pd.DataFrame({c: df[c] if c in df else "" for c in TASK_COLUMNS})
        out["exception"] = out["exception"].fillna("")
        return out

    return _counted("log_task_counts", {"extract": extract}, log_groups, window, aws, client, timeout, TASK_COLUMNS,
                    build, ["events", "task"], ascending=[False, True])
