"""CloudWatch Logs: raw events through ``FilterLogEvents`` and aggregates through Logs Insights.

Events: ``[timestamp, log_group, log_stream, message, event_id]``, sorted by time, paginated with
the boto3 paginator, stopped at ``max_events`` (then ``df.attrs["truncated"] is True``). Over long
windows push counting down to :func:`insights_query` instead of pulling every event.

``client_regex`` — why it exists. The moto sandbox ignores OR (``?a ?b``), exclusion, JSON and regex
filter patterns and returns every event (shared/notes/sandbox-facts.md). Passing a Python regex that
selects the same events re-applies the selection client-side, so the sandbox gives the answer real
AWS gives. On real AWS the server already filtered, so a regex that matches *at least* what the
pattern matches (like :data:`ERROR_REGEX` for :data:`ERROR_PATTERN`: substring matching is looser
than CloudWatch's term matching) removes nothing: harmless. ``max_events`` counts events kept
after the regex.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable

import pandas as pd

from .. import contracts, defaults
from ..errors import SourceError
from ..window import IncidentWindow, iso
from . import _as_list, _aws_client, _aws_errors, _empty, _typed, _utc, _utc_ms
from .call import Call

SOURCE = "logs"
API = "logs:FilterLogEvents"
INSIGHTS_API = "logs:StartQuery"

#: CloudWatch filter syntax: any event containing one of these terms (terms are case-sensitive).
ERROR_PATTERN = "?ERROR ?Error ?Exception ?Traceback ?FATAL ?CRITICAL"
#: The same selection as a Python regex (for ``client_regex``); substring match, a superset of the terms.
ERROR_REGEX = r"ERROR|Error|Exception|Traceback|FATAL|CRITICAL"
#: PostgreSQL's own log: errors and worse, and the LOG lines that tell of pressure (checkpoints, lock waits).
PG_LOG_PATTERN = "?ERROR ?FATAL ?PANIC ?WARNING ?checkpoints ?waiting"
PG_LOG_REGEX = r"ERROR:|FATAL:|PANIC:|WARNING:|checkpoints are occurring|still waiting for"

COLUMNS = contracts.LOG_COLUMNS
#: Logs Insights accepts at most 50 log groups per query and returns at most 10,000 rows;
#: StartQuery's ``limit`` defaults to 1,000 rows.
INSIGHTS_MAX_GROUPS = 50
INSIGHTS_MAX_ROWS = 10_000
INSIGHTS_DEFAULT_LIMIT = 1000


_EPOCH = pd.Timestamp(0, tz="UTC")


def _ms(ts: pd.Timestamp) -> int:
    return int((ts - _EPOCH) // pd.Timedelta(milliseconds=1))


def _range_ms(window: IncidentWindow) -> tuple[int, int]:
    """FilterLogEvents' startTime/endTime are inclusive epoch ms; the window is [start, end)."""
    return _ms(window.start), _ms(window.end) - 1


def filter_call(log_groups, window: IncidentWindow, pattern: str | None = None, *, aws: dict | None = None,
                max_events: int = defaults.LOG_MAX_EVENTS, client_regex: str | None = None,
                api: str | None = None) -> Call:
    """:func:`filter_log_events` as one :class:`~forensics.sources.call.Call` (run and recorded alike)."""
    groups = _as_list(log_groups, "log_groups")
    start, end = _range_ms(window)
    args = {"logGroupNames": groups, "startTime": start, "endTime": end, "window": window.as_dict()}
    if pattern:
        args["filterPattern"] = pattern
    return Call(api, {"api": API, "args": args, "max_events": int(max_events), "client_regex": client_regex},
                lambda: filter_log_events(groups, window, pattern, aws=aws, max_events=max_events,
                                          client_regex=client_regex))


def filter_log_events(log_groups: str | Iterable[str], window: IncidentWindow, pattern: str | None = None, *,
                      aws: dict | None = None, max_events: int = defaults.LOG_MAX_EVENTS, client_regex: str | None = None,
                      client=None, config=None) -> pd.DataFrame:
    """Events of ``log_groups`` in ``window`` matching the CloudWatch filter ``pattern``.

    ``client_regex`` re-applies the selection client-side (``re.search`` on the message); see the
    module docstring. ``attrs``: ``truncated`` (bool), ``pages`` (requests made), ``scanned``
    (events received before ``client_regex``).
    """
    groups = _as_list(log_groups, "log_groups")
    if max_events < 1:
        raise ValueError(f"max_events must be at least 1, not {max_events}")
    rx = re.compile(client_regex) if client_regex else None
    start, end = _range_ms(window)
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    kept = scanned = pages = 0
    truncated = False
    logs = _aws_client("logs", aws, client, config) if groups else None
    for group in groups:
        if truncated:
            break
        args = {"logGroupName": group, "startTime": start, "endTime": end}
        if pattern:
            args["filterPattern"] = pattern
        with _aws_errors(SOURCE, f"FilterLogEvents on {group}"):
            for page in logs.get_paginator("filter_log_events").paginate(**args):
                pages += 1
                events = page.get("events") or []
                for ev in events:
                    scanned += 1
                    msg = ev.get("message", "")
                    if rx is not None and not rx.search(msg):
                        continue
                    if kept >= max_events:
                        truncated = True
                        break
                    cols["timestamp"].append(ev.get("timestamp"))
                    cols["log_group"].append(group)
                    cols["log_stream"].append(ev.get("logStreamName"))
                    cols["message"].append(msg)
                    cols["event_id"].append(ev.get("eventId"))
                    kept += 1
                if truncated:  # only once an event beyond max_events is seen: never a false alarm
                    break
    if kept:
        df = pd.DataFrame({
            "timestamp": _utc_ms(cols["timestamp"]),
            "log_group": cols["log_group"], "log_stream": cols["log_stream"],
            "message": cols["message"], "event_id": cols["event_id"],
        })
        df = _typed(df, COLUMNS).sort_values("timestamp", kind="stable").reset_index(drop=True)
    else:
        df = _empty(COLUMNS)
    df.attrs.update(truncated=truncated, pages=pages, scanned=scanned, max_events=int(max_events))
    return df


