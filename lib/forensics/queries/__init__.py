"""Queries kept as data: one YAML file per named query, loaded by name (MSTICpy's query library is the model).

A file ``<name>.yaml`` holds::

    name: pg_activity            # equals the file's stem
    engine: postgres             # postgres | insights | duckdb | athena
    description: ...
    parameters:                  # optional; each typed, optionally with a default
      table: {type: identifier, description: ...}     # spliced in as a quoted identifier only
      start: {type: datetime, description: ...}       # a bound value (never text in the SQL)
    columns: {pid: int64, ...}   # the result's columns and dtypes ("ts" = UTC timestamp)
    notes: ...                   # optional: dialect differences and the like
    query: |
      SELECT ... FROM {table} WHERE t >= %(start)s

A query that runs on more than one engine (S3 evidence: DuckDB embedded, or Athena where the data is
large) holds ``dialects: {duckdb: ..., athena: ...}`` instead of ``query``, and says in ``notes`` how
they differ; ``engine`` names the default one.

Placeholders: PostgreSQL: ``{name}`` for an ``identifier`` parameter (``psycopg.sql.Identifier``),
``%(name)s`` for a value (bound, never text). DuckDB and Athena: ``{name}`` for every parameter, rendered
as a checked literal of its type (:mod:`forensics.sources.query_engines`); text inside SQL string
literals is not a placeholder. Logs Insights: ``{name}`` for every parameter, rendered by
:meth:`Query.insights` as a checked literal: ``str`` a double-quoted string (``\\`` and ``"`` escaped),
``int``/``float`` a number, ``list`` quoted strings separated by commas (for ``in [...]``), ``regex`` a
``/.../`` literal (``/`` escaped, the pattern compiled first), ``matchers`` (label -> literal fragments)
one ``sum(strcontains(@message, "a") * strcontains(@message, "b")) as label`` per label: the count of
events holding every fragment of a signature, each fragment a quoted string, never regex text.
:func:`load` checks that every placeholder is a declared parameter and every
parameter is used, so a broken file fails in the tests (tests/unit/test_queries.py), not mid-incident.
The text recorded in the manifest is the file's query, verbatim, with the parameters beside it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import QueryError

QUERY_DIR = Path(__file__).resolve().parent
ENGINES = ("postgres", "insights", "duckdb", "athena")
TYPES = ("identifier", "datetime", "str", "int", "float", "bool", "list", "regex", "matchers")
_IDENT_SLOT = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_VALUE_SLOT = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_NO_DEFAULT = object()


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str = ""
    default: Any = _NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass(frozen=True)
class Query:
    name: str
    engine: str
    description: str
    text: str
    parameters: dict[str, Param] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    path: Path | None = None
    dialects: dict[str, str] = field(default_factory=dict)

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(self.dialects) or (self.engine,)

    def text_for(self, engine: str) -> str:
        """The query's text for ``engine`` (its dialect); QueryError when it has none for that engine."""
        if engine == self.engine and not self.dialects:
            return self.text
        if engine not in self.dialects:
            raise QueryError(f"query {self.name} has no {engine} dialect (it has: {', '.join(self.engines)})")
        return self.dialects[engine]

    def values(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """The call's parameters: defaults merged in, types checked, unknown and missing ones refused."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.parameters))
        if unknown:
            raise QueryError(f"query {self.name}: unknown parameter {unknown[0]!r} "
                             f"(declared: {', '.join(self.parameters) or 'none'})")
        out = {}
        for p in self.parameters.values():
            if p.name in given and given[p.name] is not None:
                out[p.name] = _convert(self.name, p, given[p.name])
            elif not p.required:
                out[p.name] = p.default
            else:
                raise QueryError(f"query {self.name}: parameter {p.name!r} ({p.type}) is required")
        return out

    def sql(self, given: dict[str, Any] | None = None):
        """``(query, bound values)`` for psycopg: identifiers spliced in as quoted identifiers."""
        values = self.values(given)
        idents = {k: v for k, v in values.items() if self.parameters[k].type == "identifier"}
        bound = {k: v for k, v in values.items() if k not in idents} or None
        if not idents:
            return self.text, bound
        from psycopg import sql

        return sql.SQL(self.text).format(**{k: sql.Identifier(*v.split(".")) for k, v in idents.items()}), bound

    def insights(self, given: dict[str, Any] | None = None) -> str:
        """The Logs Insights query text with its parameters rendered as checked literals (see the module)."""
        values = self.values(given)
        text = self.text_for("insights")
        return _IDENT_SLOT.sub(lambda m: _insights_literal(self.name, self.parameters[m.group(1)],
                                                           values[m.group(1)]), text)

    def record(self, given: dict[str, Any] | None = None, engine: str | None = None) -> dict:
        """What the manifest records: the name, engine, the query verbatim and the values used."""
        from .. import capture

        values = self.values(given)
        engine = engine or self.engine
        return {"query": self.name, "engine": engine, "text": self.text_for(engine),
                "parameters": {k: capture.json_safe(v) for k, v in values.items()}}


def _convert(query: str, p: Param, value: Any) -> Any:
    import pandas as pd

    try:
        if p.type == "identifier":
            parts = str(value).split(".")
            if not 1 <= len(parts) <= 2 or not all(_IDENT.match(x) for x in parts):
                raise ValueError(f"not a table name: {value!r} (expected [schema.]identifier)")
            return str(value)
        if p.type == "datetime":
            ts = pd.Timestamp(value)
            return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()
        if p.type == "int":
            return int(value)
        if p.type == "float":
            return float(value)
        if p.type == "bool":
            return bool(value)
        if p.type == "list":
            return list(value) if not isinstance(value, str) else [value]
        if p.type == "regex":
            text = str(value)
            if not text or "\n" in text:
                raise ValueError("a regex must be one non-empty line")
            try:  # Logs Insights writes a named group (?<name>...), Python (?P<name>...)
                re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", text))
            except re.error as exc:
                raise ValueError(f"not a regex: {exc}") from None
            return text
        if p.type == "matchers":
            return _matchers(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"query {query}: parameter {p.name!r} ({p.type}): {exc}") from None


_MATCHER_LABEL = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _insights_string(query: str, p: Param, value: Any) -> str:
    text = str(value)
    if "\n" in text or "\r" in text:
        raise QueryError(f"query {query}: parameter {p.name!r}: a Logs Insights string cannot hold a line break")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _insights_literal(query: str, p: Param, value: Any) -> str:
    """One parameter as Logs Insights text: never spliced raw (a value cannot end the literal it is in)."""
    if p.type in ("str", "identifier"):
        return _insights_string(query, p, value)
    if p.type in ("int", "float"):
        return repr(value)
    if p.type == "bool":
        return "1" if value else "0"
    if p.type == "list":
        return ", ".join(_insights_string(query, p, v) for v in value)
    if p.type == "regex":
        return "/" + re.sub(r"(?<!\\)((?:\\\\)*)/", r"\1\\/", value) + "/"
    if p.type == "matchers":
        out = []
        for label, fragments in value.items():
            terms = " * ".join(f"strcontains(@message, {_insights_string(query, p, f)})" for f in fragments)
            out.append(f"sum({terms}) as {label}")
        return ", ".join(out)
    raise QueryError(f"query {query}: parameter {p.name!r}: a {p.type} has no Logs Insights literal")


def _matchers(value: Any) -> dict[str, list[str]]:
    """``{label: [fragment, ...]}``: labels are lower-case identifiers, each with at least one non-empty
    fragment (an event counts under a label when it holds every fragment)."""
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a non-empty mapping of label -> list of fragments")
    out = {}
    for label, fragments in value.items():
        if not _MATCHER_LABEL.match(str(label)):
            raise ValueError(f"label {label!r} is not a lower-case identifier")
        frags = [fragments] if isinstance(fragments, str) else list(fragments)
        if not frags or not all(isinstance(f, str) and f for f in frags):
            raise ValueError(f"label {label!r}: expected non-empty text fragments")
        out[str(label)] = frags
    return out


def _parse(path: Path) -> Query:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise QueryError(f"{path.name}: not YAML: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(doc, dict):
        raise QueryError(f"{path.name}: expected a mapping with name, engine, query")
    where = path.name
    dialects = doc.get("dialects") or {}
    if dialects and (not isinstance(dialects, dict) or "query" in doc):
        raise QueryError(f"{where}: dialects maps an engine to its text, and replaces query")
    for key in ("name", "engine", "description") + (() if dialects else ("query",)):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise QueryError(f"{where}: missing {key}")
    extra = sorted(set(doc) - {"name", "engine", "description", "parameters", "columns", "notes", "query",
                               "dialects"})
    if extra:
        raise QueryError(f"{where}: unknown key {extra[0]!r}")
    if doc["name"] != path.stem:
        raise QueryError(f"{where}: name {doc['name']!r} differs from the file name")
    for engine in (doc["engine"], *dialects):
        if engine not in ENGINES:
            raise QueryError(f"{where}: engine {engine!r} is not one of {', '.join(ENGINES)}")
    if dialects and doc["engine"] not in dialects:
        raise QueryError(f"{where}: engine {doc['engine']!r} has no text in dialects")
    params = {}
    for name, spec in (doc.get("parameters") or {}).items():
        if not isinstance(spec, dict) or spec.get("type") not in TYPES:
            raise QueryError(f"{where}: parameter {name!r} needs a type, one of {', '.join(TYPES)}")
        params[name] = Param(name, spec["type"], spec.get("description", ""), spec.get("default", _NO_DEFAULT))
    texts = {str(e): str(t) for e, t in dialects.items()} or {doc["engine"]: doc["query"]}
    for engine, text in texts.items():
        _check_slots(f"{where} ({engine})" if dialects else where, engine, text, params)
    columns = doc.get("columns") or {}
    if not isinstance(columns, dict):
        raise QueryError(f"{where}: columns must map a column to its dtype")
    return Query(doc["name"], doc["engine"], " ".join(doc["description"].split()), texts[doc["engine"]], params,
                 {str(k): str(v) for k, v in columns.items()}, doc.get("notes", "") or "", path,
                 texts if dialects else {})


def _check_slots(where: str, engine: str, text: str, params: dict[str, Param]) -> None:
    """Every placeholder a declared parameter of the right kind; every parameter used."""
    code = _SQL_STRING.sub("''", text)  # '{uuid}' in a string literal is text, not a slot
    idents = set(_IDENT_SLOT.findall(code))
    values = set(_VALUE_SLOT.findall(code)) if engine == "postgres" else set()
    used = idents | values
    undeclared = sorted(used - set(params))
    if undeclared:
        raise QueryError(f"{where}: placeholder {undeclared[0]!r} is not a declared parameter")
    unused = sorted(set(params) - used)
    if unused:
        raise QueryError(f"{where}: parameter {unused[0]!r} is declared but not used in the query")
    if engine == "postgres":
        wrong = sorted(n for n in idents if params[n].type != "identifier")
        wrong += sorted(n for n in values if params[n].type == "identifier")
        if wrong:
            raise QueryError(f"{where}: parameter {wrong[0]!r}: identifiers go in {{name}}, values in %(name)s")


@functools.cache
def load(name: str) -> Query:
    """The query called ``name`` (``queries/<name>.yaml``); QueryError if there is none or it is malformed."""
    path = QUERY_DIR / f"{name}.yaml"
    if not re.fullmatch(r"[a-z0-9_]+", name or "") or not path.is_file():
        raise QueryError(f"no query named {name!r} in {QUERY_DIR}")
    return _parse(path)


def names() -> list[str]:
    """Every query file's name."""
    return sorted(p.stem for p in QUERY_DIR.glob("*.yaml"))
