"""Read-only by construction, checked where the captures actually run.

PostgreSQL: the session the captures use (pull's per-notebook connection, from an environment
section) carries the four guards and refuses every kind of write, every way out of read-only mode and
every side effect that outlives a transaction; a role that could write is refused at connect. Athena:
one SELECT/WITH statement, results outside the evidence buckets, refused before any call. AWS: every operation of every
allowed service that is not on the list is refused by the client hook, and every listed operation
exists in botocore's models (a typo would silently block a read and weaken the policy check).
"""

from __future__ import annotations

import botocore.session
import pandas as pd
import psycopg
import pytest
import yaml

from forensics import _aws
from forensics.capture import CaptureStore
from forensics.errors import ParamsError, ReadOnlyViolation, SourceError
from forensics.params import Incident, load_environment
from forensics import readonly_sql
from forensics.sources import postgres, query_engines
from forensics.session import IncidentSession
from forensics.window import IncidentWindow


@pytest.fixture
def capture_session(pg_cluster):
    """The capture session of a role that was (wrongly) granted writes on a table, allowed on purpose
    (``allow_privileged_role``): even then, nothing written goes through the session."""
    env = {"name": "ro", "aws": {"region": "eu-west-1"}, "postgres": {"dsn": pg_cluster.dsn("forensics"),
                                                                       "statement_timeout_ms": 4000,
                                                                       "allow_privileged_role": True}}
    inc = IncidentSession(Incident("INC-RO", "ro", "P3", IncidentWindow("2026-11-23T09:00:00Z",
                                                                         "2026-11-23T10:00:00Z"), env),
                          CaptureStore(None, notebook="ro"), "ro")
    admin = psycopg.connect(pg_cluster.dsn("postgres"), autocommit=True)
    admin.execute("CREATE TABLE IF NOT EXISTS ro_probe (id serial PRIMARY KEY, v int)")
    admin.execute("GRANT ALL ON ro_probe TO forensics")  # even with the grant, the session refuses writes
    admin.execute("GRANT USAGE, UPDATE ON SEQUENCE ro_probe_id_seq TO forensics")
    with inc:  # the session owns its connection and closes it
        yield inc, inc.pg(), admin
    assert inc._db.conn is None
    admin.execute("DROP TABLE ro_probe")
    admin.close()


