"""The CLI a user expects: help on every option, exit codes in --help, `validate`, a `make clean` that
keeps evidence. Commands run as a user runs them (a subprocess), except the help introspection."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from forensics.cli import EXIT_CODES, cli

REPO = Path(__file__).resolve().parents[2]
FORENSICS = [sys.executable, "-m", "forensics.cli"]
INCIDENT = """\
incident: INC-1
title: t
severity: P2
environment: example-production
window: {start: 2026-11-23T10:00:00Z, end: 2026-11-23T12:00:00Z}
"""


def forensics(*args, cwd):
    return subprocess.run([*FORENSICS, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


COMMANDS = list(_commands(cli))


def test_every_command_is_seen():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"list", "validate", "run", "replay", "verify", "demo", "sandbox up", "sandbox down",
            "sandbox status"} <= names


@pytest.mark.parametrize("path, cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_has_help_and_the_help_lists_exit_codes(path, cmd):
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help and len(param.help) > 10, f"forensics {' '.join(path)} {param.opts[0]}: no help text"
    assert cmd.help, f"forensics {' '.join(path)}: no description"
    text = cmd.get_help(click.Context(cmd, info_name=path[-1]))
    assert "Exit codes:" in text
    codes = [line.split()[0] for line in text.split("Exit codes:")[1].strip().splitlines()]
    assert codes and "0" in codes and set(codes) <= {str(c) for c in EXIT_CODES}, text


def test_help_through_the_command_line(tmp_path):
    proc = forensics("sandbox", "status", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "--json" in proc.stdout and "Exit codes:" in proc.stdout and "1  none is running" in proc.stdout


def test_validate_a_good_file_writes_nothing(tmp_path):
    (tmp_path / "i.yaml").write_text(INCIDENT)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = forensics("validate", "i.yaml", "--only", "api-errors", "--skip-preflight", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("valid: INC-1 [P2]")
    assert "environment production" in lines[0] and lines[0].endswith("1 notebook(s): api-errors")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("content, args, expected", [
    (INCIDENT.replace("severity: P2", "severity: P9"), (), "severity must be one of"),
    (INCIDENT.replace("example-production", "nowhere"), (), "no environment named 'nowhere'"),
    (INCIDENT, ("--only", "dns"), "unknown notebook 'dns'"),
    (INCIDENT.replace("2026-11-23T12", "2026-11-23T09"), (), "is not after start"),
])
def test_validate_a_bad_file_one_line_exit_2(tmp_path, content, args, expected):
    (tmp_path / "i.yaml").write_text(content)
    proc = forensics("validate", "i.yaml", *args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert proc.stdout == "" and sorted(p.name for p in tmp_path.iterdir()) == ["i.yaml"]


def test_list_fails_loudly_without_notebooks(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FORENSICS_NOTEBOOK_DIR": str(tmp_path), "PYTHONPATH": str(REPO / "lib")}
    proc = subprocess.run([*FORENSICS, "list"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: no notebooks in") and str(tmp_path) in proc.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_keeps_evidence(tmp_path):
    """`make clean` in a copy of the checkout's Makefile: the venv and the sandbox's files go, the
    evidence records stay, byte for byte and read-only as they were."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for f in ("requirements.txt", "pyproject.toml"):
        shutil.copy(REPO / f, tmp_path / f)
    record = tmp_path / "evidence" / "2026-11-23_INC-1" / "20261123T120000Z"
    record.mkdir(parents=True)
    (record / "manifest.json").write_text("{}\n")
    (record / "manifest.json").chmod(0o444)
    for d in (".venv/bin", ".sandbox", "build", "dist"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / ".sandbox" / "sandbox.log").write_text("x")
    proc = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (record / "manifest.json").read_text() == "{}\n"
    assert not any((tmp_path / d).exists() for d in (".venv", ".sandbox", "build", "dist"))
