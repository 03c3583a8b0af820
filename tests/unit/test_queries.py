"""Queries as data: every query file loads, is used, and is shipped; every name used has a file; a broken
file is refused with the reason (MSTICpy's query-file lint, for SQL)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from forensics import captures, queries
from forensics.queries import QueryError, _parse

LIB = Path(queries.__file__).resolve().parents[1]
REPO = LIB.parents[1]


def _lib_source() -> str:
    return "\n".join(p.read_text() for p in LIB.rglob("*.py") if "queries" not in p.parts[-2:])


def test_every_query_file_loads():
    assert queries.names()
    for name in queries.names():
        q = queries.load(name)
        assert q.columns, f"{name}: no columns"
        assert q.description and q.engine in queries.ENGINES


def test_no_query_file_is_unused():
    source = _lib_source()
    used = {c.query for c in captures.CAPTURES.values() if c.query}
    for name in queries.names():
        assert name in used or f'"{name}"' in source, f"queries/{name}.yaml is used by nothing"


def test_every_query_name_used_has_a_file():
    names = set(re.findall(r"(?:\bqueries\.load|(?<![\w])_query)\(\s*\"([a-z0-9_]+)\"", _lib_source()))
    names |= {c.query for c in captures.CAPTURES.values() if c.query}
    assert names
    missing = sorted(names - set(queries.names()))
    assert not missing, f"query names with no file: {missing}"


def test_pyproject_ships_exactly_the_query_files():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["forensics"]
    globs = [g for g in data if g.startswith("queries/")]
    shipped = {p.name for g in globs for p in LIB.glob(g)}
    assert shipped == {f"{n}.yaml" for n in queries.names()}


def _write(tmp_path, name, body) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(body)
    return p


GOOD = """name: q
engine: postgres
description: d
parameters:
  table: {type: identifier}
  start: {type: datetime}
columns: {n: float64}
query: SELECT count(*) AS n FROM {table} WHERE t >= %(start)s
"""


@pytest.mark.parametrize("change, reason", [
    (("start: {type: datetime}", "start: {type: datetime}\n  extra: {type: int}"), "'extra' is declared but not used"),
    (("%(start)s", "%(stop)s"), "placeholder 'stop' is not a declared parameter"),
    (("table: {type: identifier}", "table: {type: str}"), "identifiers go in {name}"),
    (("engine: postgres", "engine: mysql"), "engine 'mysql'"),
    (("name: q", "name: other"), "differs from the file name"),
    (("description: d\n", ""), "missing description"),
    (("start: {type: datetime}", "start: {type: when}"), "needs a type"),
])
def test_a_broken_query_file_is_refused_with_its_reason(tmp_path, change, reason):
    assert _parse(_write(tmp_path, "q", GOOD)).name == "q"
    with pytest.raises(QueryError, match=re.escape(reason)):
        _parse(_write(tmp_path, "q", GOOD.replace(*change)))


def test_parameters_are_typed_defaulted_and_checked():
    q = queries.load("pg_alembic_version")
    assert q.values() == {"table": "alembic_version"}
    with pytest.raises(QueryError, match="unknown parameter 'tabel'"):
        q.values({"tabel": "x"})
    with pytest.raises(QueryError, match="not a table name"):
        q.sql({"table": "x; DROP TABLE y"})
    window = queries.load("ai_calls")
    with pytest.raises(QueryError, match="'start' \\(datetime\\) is required"):
        window.values({"table": "t", "end": "2026-01-01"})
    assert str(window.values({"table": "t", "start": "2026-01-01T10:00+02:00", "end": "2026-01-01"})["start"]) \
        == "2026-01-01 08:00:00+00:00"


def test_the_record_of_a_query_is_its_text_verbatim():
    q = queries.load("pg_activity")
    rec = q.record()
    assert rec["text"] == (queries.QUERY_DIR / "pg_activity.yaml").read_text().split("query: |\n", 1)[1].replace(
        "\n  ", "\n").removeprefix("  ")
    assert rec["query"] == "pg_activity" and rec["engine"] == "postgres"
