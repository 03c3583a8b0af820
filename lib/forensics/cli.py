"""`forensics list | validate | run | replay | verify | sandbox up/down/status | demo` — parses, then calls
the library. Every command's help ends with its exit codes (EXIT_CODES).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .errors import ForensicsError

# papermill -> nbformat -> jsonschema imports rfc3987_syntax when it is installed (JupyterLab's jupyter-events
# pulls it in), and rfc3987_syntax compiles ~38 Lark grammars at import: 2-4 s of every command that runs or
# validates, for the `iri` format checks that no schema here or in nbformat uses (python-jsonschema/jsonschema
# issue 1428). Without it, jsonschema simply has no `iri` checker. Set before anything imports jsonschema;
# the notebook workers are forked from this process and inherit it.
sys.modules.setdefault("rfc3987_syntax", None)

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
    click.echo(_visible(msg), err=True)  # evidence text never drives the terminal (forensics.safe_text)


def _visible(msg) -> str:
    from .safe_text import terminal

    return terminal(msg)


def _progress():
    """Progress on stderr: a rewritten status line on a terminal, plain rate-limited lines otherwise."""
    from .progress import Progress

    return Progress(_echo, stream=sys.stderr)


def _fail(exc: ForensicsError):
    click.echo(_visible(f"error: {exc}"), err=True)
    sys.exit(exc.exit_code)


def _finish(execute):
    """Run, print the summary on stderr and the record's path on stdout; exit 1 if a notebook failed or has
    no evidence, or a configured source did not answer (forensics.coverage)."""
    from . import coverage, runner

    try:
        result = execute()
    except ForensicsError as exc:
        _fail(exc)
    runner.print_summary(result, _echo)
    click.echo(str(result.record))
    sys.exit(coverage.exit_code(result))


# ---- the sandbox: a separate package, reached only through an entry point --------------------------------
#: forensics_sandbox (shipped in the same wheel, usable with the `sandbox` extra: moto) adds its commands
#: through this entry point; the library never imports it.
PLUGIN_GROUP = "forensics.plugins"
SANDBOX_PLUGIN = "sandbox"
#: the commands the sandbox plugin provides (named here so that help and a missing extra can say so)
SANDBOX_COMMANDS = ("sandbox", "demo")
SANDBOX_INSTALL = "install forensics[sandbox]: pip install 'forensics[sandbox]'"


def _plugin_commands() -> dict[str, click.Command]:
    """The sandbox plugin's commands, or, when it cannot load (moto missing, no entry point), stand-ins that
    say in one line what to install."""
    from importlib.metadata import entry_points

    found = entry_points(group=PLUGIN_GROUP, name=SANDBOX_PLUGIN)
    why = "the sandbox plugin is not installed"
    for ep in found:
        try:
            return dict(ep.load()())
        except ImportError as exc:
            why = f"the sandbox needs {exc.name or exc}" if isinstance(exc, ModuleNotFoundError) else str(exc)
    return {name: _missing_plugin(name, why) for name in SANDBOX_COMMANDS}


def _missing_plugin(name: str, why: str) -> click.Command:
    def stand_in(args):
        click.echo(f"error: forensics {name}: {why}; {SANDBOX_INSTALL}", err=True)
        sys.exit(3)

    return click.Command(
        name, callback=stand_in, help=f"The embedded sandbox (not available here: {SANDBOX_INSTALL}).",
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)], epilog=_exits((3, why)),
        context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False)


class _Cli(click.Group):
    """The command group; the sandbox plugin's commands are added the first time a command that is not
    built in is looked up, or all are listed (so `forensics list` never loads the plugin)."""

    def get_command(self, ctx, cmd_name):
        return self._commands.get(cmd_name) or self.commands.get(cmd_name)

    @property
    def commands(self) -> dict[str, click.Command]:
        if not getattr(self, "_plugins_loaded", False) and not getattr(self, "_adding", False):
            self._plugins_loaded = True
            for name, cmd in _plugin_commands().items():
                self._commands.setdefault(name, cmd)
        return self._commands

    @commands.setter
    def commands(self, value) -> None:
        self._commands = value

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        self._adding = True
        try:
            super().add_command(cmd, name)
        finally:
            self._adding = False


@click.group(cls=_Cli, context_settings=CONTEXT, epilog=_exits(0, 1, 2, 3))
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
_SKIP_PREFLIGHT = click.option(
    "--skip-preflight", is_flag=True,
    help="Do not check the AWS identity, the window against the clock and that every resource named exists "
         "(for the rare case a check cannot pass but the sources can still be read).")
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


@cli.command(epilog=_exits((0, "every notebook ran and every configured source answered"),
                          (1, "a notebook failed or has no evidence, or a configured source did not answer (the "
                              "record is still written and sealed; the summary names them), or the disk filled "
                              "(one line naming the path; the .partial folder is left)"),
                          (2, "bad input, preflight failed (one line on stderr, nothing written), or --no-wait "
                              "and another run of the incident is writing"),
                          *_STOPPED[2:]))
@click.argument("incident_file", type=click.Path(dir_okay=False))
@click.option("--out", default="evidence", show_default=True, type=click.Path(file_okay=False),
              help="Folder under which <date>_<incident>/<captured-at>/ is written.")
@_JOBS
@_ONLY
@_SKIP_PREFLIGHT
@_WAIT
def run(incident_file, out, jobs, only, skip_preflight, wait):
    """Run the notebooks over an incident's window and write an evidence record.

    INCIDENT_FILE is an incident YAML (params/incidents/*.yaml) naming its environment. Before anything is
    written, preflight checks the AWS identity, the window and every resource the environment names
    (a failure: one line, exit 2, nothing written)."""
    from . import runner

    _finish(lambda: runner.run(incident_file, out=out, jobs=jobs, only=list(only) or None, echo=_echo,
                               progress=_progress(), skip_preflight=skip_preflight, stoppable=True,
                               wait=wait))


@cli.command(epilog=_exits(0, (2, "bad input, or preflight failed (one line on stderr, nothing written)")))
@click.argument("incident_file", type=click.Path(dir_okay=False))
@_ONLY
@_SKIP_PREFLIGHT
def validate(incident_file, only, skip_preflight):
    """Check an incident file as `run` would, writing nothing: its environment, window and notebooks, then
    preflight (the AWS identity and Region, the window against the clock, that every resource named exists
    and is readable, the PostgreSQL connection).

    Prints what would run and the preflight's result, or the first problem found (one line, exit 2)."""
    from . import preflight, runner

    try:
        incident, selected = runner.validate(incident_file, only=list(only) or None)
        report = None if skip_preflight else preflight.run(incident, selected)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(_visible(f"valid: {incident.incident} [{incident.severity}] {incident.window}, environment "
               f"{incident.environment.get('name')}, {len(selected)} notebook(s): {', '.join(selected)}"))
    if report is not None:
        click.echo(_visible(report.line()))


@cli.command(epilog=_exits(0, (1, "a notebook failed or has no evidence, or a source failed in the record"),
                          *_STOPPED[1:]))
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


def main():
    cli(prog_name="forensics")


if __name__ == "__main__":
    main()