def test_the_capture_session_carries_the_guards(capture_session):
    _, conn, _ = capture_session
    got = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in (
        "default_transaction_read_only", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")}
    assert got == {"default_transaction_read_only": "on", "statement_timeout": "4s", "lock_timeout": "2s",
                   "idle_in_transaction_session_timeout": "30s"}
    assert conn.autocommit
    assert isinstance(conn, postgres.ReadOnlySession) and not isinstance(conn, psycopg.Connection)


@pytest.mark.parametrize("sql", [
    "INSERT INTO ro_probe (v) VALUES (1)",
    "UPDATE ro_probe SET v = 2",
    "DELETE FROM ro_probe",
    "CREATE TABLE ro_new (x int)",
    "SELECT nextval('ro_probe_id_seq')",
    "DO $$ BEGIN INSERT INTO ro_probe (v) VALUES (3); END $$",
    "COPY ro_probe FROM PROGRAM 'true'",
    "SELECT pg_stat_statements_reset()",
    "WITH w AS (INSERT INTO ro_probe (v) VALUES (5) RETURNING id) SELECT * FROM w",
    "SELECT 1; INSERT INTO ro_probe (v) VALUES (6)",
    "SELECT * INTO ro_copy FROM ro_probe",
    "SELECT * FROM ro_probe FOR UPDATE",
    "TRUNCATE ro_probe",
])
def test_a_write_through_the_capture_session_fails(capture_session, sql):
    _, conn, admin = capture_session
    with pytest.raises((ReadOnlyViolation, psycopg.errors.ReadOnlySqlTransaction,
                        psycopg.errors.InsufficientPrivilege)):
        conn.execute(sql)
    assert admin.execute("SELECT count(*) FROM ro_probe").fetchone()[0] == 0
    assert admin.execute("SELECT to_regclass('ro_copy'), to_regclass('ro_new')").fetchone() == (None, None)


@pytest.mark.parametrize("sql", [
    "SET default_transaction_read_only = off",
    "SET SESSION default_transaction_read_only TO off",
    "RESET default_transaction_read_only",
    "BEGIN READ WRITE",
    "START TRANSACTION READ WRITE",
    "COMMIT; SET default_transaction_read_only = off",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT pg_catalog.set_config('transaction_read_only', 'off', false)",
    'SELECT "set_config"(\'default_transaction_read_only\', \'off\', false)',
    "/* a comment */ SET default_transaction_read_only = off",
    "SELECT 1 -- ; \nSET default_transaction_read_only = off",
    "SELECT 'a'; SET default_transaction_read_only = off",
])
def test_leaving_read_only_mode_is_refused(capture_session, sql):
    _, conn, _ = capture_session
    with pytest.raises(ReadOnlyViolation):
        conn.execute(sql)
    assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
    assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"


def test_leaving_read_only_mode_through_a_function_is_undone(capture_session):
    """A function the checker cannot see into flips the session's default: the statement's transaction is
    read-only anyway and is rolled back, which undoes the SET."""
    _, conn, admin = capture_session
    admin.execute("CREATE OR REPLACE FUNCTION ro_flip() RETURNS text LANGUAGE sql AS "
                  "$$ SELECT set_config('default_transaction_read_only', 'off', false) $$")
    try:
        assert conn.execute("SELECT ro_flip() AS flipped").fetchone()[0] == "off"
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises((ReadOnlyViolation, psycopg.errors.ReadOnlySqlTransaction)):
            conn.execute("INSERT INTO ro_probe (v) VALUES (7)")
    finally:
        admin.execute("DROP FUNCTION ro_flip()")


def test_a_security_definer_function_cannot_write(capture_session):
    """PUBLIC may execute a new function by default; a SECURITY DEFINER one runs as its (superuser) owner.
    Inside the session's read-only transaction it still cannot write."""
    _, conn, admin = capture_session
    admin.execute("CREATE OR REPLACE FUNCTION ro_definer() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS "
                  "$$ BEGIN INSERT INTO ro_probe (v) VALUES (8); RETURN 1; END $$")
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("SELECT ro_definer()")
        with pytest.raises(SourceError, match="read-only transaction"):
            postgres.run(conn, "SELECT ro_definer() AS x")
        assert admin.execute("SELECT count(*) FROM ro_probe").fetchone()[0] == 0
    finally:
        admin.execute("DROP FUNCTION ro_definer()")


@pytest.mark.parametrize("sql", [
    "SELECT lo_from_bytea(0, 'x'::bytea)",
    "SELECT lo_create(0)",
    "SELECT lo_import('/etc/hostname')",
    "NOTIFY forensics_probe, 'x'",
    "SELECT pg_notify('forensics_probe', 'x')",
    "LISTEN forensics_probe",
    "SELECT pg_advisory_lock(42)",
    "SELECT pg_try_advisory_lock(42)",
    "SELECT pg_advisory_xact_lock(42)",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT pg_cancel_backend(1)",
    "SELECT pg_reload_conf()",
    "SELECT pg_stat_reset()",
    "SELECT query_to_xml('select pg_advisory_lock(1)', true, false, '')",
    "SELECT pg_read_file('/etc/passwd')",
    "LOCK TABLE ro_probe",
    "VACUUM ro_probe",
    "PREPARE p AS SELECT 1",
    "SELECT txid_current()",
])
def test_side_effects_outside_the_transaction_are_refused(capture_session, sql):
    _, conn, admin = capture_session
    before = admin.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]
    with pytest.raises(ReadOnlyViolation):
        conn.execute(sql)
    assert admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0
    assert admin.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0] == before
    assert conn.execute("SELECT 1 AS alive").fetchone() == (1,)


def test_the_session_is_checked_before_each_capture(capture_session):
    """Should the session ever stop being read-only (here: flipped behind the helper's back), the next
    capture is refused and the connection closed, never used."""
    inc, conn, _ = capture_session
    conn._conn.execute("SET default_transaction_read_only = off")
    with pytest.raises(ReadOnlyViolation, match="no longer read-only"):
        conn.execute("SELECT 1")
    assert conn.closed
    frame = inc.pull("pg_settings")  # the session reconnects, read-only again
    assert frame["default_transaction_read_only"].tolist() == ["on"]


def test_strings_and_comments_are_not_statements():
    ok = ["SELECT 'INSERT INTO t VALUES (1); DROP TABLE t' AS s",
          "SELECT $$; SET x = 1$$ AS s", "SELECT $q$ DELETE $q$", "SELECT 1 /* DROP /* nested */ TABLE */",
          'SELECT "update" FROM t', "SELECT E'it\\'s; drop' AS s", "WITH a AS (SELECT 1) SELECT * FROM a;",
          "SHOW transaction_read_only", "SELECT replace(name, 'a', 'b') FROM t", "(SELECT 1) UNION (SELECT 2)"]
    for sql in ok:
        readonly_sql.check_postgres(sql)
    for sql in ["SELECT 'unterminated", "SELECT 1 /* open", "SELECT $a$ open", "", ";", "  -- only a comment"]:
        with pytest.raises(readonly_sql.NotReadOnly):
            readonly_sql.check_postgres(sql)


