"""Named SQL queries over S3 evidence, run where it is small enough (DuckDB, embedded) or where it lives
(Athena).

Query files: ``lib/forensics/queries/<name>.yaml`` (:mod:`forensics.queries`) with a ``duckdb`` and an
``athena`` dialect and typed parameters. ``{param}`` in the SQL is replaced by a literal of the param's
type (``datetime``, ``int``, ``float``, ``str``) or, for ``identifier``, by a checked bare name: no text
from outside reaches the SQL unchecked.

- :func:`run_duckdb` runs a query over frames already read from S3 (the sources stream each object
  through boto3; DuckDB's httpfs is never pointed at an endpoint) and records ``attrs["engine"] =
  "duckdb"`` and ``attrs["bytes_scanned"]`` = the compressed bytes the sources downloaded.
- :func:`run_athena` refuses, before any call, a statement that is not one ``SELECT``/``WITH``
  (:func:`forensics.readonly_sql.check_athena`) and an output location inside an evidence bucket
  of the environment (:func:`~forensics.readonly_sql.check_output_location`); then runs it with
  StartQueryExecution / GetQueryExecution / GetQueryResults (paginated)
  in the environment's ``athena: {workgroup, database, output_location}`` and records ``engine =
  "athena"``, ``bytes_scanned`` = Athena's ``DataScannedInBytes`` and the execution id.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pandas as pd

from ..errors import SourceError
from . import _aws_errors
from .. import readonly_sql
from . import s3_objects as so

ENGINES = ("duckdb", "athena")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: object | None


@dataclass(frozen=True)
class Query:
    name: str
    engine: str
    sql: str
    params: tuple[Param, ...]


def load_query(name: str, engine: str) -> Query:
    """The named query's ``engine`` dialect with its declared params."""
    from .. import queries

    if engine not in ENGINES:
        raise ValueError(f"query engine {engine!r}: expected one of {', '.join(ENGINES)}")
    q = queries.load(name)
    params = tuple(Param(p.name, p.type, None if p.required else p.default) for p in q.parameters.values())
    return Query(name, engine, q.text_for(engine), params)


def _literal(param: Param, value, engine: str) -> str:
    if param.type == "datetime":
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            raise ValueError(f"param {param.name}: timestamp {value!r} has no timezone")
        ts = ts.tz_convert("UTC")
        if engine == "duckdb":
            return f"TIMESTAMPTZ '{ts.strftime('%Y-%m-%d %H:%M:%S.%f')}+00:00'"
        return f"from_iso8601_timestamp('{ts.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z')"
    if param.type == "int":
        return str(int(value))
    if param.type == "float":
        return repr(float(value))
    if param.type == "identifier":
        if not _IDENT.match(str(value)):
            raise ValueError(f"param {param.name}: {value!r} is not a plain table name")
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def render(query: Query, params: dict | None = None) -> str:
    """The SQL with every ``{param}`` replaced by a literal (defaults where not given)."""
    params = dict(params or {})
    unknown = set(params) - {p.name for p in query.params}
    if unknown:
        raise ValueError(f"query {query.name}: unknown params {', '.join(sorted(unknown))}")
    sql = query.sql
    for p in query.params:
        value = params.get(p.name, p.default)
        if value is None:
            raise ValueError(f"query {query.name}: param {p.name} is required")
        sql = sql.replace("{" + p.name + "}", _literal(p, value, query.engine))
    return sql


