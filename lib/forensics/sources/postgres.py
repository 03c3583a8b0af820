"""PostgreSQL during an incident: read-only sessions and snapshots of the statistics views.

:func:`connect` opens a session the collector cannot write through by accident: the libpq
``options`` startup parameter sets ``default_transaction_read_only=on``, ``statement_timeout``,
``lock_timeout``, ``idle_in_transaction_session_timeout`` and ``TimeZone=UTC``; ``application_name``
is ``forensics`` (so our own sessions are recognisable in pg_stat_activity); autocommit, so no
snapshot holds a transaction open. If a pooler drops startup options, the same settings are applied
with ``SET`` and checked.

Read-only by role, not only by session. At connect, a role that could write is refused
(:class:`PrivilegedRole`, one line, exit 2) unless the environment says ``postgres.allow_privileged_role:
true``: a superuser, a role owning (or a member of a role owning) a table, view or sequence of the
database, one holding INSERT/UPDATE/DELETE/TRUNCATE on any table, or one that can CREATE in ``public``.
The role to create is in docs/security-model.md (``pg_monitor``/``pg_read_all_stats``, CONNECT, no
ownership).

Nobody gets the raw connection: :func:`connect` returns a :class:`ReadOnlySession`, whose only way in is
one query at a time, checked (:func:`forensics.readonly_sql.check_postgres`: one SELECT/WITH/SHOW
statement, no ``set_config``, advisory lock, large object, ``pg_notify``...), run only while ``SHOW
transaction_read_only`` says ``on``, inside ``BEGIN READ ONLY`` and always rolled back, so whatever a
statement changes in the session (``set_config(..., false)``) or queues (``NOTIFY``) is undone.

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
from ..errors import ForensicsError, ReadOnlyViolation, SourceError
from .. import readonly_sql
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


class PrivilegedRole(ForensicsError):
    """The collector's role could write to the database: refused before any capture (exit 2)."""

    exit_code = 2


#: What the connected role could change: superuser, ownership, write grants, CREATE in public.
ROLE_SQL = """
SELECT current_user::text AS role,
       r.rolsuper AS superuser,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
           AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owned,
       (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
           AND pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY 1 LIMIT 1) AS owned_example,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
           AND (has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                OR has_any_column_privilege(c.oid, 'INSERT, UPDATE'))) AS writable,
       (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
           AND (has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                OR has_any_column_privilege(c.oid, 'INSERT, UPDATE')) ORDER BY 1 LIMIT 1) AS writable_example,
       EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public'
                 AND has_schema_privilege(oid, 'CREATE')) AS create_in_public
  FROM pg_roles r WHERE r.rolname = current_user
"""


def role_problems(conn) -> tuple[str, list[str]]:
    """The connected role and what it could change (empty: a read-only role)."""
    row = conn.execute(ROLE_SQL).fetchone()
    role, superuser, owned, owned_ex, writable, writable_ex, create_public = row
    problems = []
    if superuser:
        problems.append("it is a superuser")
    if owned:
        problems.append(f"it owns {owned} table(s), view(s) or sequence(s) (e.g. {owned_ex})")
    if writable:
        problems.append(f"it holds INSERT/UPDATE/DELETE/TRUNCATE on {writable} table(s) (e.g. {writable_ex})")
    if create_public:
        problems.append("it can CREATE in schema public")
    return role, problems


def check_role(conn, target: str = "") -> None:
    """Refuse a role that could write (:class:`PrivilegedRole`, one line)."""
    import psycopg

    try:
        role, problems = role_problems(conn)
    except psycopg.Error as exc:
        raise SourceError(SOURCE, f"cannot check the role's privileges: {_scrub(_one_line(exc))}") from exc
    if problems:
        raise PrivilegedRole(
            f"postgres: refusing to collect as role {role}{' on ' + target if target else ''}: "
            + "; ".join(problems) + ". Use a read-only role (pg_monitor, CONNECT, no ownership: "
            "docs/security-model.md), or set postgres.allow_privileged_role: true in the environment")


