"""Logs Insights for the sandbox's in-process moto server: ``StartQuery`` / ``GetQueryResults`` /
``StopQuery`` answered by :mod:`forensics_sandbox.insights` over the events moto's logs backend holds.

moto 5.2's own Insights honours ``fields``/``sort``/``limit`` and silently drops ``filter``, ``stats``
and ``parse`` (and has no ``StopQuery``). :func:`install` (idempotent, process-wide) replaces those
handlers on moto's ``LogsResponse``:

- ``StartQuery``: exactly one of ``logGroupName`` / ``logGroupNames`` / ``logGroupIdentifiers`` (names
  or ARNs, at most 50); ``startTime``/``endTime`` epoch seconds, both inclusive (an event at
  ``endTime`` + 0.999 s is in); ``limit`` 1..10,000 (default 1,000). The query is compiled at once
  (syntax errors and unsupported commands are a ``MalformedQueryException``), each stream's event
  count is noted (events put later are not seen), and the query runs on a worker thread:
  ``GetQueryResults`` says ``Running`` until it is ``Complete`` (or ``Failed``). Streams' events are
  converted to arrays once and kept on the stream, extended as events arrive.
- ``GetQueryResults``: ``results``, ``statistics`` (recordsMatched/recordsScanned/bytesScanned),
  ``status``; ``StopQuery``: a running query becomes ``Cancelled``; one that already ended is an
  ``InvalidParameterException``, as the API reference describes. ``DescribeQueries`` keeps working.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter

import numpy as np
import pandas as pd

from .. import insights

MAX_GROUPS = 50
_lock = threading.Lock()
_columns_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def install() -> None:
    """Serve Logs Insights from :mod:`insights` in every moto server of this process (idempotent)."""
    from moto.logs.responses import LogsResponse

    with _lock:
        if getattr(getattr(LogsResponse, "start_query", None), "forensics_patched", False):
            return
        LogsResponse.start_query = _start_query
        LogsResponse.get_query_results = _get_query_results
        LogsResponse.stop_query = _stop_query
        for handler in (_start_query, _get_query_results, _stop_query):
            handler.forensics_patched = True  # type: ignore[attr-defined]


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-insights")
        return _executor


# ---- handlers (methods of moto's LogsResponse) ----------------------------------------------------
def _start_query(self) -> str:
    from moto.logs.exceptions import InvalidParameterException

    params = {k: self._get_param(k) for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers",
                                             "startTime", "endTime", "queryString", "limit", "queryLanguage")}
    if params["queryLanguage"] not in (None, "CWLI"):
        raise InvalidParameterException(f"the sandbox runs Logs Insights QL (CWLI) only, not {params['queryLanguage']}")
    query = start_query(self.logs_backend, **{k: v for k, v in params.items() if k != "queryLanguage"})
    return json.dumps({"queryId": query.query_id})


def _get_query_results(self) -> str:
    query = _find(self.logs_backend, self._get_param("queryId"))
    return json.dumps(query.to_result_json())


def _stop_query(self) -> str:
    from moto.logs.exceptions import InvalidParameterException

    query = _find(self.logs_backend, self._get_param("queryId"))
    if not query.cancel():
        raise InvalidParameterException(f"Query {query.query_id} is not running (status {query.status}).")
    return json.dumps({"success": True})


def _find(backend, query_id):
    from moto.logs.exceptions import ResourceNotFoundException

    query = backend.queries.get(query_id or "")
    if not isinstance(query, InsightsQuery):
        raise ResourceNotFoundException(f"Query {query_id} does not exist.")
    return query


# ---- the query ----------------------------------------------------------------------------------
def _malformed(error: insights.MalformedQueryError):
    """``MalformedQueryException`` as the Logs API returns it: message plus ``queryCompileError``."""
    from moto.core.exceptions import JsonRESTError

    exc = JsonRESTError("MalformedQueryException", error.message)
    body = {"__type": "MalformedQueryException", "message": error.message}
    if error.start is not None:
        body["queryCompileError"] = {"location": {"startCharOffset": error.start, "endCharOffset": error.end},
                                     "message": error.message}
    exc.description = json.dumps(body)
    exc.code = 400
    return exc


def start_query(backend, *, queryString=None, startTime=None, endTime=None, logGroupName=None,  # noqa: N803
                logGroupNames=None, logGroupIdentifiers=None, limit=None) -> "InsightsQuery":
    """Validate, compile and schedule one query on ``backend`` (a moto ``LogsBackend``)."""
    from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException

    given = [p for p in (logGroupName, logGroupNames, logGroupIdentifiers) if p]
    if len(given) != 1:
        raise InvalidParameterException("StartQuery takes exactly one of logGroupName, logGroupNames or "
                                        "logGroupIdentifiers.")
    names = [given[0]] if isinstance(given[0], str) else [_group_name(i) for i in given[0]]
    if len(names) > MAX_GROUPS:
        raise InvalidParameterException(f"At most {MAX_GROUPS} log groups per query, not {len(names)}.")
    if startTime is None or endTime is None:
        raise InvalidParameterException("StartQuery needs startTime and endTime (epoch seconds).")
    start, end = int(startTime), int(endTime)
    if end < start:
        raise InvalidParameterException("endTime cannot be earlier than startTime.")
    if limit is not None and not 1 <= int(limit) <= insights.MAX_LIMIT:
        raise InvalidParameterException(f"limit must be from 1 to {insights.MAX_LIMIT}, not {limit}.")
    missing = [n for n in names if n not in backend.groups]
    if missing:
        raise ResourceNotFoundException(f"Log group '{missing[0]}' does not exist for account ID "
                                        f"'{backend.account_id}'.")
    try:
        parsed = insights.parse(queryString or "")
    except insights.MalformedQueryError as exc:
        raise _malformed(exc) from None
    snapshot = _snapshot([backend.groups[n] for n in names])
    query = InsightsQuery(str(uuid.uuid4()), queryString, names, start, end)
    backend.queries[query.query_id] = query
    query.future = _pool().submit(query.run, parsed, snapshot, backend.account_id,
                                  int(limit) if limit is not None else None)
    return query


def _group_name(identifier: str) -> str:
    """A log group name or ARN (``arn:aws:logs:region:account:log-group:NAME[:*]``) -> its name."""
    if identifier.startswith("arn:"):
        rest = identifier.split(":log-group:", 1)[-1]
        return rest[:-2] if rest.endswith(":*") else rest
    return identifier


def _snapshot(groups) -> list:
    """[(group name, stream name, stream, event count)]: taken at StartQuery, so events put afterwards
    do not change the answer (moto only ever appends to a stream's events)."""
    return [(group.name, name, stream, len(stream.events))
            for group in groups for name, stream in list(group.streams.items())]


def _columns(stream, n: int) -> dict:
    """The first ``n`` events of ``stream`` as arrays, converted once and extended as events arrive
    (kept on the stream: a million events convert in seconds, a query should not pay it each time)."""
    import pyarrow as pa

    with _columns_lock:
        events = stream.events
        cache = stream.__dict__.get("forensics_insights_columns")
        if cache is None or cache["n"] > len(events) or (cache["n"] and events[cache["n"] - 1] is not cache["last"]):
            cache = {"n": 0, "last": None, "ts": np.empty(0, "int64"), "ingest": np.empty(0, "int64"),
                     "ptr": np.empty(0, "int64"), "msg": pa.chunked_array([], type=pa.large_string())}
        if n > cache["n"]:
            new = events[cache["n"]:n]
            cache = {"n": n, "last": events[n - 1],
                     "ts": np.concatenate([cache["ts"], _ints(new, "timestamp")]),
                     "ingest": np.concatenate([cache["ingest"], _ints(new, "ingestion_time")]),
                     "ptr": np.concatenate([cache["ptr"], _ints(new, "event_id")]),
                     "msg": pa.chunked_array(cache["msg"].chunks + [pa.array([e.message for e in new],
                                                                              type=pa.large_string())])}
            stream.__dict__["forensics_insights_columns"] = cache
        return cache


def _ints(events, attr: str) -> np.ndarray:
    return np.fromiter(map(attrgetter(attr), events), dtype="int64", count=len(events))


def events_frame(snapshot: list, start_ms: int, end_ms: int, account_id: str) -> pd.DataFrame:
    """The engine's frame: the snapshot's events with ``start_ms <= timestamp < end_ms`` (streams and
    groups as categories: no per-row names)."""
    import pyarrow as pa

    parts = []
    for group, stream_name, stream, n in snapshot:
        cols = _columns(stream, n)
        ts = cols["ts"][:n]
        keep = np.flatnonzero((ts >= start_ms) & (ts < end_ms))
        if len(keep):
            parts.append((group, stream_name, {k: cols[k][:n][keep] for k in ("ts", "ingest", "ptr")},
                          cols["msg"].take(pa.array(keep))))
    counts = np.array([len(p[2]["ts"]) for p in parts], dtype="int64")

    def category(names: list[str]) -> pd.Categorical:
        uniques = sorted(set(names))
        codes = np.repeat(np.array([uniques.index(x) for x in names], dtype="int32"), counts)
        return pd.Categorical.from_codes(codes, uniques)

    def joined(key: str) -> np.ndarray:
        return np.concatenate([p[2][key] for p in parts]) if parts else np.empty(0, "int64")

    messages = pa.chunked_array([c for p in parts for c in p[3].chunks], type=pa.large_string())
    return insights.events_frame(joined("ts"), messages, category([p[1] for p in parts]),
                                 category([p[0] for p in parts]), ingestion_time=joined("ingest"),
                                 ptr=joined("ptr"), account_id=account_id)


class InsightsQuery:
    """One query as moto's ``queries`` store holds it (``DescribeQueries`` reads ``to_json``)."""

    def __init__(self, query_id: str, query: str, log_group_names: list[str], start: int, end: int):
        self.query_id, self.query, self.log_group_names = query_id, query, list(log_group_names)
        self.start_time, self.end_time = start, end
        self.create_time = dt.datetime.now(dt.timezone.utc)
        self.status = "Running"
        self.result: insights.Result | None = None
        self.error: str | None = None
        self.future = None
        self._lock = threading.Lock()

    def run(self, parsed, snapshot, account_id: str, limit: int | None) -> None:
        try:
            frame = events_frame(snapshot, self.start_time * 1000, (self.end_time + 1) * 1000, account_id)
            result = insights.execute(parsed, frame, limit=limit)
            status = "Complete"
        except Exception as exc:  # noqa: BLE001 - reported as AWS does: status Failed
            result, status = None, "Failed"
            self.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            if self.status == "Running":
                self.result, self.status = result, status

    def cancel(self) -> bool:
        with self._lock:
            if self.status != "Running":
                return False
            self.status = "Cancelled"
            return True

    def to_json(self, log_group_name: str) -> dict:
        return {"queryId": self.query_id, "queryString": self.query, "status": self.status,
                "createTime": int(self.create_time.timestamp() * 1000), "logGroupName": log_group_name}

    def to_result_json(self) -> dict:
        with self._lock:
            result, status = self.result, self.status
        stats = result.statistics if result is not None else \
            {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}
        return {"results": result.rows if result is not None else [], "statistics": stats, "status": status}
