"""Evidence you can trust, end to end on a real record (issue 3).

One throwaway sandbox (its own moto server and PostgreSQL cluster) for this module: fake secrets are
planted for real into its CloudWatch log group and into SQL text on its cluster (pg_stat_activity,
pg_stat_statements); `forensics run` writes a record; the sandbox is stopped, so every endpoint the
record names is dead; `forensics replay` then re-executes the notebooks from data/*.parquet alone.
The tests read that pair of records: replay equality, chain of custody, hash chain, tamper evidence,
order of volatility and redaction.
"""

from __future__ import annotations

import re

import getpass
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forensics import evidence, redact

from .secrets_corpus import corpus

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]
FORENSICS = [sys.executable, "-m", "forensics.cli"]
NOTEBOOKS = ["db-connections", "api-errors", "overview"]
SECRETS = corpus(seed=3)
#: Secrets also planted in SQL text: the same value must carry the same marker in both sources.
BEARER = next(s for s in SECRETS if s.kind == "bearer-token")
JWT = next(s for s in SECRETS if s.kind == "jwt")
URL_PW = next(s for s in SECRETS if s.kind == "url-password")
SQL_PW = next(s for s in SECRETS if s.kind == "sql-password")
API_KEY_LITERAL = SECRETS[-1]
assert "api_key = '" in API_KEY_LITERAL.line


