"""PostgreSQL during an incident: read-only sessions and snapshots of the statistics views.

:func:`connect` opens a session the collector cannot write through by accident: the libpq
``options`` startup parameter sets ``default_transaction_read_only=on``, ``statement_timeout``,
``lock_timeout``, ``idle_in_transaction_session_timeout`` and ``TimeZone=UTC``; ``application_name``
is ``forensics`` (so our own sessions are recognisable in pg_stat_activity); autocommit, so no
snapshot holds a transaction open. If a pooler drops startup options, the same settings are applied
with ``SET`` and checked. This guards against mistakes, not against a determined caller (``SET
transaction_read_only = off`` undoes it): the real boundary is the role's grants — give the
collector a role with ``pg_read_all_stats`` (and nothing that writes).

Where the connection comes from (the environment's ``postgres`` section): ``dsn_env`` names an
environment variable holding a libpq DSN; else ``dsn``; else libpq's own defaults (``PG*``
variables, ``PGSERVICE``, ``~/.pgpass``). A password never belongs in a params file.

Every query is a file of lib/forensics/queries/ (its text goes into the manifest verbatim). Numbers
arrive as float64 (cast ``::float8`` in SQL: pg_stat_statements' numerics would be Decimal), times as
UTC timestamps. pg_stat_statements is cumulative since its last reset: a window's view is the
delta of two snapshots (an analysis module computes it).
"""

from __future__ import annotations

import os

import pandas as pd

from .. import contracts, defaults, redact
from ..errors import SourceError
from . import _one_line, _typed, _utc

SOURCE = "postgres"
APPLICATION_NAME = contracts.APPLICATION_NAME
DEFAULT_STATEMENT_TIMEOUT_MS = defaults.PG_STATEMENT_TIMEOUT_MS

def _query(name: str):
    from .. import queries

    return queries.load(name)


#: The snapshots' SQL and columns come from the query files (lib/forensics/queries/<name>.yaml).
ACTIVITY_SQL, ACTIVITY_COLUMNS = _query("pg_activity").text, _query("pg_activity").columns
LOCKS_SQL, LOCKS_COLUMNS = _query("pg_locks").text, _query("pg_locks").columns
STATEMENTS_SQL, STATEMENTS_COLUMNS = _query("pg_statements").text, _query("pg_statements").columns
STATEMENTS_INFO_SQL = _query("pg_statements_info").text
STATEMENTS_INFO_COLUMNS = _query("pg_statements_info").columns
SETTINGS_SQL, SETTINGS_COLUMNS = _query("pg_settings").text, _query("pg_settings").columns

INSUFFICIENT_PRIVILEGE = "<insufficient privilege>"
_STATEMENTS_FIX = ("pg_stat_statements is not available in this database: it needs "
                   "shared_preload_libraries = 'pg_stat_statements' (on RDS: the DB parameter group, then a "
                   "reboot) and, in the database you connect to, CREATE EXTENSION pg_stat_statements")
_GRANT_FIX = "grant the collector's role pg_read_all_stats: GRANT pg_read_all_stats TO {user}"


# ---- connecting ---------------------------------------------------------------------------------
def _scrub(text: str) -> str:
    """Hide anything that looks like a password in a message (the patterns live in :mod:`forensics.redact`)."""
    return redact.text(text)


def resolve_dsn(pg: dict | None) -> str:
    """The DSN ``connect`` uses: ``os.environ[pg['dsn_env']]``, else ``pg['dsn']``, else ``""`` (libpq
    defaults: PG* variables, PGSERVICE, .pgpass). A missing variable is a SourceError naming it."""
    pg = pg or {}
    var = pg.get("dsn_env")
    if var:
        value = os.environ.get(var)
        if not value or not value.strip():
            raise SourceError(SOURCE, f"environment variable {var} is not set (the environment's "
                                      "postgres.dsn_env names it: it should hold a libpq DSN for the "
                                      "read-only collector)")
        return value
    return pg.get("dsn") or ""


def _options(statement_timeout_ms: int, lock_timeout_ms: int, idle_tx_timeout_ms: int) -> dict[str, str]:
    return {
        "default_transaction_read_only": "on",
        "statement_timeout": str(int(statement_timeout_ms)),
        "lock_timeout": str(int(lock_timeout_ms)),
        "idle_in_transaction_session_timeout": str(int(idle_tx_timeout_ms)),
        "TimeZone": "UTC",
    }


