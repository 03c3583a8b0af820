"""`forensics list | run | replay | verify | sandbox up/down/status | demo` — parses, then calls the library.

Exit codes: 0 success; 1 a notebook failed or a record does not verify; 2 bad input (parameters,
arguments); 3 the sandbox could not start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .errors import ForensicsError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


def _fail(exc: ForensicsError):
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


def _finish(execute):
    """Run, print the summary on stderr and the record's path on stdout; exit 1 if a notebook failed."""
    from . import runner

    try:
        result = execute()
    except ForensicsError as exc:
        _fail(exc)
    runner.print_summary(result, _echo)
    click.echo(str(result.record))
    sys.exit(0 if result.ok else 1)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="forensics")
def cli():
    """Incident forensic notebooks: evidence during an incident, a dated verifiable record after it."""


@cli.command("list")
def list_cmd():
    """List the notebooks (incident classes) and what they serve."""
    from .notebooks import catalogue

    for nb in catalogue().values():
        click.echo(f"{nb.name:16} {nb.title}")
        if nb.serves:
            click.echo(f"{'':16} serves: {', '.join(nb.serves)}")


@cli.command()
@click.argument("incident_file", type=click.Path(dir_okay=False))
@click.option("--out", default="evidence", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <date>_<incident>/<captured-at>/ is written.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Notebooks run at once [default: cores].")
@click.option("--only", multiple=True, metavar="NOTEBOOK", help="Run only this notebook (repeatable).")
def run(incident_file, out, jobs, only):
    """Run the notebooks over an incident's window and write an evidence record."""
    from . import runner

    _finish(lambda: runner.run(incident_file, out=out, jobs=jobs, only=list(only) or None, echo=_echo))


@cli.command()
@click.argument("record", type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Where the new record goes [default: beside the replayed one].")
@click.option("--jobs", type=click.IntRange(min=1), default=None)
def replay(record, out, jobs):
    """Re-execute a record's notebooks from its data files, with no network, into a new record."""
    from . import runner

    _finish(lambda: runner.replay(record, out=out, jobs=jobs, echo=_echo))


@cli.command()
@click.argument("record", type=click.Path(file_okay=False))
@click.option("--chain/--no-chain", default=True, show_default=True,
              help="Also check the hash chain of the incident's earlier records.")
def verify(record, chain):
    """Check a record against its manifest: names every changed, missing or extra file."""
    from . import evidence

    try:
        result = evidence.verify(record)
    except ForensicsError as exc:
        _fail(exc)
    problems = list(result.problems)
    if chain and result.ok:
        problems += [f"chain: {p}" for p in evidence.verify_chain(Path(record).resolve().parent)
                     if p.split(":")[0] <= Path(record).resolve().name]
    for p in problems:
        click.echo(p)
    if problems:
        click.echo(f"NOT VERIFIED: {record} ({len(problems)} problem(s))", err=True)
        sys.exit(1)
    click.echo(f"verified: {record} ({result.files_checked} files, {result.digest})")


@cli.group()
def sandbox():
    """The embedded sandbox: moto server + PostgreSQL cluster on loopback, playing a scenario."""


@sandbox.command("up")
@click.option("--scenario", default="all", show_default=True, help="A scenario name, several joined by commas, or all.")
def sandbox_up(scenario):
    """Start the sandbox in the background and write params/{environments,incidents}/sandbox.yaml."""
    from .params import PARAMS_DIR, REPO_ROOT
    from .sandbox import daemon

    try:
        state = daemon.up(REPO_ROOT / ".sandbox", PARAMS_DIR, scenario=scenario)
    except ForensicsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    click.echo(f"sandbox up (pid {state['pid']}, scenario {state['scenario']})")
    click.echo(f"  AWS endpoint  {state['endpoint_url']}")
    click.echo(f"  PostgreSQL    {state['dsn']}")
    click.echo(f"  environment   {state['env_path']}")
    click.echo(f"  incident      {state['incident_path']}")
    click.echo("open the notebooks with `make lab`; run them with "
               f"`forensics run {os.path.relpath(state['incident_path'])}`; stop with `forensics sandbox down`")


@sandbox.command("down")
def sandbox_down():
    """Stop the background sandbox."""
    from .params import REPO_ROOT
    from .sandbox import daemon

    click.echo("sandbox stopped" if daemon.down(REPO_ROOT / ".sandbox") else "no sandbox was running")


@sandbox.command("status")
def sandbox_status():
    """Is the sandbox running, and where."""
    from .params import REPO_ROOT
    from .sandbox import daemon

    state = daemon.status(REPO_ROOT / ".sandbox")
    if not state:
        click.echo("no sandbox running")
        sys.exit(1)
    for k, v in state.items():
        click.echo(f"{k:14} {v}")


@cli.command()
@click.option("--scenario", default="all", show_default=True,
              help="Scenario to play: a name, several joined by commas, or all (one incident touching every notebook).")
@click.option("--out", default="evidence", show_default=True, type=click.Path(file_okay=False))
@click.option("--jobs", type=click.IntRange(min=1), default=None)
def demo(scenario, out, jobs):
    """Start the sandbox, play a scenario, run every notebook, stop the sandbox, print the record."""
    from . import demo as demo_mod

    try:
        result = demo_mod.run(scenario=scenario, out=out, jobs=jobs, echo=_echo)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(str(result.record))
    sys.exit(0 if result.ok else 1)


def main():
    cli(prog_name="forensics")


if __name__ == "__main__":
    main()
