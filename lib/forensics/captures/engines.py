"""Captures that are a named query over other evidence: Athena over the environment's table when it has an
``athena`` section, else DuckDB over a capture of this record. The branch is written once, here."""

from __future__ import annotations

from collections.abc import Iterable

from .. import queries
from ..sources import query_engines
from ..sources.call import Call
from .core import LOGS, Capture, declare


def engine_call(name: str, source: str, query: str, needs: Iterable[str], *, table: tuple[str, str],
                reads: tuple[str, str], doc: str) -> Capture:
    """Declare ``name``: the query ``query`` over the window. ``table`` is (the athena section's key, its
    default table name); ``reads`` is (the capture DuckDB reads, the table name the query gives it)."""
    q = queries.load(query)
    capture_read, duck_table = reads

    def call(inc) -> Call:
        params = {"start": inc.window.start, "end": inc.window.end}
        athena = inc.env.get("athena")
        if athena:
            run_params = {**params, "table": athena.get(table[0]) or table[1]}
            return Call(None, q.record(run_params, "athena"),
                        lambda: query_engines.run_athena(query, athena, inc.aws, run_params, env=inc.env))
        return Call(None, q.record(params, "duckdb"),
                    lambda: query_engines.run_duckdb(query, {duck_table: inc.pull(capture_read)}, params))

    return declare(Capture(name, source, f"query:{query}", call, tuple(needs), q.columns, LOGS, query=query,
                           after=(capture_read,), doc=doc))
