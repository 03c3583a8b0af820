"""Preflight against the real moto server: a wrong profile, a wrong Region (the data lives elsewhere), a
window in the future each stop `validate` and `run` with one line and exit 2, and `run` writes nothing."""

import subprocess
import sys
import textwrap

import boto3
import pandas as pd
import pytest

FORENSICS = [sys.executable, "-m", "forensics.cli"]
GROUP = "/ecs/preflight-app"


def forensics(*args, cwd):
    return subprocess.run([*FORENSICS, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def log_group(moto_server):
    logs = boto3.client("logs", region_name=moto_server.region, endpoint_url=moto_server.endpoint_url,
                        aws_access_key_id="x", aws_secret_access_key="x")
    if not logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]:
        logs.create_log_group(logGroupName=GROUP)
    return GROUP


def write(tmp_path, endpoint, *, region="eu-west-1", profile=None, end_in_minutes=-60, groups=(GROUP,)):
    now = pd.Timestamp.now(tz="UTC").floor("min")
    end = now + pd.Timedelta(minutes=end_in_minutes)
    start = end - pd.Timedelta(hours=1)
    (tmp_path / "env.yaml").write_text(textwrap.dedent(f"""\
        name: preflight-test
        aws: {{region: {region}, profile: {profile or 'null'}, endpoint_url: "{endpoint}"}}
        logs: {{app: [{', '.join(groups)}]}}
    """))
    (tmp_path / "i.yaml").write_text(textwrap.dedent(f"""\
        incident: INC-PF
        title: preflight
        severity: P2
        environment: {tmp_path / 'env.yaml'}
        window: {{start: {start.strftime('%Y-%m-%dT%H:%M:%SZ')}, end: {end.strftime('%Y-%m-%dT%H:%M:%SZ')}}}
        notebooks: [api-errors]
    """))
    return tmp_path / "i.yaml"


def one_line_exit_2(proc, expected):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: preflight: "), proc.stderr
    assert expected in lines[0], lines[0]
    return lines[0]


def test_a_good_environment_passes_and_says_who_and_where(tmp_path, moto_server, log_group):
    write(tmp_path, moto_server.endpoint_url)
    proc = forensics("validate", "i.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip().splitlines()
    assert out[0].startswith("valid: INC-PF") and out[1].startswith("preflight ok: arn:aws:")
    assert "in eu-west-1; 1 resource(s) readable" in out[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.yaml", "i.yaml"]


@pytest.mark.parametrize("case, kw, expected", [
    ("wrong profile", {"profile": "no-such-profile"}, "ProfileNotFound"),
    ("wrong region", {"region": "us-west-2"}, f"log group {GROUP} does not exist in us-west-2"),
    ("future window", {"end_in_minutes": 90}, "is in the future"),
    ("missing log group", {"groups": (GROUP, "/ecs/typo")}, "log group /ecs/typo does not exist in eu-west-1"),
])
def test_a_mistake_stops_validate_and_run_with_one_line(tmp_path, moto_server, log_group, case, kw, expected):
    write(tmp_path, moto_server.endpoint_url, **kw)
    one_line_exit_2(forensics("validate", "i.yaml", cwd=tmp_path), expected)
    if case == "wrong region":  # the rare case: the check skipped, the file itself is valid
        assert forensics("validate", "i.yaml", "--skip-preflight", cwd=tmp_path).returncode == 0
    line = one_line_exit_2(forensics("run", "i.yaml", "--out", "evidence", cwd=tmp_path), expected)
    assert not (tmp_path / "evidence").exists(), f"{case}: run wrote something: {line}"


def test_a_future_window_says_an_ongoing_incident_may_end_now(tmp_path, moto_server, log_group):
    write(tmp_path, moto_server.endpoint_url, end_in_minutes=30)
    line = one_line_exit_2(forensics("validate", "i.yaml", cwd=tmp_path), "in the future")
    assert "an ongoing incident may end at now" in line


def test_an_unreachable_endpoint_is_one_line(tmp_path, log_group):
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write(tmp_path, f"http://127.0.0.1:{port}")
    one_line_exit_2(forensics("run", "i.yaml", "--out", "evidence", cwd=tmp_path), "AWS identity")
    assert not (tmp_path / "evidence").exists()


def test_past_a_skipped_preflight_coverage_says_no_evidence_and_exits_1(tmp_path, moto_server, log_group):
    """The wrong Region with --skip-preflight: the record is written, but the notebook whose sources all failed
    is "no evidence", the summary names the sources that did not answer, and the exit code is 1."""
    import json
    from pathlib import Path

    write(tmp_path, moto_server.endpoint_url, region="us-west-2")
    proc = forensics("run", "i.yaml", "--out", "evidence", "--skip-preflight", "--jobs", "1", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "NO EVIDENCE: api-errors" in proc.stderr and "sources that did not answer" in proc.stderr
    assert "app_error_per_minute:" in proc.stderr
    record = tmp_path / Path(proc.stdout.strip().splitlines()[-1])
    findings = json.loads((record / "findings.json").read_text())
    assert findings["api-errors"]["status"] == "no evidence"
    assert "app_error_per_minute" in findings["api-errors"]["failed_sources"]
    manifest = json.loads((record / "manifest.json").read_text())
    assert {n["name"]: n["status"] for n in manifest["notebooks"]} == {"api-errors": "no evidence"}
