"""The sandbox's commands for the `forensics` CLI: `sandbox up | down | status` and `demo`.

Reached only through the entry point ``forensics.plugins`` / ``sandbox`` (pyproject.toml), which names
:func:`commands`; the library never imports this package. :func:`commands` refuses with
``ModuleNotFoundError`` when moto (the `sandbox` extra) is missing, and the CLI then says, in one line,
what to install.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import click

from forensics import coverage
from forensics.cli import _JOBS, _echo, _exits, _fail, _progress, _visible
from forensics.errors import ForensicsError


def commands() -> dict[str, click.Command]:
    """The commands this package adds to `forensics` (the entry point's target)."""
    if importlib.util.find_spec("moto") is None:
        raise ModuleNotFoundError("No module named 'moto'", name="moto")
    return {"sandbox": sandbox, "demo": demo}


def _sandbox_dir() -> Path:
    from forensics.resources import sandbox_dir

    return sandbox_dir()


@click.group(epilog=_exits(0, (1, "status: no sandbox is running"), 2, 3))
def sandbox():
    """The embedded sandbox: moto server + PostgreSQL cluster + audit server on loopback, in the background."""


@sandbox.command("up", epilog=_exits(0, (2, "--empty with --scenario"), 3))
@click.option("--scenario", default=None, metavar="NAME",
              help="A scenario name, several joined by commas, or all [default: all].")
@click.option("--empty", is_flag=True,
              help="No scenario: the AWS emulator (moto with the project's extensions), PostgreSQL and the "
                   "audit server, empty, for loading your own data. Writes no parameter files.")
@click.option("--port-base", type=click.IntRange(1024, 65533), default=None, metavar="N",
              help="Listen on N (AWS), N+1 (PostgreSQL) and N+2 (audit server); kept in the state folder, so "
                   "a later `up` uses the same ports [default: the kept ones, else free ports, then kept].")
def sandbox_up(scenario, empty, port_base):
    """Start the sandbox in the background; with a scenario, write params/{environments,incidents}/sandbox.yaml."""
    from forensics.params import PARAMS_DIR

    from . import daemon

    if empty and scenario:
        click.echo("error: --empty and --scenario exclude each other", err=True)
        sys.exit(2)
    try:
        state = daemon.up(_sandbox_dir(), PARAMS_DIR, scenario=None if empty else (scenario or "all"),
                          port_base=port_base)
    except ForensicsError as exc:
        click.echo(_visible(f"error: {exc}"), err=True)
        sys.exit(3)
    info = daemon.summary(state)
    click.echo(f"sandbox up (pid {info['pid']}, scenario {info['scenario'] or 'none: empty'})")
    click.echo(f"  AWS endpoint  {info['aws_endpoint_url']} (region {info['region']})")
    click.echo(f"  PostgreSQL    {info['postgres_dsn']} (read-only user; to load data: {info['postgres_admin_dsn']})")
    click.echo(f"  audit server  {info['audit_base_url']} (bearer token in the file {info['audit_token_file']}, "
               f"or ${info['audit_token_env']})")
    if info["incident_path"]:
        click.echo(f"  environment   {info['env_path']}")
        click.echo(f"  incident      {info['incident_path']}")
        click.echo("open the notebooks with `make lab`; run them with "
                   f"`forensics run {os.path.relpath(info['incident_path'])}`; stop with `forensics sandbox down`")
    else:
        click.echo("load your data, write an environment and an incident file naming these endpoints; "
                   "stop with `forensics sandbox down`")


@sandbox.command("down", epilog=_exits(0))
def sandbox_down():
    """Stop the background sandbox (and remove its cluster); its ports stay kept for the next `up`."""
    from . import daemon

    click.echo("sandbox stopped" if daemon.down(_sandbox_dir()) else "no sandbox was running")


@sandbox.command("status", epilog=_exits((0, "a sandbox is running"), (1, "none is running")))
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (running, scenario, aws_endpoint_url, postgres_dsn, audit_base_url, "
                   "audit_token_file, ports, env_path, incident_path, window, pid, ...), also when nothing runs.")
def sandbox_status(as_json):
    """Is the sandbox running, and where."""
    import json

    from . import daemon

    info = daemon.summary(daemon.status(_sandbox_dir()))
    if as_json:
        click.echo(json.dumps(info, default=str))
    elif info["running"]:
        for k, v in info.items():
            click.echo(f"{k:18} {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    else:
        click.echo("no sandbox running" + (" (still starting)" if info["starting"] else ""))
    sys.exit(0 if info["running"] else 1)


@click.command(epilog=_exits(0, (1, "a notebook failed or has no evidence, or a source failed"), 2, 3))
@click.option("--scenario", default="all", show_default=True,
              help="Scenario to play: a name, several joined by commas, or all (one incident touching every notebook).")
@click.option("--out", default="evidence", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which the record is written.")
@_JOBS
def demo(scenario, out, jobs):
    """Start the sandbox, play a scenario, run every notebook, stop the sandbox, print the record."""
    from . import demo as demo_mod

    try:
        result = demo_mod.run(scenario=scenario, out=out, jobs=jobs, echo=_echo, progress=_progress())
    except ForensicsError as exc:
        _fail(exc)
    click.echo(str(result.record))
    sys.exit(coverage.exit_code(result))