def _target(conninfo: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        d = conninfo_to_dict(conninfo)
    except Exception:  # noqa: BLE001 - a malformed DSN is reported by connect itself
        d = {}
    host = d.get("host") or os.environ.get("PGHOST") or "local socket"
    port = d.get("port") or os.environ.get("PGPORT") or "5432"
    db = d.get("dbname") or os.environ.get("PGDATABASE") or ""
    user = d.get("user") or os.environ.get("PGUSER") or ""
    svc = d.get("service") or os.environ.get("PGSERVICE")
    where = f"service {svc}" if svc and not d.get("host") else f"{host}:{port}"
    return f"{where}/{db}" + (f" as {user}" if user else "")


def connect(pg: dict | None = None, *, statement_timeout_ms: int | None = None,
            lock_timeout_ms: int = defaults.PG_LOCK_TIMEOUT_MS,
            idle_tx_timeout_ms: int = defaults.PG_IDLE_IN_TRANSACTION_TIMEOUT_MS,
            connect_timeout: float = defaults.PG_CONNECT_TIMEOUT_S):
    """A read-only, autocommit psycopg connection for the environment's ``postgres`` section.

    ``statement_timeout_ms`` defaults to ``pg['statement_timeout_ms']``, else 15 s. Failure to
    connect (unreachable, refused, authentication) is a SourceError naming the target, never a password.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    pg = pg or {}
    if statement_timeout_ms is None:
        statement_timeout_ms = int(pg.get("statement_timeout_ms") or DEFAULT_STATEMENT_TIMEOUT_MS)
    dsn = resolve_dsn(pg)
    try:
        given = conninfo_to_dict(dsn) if dsn else {}
    except psycopg.ProgrammingError as exc:
        raise SourceError(SOURCE, f"the DSN is malformed: {_scrub(_one_line(exc))}") from exc
    settings = _options(statement_timeout_ms, lock_timeout_ms, idle_tx_timeout_ms)
    ours = " ".join(f"-c {k}={v}" for k, v in settings.items())
    earlier = given.get("options") or os.environ.get("PGOPTIONS") or ""
    options = f"{earlier} {ours}".strip()  # later -c wins: ours
    conninfo = make_conninfo(dsn, options=options, application_name=APPLICATION_NAME,
                             connect_timeout=str(max(1, int(round(connect_timeout)))))
    target = _target(conninfo)
    try:
        conn = psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise SourceError(SOURCE, f"cannot connect to {target}: {_scrub(_one_line(exc))}") from exc
    try:
        _ensure_settings(conn, settings)
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_settings(conn, settings: dict[str, str]) -> None:
    """Check the session got our settings; a pooler may drop startup options: then SET them."""
    import psycopg
    from psycopg import sql

    try:
        if conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on":
            return
        for k, v in settings.items():
            conn.execute(sql.SQL("SET SESSION {} = {}").format(sql.Identifier(k), sql.Literal(v)))
        ok = conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
    except psycopg.Error as exc:
        raise SourceError(SOURCE, f"cannot make the session read-only: {_scrub(_one_line(exc))}") from exc
    if not ok:
        raise SourceError(SOURCE, "the session refused default_transaction_read_only=on; not using it")


# ---- queries ------------------------------------------------------------------------------------
def _pg_message(exc, what: str, hint: str | None = None) -> str:
    import psycopg
    from psycopg import errors as pge

    primary = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
    line = f"{what} failed: {_scrub(_one_line(primary))}"
    if isinstance(exc, pge.QueryCanceled):
        line += " (the session's statement_timeout cancelled it)"
    elif isinstance(exc, pge.LockNotAvailable):
        line += " (lock_timeout: another session holds a conflicting lock)"
    elif isinstance(exc, psycopg.OperationalError) and not getattr(exc, "sqlstate", None):
        line += " (the connection is lost: reconnect)"
    if hint:
        line += f"; {hint}"
    return line


def run(conn, query: str, params=None, *, schema: dict | None = None, what: str = "query",
        hint=None) -> pd.DataFrame:
    """Run one read-only query; a DataFrame of its rows. Failures are SourceError (original as cause).

    With ``schema`` (column -> dtype, ``"ts"`` for UTC timestamps) the frame has exactly those
    columns and dtypes, also when empty. Without, timestamptz columns become UTC and numerics float.
    ``hint`` (str or ``hint(exc) -> str | None``) adds the fix to the message.
    """
    import psycopg

    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            names = [d.name for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cur.description else []
    except psycopg.Error as exc:
        text = hint(exc) if callable(hint) else hint
        raise SourceError(SOURCE, _pg_message(exc, what, text)) from exc
    df = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame(columns=names)
    if schema:
        return _typed(df, schema)
    return _loose(df)


def _loose(df: pd.DataFrame) -> pd.DataFrame:
    import datetime as dt
    from decimal import Decimal

    for col in df.columns:
        vals = df[col].dropna()
        if not len(vals) or df[col].dtype != object:
            continue
        if all(isinstance(v, dt.datetime) and v.tzinfo is not None for v in vals):
            df[col] = _utc(df[col])
        elif all(isinstance(v, Decimal) for v in vals):
            df[col] = df[col].astype("float64")
    return df


def activity(conn) -> pd.DataFrame:
    """pg_stat_activity for every backend but our own, with ages in seconds and ``blocked_by`` (the
    pids from ``pg_blocking_pids``, filled for sessions waiting on a lock; ``[]`` otherwise).

    A role without pg_read_all_stats sees ``<insufficient privilege>`` as other users' query text.
    """
    df = run(conn, ACTIVITY_SQL, schema=ACTIVITY_COLUMNS, what="pg_stat_activity snapshot")
    df["blocked_by"] = df["blocked_by"].map(lambda v: [int(p) for p in v] if v is not None else [])
    return df


def locks(conn) -> pd.DataFrame:
    """Ungranted lock requests, one row per (waiting pid, blocking pid), with both sides' session."""
    return run(conn, LOCKS_SQL, schema=LOCKS_COLUMNS, what="pg_locks snapshot")


def _statements_hint(exc):
    from psycopg import errors as pge

    if isinstance(exc, (pge.UndefinedTable, pge.UndefinedFunction, pge.ObjectNotInPrerequisiteState)):
        return _STATEMENTS_FIX
    if isinstance(exc, pge.InsufficientPrivilege):
        return _GRANT_FIX.format(user="<collector role>")
    return None


def statements(conn, *, strict: bool = True) -> pd.DataFrame:
    """A pg_stat_statements snapshot (cumulative since the last reset), counters as float64.

    If the extension is missing or not loaded: SourceError with the fix. If some query texts are
    hidden (the role lacks pg_read_all_stats): SourceError with the GRANT when ``strict``, otherwise
    the rows, with ``attrs["hidden_query_text"]`` counting the hidden ones.
    """
    df = run(conn, STATEMENTS_SQL, schema=STATEMENTS_COLUMNS, what="pg_stat_statements snapshot",
             hint=_statements_hint)
    hidden = int((df["query"] == INSUFFICIENT_PRIVILEGE).sum()) if len(df) else 0
    if hidden and strict:
        user = run(conn, "SELECT current_user::text AS u", what="current_user")["u"].iloc[0]
        raise SourceError(SOURCE, f"pg_stat_statements hides the text of {hidden} of {len(df)} statements "
                                  f"from {user}; {_GRANT_FIX.format(user=user)}")
    df.attrs["hidden_query_text"] = hidden
    return df


def statements_info(conn) -> pd.DataFrame:
    """pg_stat_statements_info (PostgreSQL 14+): ``dealloc`` (entries evicted: a non-zero delta means
    the snapshot delta misses statements) and ``stats_reset``."""
    return run(conn, STATEMENTS_INFO_SQL, schema=STATEMENTS_INFO_COLUMNS, what="pg_stat_statements_info",
               hint=_statements_hint)


def settings(conn) -> pd.DataFrame:
    """One row: server version, connection limits, who we are, our session's guards, a few settings."""
    return run(conn, SETTINGS_SQL, schema=SETTINGS_COLUMNS, what="settings snapshot")
