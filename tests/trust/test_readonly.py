"""Read-only by construction, checked where the captures actually run.

PostgreSQL: the session the captures use (pull's per-notebook connection, from an environment
section) carries the four guards and refuses every kind of write. AWS: every operation of every
allowed service that is not on the list is refused by the client hook, and every listed operation
exists in botocore's models (a typo would silently block a read and weaken the policy check).
"""

from __future__ import annotations

import botocore.session
import psycopg
import pytest

from forensics import _aws
from forensics.capture import CaptureStore
from forensics.errors import ReadOnlyViolation
from forensics.params import Incident
from forensics.session import IncidentSession
from forensics.window import IncidentWindow


@pytest.fixture
def capture_session(pg_cluster):
    env = {"name": "ro", "aws": {"region": "eu-west-1"}, "postgres": {"dsn": pg_cluster.dsn("forensics"),
                                                                       "statement_timeout_ms": 4000}}
    inc = IncidentSession(Incident("INC-RO", "ro", "P3", IncidentWindow("2026-11-23T09:00:00Z",
                                                                         "2026-11-23T10:00:00Z"), env),
                          CaptureStore(None, notebook="ro"), "ro")
    admin = psycopg.connect(pg_cluster.dsn("postgres"), autocommit=True)
    admin.execute("CREATE TABLE IF NOT EXISTS ro_probe (id serial PRIMARY KEY, v int)")
    admin.execute("GRANT ALL ON ro_probe TO forensics")  # even with the grant, the session refuses writes
    admin.execute("GRANT USAGE, UPDATE ON SEQUENCE ro_probe_id_seq TO forensics")
    with inc:  # the session owns its connection and closes it
        yield inc, inc.pg()
    assert inc._db.conn is None
    admin.execute("DROP TABLE ro_probe")
    admin.close()


def test_the_capture_session_carries_the_guards(capture_session):
    _, conn = capture_session
    got = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in (
        "default_transaction_read_only", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")}
    assert got == {"default_transaction_read_only": "on", "statement_timeout": "4s", "lock_timeout": "2s",
                   "idle_in_transaction_session_timeout": "30s"}
    assert conn.autocommit


@pytest.mark.parametrize("sql", [
    "INSERT INTO ro_probe (v) VALUES (1)",
    "UPDATE ro_probe SET v = 2",
    "DELETE FROM ro_probe",
    "CREATE TABLE ro_new (x int)",
    "SELECT nextval('ro_probe_id_seq')",
    "DO $$ BEGIN INSERT INTO ro_probe (v) VALUES (3); END $$",
    "COPY ro_probe FROM PROGRAM 'true'",
    "SELECT pg_stat_statements_reset()",
])
def test_a_write_through_the_capture_session_fails(capture_session, sql):
    _, conn = capture_session
    with pytest.raises((psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)):
        conn.execute(sql)
    # explicit transactions are read-only too
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), conn.transaction():
        conn.execute("INSERT INTO ro_probe (v) VALUES (4)")


@pytest.mark.parametrize("service", sorted(_aws.READ_OPERATIONS))
def test_every_other_operation_of_an_allowed_service_is_refused(service):
    model = botocore.session.get_session().get_service_model(service)
    allowed = set(_aws.READ_OPERATIONS[service])
    assert allowed <= set(model.operation_names), allowed - set(model.operation_names)
    hook = _aws._refuse_writes(service)
    refused = 0
    for op in model.operation_names:
        if op in allowed:
            hook(model=model.operation_model(op))
            continue
        with pytest.raises(ReadOnlyViolation):
            hook(model=model.operation_model(op))
        refused += 1
    assert refused >= 1


def test_the_hook_is_on_every_client_we_make():
    for service in _aws.READ_OPERATIONS:
        client = _aws.client(service, {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"})
        write = next(op for op in client.meta.service_model.operation_names
                     if op not in _aws.READ_OPERATIONS[service])
        method = getattr(client, botocore.xform_name(write))
        with pytest.raises(ReadOnlyViolation):
            method()  # refused before parameter validation, before any request


def test_the_session_owns_its_connection_and_closes_it(pg_cluster):
    """Opened on first use, one per session (not per object id in a class-level dict), closed on exit,
    a failed run included: no collector backend is left in pg_stat_activity."""
    env = {"name": "ro", "aws": {"region": "eu-west-1"}, "postgres": {"dsn": pg_cluster.dsn("forensics")}}
    window = IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z")

    def ours(admin) -> int:
        return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forensics' "
                             "AND pid <> pg_backend_pid()").fetchone()[0]

    with psycopg.connect(pg_cluster.dsn("postgres"), autocommit=True) as admin:
        before = ours(admin)
        with pytest.raises(RuntimeError):
            with IncidentSession(Incident("INC-RO", "ro", "P3", window, env), CaptureStore(None, notebook="a"),
                                 "a") as inc:
                assert inc.pg() is inc.pg()  # one connection, reused
                inc.pull("pg_settings")
                assert ours(admin) == before + 1
                raise RuntimeError("the notebook failed")
        assert ours(admin) == before
        other = IncidentSession(Incident("INC-RO", "ro", "P3", window, env), CaptureStore(None, notebook="b"), "b")
        other.pg()
        assert ours(admin) == before + 1
        del other  # garbage collected (a kernel exiting): the finalizer closes it
        import gc

        gc.collect()
        assert ours(admin) == before
