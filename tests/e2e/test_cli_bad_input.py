"""Bad input: one clear line on stderr, exit code 2, nothing written."""

import subprocess
import sys
import textwrap

import pytest

FORENSICS = [sys.executable, "-m", "forensics.cli"]


def run(*args, cwd):
    return subprocess.run([*FORENSICS, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("content, expected", [
    ("incident: X\n", "missing field title"),
    ("incident: X\ntitle: t\nseverity: P1\nenvironment: example-production\n"
     "window: {start: 2026-11-23T12:00:00Z, end: 2026-11-23T10:00:00Z}\n", "is not after start"),
    ("incident: X\ntitle: t\nseverity: P1\nenvironment: example-production\n"
     "window: {start: 2026-11-23T10:00:00Z, end: 2026-11-23T12:00:00Z}\nnotebooks: [nope]\n", "unknown notebook 'nope'"),
    ("incident: [X\n", "malformed YAML"),
    ("incident: X\ntitle: t\nseverity: P1\nenvironment: example-production\n"
     "window: {start: 2026-11-23T10:00:00Z, end: 2026-11-23T12:00:00Z}\nextra: 1\n", "unknown field extra"),
])
def test_bad_incident_file(tmp_path, content, expected):
    (tmp_path / "bad.yaml").write_text(content)
    proc = run("run", "bad.yaml", "--out", "evidence", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert not (tmp_path / "evidence").exists()


def test_missing_file_and_unknown_only(tmp_path):
    proc = run("run", "nope.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "nope.yaml: no such file" in proc.stderr
    (tmp_path / "i.yaml").write_text(textwrap.dedent("""\
        incident: X
        title: t
        severity: P1
        environment: example-production
        window: {start: 2026-11-23T10:00:00Z, end: 2026-11-23T12:00:00Z}
    """))
    proc = run("run", "i.yaml", "--only", "dns", "--out", "ev", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown notebook 'dns'" in proc.stderr
    assert not (tmp_path / "ev").exists()


def test_verify_on_a_folder_that_is_not_a_record(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    proc = run("verify", tmp_path, cwd=tmp_path)
    assert proc.returncode == 1
    assert "missing: manifest.json" in proc.stdout and "extra: x.txt" in proc.stdout


def test_help_lists_every_command(tmp_path):
    proc = run("--help", cwd=tmp_path)
    for cmd in ("list", "run", "replay", "verify", "sandbox", "demo"):
        assert cmd in proc.stdout
