"""`forensics list | validate | run | replay | verify | sandbox up/down/status | demo` — parses, then calls
the library. Every command's help ends with its exit codes (EXIT_CODES).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .errors import ForensicsError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}

#: what each exit code means; every command's --help lists the ones it can return
EXIT_CODES = {
    0: "success",
    1: "a notebook failed, a record does not verify, no sandbox is running, or no notebooks were found",
    2: "bad input: parameters, arguments, a file that is not what it should be (one line on stderr, "
       "nothing written)",
    3: "the sandbox could not start",
    130: "stopped by SIGINT (Ctrl-C); one line names the unfinished record folder left",
    143: "stopped by SIGTERM; one line names the unfinished record folder left",
}


def _exits(*codes: int | tuple[int, str]) -> str:
    """A command's epilog: its exit codes, one per line (\b keeps click from rewrapping them); a code
    is a number (its meaning from EXIT_CODES) or (number, what it means for this command)."""
    lines = [f"  {c[0]}  {c[1]}" if isinstance(c, tuple) else f"  {c}  {EXIT_CODES[c]}" for c in codes]
    return "\b\nExit codes:\n" + "\n".join(lines)


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


def _progress():
    """Progress on stderr: a rewritten status line on a terminal, plain rate-limited lines otherwise."""
    from .progress import Progress

    return Progress(_echo, stream=sys.stderr)


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


@click.group(context_settings=CONTEXT, epilog=_exits(0, 1, 2, 3))
@click.version_option(package_name="forensics", help="Show the version and exit.")
def cli():
    """Incident forensic notebooks: evidence during an incident, a dated verifiable record after it."""


@cli.command("list", epilog=_exits(0, (1, "no notebooks found (a broken install)")))
def list_cmd():
    """List the notebooks (incident classes) and what they serve."""
    from .notebooks import catalogue

    try:
        cat = catalogue()
    except ForensicsError as exc:
        _fail(exc)
    for nb in cat.values():
        click.echo(f"{nb.name:16} {nb.title}")
        if nb.serves:
            click.echo(f"{'':16} serves: {', '.join(nb.serves)}")


_ONLY = click.option("--only", multiple=True, metavar="NOTEBOOK",
                     help="Only this notebook, instead of the incident's list (repeatable).")
_JOBS = click.option("--jobs", type=click.IntRange(min=1), default=None,
                     help="Notebooks run at once [default: the number of cores].")
_WAIT = click.option("--wait/--no-wait", default=True, show_default=True,
                     help="When another run of the same incident is writing a record: wait for it, or refuse "
                          "(exit 2).")
#: how a run ends early (forensics.stopping, evidence.Record)
_STOPPED = ((1, "a notebook failed (the record is still written and sealed), or the disk filled (one line "
                "naming the path; the .partial folder is left)"),
            (2, "bad input, or --no-wait and another run of the incident is writing"),
            (130, "stopped by SIGINT (Ctrl-C): one line names the .partial folder left"),
            (143, "stopped by SIGTERM: the same"))


@cli.command(epilog=_exits(0, *_STOPPED))
@click.argument("incident_file", type=click.Path(dir_okay=False))
@click.option("--out", default="evidence", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <date>_<incident>/<captured-at>/ is written.")
@_JOBS
@_ONLY
@_WAIT
def run(incident_file, out, jobs, only, wait):
    """Run the notebooks over an incident's window and write an evidence record.

    INCIDENT_FILE is an incident YAML (params/incidents/*.yaml) naming its environment."""
    from . import runner

    _finish(lambda: runner.run(incident_file, out=out, jobs=jobs, only=list(only) or None, echo=_echo,
                               progress=_progress(), stoppable=True, wait=wait))


@cli.command(epilog=_exits(0, 2))
@click.argument("incident_file", type=click.Path(dir_okay=False))
@_ONLY
def validate(incident_file, only):
    """Check an incident file as `run` would (its environment, window, notebooks), writing nothing.

    Prints one line: what would run, or the first problem found."""
    from . import runner

    try:
        incident, selected = runner.validate(incident_file, only=list(only) or None)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(f"valid: {incident.incident} [{incident.severity}] {incident.window}, environment "
               f"{incident.environment.get('name')}, {len(selected)} notebook(s): {', '.join(selected)}")


@cli.command(epilog=_exits(0, *_STOPPED))
@click.argument("record", type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Where the new record goes [default: beside the replayed one].")
@_JOBS
@_WAIT
def replay(record, out, jobs, wait):
    """Re-execute a record's notebooks from its data files, with no network, into a new record."""
    from . import runner

    _finish(lambda: runner.replay(record, out=out, jobs=jobs, echo=_echo, progress=_progress(), stoppable=True,
                                  wait=wait))


@cli.command(epilog=_exits((0, "the record is intact"), (1, "it does not verify (each problem on a line)"), 2))
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


def _sandbox_dir() -> Path:
    from .resources import sandbox_dir

    return sandbox_dir()


@cli.group(epilog=_exits(0, (1, "status: no sandbox is running"), 2, 3))
def sandbox():
    """The embedded sandbox: moto server + PostgreSQL cluster + audit server on loopback, in the background."""


@sandbox.command("up", epilog=_exits(0, (2, "--empty with --scenario"), 3))
@click.option("--scenario", default=None, metavar="NAME",
              help="A scenario name, several joined by commas, or all [default: all].")
@click.option("--empty", is_flag=True,
              help="No scenario: the AWS emulator (moto with the project's extensions), PostgreSQL and the "
                   "audit server, empty, for loading your own data. Writes no parameter files.")
def sandbox_up(scenario, empty):
    """Start the sandbox in the background; with a scenario, write params/{environments,incidents}/sandbox.yaml."""
    from .params import PARAMS_DIR
    from .sandbox import daemon

    if empty and scenario:
        click.echo("error: --empty and --scenario exclude each other", err=True)
        sys.exit(2)
    try:
        state = daemon.up(_sandbox_dir(), PARAMS_DIR, scenario=None if empty else (scenario or "all"))
    except ForensicsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    info = daemon.summary(state)
    click.echo(f"sandbox up (pid {info['pid']}, scenario {info['scenario'] or 'none: empty'})")
    click.echo(f"  AWS endpoint  {info['aws_endpoint_url']} (region {info['region']})")
    click.echo(f"  PostgreSQL    {info['postgres_dsn']} (read-only user; to load data: {info['postgres_admin_dsn']})")
    click.echo(f"  audit server  {info['audit_base_url']} (bearer token in ${info['audit_token_env']})")
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
    """Stop the background sandbox (and remove its cluster)."""
    from .sandbox import daemon

    click.echo("sandbox stopped" if daemon.down(_sandbox_dir()) else "no sandbox was running")


@sandbox.command("status", epilog=_exits((0, "a sandbox is running"), (1, "none is running")))
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (running, scenario, aws_endpoint_url, postgres_dsn, audit_base_url, "
                   "env_path, incident_path, window, pid, ...), also when nothing runs.")
def sandbox_status(as_json):
    """Is the sandbox running, and where."""
    import json

    from .sandbox import daemon

    info = daemon.summary(daemon.status(_sandbox_dir()))
    if as_json:
        click.echo(json.dumps(info, default=str))
    elif info["running"]:
        for k, v in info.items():
            click.echo(f"{k:18} {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    else:
        click.echo("no sandbox running" + (" (still starting)" if info["starting"] else ""))
    sys.exit(0 if info["running"] else 1)


@cli.command(epilog=_exits(0, (1, "a notebook failed"), 2, 3))
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
    sys.exit(0 if result.ok else 1)


def main():
    cli(prog_name="forensics")


if __name__ == "__main__":
    main()
