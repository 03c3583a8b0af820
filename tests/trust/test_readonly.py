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

from forensics import _aws, pull
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