def preflight(environment: dict) -> None:
    """Before a run writes anything: a privileged role is refused now (exit 2), not as one failed
    capture per notebook. An unreachable database is left to the captures to report."""
    pg = environment.get("postgres")
    if not pg or pg.get("allow_privileged_role"):
        return
    try:
        connect(pg).close()
    except SourceError:
        pass


def connect(pg: dict | None = None, *, statement_timeout_ms: int | None = None,
            lock_timeout_ms: int = defaults.PG_LOCK_TIMEOUT_MS,
            idle_tx_timeout_ms: int = defaults.PG_IDLE_IN_TRANSACTION_TIMEOUT_MS,
            connect_timeout: float = defaults.PG_CONNECT_TIMEOUT_S) -> ReadOnlySession:
    """A read-only session (:class:`ReadOnlySession`) for the environment's ``postgres`` section.

    ``statement_timeout_ms`` defaults to ``pg['statement_timeout_ms']``, else 15 s. Failure to
    connect (unreachable, refused, authentication) is a SourceError naming the target, never a password.
    A role that could write is :class:`PrivilegedRole` unless ``pg['allow_privileged_role']``.
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
        if not pg.get("allow_privileged_role"):
            check_role(conn, target)
    except BaseException:
        conn.close()
        raise
    return ReadOnlySession(conn, target)


class ReadOnlySession:
    """The collector's PostgreSQL session: queries in, rows out, nothing else.

    Each :meth:`query` is checked (:func:`readonly_sql.check_postgres`), then run only if the session is
    still read-only (``SHOW transaction_read_only``), inside ``BEGIN READ ONLY`` ... ``ROLLBACK``. The
    psycopg connection stays private: a notebook cannot ``SET`` its way out of read-only mode.
    """

    def __init__(self, conn, target: str = ""):
        self._conn = conn
        self.target = target

    # -- lifetime --------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._conn.closed

    @property
    def autocommit(self) -> bool:
        return self._conn.autocommit

    @property
    def info(self):
        """libpq's connection information (backend pid, server version): read-only."""
        return self._conn.info

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ReadOnlySession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ReadOnlySession {self.target or 'postgres'}{' closed' if self.closed else ''}>"

    # -- reading ---------------------------------------------------------------------------------
    def check_read_only(self) -> None:
        """The session's transactions are still read-only, else it is closed and never used again."""
        state = self._conn.execute("SHOW transaction_read_only").fetchone()[0]
        if state != "on":
            self._conn.close()
            raise ReadOnlyViolation(f"postgres: the session is no longer read-only (transaction_read_only = "
                                    f"{state}); closed, not used")

    def query(self, sql, params=None) -> tuple[list[str], list[tuple]]:
        """Column names and rows of one read. A refused statement is :class:`ReadOnlyViolation`;
        a failing one the psycopg error."""
        text = sql if isinstance(sql, str) else sql.as_string(self._conn)
        try:
            readonly_sql.check_postgres(text)
        except readonly_sql.NotReadOnly as exc:
            raise ReadOnlyViolation(f"postgres: refused before it was sent: {exc}") from None
        self.check_read_only()
        with self._conn.cursor() as cur:
            cur.execute("BEGIN READ ONLY")
            try:
                cur.execute(sql, params)
                names = [d.name for d in cur.description] if cur.description else []
                rows = cur.fetchall() if cur.description else []
            finally:
                if not self._conn.closed and not self._conn.broken:
                    self._conn.execute("ROLLBACK")  # whatever the statement set or queued is undone
        return names, rows

    def execute(self, sql, params=None) -> _Result:
        """:meth:`query` with a cursor-like result (``fetchone``, ``fetchall``, ``description``)."""
        return _Result(*self.query(sql, params))


class _Result:
    def __init__(self, names: list[str], rows: list[tuple]):
        self.names, self._rows, self._pos = names, rows, 0

    @property
    def description(self):
        return [(n,) for n in self.names] if self.names else None

    def fetchone(self):
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchall(self) -> list[tuple]:
        rest, self._pos = self._rows[self._pos:], len(self._rows)
        return rest


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

    session = conn if isinstance(conn, ReadOnlySession) else ReadOnlySession(conn)
    try:
        names, rows = session.query(query, params)
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
