"""Logs Insights for the sandbox's in-process moto server: ``StartQuery`` / ``GetQueryResults`` /
``StopQuery`` answered by :mod:`forensics.sandbox.insights` over the events moto's logs backend holds.

moto 5.2's own Insights honours ``fields``/``sort``/``limit`` and silently drops ``filter``, ``stats``
and ``parse`` (and has no ``StopQuery``). :func:`install` (idempotent, process-wide) replaces those
handlers on moto's ``LogsResponse``:

- ``StartQuery``: exactly one of ``logGroupName`` / ``logGroupNames`` / ``logGroupIdentifiers`` (names
  or ARNs, at most 50); ``startTime``/``endTime`` epoch seconds, both inclusive (an event at
  ``endTime`` + 0.999 s is in); ``limit`` 1..10,000 (default 1,000). The query is compiled at once
  (syntax errors and unsupported commands are a ``MalformedQueryException``), the events in range are
  copied, and the query runs on a worker thread: ``GetQueryResults`` says ``Running`` until it is
  ``Complete`` (or ``Failed``).
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

from . import insights

MAX_GROUPS = 50
_lock = threading.Lock()
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
    snapshot = _snapshot([backend.groups[n] for n in names], start * 1000, (end + 1) * 1000)
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


def _snapshot(groups, start_ms: int, end_ms: int) -> list:
    """[(group name, stream name, events in [start_ms, end_ms)), ...]: a copy taken at StartQuery, so
    events put afterwards do not change the answer."""
    out = []
    for group in groups:
        for name, stream in list(group.streams.items()):
            events = stream.events[:]
            if events:
                ts = np.fromiter(map(attrgetter("timestamp"), events), dtype="int64", count=len(events))
                keep = (ts >= start_ms) & (ts < end_ms)
                if not keep.all():
                    events = [events[i] for i in np.flatnonzero(keep)]
                if events:
                    out.append((group.name, name, events))
    return out


def events_frame(snapshot: list, account_id: str) -> pd.DataFrame:
    """The engine's frame from a :func:`_snapshot` (streams and groups as categories: no per-row names)."""
    events = [e for _, _, evs in snapshot for e in evs]
    n = len(events)
    counts = np.array([len(evs) for _, _, evs in snapshot], dtype="int64")

    def category(names: list[str]) -> pd.Categorical:
        uniques = sorted(set(names))
        codes = np.repeat(np.array([uniques.index(x) for x in names], dtype="int32"), counts)
        return pd.Categorical.from_codes(codes, uniques)

    return insights.events_frame(
        np.fromiter(map(attrgetter("timestamp"), events), dtype="int64", count=n),
        [e.message for e in events],
        category([s for _, s, _ in snapshot]),
        category([g for g, _, _ in snapshot]),
        ingestion_time=np.fromiter(map(attrgetter("ingestion_time"), events), dtype="int64", count=n),
        ptr=np.fromiter(map(attrgetter("event_id"), events), dtype="int64", count=n),
        account_id=account_id)


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
            result = insights.execute(parsed, events_frame(snapshot, account_id), limit=limit)
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