# ---- roles that could write are refused at connect --------------------------------------------------
@pytest.fixture
def roles(pg_cluster):
    admin = psycopg.connect(pg_cluster.dsn("postgres"), autocommit=True)
    made = []

    def role(name: str, *grants: str) -> str:
        admin.execute(f"DROP ROLE IF EXISTS {name}")
        admin.execute(f"CREATE ROLE {name} LOGIN")
        made.append(name)
        for g in grants:
            admin.execute(g.format(role=name))
        return name

    yield role, admin
    for name in made:
        admin.execute(f"DROP OWNED BY {name}")
        admin.execute(f"DROP ROLE {name}")
    admin.close()


@pytest.mark.parametrize("grants,why", [
    (("ALTER ROLE {role} SUPERUSER",), "superuser"),
    (("CREATE TABLE ro_owned_t (x int)", "ALTER TABLE ro_owned_t OWNER TO {role}"), "owns 1 table"),
    (("CREATE ROLE ro_app_owner", "CREATE TABLE ro_owned_m (x int)", "ALTER TABLE ro_owned_m OWNER TO ro_app_owner",
      "GRANT ro_app_owner TO {role}"), "owns 1 table"),
    (("CREATE TABLE ro_granted (x int)", "GRANT SELECT, INSERT ON ro_granted TO {role}"), "INSERT/UPDATE/DELETE"),
    (("CREATE TABLE ro_granted_c (x int)", "GRANT UPDATE (x) ON ro_granted_c TO {role}"), "INSERT/UPDATE/DELETE"),
    (("CREATE TABLE ro_trunc (x int)", "GRANT TRUNCATE ON ro_trunc TO {role}"), "INSERT/UPDATE/DELETE"),
    (("GRANT pg_write_all_data TO {role}",), "INSERT/UPDATE/DELETE"),
    (("GRANT CREATE ON SCHEMA public TO {role}",), "CREATE in schema public"),
])
def test_a_role_that_could_write_is_refused(pg_cluster, roles, grants, why):
    role, admin = roles
    name = role("ro_risky", *grants)
    try:
        with pytest.raises(postgres.PrivilegedRole, match=why) as err:
            postgres.connect({"dsn": pg_cluster.dsn(name)})
        assert err.value.exit_code == 2 and "\n" not in str(err.value)
        assert "allow_privileged_role" in str(err.value)
        with postgres.connect({"dsn": pg_cluster.dsn(name), "allow_privileged_role": True}) as conn:
            assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
    finally:
        for t in ("ro_owned_t", "ro_owned_m", "ro_granted", "ro_granted_c", "ro_trunc"):
            admin.execute(f"DROP TABLE IF EXISTS {t}")
        admin.execute("DROP ROLE IF EXISTS ro_app_owner")