def forensics(*args, env=None, check=False):
    # no timeout: `forensics run`/`replay` bound every cell themselves (defaults.CELL_TIMEOUT_S); a fixed
    # bound on the whole command depends on how loaded the machine is (issue 23)
    proc = subprocess.run([*FORENSICS, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"forensics {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def _plant_logs(sb) -> None:
    logs = sb.client("logs")
    group = sb.environment["logs"]["app"][0]
    logs.create_log_stream(logGroupName=group, logStreamName="trust/secrets")
    t = int(sb.truth["onset"].timestamp() * 1000) + 60_000
    events = [{"timestamp": t + i * 1000, "message": f"ERROR [trust.probe] {s.line}"} for i, s in enumerate(SECRETS)]
    logs.put_log_events(logGroupName=group, logStreamName="trust/secrets", logEvents=events)


def _plant_sql(sb):
    """Secrets in SQL text: a role created with a password (kept verbatim by pg_stat_statements, a
    utility statement) and idle sessions whose last query carries a literal or a comment with one."""
    import psycopg

    dsn = sb.cluster.dsn("postgres")
    admin = psycopg.connect(dsn, autocommit=True)
    admin.execute(SQL_PW.line.replace("app_rw", "trust_probe").replace("reporting", "trust_probe")
                  if "ALTER" not in SQL_PW.line else f"CREATE ROLE trust_probe LOGIN PASSWORD '{SQL_PW.secret}'")
    admin.execute("CREATE TABLE trust_api_keys (id int, org_id int, api_key text, revoked_at timestamptz)")
    holders = []
    for sql in (API_KEY_LITERAL.line.replace("FROM api_keys", "FROM trust_api_keys"),
                f"SELECT 1 /* upstream Authorization: Bearer {BEARER.secret} */",
                f"SELECT 2 /* jwt {JWT.secret} via postgresql://app:{URL_PW.secret}@db.internal:5432/app */"):
        conn = psycopg.connect(dsn, autocommit=True, application_name="trust-probe")
        conn.execute(sql).fetchall()
        holders.append(conn)
    return [admin, *holders]


@pytest.fixture(scope="module")
def records():
    """(original, replay, sandbox truth-ish facts) with the sandbox already stopped for the replay."""
    from forensics_sandbox.sandbox import Sandbox

    work = Path(tempfile.mkdtemp(prefix="forensics-trust-"))
    sb = Sandbox(work / "sandbox", scenario="pool-exhaustion").start()
    conns = []
    try:
        _plant_logs(sb)
        conns = _plant_sql(sb)
        sb.write_params(work / "env.yaml", work / "incident.yaml")
        facts = {"account": sb.account_id, "environment": sb.environment, "endpoint": sb.endpoint_url,
                 "dsn": sb.cluster.dsn("forensics")}
        only = [a for n in NOTEBOOKS for a in ("--only", n)]
        proc = forensics("run", work / "incident.yaml", "--out", work / "evidence", "--jobs", 2, *only, check=True)
        original = Path(proc.stdout.strip().splitlines()[-1])
    finally:
        for c in conns:
            c.close()
        sb.stop()
    # Every endpoint in the record's params.yaml is now closed: the replay can only use the record.
    proc = forensics("replay", original, "--jobs", 2, check=True)
    replay = Path(proc.stdout.strip().splitlines()[-1])
    yield original, replay, facts, work
    for p in work.rglob("*"):
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(work, ignore_errors=True)


def manifest(record: Path) -> dict:
    return json.loads((record / "manifest.json").read_text())


def findings(record: Path) -> dict:
    return json.loads((record / "findings.json").read_text())


def writable_copy(record: Path, dest: Path) -> Path:
    copy = dest / record.parent.name / record.name
    shutil.copytree(record, copy)
    for p in [copy, *copy.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return copy


# ---- 1. replay ---------------------------------------------------------------------------------------
def test_replay_with_every_source_gone_gives_the_same_findings(records):
    original, replay, facts, _ = records
    a, b = findings(original), findings(replay)
    assert set(a) == {*NOTEBOOKS, "diagnosis"}  # the runbook diagnosis is re-derived from equal findings
    for nb in NOTEBOOKS:
        assert a[nb]["status"] == "ok", a[nb]
        assert a[nb]["unknown"] == [], a[nb]
    assert a == b, "status and every finding of every notebook equal"
    assert (original / "findings.json").read_bytes() == (replay / "findings.json").read_bytes()


def test_replay_manifest_names_the_original_and_used_no_source(records):
    original, replay, facts, _ = records
    m, r = manifest(original), manifest(replay)
    assert r["replay_of"] == {"record": str(original), "digest": m["digest"]}
    assert m["replay_of"] is None
    # the replay serves what the notebooks ask for: all of it from the original record
    assert {c["name"] for c in r["captures"]} <= {c["name"] for c in m["captures"]}
    assert {"alb_metrics", "pg_activity", "app_error_logs"} <= {c["name"] for c in r["captures"]}
    for c in r["captures"]:
        assert c["replayed_from"] == str(original), c
        assert c["error"] is None, c
    orig = {c["name"]: c for c in m["captures"]}
    for c in r["captures"]:  # the same frames: same rows, same bytes
        assert c["rows"] == orig[c["name"]]["rows"]
    files = {f["path"]: f["sha256"] for f in m["files"]}
    rfiles = {f["path"]: f["sha256"] for f in r["files"]}
    data = [path for path in rfiles if path.startswith("data/")]
    assert "data/pg_activity.parquet" in data
    for path in data:  # the very bytes the original pulled, not a re-encoding
        assert rfiles[path] == files[path], path
    assert forensics("verify", replay).returncode == 0


def test_every_replay_serves_every_data_file_byte_for_byte(records):
    """Issue 23: the replay once re-encoded data/alb_access_logs.parquet (its final redaction pass rewrote
    the copy). One more replay of the same original, run with one job where the fixture's ran with two (their
    processes interleave differently), and every data file of both is compared with the original's, byte for
    byte. `make test-repeat` runs this again and again."""
    original, replay, _, work = records
    out = work / "replays"
    procs = [subprocess.Popen([*FORENSICS, "replay", str(original), "--out", str(out / str(i)), "--jobs", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(1)]
    replays = [replay]
    for proc in procs:
        stdout, stderr = proc.communicate()  # the replay bounds every cell itself
        assert proc.returncode == 0, stderr
        replays.append(Path(stdout.strip().splitlines()[-1]))
    want = {c["file"] for c in manifest(replay)["captures"] if c.get("file")}
    assert "data/alb_access_logs.parquet" in want
    for rec in replays:
        files = {str(p.relative_to(rec)) for p in (rec / "data").iterdir()}
        assert files == want, rec
        for name in sorted(files):
            assert (rec / name).read_bytes() == (original / name).read_bytes(), f"{rec}: {name}"


# ---- 2. order of volatility --------------------------------------------------------------------------
def test_volatile_views_were_pulled_by_the_runner_before_any_notebook_pulled_anything(records):
    caps = manifest(records[0])["captures"]
    pg = [c for c in caps if c["source"] == "postgres"]
    rest = [c for c in caps if c["source"] != "postgres"]
    assert {c["name"] for c in pg} >= {"pg_activity", "pg_locks", "pg_statements", "pg_settings"}
    assert all(c["notebook"] == "runner" and c["volatile"] for c in pg), pg
    assert max(c["pulled_at"] for c in pg) < min(c["pulled_at"] for c in rest)
    assert [c["name"] for c in pg][0] == "pg_activity", "the most volatile view first"


# ---- 3. chain of custody -----------------------------------------------------------------------------
def test_manifest_says_who_collected_when_and_with_what(records):
    original, _, facts, _ = records
    m = manifest(original)
    col = m["collector"]
    assert col["os_user"] == getpass.getuser() and col["host"] == socket.gethostname()
    assert col["aws_identity"]["Account"] == facts["account"]
    assert col["aws_identity"]["Arn"].startswith("arn:aws:") and col["aws_identity"]["UserId"]
    assert col["db_user"] == "forensics"
    clock = m["clock"]
    assert clock["reference"].startswith("AWS STS Date header")
    assert abs(clock["local_minus_server_s"]) < 5
    tool = m["tool"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()
    assert tool["git_commit"].split("+")[0] == head
    assert tool["python"] and {"forensics", "pandas", "botocore", "papermill"} <= set(tool["packages"])
    assert m["started_at"] < m["finished_at"]
    params = yaml.safe_load((original / "params.yaml").read_text())
    assert params["environment"] == facts["environment"]
    assert "params.yaml" in {f["path"] for f in m["files"]}
    assert m["previous_record"] is None and m["previous_record_digest"] is None
    assert m["window"]["start"] and m["incident"]["id"]


def test_finished_records_are_read_only_on_disk(records):
    for rec in records[:2]:
        assert stat.S_IMODE(rec.stat().st_mode) == 0o555
        for p in rec.rglob("*"):
            mode = stat.S_IMODE(p.stat().st_mode)
            assert mode == (0o555 if p.is_dir() else 0o444), (p, oct(mode))
        assert not list(rec.parent.glob("*.partial"))


def test_second_record_of_the_incident_names_the_first_and_verify_detects_a_chain_break(records, tmp_path):
    original, replay, _, _ = records
    assert manifest(replay)["previous_record"] == original.name
    assert manifest(replay)["previous_record_digest"] == manifest(original)["digest"]
    first, second = writable_copy(original, tmp_path), writable_copy(replay, tmp_path)
    assert forensics("verify", second).returncode == 0
    # Someone rewrites the first record and re-seals it consistently: on its own it verifies ...
    f = first / "findings.json"
    f.write_text(f.read_text().replace('"status": "ok"', '"status": "ok", "note": "edited"', 1))
    m = manifest(first)
    for entry in m["files"]:
        if entry["path"] == "findings.json":
            entry["sha256"], entry["size"] = evidence.sha256_file(f), f.stat().st_size
    m["digest"] = evidence.manifest_digest(m)
    (first / "manifest.json").write_bytes(evidence.render_manifest(m))
    assert forensics("verify", first).returncode == 0
    # ... but the record after it still names the old digest.
    bad = forensics("verify", second)
    assert bad.returncode == 1
    assert any(line.startswith(f"chain: {second.name}: chain broken") for line in bad.stdout.splitlines()), bad.stdout
    assert forensics("verify", second, "--no-chain").returncode == 0
    # A deleted predecessor is a break too.
    shutil.rmtree(first)
    assert "chain broken" in forensics("verify", second).stdout


# ---- 4. tamper evidence on a real record --------------------------------------------------------------
def test_verify_names_a_renamed_file_and_a_deleted_figure(records, tmp_path):
    copy = writable_copy(records[0], tmp_path)
    (copy / "notebooks" / "api-errors.ipynb").rename(copy / "notebooks" / "api-errors.old.ipynb")
    figure = sorted((copy / "figures").glob("*.png"))[0]
    figure.unlink()
    proc = forensics("verify", copy)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert "missing: notebooks/api-errors.ipynb" in lines
    assert "extra: notebooks/api-errors.old.ipynb" in lines
    assert f"missing: figures/{figure.name}" in lines
    assert "NOT VERIFIED" in proc.stderr


# ---- 5. redaction ----------------------------------------------------------------------------------
#: An access key id with no secret beside it is an identifier a responder needs (who did it), kept on purpose
#: since issue 21 (docs/redaction.md); the secrets planted here must still be masked everywhere.
KEY_ID = re.compile(r"^(?:AKIA|ASIA)[A-Z0-9]{16}$")
MASKED = [s for s in SECRETS if not KEY_ID.match(s.secret)]


def _fragments():
    return {frag for s in MASKED for frag in s.secret.split("\n") if len(frag) >= 8}


def test_planted_secrets_reached_the_record_as_markers(records):
    original = records[0]
    logs = pd.read_parquet(original / "data" / "app_error_logs.parquet")
    probe = logs[logs["message"].str.contains("trust.probe", regex=False)]
    assert len(probe) == len(SECRETS), "every planted log line was pulled"
    text = "\n".join(probe["message"])
    for s in MASKED:
        assert redact.marker(s.kind, s.secret) in text, s.kind
    activity = pd.read_parquet(original / "data" / "pg_activity.parquet")
    queries = "\n".join(activity.loc[activity["application_name"] == "trust-probe", "query"])
    statements = "\n".join(pd.read_parquet(original / "data" / "pg_statements.parquet")["query"])
    # the same secret, from two sources, carries the same marker
    for s in (BEARER, JWT, URL_PW):
        assert redact.marker(s.kind, s.secret) in queries and redact.marker(s.kind, s.secret) in text
    assert "WHERE api_key = '[REDACTED:" in queries
    assert f"PASSWORD '{redact.marker(SQL_PW.kind, SQL_PW.secret)}'" in statements
    assert "WHERE api_key = $1" in statements, "a bind placeholder is not a secret"


def test_no_secret_appears_anywhere_in_either_record(records):
    frags = _fragments()
    checked = 0
    for rec in records[:2]:
        for p in sorted(rec.rglob("*")):
            if not p.is_file():
                continue
            data = p.read_bytes()
            leaked = [f for f in frags if f.encode() in data]
            assert not leaked, (p, leaked[:3])
            if p.suffix == ".parquet":
                df = pd.read_parquet(p)
                dumped = df.to_json(orient="records", date_format="iso", default_handler=str)
                dumped += df.astype(str).to_csv()
                leaked = [f for f in frags if f in dumped or f.replace("/", "\\/") in dumped]
                assert not leaked, (p, leaked[:3])
            checked += 1
    assert checked > 20


def test_a_secret_passed_as_a_parameter_is_refused_and_nothing_is_written(records, tmp_path):
    _, _, facts, work = records
    token = next(s for s in SECRETS if s.kind == "github-token")
    incident = yaml.safe_load((work / "incident.yaml").read_text())
    incident["title"] = f"deploy with {token.secret} broke"
    bad = tmp_path / "incident.yaml"
    bad.write_text(yaml.safe_dump(incident))
    proc = forensics("run", bad, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "looks like a secret (github-token)" in proc.stderr and token.secret not in proc.stderr
    assert not (tmp_path / "out").exists()
