"""The log's statements normalised as pg_stat_statements normalises them, measured on the real cluster
(fixture pg_cluster, PostgreSQL with pg_stat_statements): statements with literals of every kind are run with
log_min_duration_statement = 0, the server's own log is read back with forensics.pglog, and each statement's
normalised text and fingerprint are compared with pg_stat_statements' row for it."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from forensics.pglog import extract, normalize, reader

pytestmark = pytest.mark.sandbox

STATEMENTS = [
    "SELECT * FROM {t} WHERE id = 42",
    "SELECT * FROM {t} WHERE name = 'it''s' AND id > 3",
    "UPDATE {t} SET n = n + -5 WHERE id = 7",
    "INSERT INTO {t} (id, name, n) VALUES (1001, 'x', 2.5)",
    "SELECT id FROM {t} WHERE id IN (1, 2, 3) ORDER BY id LIMIT 5",
    "SELECT count(*) FROM {t} WHERE name LIKE 'a%' OR n BETWEEN 1 AND 10",
    "SELECT E'tab\\t' || name FROM {t} WHERE id = 1",
    "DELETE FROM {t} WHERE id = 1001",
    "SELECT 1.5e3::float8 * n FROM {t} WHERE id = 3",
    "SELECT * FROM {t} WHERE id = -1",
    "select   id ,  name from {t}   where id=5",
    "SELECT pg_sleep(0.01), id FROM {t} WHERE id = 2",
    "SELECT id,\n       name\n  FROM {t}\n WHERE n > 0.5\n   AND name <> 'zz'",
    "SELECT now() - interval '1 day', id FROM {t} WHERE id = 9",
]


def _collapse(text: str) -> str:
    return " ".join(str(text).split()).rstrip(";")


def test_log_normalisation_matches_pg_stat_statements(pg_cluster):
    table = f"norm_{uuid.uuid4().hex[:8]}"
    log = pg_cluster.workdir / "postgres.log"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as su:
        su.execute(f"CREATE TABLE {table} (id int, name text, n numeric)")
        su.execute(f"INSERT INTO {table} SELECT g, 'a' || g, g / 3.0 FROM generate_series(1, 50) g")
        prefix = su.execute("SHOW log_line_prefix").fetchone()[0]
        start = log.stat().st_size
        su.execute("SET log_min_duration_statement = 0")
        for sql in STATEMENTS:
            su.execute(sql.format(t=table))
        su.execute("RESET log_min_duration_statement")
        pss = su.execute("SELECT query FROM pg_stat_statements WHERE query LIKE %s", (f"%{table}%",)).fetchall()
        su.execute(f"DROP TABLE {table}")
    with open(log, "rb") as fh:
        fh.seek(start)
        text = fh.read()
    events = extract.statement_events(reader.parse_text(text, prefix))
    ours = events[events["query"].str.contains(table)]
    theirs = {normalize.fingerprint(q): _collapse(q) for (q,) in pss}
    assert len(ours) == len(STATEMENTS), "every statement is timed in the server's log"
    same_print = sum(fp in theirs for fp in ours["fingerprint"])
    same_text = sum(theirs.get(fp) == _collapse(q) for fp, q in zip(ours["fingerprint"], ours["query"]))
    misses = [(q, theirs.get(fp)) for fp, q in zip(ours["fingerprint"], ours["query"]) if theirs.get(fp) != _collapse(q)]
    print(f"\nfingerprint joins pg_stat_statements: {same_print}/{len(ours)}; same normalised text "
          f"(whitespace collapsed): {same_text}/{len(ours)}")
    for q, p in misses:
        print(f"  ours: {q}\n  pss:  {p}")
    assert same_print == len(ours)
    assert same_text >= len(ours) - 2
