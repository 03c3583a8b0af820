"""A live PostgreSQL workload for the sandbox: real sessions, held open until ``stop()``.

Building blocks a scenario composes (each session is a real connection with its own
``application_name``, connected as the application role ``app``):

- :meth:`Workload.idle` - pooled connections checked back in (last statement ``ROLLBACK``);
- :meth:`Workload.idle_in_transaction` - a transaction left open after a statement;
- :meth:`Workload.blocked` - a statement that waits on a lock (runs in a thread until cancelled);
- :meth:`Workload.loop` - a statement run back to back in a thread (a genuinely slow report), its
  backend reniced so the sandbox does not starve the machine it runs on.

:func:`create_schema` creates the application's tables (``accounts``, ``orders`` with an unindexed
text column) once per cluster.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

import psycopg

from forensics.errors import SandboxError

log = logging.getLogger(__name__)

ORDER_NOTES = (
    "please deliver before noon", "leave at the front desk", "gift wrap, no invoice in the box",
    "call on arrival, buzzer broken", "refund requested for damaged item", "expedite if possible",
    "second floor, door on the left", "customer prefers email receipts",
)


def create_schema(cluster, orders_rows: int = 400_000, accounts_rows: int = 50) -> dict:
    """The application's tables, owned by ``app``: ``accounts`` and ``orders`` (``customer_note``
    has no index). Deterministic content. Returns row counts."""
    notes = "ARRAY[" + ", ".join("'" + n.replace("'", "''") + "'" for n in ORDER_NOTES) + "]"
    with psycopg.connect(cluster.dsn("app", application_name="scr-migrations"), autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE accounts (
                id integer PRIMARY KEY,
                name text NOT NULL,
                plan text NOT NULL,
                balance_cents bigint NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL DEFAULT now()
            )""")
        conn.execute("""
            INSERT INTO accounts (id, name, plan, balance_cents)
            SELECT g, 'tenant-' || lpad(g::text, 4, '0'),
                   (ARRAY['free', 'team', 'business', 'enterprise'])[1 + g %% 4], 100000 + g * 1733
            FROM generate_series(1, %s) g""", (accounts_rows,))
        conn.execute("""
            CREATE TABLE orders (
                id bigint NOT NULL,
                account_id integer NOT NULL,
                status text NOT NULL,
                total_cents bigint NOT NULL,
                created_at timestamptz NOT NULL,
                customer_note text
            )""")
        # One INSERT ... SELECT, then the primary key: about twice as fast as filling an indexed table.
        conn.execute(f"""
            INSERT INTO orders (id, account_id, status, total_cents, created_at, customer_note)
            SELECT g, 1 + (g * 7919) %% %s,
                   (ARRAY['paid', 'pending', 'refunded', 'shipped'])[1 + g %% 4],
                   500 + (g * 104729) %% 50000,
                   now() - make_interval(secs => g * 20),
                   'customer ' || (g * 31) %% 9973 || ' asked: '
                       || ({notes})[1 + (g * 13) %% {len(ORDER_NOTES)}] || ' ref ' || to_hex(g * 2654435761)
            FROM generate_series(1::bigint, %s) g""", (accounts_rows, orders_rows))
        conn.execute("ALTER TABLE orders ADD PRIMARY KEY (id)")
        conn.execute("CREATE INDEX orders_account_id_idx ON orders (account_id)")
        conn.execute("ANALYZE accounts")
        conn.execute("ANALYZE orders")
    return {"accounts": accounts_rows, "orders": orders_rows}


