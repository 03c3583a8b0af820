"""Scenario "slow-queries": a dropped index turns a hot lookup into a sequential scan; a lock chain on billing.

The story: the billing API looks invoices up by customer (``SELECT ... FROM invoices WHERE customer_id =
$1 ...``) tens of thousands of times, in well under a millisecond each thanks to
``invoices_customer_id_idx``. Then a cleanup migration run by the billing service drops the index
("unused", it thought): the same statement now scans the whole table, tens of milliseconds a call,
and keeps running that way. Meanwhile a billing run holds a row of ``billing_runs`` in an open
transaction and the invoicer's update of that row waits behind it.

Live on the sandbox's PostgreSQL cluster (tables ``invoices``, ``billing_runs`` of its own). The fast
history is run first (pipelined), then the index is dropped by the workload, then the slow statement
runs every ``PAUSE_S`` until the sandbox stops: any two pg_stat_statements snapshots taken after the
sandbox started bracket slow calls only, while the statement's cumulative mean before them stays low
(``N_FAST`` fast calls against at most a few thousand slow ones per hour).
"""

from __future__ import annotations

import logging
import os
import threading
import time

import psycopg

from forensics.errors import SandboxError
from ..workload import Workload
from .played import Played, register
from .common import incident_fields, timeline

log = logging.getLogger(__name__)
APP = "scr-billing-api"
MIGRATION_APP = "scr-billing-migrations"
HOLDER_APP, WAITER_APP = "scr-billing-run", "scr-invoicer"
INDEX = "invoices_customer_id_idx"
LOOKUP_SQL = ("SELECT i.id, i.number, i.status, i.total_cents, i.issued_at FROM invoices i "
              "WHERE i.customer_id = %s ORDER BY i.issued_at DESC LIMIT 20")
#: a substring of the statement's text as pg_stat_statements shows it
LOOKUP_MARKER = "FROM invoices i WHERE i.customer_id ="
HOLDER_SQL = "UPDATE billing_runs SET status = 'running', started_at = now() WHERE id = %s"
WAITER_SQL = "UPDATE billing_runs SET invoices_issued = invoices_issued + %s WHERE id = %s"
ROWS, CUSTOMERS = 250_000, 5_000
N_FAST = 40_000
PAUSE_S = 0.5


def create_tables(cluster) -> None:
    with psycopg.connect(cluster.dsn("app", application_name=MIGRATION_APP), autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE invoices (
                id bigint PRIMARY KEY,
                number text NOT NULL,
                customer_id integer NOT NULL,
                status text NOT NULL,
                total_cents bigint NOT NULL,
                issued_at timestamptz NOT NULL,
                memo text
            )""")
        conn.execute(f"""
            INSERT INTO invoices
            SELECT g, 'INV-' || lpad(g::text, 8, '0'), 1 + (g * 7919) % {CUSTOMERS},
                   (ARRAY['draft', 'open', 'paid', 'void'])[1 + g % 4], 1000 + (g * 104729) % 90000,
                   now() - make_interval(secs => g * 37), 'net 30, po ' || to_hex(g * 2654435761)
            FROM generate_series(1::bigint, {ROWS}) g""")
        conn.execute(f"CREATE INDEX {INDEX} ON invoices (customer_id)")
        conn.execute("ANALYZE invoices")
        conn.execute("""
            CREATE TABLE billing_runs (id integer PRIMARY KEY, period text NOT NULL, status text NOT NULL,
                                       invoices_issued integer NOT NULL DEFAULT 0, started_at timestamptz)""")
        conn.execute("INSERT INTO billing_runs VALUES (1, '2026-11', 'pending', 0, NULL), "
                     "(2, '2026-10', 'done', 4812, now() - interval '30 days')")


class RegressingLookup:
    """The lookup, fast ``N_FAST`` times, then the index dropped, then slow every ``pause`` s until stop()."""

    def __init__(self, cluster, pause: float = PAUSE_S, n_fast: int = N_FAST):
        self.cluster, self.pause, self.n_fast = cluster, pause, n_fast
        self.conn = psycopg.connect(cluster.dsn("app", application_name=APP), autocommit=True, connect_timeout=10)
        self.pid = self.conn.info.backend_pid
        self.dropped_at = None
        self.slow_runs = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"workload-regressing-{self.pid}", daemon=True)

    def start(self) -> "RegressingLookup":
        self.conn.execute("SET max_parallel_workers_per_gather = 0")
        with self.conn.cursor() as cur:  # the fast history, pipelined
            cur.executemany(LOOKUP_SQL, [(1 + (i * 31) % CUSTOMERS,) for i in range(self.n_fast)])
        with psycopg.connect(self.cluster.dsn("app", application_name=MIGRATION_APP), autocommit=True) as mig:
            mig.execute(f"DROP INDEX {INDEX}")
        # reniced for the endless slow loop only: the one-off history at nice 19 took as long as the machine
        # was busy (the sandbox's start waits for it)
        try:
            os.setpriority(os.PRIO_PROCESS, self.pid, 19)
        except OSError as exc:
            log.debug("cannot renice backend %s: %s", self.pid, exc)
        import pandas as pd

        self.dropped_at = pd.Timestamp.now(tz="UTC")
        self.thread.start()
        if not self._ready.wait(30):
            self.stop()
            raise SandboxError(f"the slow invoices lookup did not run: {self.error}")
        return self

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                self.conn.execute(LOOKUP_SQL, (1 + (i * 31) % CUSTOMERS,)).fetchall()
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    self.error = exc
                self._ready.set()
                return
            i += 1
            self.slow_runs += 1
            self._ready.set()
            self._stop.wait(self.pause)

    def stop(self) -> None:
        self._stop.set()
        if self.thread.is_alive():
            try:
                self.conn.cancel_safe(timeout=2)
            except Exception:  # noqa: BLE001
                pass
            self.thread.join(5)
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


@register("slow-queries")
def play(sb) -> Played:
    started = time.monotonic()
    create_tables(sb.cluster)
    chain = Workload(sb.cluster)
    lookup = None
    try:
        holder = chain.idle_in_transaction(HOLDER_APP, HOLDER_SQL, (1,))
        waiter = chain.blocked(WAITER_APP, WAITER_SQL, (37, 1))
        chain.wait_ready()
        lookup = RegressingLookup(sb.cluster).start()
    except BaseException:
        chain.stop()
        if lookup is not None:
            lookup.stop()
        raise
    log.debug("slow-queries played in %.1f s", time.monotonic() - started)
    t = timeline(sb.now)
    truth = {"scenario": "slow-queries", "statement": LOOKUP_MARKER, "app": APP, "index": INDEX,
             "fast_calls": N_FAST, "index_dropped_at": lookup.dropped_at, "lookup_pid": lookup.pid,
             "blocker_app": HOLDER_APP, "blocker_pid": holder.pid, "blocked_app": WAITER_APP,
             "blocked_pid": waiter.pid, "stats_reset_or_evicted": False}
    incident = incident_fields("SANDBOX-SLOW-QUERIES", "billing API slow: invoice lookups", "P2", t)
    return Played(truth=truth, incident=incident, resources={}, workloads=[chain, lookup])


__all__ = ["play", "RegressingLookup", "LOOKUP_MARKER", "INDEX"]
