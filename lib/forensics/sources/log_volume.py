"""Logs at volume: counting pushed down to Logs Insights, and a bounded sample for signature discovery.

A busy service writes a million error events in a three-hour incident; FilterLogEvents returns 10,000 per
page at 5 requests a second, so pulling them all is slow by construction, and pulling "the first N" sees
only the start of the window. Instead (the named queries of :mod:`forensics.queries`):

1. :func:`events_per_minute` - ``log_events_per_minute``: matching events per minute and log group.
2. :func:`sample` - ``log_sample_slice`` once per *slice*: short sub-windows spread evenly over the whole
   window plus more around the onset's first guess (:func:`slice_plan`), each read oldest first up to a cap,
   so every slice covers a known interval exactly (its events are a rate estimate, not "the first N").
   When Logs Insights is unavailable (permission, throttling, timeout) the same slices are read with
   FilterLogEvents and the same cap; the frame's ``via`` column says which.
3. :func:`signature_counts` - ``log_signature_counts``: exact per-minute counts of the sample's candidate
   signatures (:func:`matchers`) over the whole window, in one query.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import contracts, defaults, queries
from ..errors import SourceError
from ..window import IncidentWindow, iso
from . import _as_list, _aws_client, _aws_errors, _empty, _typed, logs

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


def onset_guess(per_minute: pd.DataFrame, window: IncidentWindow):
    """Where errors first rose (from the per-minute counts), else the incident window's start."""
    from ..analysis import onset

    if per_minute is not None and len(per_minute):
        total = per_minute.groupby(pd.to_datetime(per_minute["minute"], utc=True))["events"].sum().sort_index()
        found = onset.first_onset(total) if len(total) >= 10 else None
        if found is not None:
            return pd.Timestamp(found)
    return window.start


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


def insights_args(name: str, log_groups, window: IncidentWindow, values: Mapping) -> dict:
    """What the manifest records for a named Insights query: the file's text verbatim, the parameters, the
    text as sent, the log groups and the range."""
    q = queries.load(name)
    start_s, end_s = logs._range_s(window)
    return {**q.record(dict(values)), "rendered": q.insights(dict(values)),
            "logGroupNames": _as_list(log_groups, "log_groups"), "startTime": start_s, "endTime": end_s,
            "window": window.as_dict()}


# ---- 2. the bounded sample ------------------------------------------------------------------------------
def _slice_window(s: Mapping) -> IncidentWindow:
    return IncidentWindow(pd.Timestamp(s["start"]), pd.Timestamp(s["end"]))


def sample(log_groups, slices: list[dict], match: str, pattern: str | None, *, per_slice: int, aws=None,
           client=None, timeout: float = defaults.INSIGHTS_TIMEOUT_S) -> pd.DataFrame:
    """Up to ``per_slice`` matching events of each slice, oldest first: Logs Insights, or FilterLogEvents
    with the same cap when Insights is unavailable (``attrs["insights_error"]`` says why)."""
    groups = _as_list(log_groups, "log_groups")
    q = queries.load("log_sample_slice")
    text = q.insights({"match": match, "per_slice": per_slice})
    parts = []
    try:
        results = _run_many(groups, [(_slice_window(s), text, per_slice) for s in slices], aws, timeout=timeout,
                            client=client)
        for s, rows in zip(slices, results):
            df = _rows(rows)
            if df.empty:
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
    return out


# ---- 3. candidates, their fragments, their exact counts -------------------------------------------------
def candidates(ranked_by_change: pd.DataFrame, by_count: pd.Series, *, n_count: int = defaults.LOG_TOP_BY_COUNT,
               n_change: int = defaults.LOG_TOP_BY_CHANGE) -> list[str]:
    """The signatures worth exact counts: the most changed in the sample, then the most frequent."""
    out = list(dict.fromkeys([*ranked_by_change["signature"].head(n_change), *by_count.index[:n_count]]))
    return [s for s in out if isinstance(s, str) and s]


_MIN_FRAGMENT = 3
_MAX_FRAGMENTS = 6


def _contains_all(messages: pd.Series, fragments: list[str]) -> np.ndarray:
    hit = np.ones(len(messages), dtype=bool)
    for f in fragments:
        hit &= messages.str.contains(f, regex=False).fillna(False).to_numpy(dtype=bool)
    return hit


def fragments(signature: str, own: pd.Series, others: pd.Series) -> tuple[list[str], float, float]:
    """The literal fragments that select ``signature``'s events: the text between its wildcards (whole runs
    when they match, else its words: the template's single spaces may stand for any whitespace), longest
    first, adding fragments until no other sampled signature's event holds them all (at most six).
    Returns (fragments, share of its own sampled events matched, share of the others matched)."""
    from ..analysis.signatures import WILDCARD

    def usable(parts):
        return [p for p in dict.fromkeys(parts) if len(p) >= _MIN_FRAGMENT and "[REDACTED:" not in p]

    raw = [p.strip() for p in signature.split(WILDCARD)]
    runs = usable(raw)
    words = usable(w for p in raw for w in p.split())
    best = ([], 0.0, 1.0)
    for pool in (runs, words):
        pool = sorted(pool, key=len, reverse=True)
        chosen: list[str] = []
        for frag in pool:
            chosen.append(frag)
            if len(chosen) >= _MAX_FRAGMENTS or (len(others) and not _contains_all(others, chosen).any()):
                break
        if not chosen:
            continue
        cover = float(_contains_all(own, chosen).mean()) if len(own) else 0.0
        leak = float(_contains_all(others, chosen).mean()) if len(others) else 0.0
        if (cover, -leak) > (best[1], -best[2]):
            best = (chosen, cover, leak)
        if cover >= 0.99:
            break
    return best


def matchers(sample: pd.DataFrame, signature: pd.Series, chosen: list[str]) -> dict:
    """``{"signatures": {label: fragments}, "labels": {label: signature}, "coverage": {label: [own, others]}}``
    for the chosen signatures that have usable fragments."""
    messages = sample["message"].astype(str)
    sig = signature.astype(str)
    out: dict = {"signatures": {}, "labels": {}, "coverage": {}}
    for i, s in enumerate(chosen):
        frags, cover, leak = fragments(s, messages[sig == s], messages[sig != s])
        if not frags:
            continue
        label = f"sig_{i}"
        out["signatures"][label] = frags
        out["labels"][label] = s
        out["coverage"][label] = [round(cover, 4), round(leak, 4)]
    return out


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


def task_counts(log_groups, window: IncidentWindow, extract: str, *, aws=None, client=None,
                timeout: float = defaults.INSIGHTS_TIMEOUT_S) -> pd.DataFrame:
    """``log_task_counts``: failed and retried tasks by task, outcome and exception over the window."""

    def build(df):
        out = pd.DataFrame({c: df[c] if c in df else "" for c in TASK_COLUMNS})
        out["exception"] = out["exception"].fillna("")
        return out

    return _counted("log_task_counts", {"extract": extract}, log_groups, window, aws, client, timeout, TASK_COLUMNS,
                    build, ["events", "task"], ascending=[False, True])