# ---- Logs Insights ------------------------------------------------------------------------------
def _range_s(window: IncidentWindow) -> tuple[int, int]:
    """Insights takes inclusive epoch *seconds*: the window's last second is included."""
    start = math.floor(window.start.timestamp())
    end = math.ceil(window.end.timestamp()) - 1
    return start, max(end, start)


_TS_FIELDS = re.compile(r"^(@timestamp|@ingestionTime|bin\(.*\))$")
_TEXT_FIELDS = ("@message", "@logStream", "@log")


def _insights_ts(values: pd.Series) -> pd.Series:
    """Insights timestamps: ``2026-05-30 09:00:00.000`` (UTC, real AWS) or epoch-ms text (moto)."""
    s = values.astype("object")
    nonnull = s.dropna()
    if len(nonnull) and nonnull.map(lambda v: str(v).isdigit()).all():
        return _utc_ms(pd.to_numeric(s))
    return _utc(s)


def _results_frame(results: list, columns: Iterable[str] | None) -> pd.DataFrame:
    rows = [{f["field"]: f.get("value") for f in row if f.get("field") != "@ptr"} for row in results]
    names = list(dict.fromkeys([k for r in rows for k in r] + list(columns or [])))
    df = pd.DataFrame(rows, columns=names)
    for col in df.columns:
        if _TS_FIELDS.match(col):
            try:
                df[col] = _insights_ts(df[col])
                continue
            except (ValueError, TypeError, OverflowError):
                pass  # not a timestamp after all: keep it as text
        elif len(df) and col not in _TEXT_FIELDS:
            num = pd.to_numeric(df[col], errors="coerce")
            if num.notna().sum() == df[col].notna().sum():  # every present value is a number
                df[col] = num.astype("float64")
                continue
        df[col] = df[col].astype("str")
    return df


def insights_query(log_groups: str | Iterable[str], window: IncidentWindow, query: str, *,
                   aws: dict | None = None, poll: float = 1.0, timeout: float = 60, limit: int | None = None,
                   columns: Iterable[str] | None = None, client=None, config=None) -> pd.DataFrame:
    """Run a Logs Insights ``query`` over ``log_groups`` and ``window``; one row per result row.

    Columns are the result fields (``@ptr`` dropped); ``@timestamp``/``bin(...)`` become UTC
    timestamps, columns whose every value is numeric become float64, the rest text. ``columns``
    names the fields to expect, so an empty result still has them. On ``timeout`` seconds the
    query is stopped (StopQuery) and SourceError raised. ``attrs``: ``query_id``, ``status``,
    ``statistics``, ``truncated`` (``limit`` rows came back: by default StartQuery's 1,000).

    The sandbox answers with its own Logs Insights engine (sandbox/insights.py); syntax it does not
    run is a MalformedQueryException there, as a syntax error is on AWS.
    """
    groups = _as_list(log_groups, "log_groups")
    if not groups:
        raise ValueError("insights_query needs at least one log group")
    if len(groups) > INSIGHTS_MAX_GROUPS:
        raise ValueError(f"Logs Insights queries at most {INSIGHTS_MAX_GROUPS} log groups, not {len(groups)}")
    if not query or not query.strip():
        raise ValueError("insights_query needs a query")
    start_s, end_s = _range_s(window)
    logs = _aws_client("logs", aws, client, config)
    args = {"logGroupNames": groups, "startTime": start_s, "endTime": end_s, "queryString": query}
    if limit:
        args["limit"] = int(limit)
    with _aws_errors(SOURCE, "StartQuery"):
        query_id = logs.start_query(**args)["queryId"]
    deadline = time.monotonic() + timeout
    while True:
        with _aws_errors(SOURCE, "GetQueryResults"):
            resp = logs.get_query_results(queryId=query_id)
        status = resp.get("status")
        if status == "Complete":
            break
        if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
            raise SourceError(SOURCE, f"Logs Insights query {query_id} ended with status {status}")
        if time.monotonic() >= deadline:
            try:
                with _aws_errors(SOURCE, "StopQuery"):
                    logs.stop_query(queryId=query_id)
            except SourceError:
                pass  # the timeout is the error worth reporting
            raise SourceError(SOURCE, f"Logs Insights query {query_id} still {status} after {timeout:g} s; "
                                      "stopped it (narrow the window or the log groups, or raise timeout)")
        time.sleep(poll)
    results = resp.get("results") or []
    df = _results_frame(results, columns)
    cap = min(int(limit), INSIGHTS_MAX_ROWS) if limit else INSIGHTS_DEFAULT_LIMIT
    df.attrs.update(query_id=query_id, status=status, statistics=dict(resp.get("statistics") or {}),
                    truncated=len(results) >= cap, query=query, window=window.as_dict(),
                    range={"start": iso(pd.Timestamp(start_s, unit="s", tz="UTC")),
                           "end": iso(pd.Timestamp(end_s, unit="s", tz="UTC"))})
    return df
