"""PostgreSQL source without a server: where the DSN comes from, secrets kept out of messages,
queries present as constants for the manifest."""

from __future__ import annotations

import pytest

from forensics.errors import SourceError
from forensics.sources import postgres as pgs


def test_dsn_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("FORENSICS_TEST_DSN", "host=db.internal dbname=app user=reader")
    assert pgs.resolve_dsn({"dsn_env": "FORENSICS_TEST_DSN", "dsn": "host=other"}) == \
        "host=db.internal dbname=app user=reader"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_variable_is_a_source_error_naming_it(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("FORENSICS_TEST_DSN", raising=False)
    else:
        monkeypatch.setenv("FORENSICS_TEST_DSN", value)
    with pytest.raises(SourceError, match="FORENSICS_TEST_DSN is not set") as err:
        pgs.connect({"dsn_env": "FORENSICS_TEST_DSN"})
    assert err.value.source == "postgres"


def test_dsn_then_libpq_defaults():
    assert pgs.resolve_dsn({"dsn": "host=127.0.0.1 dbname=app"}) == "host=127.0.0.1 dbname=app"
    assert pgs.resolve_dsn({"dsn_env": None, "dsn": None}) == ""
    assert pgs.resolve_dsn(None) == ""


@pytest.mark.parametrize("text", [
    "host=x password=hunter2 user=a", "host=x password = 'hun ter2' user=a",
    "postgresql://a:hunter2@x/app", "postgres://a:hunter2@x:5432/app?sslmode=require"])
def test_scrub_hides_passwords(text):
    out = pgs._scrub(text)
    assert "hunter2" not in out and "hun ter2" not in out and "[REDACTED" in out


def test_malformed_dsn_is_a_source_error_without_the_secret():
    with pytest.raises(SourceError, match="malformed") as err:
        pgs.connect({"dsn": "host=x password=hunter2 nonsense"})
    assert "hunter2" not in str(err.value)


def test_every_snapshot_has_its_sql_constant():
    for sql in (pgs.ACTIVITY_SQL, pgs.LOCKS_SQL, pgs.STATEMENTS_SQL, pgs.STATEMENTS_INFO_SQL, pgs.SETTINGS_SQL):
        assert sql.lstrip().upper().startswith("SELECT")
    assert "::float8" in pgs.STATEMENTS_SQL and "pg_blocking_pids" in pgs.ACTIVITY_SQL