def reset_statements(cluster) -> None:
    """``pg_stat_statements_reset()``: the view then holds only what the workload runs."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


@dataclass
class Session:
    app: str
    kind: str  # idle | idle in transaction | blocked | loop
    conn: psycopg.Connection
    pid: int
    sql: str | None = None
    thread: threading.Thread | None = None
    error: BaseException | None = None
    runs: int = 0


@dataclass
class Workload:
    """Real sessions against ``cluster`` as role ``user``; ``stop()`` cancels and closes them all."""

    cluster: object
    user: str = "app"
    sessions: list[Session] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    # -- sessions ---------------------------------------------------------------------------------
    def _connect(self, app: str, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(self.cluster.dsn(self.user, application_name=app), autocommit=autocommit,
                               connect_timeout=10)

    def idle(self, app: str, n: int, statements=("SELECT 1",)) -> list[Session]:
        """``n`` pooled connections, each having run ``statements`` and been checked in (ROLLBACK)."""
        out = []
        for _ in range(n):
            conn = self._connect(app)
            for sql in statements:
                conn.execute(sql)
            conn.rollback()
            out.append(self._add(Session(app, "idle", conn, conn.info.backend_pid, "ROLLBACK")))
        return out

    def idle_in_transaction(self, app: str, sql: str, params=None) -> Session:
        """BEGIN; ``sql``; then nothing: the transaction stays open until ``stop()``."""
        conn = self._connect(app)
        cur = conn.execute(sql, params)
        if cur.description is not None:
            cur.fetchall()
        return self._add(Session(app, "idle in transaction", conn, conn.info.backend_pid, sql))

    def blocked(self, app: str, sql: str, params=None, timeout: float = 10) -> Session:
        """Run ``sql`` in a thread; return once the session waits on a lock (``wait_event_type='Lock'``)."""
        conn = self._connect(app)
        session = Session(app, "blocked", conn, conn.info.backend_pid, sql)

        def run():
            try:
                conn.execute(sql, params)
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    session.error = exc
            except BaseException as exc:  # noqa: BLE001 - reported through wait_ready()
                session.error = exc

        session.thread = threading.Thread(target=run, name=f"workload-blocked-{session.pid}", daemon=True)
        self._add(session)
        session.thread.start()
        self._wait_for(lambda rows: rows.get(session.pid, (None, None))[1] == "Lock", timeout,
                       f"session {session.pid} ({app}) did not start waiting on a lock")
        return session

    def loop(self, app: str, sql: str, params=None, nice: int | None = 19, pause: float = 0.0) -> Session:
        """Run ``sql`` back to back in a thread until ``stop()``; the backend is reniced to ``nice``."""
        conn = self._connect(app, autocommit=True)
        conn.execute("SET max_parallel_workers_per_gather = 0")  # one backend, one application_name
        session = Session(app, "loop", conn, conn.info.backend_pid, sql)
        if nice is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, session.pid, nice)
            except OSError as exc:  # another user's backend without privileges: run at normal priority
                log.debug("cannot renice backend %s: %s", session.pid, exc)

        def run():
            while not self._stop.is_set():
                try:
                    conn.execute(sql, params).fetchall()
                    session.runs += 1
                except psycopg.Error as exc:
                    if not self._stop.is_set():
                        session.error = exc
                    return
                if pause:
                    self._stop.wait(pause)

        session.thread = threading.Thread(target=run, name=f"workload-loop-{session.pid}", daemon=True)
        self._add(session)
        session.thread.start()
        return session

    def _add(self, session: Session) -> Session:
        self.sessions.append(session)
        return session

    # -- readiness --------------------------------------------------------------------------------
    def _activity(self) -> dict[int, tuple[str, str | None]]:
        with psycopg.connect(self.cluster.dsn("postgres", application_name="sandbox-control"),
                             autocommit=True) as conn:
            rows = conn.execute("SELECT pid, state, wait_event_type FROM pg_stat_activity "
                                "WHERE backend_type = 'client backend'").fetchall()
        return {pid: (state, wet) for pid, state, wet in rows}

    def _wait_for(self, predicate, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            failed = [s for s in self.sessions if s.error is not None]
            if failed:
                raise SandboxError(f"workload session {failed[0].pid} ({failed[0].app}) failed: {failed[0].error}")
            if predicate(self._activity()):
                return
            if time.monotonic() > deadline:
                raise SandboxError(message)
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 20) -> None:
        """Every session in its planted state: blocked ones wait on a lock, loops are active and have
        completed their statement at least once (so pg_stat_statements has it)."""
        def ready(rows):
            for s in self.sessions:
                state, wet = rows.get(s.pid, (None, None))
                if state is None:
                    return False
                if s.kind == "blocked" and wet != "Lock":
                    return False
                if s.kind == "idle in transaction" and state != "idle in transaction":
                    return False
                if s.kind == "loop" and (state != "active" or s.runs < 1):
                    return False
            return True

        self._wait_for(ready, timeout, "the sandbox workload did not reach its planted state in time")

    # -- stop -------------------------------------------------------------------------------------
    def stop(self, timeout: float = 5) -> None:
        """Cancel running statements, close every connection (open transactions roll back)."""
        self._stop.set()
        for s in self.sessions:
            if s.thread is not None and s.thread.is_alive():
                try:
                    s.conn.cancel_safe(timeout=2)
                except Exception:  # noqa: BLE001 - the server may already be gone
                    pass
        deadline = time.monotonic() + timeout
        for s in self.sessions:
            if s.thread is not None:
                s.thread.join(max(0.0, deadline - time.monotonic()))
        for s in reversed(self.sessions):
            try:
                s.conn.close()
            except Exception:  # noqa: BLE001
                pass
        self.sessions.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