def test_the_documented_role_passes(pg_cluster, roles):
    """docs/security-model.md's role: pg_monitor (pg_read_all_stats in it), CONNECT, SELECT on what the
    notebooks read, no ownership. And the sandbox's own forensics role."""
    role, _ = roles
    name = role("ro_collector", "GRANT pg_monitor TO {role}", "GRANT CONNECT ON DATABASE app TO {role}",
                "GRANT USAGE ON SCHEMA public TO {role}", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    for user in (name, "forensics"):
        with postgres.connect({"dsn": pg_cluster.dsn(user)}) as conn:
            assert postgres.role_problems(conn._conn) == (user, [])


def test_a_run_with_a_privileged_role_stops_before_writing(pg_cluster, tmp_path):
    """`forensics run` with the application's superuser DSN: one line, exit 2, no record."""
    import subprocess
    import sys

    env = tmp_path / "env.yaml"
    env.write_text(f"name: su\naws: {{region: eu-west-1, endpoint_url: 'http://127.0.0.1:9'}}\n"
                   f"postgres: {{dsn: '{pg_cluster.dsn('postgres')}'}}\n")
    inc = tmp_path / "inc.yaml"
    now = pd.Timestamp.now(tz="UTC").floor("h")
    inc.write_text(f"incident: INC-SU\ntitle: su\nseverity: P3\nenvironment: {env}\nnotebooks: [db-connections]\n"
                   f"window: {{start: '{(now - pd.Timedelta('2h')).isoformat()}', end: '{(now - pd.Timedelta('1h')).isoformat()}'}}\n")
    out = tmp_path / "evidence"
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "run", str(inc), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to collect as role postgres" in lines[0] and "superuser" in lines[0]
    assert not out.exists() or not any(out.rglob("*"))


# ---- Athena: one SELECT/WITH, results outside the evidence ---------------------------------------------
@pytest.mark.parametrize("sql", [
    "UNLOAD (SELECT * FROM cloudtrail_logs) TO 's3://trail-bucket/x/' WITH (format = 'JSON')",
    "DROP TABLE cloudtrail_logs",
    "CREATE TABLE x AS SELECT * FROM cloudtrail_logs",
    "INSERT INTO x SELECT * FROM cloudtrail_logs",
    "SELECT 1; DROP TABLE cloudtrail_logs",
    "ALTER TABLE cloudtrail_logs ADD PARTITION (d='1')",
    "MSCK REPAIR TABLE cloudtrail_logs",
    "DELETE FROM x WHERE 1 = 1",
    "MERGE INTO x USING y ON x.a = y.a WHEN MATCHED THEN DELETE",
    "WITH a AS (SELECT 1) INSERT INTO x SELECT * FROM a",
    "PREPARE p FROM SELECT 1",
    "-- just a comment",
    "SELECT 'unterminated",
])
def test_athena_refuses_anything_but_one_select(sql):
    with pytest.raises(readonly_sql.NotReadOnly):
        readonly_sql.check_athena(sql)


class _NoCalls:
    """An Athena client nothing may touch: any attribute is a failure (the refusal comes first)."""

    def __getattr__(self, name):
        raise AssertionError(f"athena client used: {name}")


EVIDENCE_ENV = {"name": "e", "aws": {"region": "eu-west-1"}, "cloudtrail": {"bucket": "org-trail"},
                "alb": {"access_logs": {"bucket": "alb-logs"}}, "backups": {"bucket": "db-dumps"}}


@pytest.mark.parametrize("location", ["s3://org-trail/athena/", "s3://ORG-TRAIL/x", "s3://alb-logs/",
                                      "s3://db-dumps/results/", "org-trail/athena/", "https://x/"])
def test_athena_results_never_go_into_an_evidence_bucket(location, tmp_path):
    athena = {"database": "logs", "output_location": location}
    with pytest.raises(ReadOnlyViolation, match="refused before any call"):
        query_engines.run_athena("cloudtrail_data_access", athena, None,
                                 {"start": "2026-05-30T09:00:00Z", "end": "2026-05-30T10:00:00Z",
                                  "table": "cloudtrail_logs"}, client=_NoCalls(), env=EVIDENCE_ENV)
    env = tmp_path / "env.yaml"
    env.write_text(yaml.safe_dump({**EVIDENCE_ENV, "athena": athena}))
    with pytest.raises(ParamsError, match="athena.output_location") as err:
        load_environment(str(env))
    assert "\n" not in str(err.value)
    load_environment_ok = {**EVIDENCE_ENV, "athena": {"database": "logs", "output_location": "s3://athena-results/f/"}}
    env.write_text(yaml.safe_dump(load_environment_ok))
    assert load_environment(str(env))["athena"]["output_location"] == "s3://athena-results/f/"


def test_validate_refuses_athena_results_in_the_trail_bucket(tmp_path):
    import subprocess
    import sys

    env = tmp_path / "env.yaml"
    env.write_text(yaml.safe_dump({**EVIDENCE_ENV, "athena": {"database": "l", "output_location": "s3://org-trail/q/"}}))
    inc = tmp_path / "inc.yaml"
    now = pd.Timestamp.now(tz="UTC").floor("h")
    inc.write_text(yaml.safe_dump({"incident": "INC-A", "title": "a", "severity": "P3", "environment": str(env),
                                   "window": {"start": (now - pd.Timedelta("2h")).isoformat(),
                                              "end": (now - pd.Timedelta("1h")).isoformat()}}))
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "validate", str(inc)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "inside the evidence bucket org-trail (cloudtrail.bucket)" in proc.stderr


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
    a failed run included: the session's backend is gone from pg_stat_activity. (Backends are followed by pid:
    another test's notebook prefetch, a process of its own, may hold a connection of the same name meanwhile.)"""
    env = {"name": "ro", "aws": {"region": "eu-west-1"}, "postgres": {"dsn": pg_cluster.dsn("forensics")}}
    window = IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z")

    def ours(admin) -> set[int]:
        return {r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'forensics' "
                                            "AND pid <> pg_backend_pid()").fetchall()}

    with psycopg.connect(pg_cluster.dsn("postgres"), autocommit=True) as admin:
        before = ours(admin)
        with pytest.raises(RuntimeError):
            with IncidentSession(Incident("INC-RO", "ro", "P3", window, env), CaptureStore(None, notebook="a"),
                                 "a") as inc:
                assert inc.pg() is inc.pg()  # one connection, reused
                inc.pull("pg_settings")
                backend = inc.pg().info.backend_pid
                assert backend in ours(admin) - before
                raise RuntimeError("the notebook failed")
        assert backend not in ours(admin)
        other = IncidentSession(Incident("INC-RO", "ro", "P3", window, env), CaptureStore(None, notebook="b"), "b")
        backend = other.pg().info.backend_pid
        assert backend in ours(admin)
        del other  # garbage collected (a kernel exiting): the finalizer closes it
        import gc

        gc.collect()
        assert backend not in ours(admin)
