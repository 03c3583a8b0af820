"""The capture machinery: what a capture is, the declarations' table, the run's plan, the common kinds.

A capture is a name, the source it reads, the environment sections it needs, its columns, its volatility,
and ``build(inc, **params) -> Call``: one :class:`~forensics.sources.call.Call` built from the incident,
which the capture store both runs and records (so the manifest says what ran). The kinds below
(:func:`metrics`, :func:`postgres_query`, :func:`log_events`, :func:`events`) build it for the common
shapes, so a declaration is a few lines of data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import contracts, defaults, queries
from ..sources import _empty, cloudwatch, logs, postgres
from ..sources.call import Call, failing

#: Volatility ranks (lower is pulled first). What the live database shows is gone in seconds;
#: CloudWatch's fine-grained metrics expire in hours (1 s data after 3 h) and days; the rest stays.
LIVE = 1          # pg_stat_activity, pg_locks: gone when the session ends
COUNTERS = 2      # pg_stat_statements and settings: reset, evicted, or changed by a restart
METRICS = 3       # CloudWatch metrics: resolution drops with age
LOGS = 4          # log events, change events, trails: kept by their retention
TABLES = 5        # the application's own tables, schema, audit API: as durable as the database


@dataclass(frozen=True)
class Capture:
    name: str
    source: str
    api: str
    #: ``build(inc, **params) -> Call``: the one call, run and recorded
    build: Callable[..., Call]
    needs: tuple[str, ...] = ()
    columns: Mapping[str, str] | None = None
    volatility: int = LOGS
    query: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    doc: str = ""
    #: inputs (of ``after``) whose failure the capture handles itself; any other input failing fails it
    tolerates: tuple[str, ...] = ()

    @property
    def volatile(self) -> bool:
        return self.volatility <= COUNTERS

    def missing_sections(self, env: Mapping) -> list[str]:
        """The sections (or ``section.key``) of :attr:`needs` the environment lacks."""
        return [s for s in self.needs if not _lookup(env, s)]


def _lookup(env: Mapping, dotted: str):
    value = env
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


CAPTURES: dict[str, Capture] = {}


def declare(capture: Capture) -> Capture:
    if not callable(capture.build) or not isinstance(capture.needs, (tuple, list)) or not all(
            isinstance(s, str) for s in capture.needs):
        raise TypeError(f"capture {capture.name!r}: expected build(inc) -> Call and needs as section names "
                        "(a declaration passing a pull and a describe: build one Call instead, docs/captures.md)")
    if capture.name in CAPTURES:
        raise ValueError(f"capture {capture.name!r} is declared twice")
    unknown = [a for a in capture.after if a not in CAPTURES]
    if unknown:
        raise ValueError(f"capture {capture.name!r} reads {unknown[0]!r}, which is not declared before it")
    if capture.query:
        queries.load(capture.query)  # a missing or malformed query file fails at import, not mid-incident
    CAPTURES[capture.name] = capture
    return capture


def get(name: str) -> Capture:
    try:
        return CAPTURES[name]
    except KeyError:
        raise KeyError(f"no capture named {name!r} (declared: {', '.join(sorted(CAPTURES))})") from None


# ---- what a capture needs, interpreted here only --------------------------------------------------------
def call_for(cap: Capture, inc, params: Mapping) -> Callable[[], Call]:
    """How ``inc`` pulls ``cap`` with ``params``: a function building its one Call (called only when the
    capture is really pulled). Unknown parameters are a TypeError now; absent sections a Call that is
    recorded as needing them and fails with a one-line reason."""
    unknown = sorted(set(params) - set(cap.params))
    if unknown:
        raise TypeError(f"capture {cap.name!r} takes no parameter {unknown[0]!r} "
                        f"(it takes: {', '.join(cap.params) or 'none'})")
    missing = cap.missing_sections(inc.env)
    if missing:
        return lambda: failing(None, {"needs": f"section {missing[0]}"},
                               LookupError(f"the environment has no {missing[0]} section"))
    return lambda: cap.build(inc, **params)


def plan(names: Iterable[str], env: Mapping) -> tuple[list[Capture], dict[str, list[str]]]:
    """The run's plan: the named captures and those they read, deduplicated, most volatile first.
    Captures whose environment sections are absent are left out, with the sections they lack."""
    wanted: dict[str, Capture] = {}

    def add(name: str) -> None:
        cap = get(name)
        for dep in cap.after:
            add(dep)
        wanted.setdefault(name, cap)

    for n in names:
        add(n)
    skipped = {c.name: c.missing_sections(env) for c in wanted.values() if c.missing_sections(env)}
    order = list(CAPTURES)
    ready = [c for c in wanted.values() if c.name not in skipped]
    return sorted(ready, key=lambda c: (c.volatility, order.index(c.name))), skipped


def volatile(planned: Iterable[Capture]) -> list[Capture]:
    """The captures of a plan the runner pulls before anything else, one at a time, most volatile first
    (RFC 3227): the live database views and counters that read nothing else."""
    return [c for c in planned if c.volatile and not c.after]


def sections_lacking(names: Iterable[str], env: Mapping) -> list[str]:
    """The sections a notebook reading ``names`` needs when the environment has none of its sources' (else
    []): an absent section by its name, a present one that lacks a key by ``section.key``."""
    caps = [get(n) for n in names]
    if any(not c.missing_sections(env) and set(c.needs) - {"aws"} for c in caps):
        return []
    return sorted({n if n.split(".")[0] in env else n.split(".")[0]
                   for c in caps for n in c.missing_sections(env)} - {"aws"})


# ---- kinds ------------------------------------------------------------------------------------------
def metrics(name: str, needs: Iterable[str], build: Callable, doc: str = "", **kw) -> Capture:
    """CloudWatch GetMetricData over the context window (the baseline before the incident included);
    ``build(inc)`` lists the :class:`~forensics.sources.cloudwatch.MetricQuery` to ask for."""

    def call(inc) -> Call:
        window = inc.context_window
        wanted = build(inc)
        made = cloudwatch.metric_data_call(wanted, window, window.period(), aws=inc.aws)
        if not wanted:  # nothing configured to ask for (e.g. no replica): an empty answer, no call
            return Call(made.api, made.args, lambda: _empty(contracts.METRIC_COLUMNS))
        return made

    return declare(Capture(name, "cloudwatch", "GetMetricData", call, tuple(needs),
                           contracts.METRIC_COLUMNS, METRICS, doc=doc, **kw))


def postgres_query(name: str, query: str, params: Callable | None = None, *, run: Callable | None = None,
                   needs: Iterable[str] = ("postgres",), volatility: int = TABLES, doc: str = "", **kw) -> Capture:
    """A named query (``queries/<query>.yaml``) on the session's read-only connection. ``params(inc)``
    gives the query's parameters from the incident; ``run(conn, inc)`` replaces the plain run where the
    source adds checks of its own (pg_stat_statements' hint, the blockers' pid lists)."""
    q = queries.load(query)

    def call(inc) -> Call:
        values = params(inc) if params else {}

        def execute():
            conn = inc.pg()
            if run is not None:
                return run(conn, inc)
            text, bound = q.sql(values)
            return postgres.run(conn, text, bound, schema=q.columns, what=name)

        return Call(None, {"database": inc.pg_target(), **q.record(values)}, execute)

    return declare(Capture(name, "postgres", f"query:{query}", call, tuple(needs), q.columns,
                           volatility, query=query, doc=doc or q.description, **kw))


def log_events(name: str, needs: Iterable[str], groups: Callable, pattern: str, client_regex: str | None,
               doc: str = "", window: Callable | None = None, **kw) -> Capture:
    """FilterLogEvents over the context window (or ``window(inc)``), capped at ``max_events``."""

    def call(inc, max_events=defaults.LOG_MAX_EVENTS) -> Call:
        return logs.filter_call(groups(inc), window(inc) if window else inc.context_window, pattern, aws=inc.aws,
                                max_events=max_events, client_regex=client_regex)

    return declare(Capture(name, "logs", "FilterLogEvents", call, tuple(needs), contracts.LOG_COLUMNS,
                           LOGS, params={"max_events": defaults.LOG_MAX_EVENTS}, doc=doc, **kw))


def events(name: str, api: str, needs: Iterable[str], call: Callable[..., Call],
           columns: Mapping[str, str] | None = None, *, doc: str = "", **kw) -> Capture:
    """Change events (``contracts.EVENT_COLUMNS`` first) from an AWS API; ``call(inc)`` builds the Call.
    (A declaration still passing a ``pull`` and a ``describe`` fails here: build one Call instead.)"""
    return declare(Capture(name, kw.pop("source", "aws-events"), api, call, tuple(needs),
                           columns or contracts.EVENT_COLUMNS, kw.pop("volatility", LOGS), doc=doc, **kw))
