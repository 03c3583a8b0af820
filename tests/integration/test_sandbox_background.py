"""The background sandbox as a user runs it (`forensics sandbox up`, then plain commands from another shell):

- its ports are kept in the state folder: up, down, up gives the same endpoints, so an environment file
  written for it keeps working after a restart; ``--port-base N`` sets them (N, N+1, N+2); a port in use is
  one line and exit 3;
- the audit server's token is in a file of the state folder, mode 0600, named by ``status --json``
  (``audit_token_file``) and by the environment it writes (``audit.token_file``), so data-integrity runs
  against it from a shell that never saw the token variable.
"""

from __future__ import annotations

import json
import os
import random
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.sandbox
TOKEN_ENV = "FORENSICS_SANDBOX_AUDIT_TOKEN"


@pytest.fixture()
def user(tmp_path):
    """A user's shell: their own params/ and .sandbox/, and no audit token variable."""
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, "FORENSICS_INCIDENT")}
    env.update(FORENSICS_PARAMS_DIR=str(tmp_path / "params"), FORENSICS_SANDBOX_DIR=str(tmp_path / ".sandbox"),
               FORENSICS_PROGRESS_INTERVAL_S="60")
    yield tmp_path, env
    cli(["sandbox", "down"], tmp_path, env)


def cli(args, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forensics.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def status(cwd: Path, env: dict) -> dict:
    return json.loads(cli(["sandbox", "status", "--json"], cwd, env).stdout)


def _free_base() -> int:
    """Three consecutive free loopback ports below the ephemeral range: a port the kernel hands out for
    outgoing connections (the tests' own HTTP calls to moto) could be taken between this check and `up`."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10_000, max(10_001, low - 3))
        socks = [socket.socket() for _ in range(3)]
        try:
            for i, s in enumerate(socks):
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no three consecutive free ports")


def _get(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_up_down_up_keeps_the_ports_and_the_token_is_a_0600_file(user):
    cwd, env = user
    assert cli(["sandbox", "up", "--empty"], cwd, env).returncode == 0
    first = status(cwd, env)
    token_file = Path(first["audit_token_file"])
    assert token_file.parent == cwd / ".sandbox" and token_file.is_file()
    mode = token_file.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.getuid()
    token = token_file.read_text().strip()
    assert len(token) >= 32
    url = f"{first['audit_base_url']}/api/v1/tenants/acme/verify-chain"
    assert _get(url) == 401 and _get(url, "wrong") == 401 and _get(url, token) == 200
    assert set(first["ports"]) == {"aws", "postgres", "audit"}
    assert first["aws_endpoint_url"] == f"http://127.0.0.1:{first['ports']['aws']}"
    assert f"port={first['ports']['postgres']}" in first["postgres_dsn"]

    assert cli(["sandbox", "down"], cwd, env).returncode == 0
    assert not token_file.exists()  # no token outlives its server
    assert json.loads((cwd / ".sandbox" / "ports.json").read_text()) == first["ports"]

    assert cli(["sandbox", "up", "--empty"], cwd, env).returncode == 0
    second = status(cwd, env)
    for key in ("ports", "aws_endpoint_url", "postgres_dsn", "postgres_admin_dsn", "audit_base_url",
                "audit_token_file"):
        assert second[key] == first[key], key
    assert _get(url, Path(second["audit_token_file"]).read_text().strip()) == 200


def test_port_base_sets_the_ports_and_a_port_in_use_is_one_line(user):
    cwd, env = user
    base = _free_base()
    up = cli(["sandbox", "up", "--empty", "--port-base", base], cwd, env)
    assert up.returncode == 0, up.stderr
    st = status(cwd, env)
    assert st["ports"] == {"aws": base, "postgres": base + 1, "audit": base + 2}
    assert st["aws_endpoint_url"] == f"http://127.0.0.1:{base}"
    assert st["audit_base_url"] == f"http://127.0.0.1:{base + 2}"
    assert cli(["sandbox", "down"], cwd, env).returncode == 0

    with socket.socket() as held:  # someone else now listens on the PostgreSQL port
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may hold TIME_WAIT connections
        held.bind(("127.0.0.1", base + 1))
        held.listen()
        up = cli(["sandbox", "up", "--empty"], cwd, env)
        assert up.returncode == 3
        lines = up.stderr.strip().splitlines()
        assert len(lines) == 1 and f"postgres {base + 1}" in lines[0] and "--port-base" in lines[0], up.stderr
    assert status(cwd, env)["running"] is False


@pytest.mark.e2e
def test_data_integrity_runs_against_the_background_sandbox_without_the_token_variable(user):
    cwd, env = user
    up = cli(["sandbox", "up", "--scenario", "data-integrity"], cwd, env)
    assert up.returncode == 0, up.stderr
    st = status(cwd, env)
    written = yaml.safe_load(Path(st["env_path"]).read_text())
    assert written["audit"]["token_file"] == st["audit_token_file"]
    assert written["audit"]["token_env"] == TOKEN_ENV and TOKEN_ENV not in env
    assert Path(st["audit_token_file"]).read_text().strip() not in Path(st["env_path"]).read_text()

    run = cli(["run", st["incident_path"], "--only", "data-integrity", "--out", cwd / "evidence"], cwd, env,
              timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    record = Path(run.stdout.strip().splitlines()[-1])
    f = json.loads((record / "findings.json").read_text())["data-integrity"]
    assert f["status"] == "ok", f
    f = f.get("findings", f)
    assert f["chain_intact"] is False and f["first_broken_event"]["tenant"] == "globex"
    assert f["app_verify_chain"]["globex"] is False
    # the token itself is in no file of the record
    token = Path(st["audit_token_file"]).read_bytes().strip()
    assert not [p for p in record.rglob("*") if p.is_file() and token in p.read_bytes()]
