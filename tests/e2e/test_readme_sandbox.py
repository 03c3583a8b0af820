"""The README's sandbox commands, run as written (its `## The sandbox in the background` code blocks),
and what they promise: a status JSON with the documented keys, an empty sandbox whose servers answer
(moto with the project's extensions, PostgreSQL, the audit server), nothing left running."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]
STATUS_KEYS = {"running", "scenario", "aws_endpoint_url", "region", "postgres_dsn", "postgres_admin_dsn",
               "audit_base_url", "audit_token_env", "audit_token_file", "ports", "env_path", "incident_path",
               "window", "pid", "log"}


def readme_blocks(heading: str) -> list[list[str]]:
    """The commands of each ```bash block in the README section ``heading``, comments stripped."""
    text = (REPO / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[line.split("  #")[0].strip() for line in b.splitlines() if line.strip()] for b in blocks]


@pytest.fixture()
def workdir(tmp_path):
    """A user's working folder: params/ and .sandbox/ in it (the checkout's are left alone)."""
    env = {**os.environ, "FORENSICS_PARAMS_DIR": str(tmp_path / "params"),
           "FORENSICS_SANDBOX_DIR": str(tmp_path / ".sandbox"), "FORENSICS_PROGRESS_INTERVAL_S": "60"}
    yield tmp_path, env
    subprocess.run([sys.executable, "-m", "forensics.cli", "sandbox", "down"], env=env, cwd=tmp_path,
                   capture_output=True, timeout=120)


def run_line(line: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    argv = shlex.split(line)
    assert argv[0] == ".venv/bin/forensics", f"not a forensics command: {line}"
    return subprocess.run([sys.executable, "-m", "forensics.cli", *argv[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_documented_commands_as_written(workdir):
    cwd, env = workdir
    scenario_block, empty_block = readme_blocks("The sandbox in the background")
    assert scenario_block[0] == ".venv/bin/forensics sandbox up"  # no option: the bug of 'all' was here
    assert "--empty" in empty_block[0]
    statuses = []
    for line in scenario_block + empty_block:
        proc = run_line(line, cwd, env)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        if "status --json" in line:
            statuses.append(json.loads(proc.stdout))
        if line.endswith("sandbox up --empty"):
            check_empty_sandbox(json.loads(run_line(".venv/bin/forensics sandbox status --json", cwd, env).stdout))
        if " run " in line:
            record = cwd / proc.stdout.strip().splitlines()[-1]
            findings = json.loads((record / "findings.json").read_text())
            assert findings["api-errors"]["status"] == "ok" and findings["api-errors"]["onset"]
            assert re.search(r"^api-errors cell 1/\d+", proc.stderr, re.M), proc.stderr

    full, empty = statuses
    assert STATUS_KEYS <= set(full) and STATUS_KEYS <= set(empty)
    assert full["running"] is True and full["scenario"] == "all"
    assert full["incident_path"] == str(cwd / "params" / "incidents" / "sandbox.yaml")
    assert full["aws_endpoint_url"].startswith("http://127.0.0.1:") and "host=127.0.0.1" in full["postgres_dsn"]
    assert empty["running"] is True and empty["scenario"] is None and empty["incident_path"] is None
    # the ports are kept in the state folder: the second `up` listens where the first did, so an environment
    # file written for the sandbox keeps working after a restart
    assert empty["ports"] == full["ports"] and empty["aws_endpoint_url"] == full["aws_endpoint_url"]
    assert empty["audit_base_url"] == full["audit_base_url"]

    # after the last `down`: nothing runs, status says so in JSON and exits 1
    proc = run_line(".venv/bin/forensics sandbox status --json", cwd, env)
    assert proc.returncode == 1 and json.loads(proc.stdout)["running"] is False
    assert not (cwd / ".sandbox" / "state.json").exists()


def check_empty_sandbox(st: dict) -> None:
    import boto3

    assert st["running"] is True and st["scenario"] is None and st["env_path"] is None
    kw = {"region_name": st["region"], "endpoint_url": st["aws_endpoint_url"], "aws_access_key_id": "x",
          "aws_secret_access_key": "x"}
    # nothing played: no log groups, no ECS clusters
    assert boto3.client("logs", **kw).describe_log_groups()["logGroups"] == []
    assert boto3.client("ecs", **kw).list_clusters()["clusterArns"] == []
    # the project's extensions are installed: moto alone answers LookupEvents with an error
    assert boto3.client("cloudtrail", **kw).lookup_events()["Events"] == []
    # a user loads data with the admin DSN; the notebooks' read-only user sees it and cannot write
    with psycopg.connect(st["postgres_admin_dsn"], autocommit=True) as conn:
        conn.execute("CREATE TABLE loaded (id int)")
        conn.execute("INSERT INTO loaded VALUES (1), (2)")
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()
    with psycopg.connect(st["postgres_dsn"], autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM loaded").fetchone()[0] == 2
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO loaded VALUES (3)")
    # the audit server: an empty, intact chain for a tenant, behind the bearer token
    url = f"{st['audit_base_url']}/api/v1/tenants/acme/verify-chain"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 401
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {os.environ[st['audit_token_env']]}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["intact"] is True and body["checked"] == 0


def test_up_with_a_bad_option_says_why(workdir):
    cwd, env = workdir
    proc = run_line(".venv/bin/forensics sandbox up --empty --scenario security", cwd, env)
    assert proc.returncode == 2 and "exclude each other" in proc.stderr
    proc = run_line(".venv/bin/forensics sandbox up --scenario nope", cwd, env)
    assert proc.returncode == 3 and "no sandbox scenario named 'nope'" in proc.stderr
    assert not (cwd / "params").exists()