# ---- DuckDB -------------------------------------------------------------------------------------
def run_duckdb(name: str, tables: dict[str, pd.DataFrame], params: dict | None = None) -> pd.DataFrame:
    """Run the named query over ``tables`` (name -> frame) in an in-memory DuckDB. The frames' own
    ``attrs["bytes_read"]`` (S3 bytes downloaded to build them) are summed into ``bytes_scanned``."""
    import duckdb

    query = load_query(name, "duckdb")
    sql = render(query, params)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_external_access = false")  # only the registered frames: no files, no URLs
        for table, frame in tables.items():
            if not _IDENT.match(table):
                raise ValueError(f"table name {table!r} is not a plain name")
            con.register(table, frame)
        try:
            out = con.execute(sql).df()
        except duckdb.Error as exc:
            raise SourceError("duckdb", f"query {name} failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert("UTC")
    out.attrs.update({"engine": "duckdb", "query": name,
                      "bytes_scanned": int(sum(int(f.attrs.get("bytes_read") or 0) for f in tables.values()))})
    return out


# ---- Athena -------------------------------------------------------------------------------------
_ATHENA_TYPES = {"bigint": "Int64", "integer": "Int64", "int": "Int64", "smallint": "Int64", "tinyint": "Int64",
                 "double": "Float64", "float": "Float64", "real": "Float64", "decimal": "Float64",
                 "boolean": "boolean"}


def _athena_frame(column_info: list[dict], rows: list[list]) -> pd.DataFrame:
    names = [c["Name"] for c in column_info]
    df = pd.DataFrame(rows, columns=names, dtype="object")
    for c in column_info:
        kind = str(c.get("Type", "varchar")).lower()
        col = c["Name"]
        if kind in _ATHENA_TYPES:
            if _ATHENA_TYPES[kind] == "boolean":
                df[col] = df[col].map(lambda v: None if v is None else str(v).lower() == "true").astype("boolean")
            else:
                df[col] = pd.to_numeric(df[col], errors="coerce").astype(_ATHENA_TYPES[kind])
        elif kind.startswith("timestamp"):
            df[col] = pd.to_datetime(df[col].map(lambda v: None if v is None else str(v).replace(" UTC", "")),
                                     utc=True, format="ISO8601").astype("datetime64[us, UTC]")
    return df


def run_athena(name: str, athena: dict, aws: dict | None = None, params: dict | None = None, *,
               poll_s: float = 1.0, timeout_s: float = 600.0, client=None, env: dict | None = None) -> pd.DataFrame:
    """Run the named query in Athena (``athena: {workgroup, database, output_location}``; each optional
    but a database, and an output location unless the workgroup enforces one) and return its rows.
    ``env`` (the environment) names the evidence buckets the output location must stay out of."""
    athena = athena or {}
    query = load_query(name, "athena")
    sql = render(query, params)
    check_athena_call(sql, athena, env)
    ath = so.read_client("athena", aws, client)
    start: dict = {"QueryString": sql}
    if athena.get("workgroup"):
        start["WorkGroup"] = athena["workgroup"]
    if athena.get("database"):
        start["QueryExecutionContext"] = {"Database": athena["database"],
                                          **({"Catalog": athena["catalog"]} if athena.get("catalog") else {})}
    if athena.get("output_location"):
        start["ResultConfiguration"] = {"OutputLocation": athena["output_location"]}
    with _aws_errors("athena", "athena:StartQueryExecution"):
        qid = ath.start_query_execution(**start)["QueryExecutionId"]
    deadline = time.monotonic() + timeout_s
    while True:
        with _aws_errors("athena", "athena:GetQueryExecution"):
            ex = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        state = (ex.get("Status") or {}).get("State")
        if state == "SUCCEEDED":
            break
        if state in ("FAILED", "CANCELLED"):
            reason = (ex.get("Status") or {}).get("StateChangeReason") or "no reason given"
            raise SourceError("athena", f"query {name} ({qid}) {state.lower()}: {reason}")
        if time.monotonic() > deadline:
            with _aws_errors("athena", "athena:StopQueryExecution"):
                ath.stop_query_execution(QueryExecutionId=qid)
            raise SourceError("athena", f"query {name} ({qid}) still {state} after {timeout_s:.0f} s; stopped")
        time.sleep(poll_s)
    rows: list[list] = []
    column_info: list[dict] | None = None
    token = None
    first = True
    while True:
        with _aws_errors("athena", "athena:GetQueryResults"):
            page = ath.get_query_results(QueryExecutionId=qid, MaxResults=1000, **({"NextToken": token} if token else {}))
        rs = page.get("ResultSet") or {}
        if column_info is None:
            column_info = (rs.get("ResultSetMetadata") or {}).get("ColumnInfo") or []
        data = [[d.get("VarCharValue") for d in r.get("Data") or []] for r in rs.get("Rows") or []]
        if first and data and data[0] == [c["Name"] for c in column_info]:
            data = data[1:]  # a SELECT's first row repeats the column names
        first = False
        rows += data
        token = page.get("NextToken")
        if not token:
            break
    out = _athena_frame(column_info or [], rows)
    stats = ex.get("Statistics") or {}
    out.attrs.update({"engine": "athena", "query": name, "query_execution_id": qid,
                      "bytes_scanned": int(stats.get("DataScannedInBytes") or 0)})
    return out


def check_athena_call(sql: str, athena: dict, env: dict | None) -> None:
    """The read-only checks of an Athena call, before any: one SELECT/WITH statement, results outside
    the evidence buckets. A :class:`~forensics.errors.ReadOnlyViolation` otherwise."""
    from ..errors import ReadOnlyViolation

    try:
        readonly_sql.check_athena(sql)
        readonly_sql.check_output_location((athena or {}).get("output_location"), env or {})
    except readonly_sql.NotReadOnly as exc:
        raise ReadOnlyViolation(f"athena: refused before any call: {exc}") from None


def run(name: str, *, tables: dict[str, pd.DataFrame] | None = None, athena: dict | None = None,
        aws: dict | None = None, params: dict | None = None, client=None, env: dict | None = None) -> pd.DataFrame:
    """Athena when the environment has an ``athena`` section, else DuckDB over ``tables``."""
    if athena:
        return run_athena(name, athena, aws, params, client=client, env=env)
    if tables is None:
        raise ValueError(f"query {name}: no athena section and no tables to run DuckDB over")
    return run_duckdb(name, tables, params)
