"""`forensics run` / `forensics replay`: the batch run that turns an incident into a dated record.

Reads like the runbook it automates (:func:`_execute`):
  validate parameters → (preflight) → a new record folder, the incident locked (evidence.Record) → the
  capture plan (every capture of every selected notebook, deduplicated): the volatile PostgreSQL views
  first, then the rest in a rate-limited thread pool while the notebooks run in worker processes
  (forensics.worker: papermill; each renders and redacts its own HTML) → the record's finish (findings,
  diagnosis, postmortem, index, final redaction pass, manifest, seal).
Nothing is written before the parameters are valid. A notebook that fails keeps its partial output
and is marked failed; the others complete; the record is still sealed and verifiable. SIGINT/SIGTERM
stop the run, its workers and their kernels (forensics.stopping); a full disk stops it with one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import captures as caps
from . import contracts, defaults, lean_imports, prefetch, redact, stopping
from .capture import CaptureStore, iso_ms
from .errors import DiskFull, ParamsError, RecordError
from .evidence import Record
from .notebooks import catalogue
from .errors import WindowError
from .params import Incident, load_incident, load_resolved
from .progress import Progress
from .redaction.record import Ahead
from .session import IncidentSession
from .window import utcnow
from .worker import NotebookRun, pool, run_notebook

SKIPPED = contracts.SKIPPED


@dataclass
class RunResult:
    record: Path
    notebooks: list[NotebookRun]
    findings: dict
    manifest: dict = field(default_factory=dict)
    #: seconds from the last notebook's end to the sealed record (findings, diagnosis, postmortem, index,
    #: the final redaction pass, manifest, seal)
    after_notebooks_s: float | None = None

    @property
    def ok(self) -> bool:
        return all(n.status in ("ok", SKIPPED) for n in self.notebooks)

    @property
    def failed(self) -> list[str]:
        return [n.name for n in self.notebooks if n.status not in ("ok", SKIPPED)]


def _select(incident: Incident, only: list[str] | None, cat: dict, where: str) -> list[str]:
    selected = list(only) if only else (incident.notebooks or list(cat))
    unknown = [n for n in selected if n not in cat]
    if unknown:
        raise ParamsError(where, f"unknown notebook {unknown[0]!r} (known: {', '.join(cat)})")
    return [n for n in cat if n in selected]  # catalogue order


def validate(incident_path: str | os.PathLike, only: list[str] | None = None) -> tuple[Incident, list[str]]:
    """The checks of `run` before it writes anything: the incident, its environment, the notebooks."""
    cat = catalogue()
    incident = load_incident(incident_path, known_notebooks=list(cat), check_retention=False)
    selected = _select(incident, only, cat, "--only")
    check_cloudwatch_retention(incident, selected, cat)  # only notebooks that read CloudWatch metrics
    return incident, selected


def check_cloudwatch_retention(incident: Incident, notebooks: list, cat: dict) -> None:
    """Refuse a window CloudWatch metrics can no longer serve, but only when one of ``notebooks`` would
    read CloudWatch metrics in this environment (a capture of the notebook calling ``GetMetricData`` whose
    sections the environment has): a trail-only environment reads CloudTrail at any age."""
    readers = []
    for name in notebooks:
        for cap_name in getattr(cat.get(name), "captures", ()) or ():
            cap = caps.CAPTURES.get(cap_name)
            if cap is not None and cap.source == "cloudwatch" and "GetMetric" in cap.api \
                    and not cap.missing_sections(incident.environment):
                readers.append(name)
                break
    if not readers:
        return
    try:
        incident.window.check_retention()
    except WindowError as exc:
        raise ParamsError(incident.source_path, f"{exc} (notebooks reading CloudWatch metrics: "
                                                f"{', '.join(readers)}; leave them out with --only)") from None


def run(incident_path: str | os.PathLike, out: str | os.PathLike = "evidence", jobs: int | None = None,
        only: list[str] | None = None, echo: Callable[[str], None] = print,
        progress: Progress | None = None, skip_preflight: bool = False, stoppable: bool = False,
        wait: bool = True) -> RunResult:
    """``skip_preflight``: do not check identity, window and resources first; ``stoppable``: SIGINT/SIGTERM
    end the process with one line (the CLI); ``wait``: wait for another run of the same incident to finish
    rather than refuse (RecordBusy)."""
    incident, selected = validate(incident_path, only)
    from .sources import postgres

    postgres.preflight(incident.environment)  # a role that could write: exit 2 before anything is written
    if not skip_preflight:  # identity, window, every resource named: one line, exit 2, nothing written or chained
        from .preflight import run as preflight

        echo(preflight(incident, selected).line())
    return _execute(incident, selected, Path(out), jobs, echo, catalogue(), progress=progress,
                    stoppable=stoppable, wait=wait)


def replay(record: str | os.PathLike, out: str | os.PathLike | None = None, jobs: int | None = None,
           echo: Callable[[str], None] = print, progress: Progress | None = None,
           stoppable: bool = False, wait: bool = True) -> RunResult:
    """Re-execute a record's notebooks from its data/*.parquet, with no source contacted."""
    record = Path(record).resolve()
    manifest_path = record / contracts.MANIFEST_FILE
    if not manifest_path.exists():
        raise RecordError(f"{record}: not an evidence record (no {contracts.MANIFEST_FILE})")
    manifest = json.loads(manifest_path.read_text())
    incident = load_resolved(record / contracts.PARAMS_FILE)
    cat = catalogue()
    selected = [n["name"] for n in manifest["notebooks"]]
    missing = [n for n in selected if n not in cat]
    if missing:
        raise RecordError(f"{record}: notebook {missing[0]!r} is not in this checkout's notebooks/")
    out_dir = Path(out) if out else record.parent.parent
    return _execute(incident, selected, out_dir, jobs, echo, cat, replay_from=record,
                    replay_of={"record": str(record), "digest": manifest.get("digest")}, progress=progress,
                    stoppable=stoppable, wait=wait)


def _execute(incident: Incident, selected: list[str], out: Path, jobs: int | None, echo, cat,
             replay_from: Path | None = None, replay_of: dict | None = None, progress: Progress | None = None,
             stoppable: bool = False, wait: bool = True) -> RunResult:
    started, progress, order, now = iso_ms(utcnow()), progress or Progress(echo), list(selected), {}
    lean_imports.without_iri_format_checker()  # the finish reads notebooks with nbformat; the workers inherit it
    with stopping.on_signals(lambda: now.get("record") and now["record"].path, enabled=stoppable), \
            _disk_full_stops_the_run(now), Record.create(out, incident, wait=wait, echo=echo) as record:
        now["record"] = record
        echo(f"record   {record.final_path}")
        echo(f"incident {incident.incident} [{incident.severity}] {incident.title}")
        echo(f"window   {incident.window}")
        record.write_params(incident)
        identity, clock = ({}, {}) if replay_from else _aws_identity(incident.environment.get("aws", {}))
        # 0. A notebook none of whose sources the environment configures is skipped, saying what it needs.
        selected, runs = _skip_unconfigured(selected, cat, incident.environment, echo)
        # 1. The capture plan, most volatile first: the live database views before anything else.
        plan, skipped = caps.plan([c for n in selected for c in cat[n].captures], incident.environment)
        echo(f"plan     {len(plan)} captures for {len(selected)} notebook(s)"
             + (f"; {len(skipped)} need sections the environment lacks" if skipped else ""))
        ahead = Ahead()  # the final redaction pass's reading of the captures, done while the notebooks run
        store = CaptureStore(record.path, replay_from=replay_from, notebook="runner")
        with IncidentSession(incident, store, "runner") as session:
            volatile = _pull_volatile(session, plan, progress, echo)
            # 2. The rest of the plan in threads and the notebooks in worker processes, at the same time.
            runs += _captures_and_notebooks(session, [c for c in plan if c not in volatile], len(plan), selected,
                                            cat, record, jobs, progress, echo, None if replay_from else ahead)
        progress.close()
        t_after = time.perf_counter()
        runs.sort(key=lambda r: order.index(r.name))
        # 3. findings → diagnosis → postmortem → index → final redaction pass → manifest → seal
        findings, manifest = record.finish(incident, [r.to_json() for r in runs], started_at=started,
                                           identity=identity, clock=clock, replay_of=replay_of, ahead=ahead,
                                           catalogue=cat)
        for r in runs:  # coverage may have found a notebook that ran but saw nothing: "no evidence"
            r.status = findings.get(r.name, {}).get("status", r.status)
    after = round(time.perf_counter() - t_after, 2)
    slowest = max((r.render_s or 0.0 for r in runs), default=0.0)
    echo(f"sealed   {after:.1f} s after the notebooks (the slowest notebook's rendering took {slowest:.1f} s)")
    return RunResult(record.path, runs, findings, manifest, after)


def _skip_unconfigured(selected: list[str], cat, env: dict, echo) -> tuple[list[str], list[NotebookRun]]:
    """(the notebooks that run, the runs of those skipped: none of their sources is configured; a source a
    notebook reads only when configured, ``inc.optional``, does not count)."""
    keep, runs = [], []
    for name in selected:
        needs = caps.sections_lacking(cat[name].required, env)
        if needs:
            runs.append(NotebookRun(name, SKIPPED, 0.0, f"needs a section the environment lacks: {' or '.join(needs)}"))
            echo(f"  skip   {name}: the environment has no {' or '.join(needs)} section")
        else:
            keep.append(name)
    return keep, runs


def _pull_volatile(session: IncidentSession, plan, progress: Progress, echo) -> list:
    """The live database views, one after the other, before anything else (the order of volatility)."""
    t0 = time.perf_counter()
    volatile = prefetch.pull_volatile(session, plan, lambda i, name: progress.captures(i, len(plan), name))
    if volatile:
        failed = session.failed(*[c.name for c in volatile])
        echo(f"volatile {len(volatile)} PostgreSQL captures in {time.perf_counter() - t0:.1f} s"
             + (f" ({len(failed)} failed: {session.captures[failed[0]].error})" if failed else ""))
    return volatile


def _captures_and_notebooks(session: IncidentSession, rest: list, total: int, selected: list[str], cat,
                            record: Record, jobs: int | None, progress: Progress, echo,
                            read_ahead: Ahead | None) -> list[NotebookRun]:
    """``rest`` of the plan in threads and the notebooks in worker processes, at the same time: a notebook
    that asks for a capture being pulled waits for it (one lock per capture) and reads it. Workers report
    the cell they are on through a queue (progress.cell_hook). Once the plan is pulled, ``read_ahead`` reads
    its files for the final redaction pass while the notebooks still run."""
    t0, runs, done = time.perf_counter(), [], total - len(rest)
    jobs = max(1, jobs or os.cpu_count() or 1)
    params = {"incident_file": contracts.PARAMS_FILE, "record_dir": ".",
              "replay_from": str(session.store.replay_from) if session.store.replay_from else None}
    echo(f"running  {len(selected)} notebook(s), {jobs} at a time: {', '.join(selected)}")
    with ThreadPoolExecutor(max_workers=defaults.PLAN_THREADS, thread_name_prefix="plan") as threads, \
            pool(min(jobs, max(1, len(selected)))) as (workers, queue), progress.listen(queue):
        # The notebooks first: the pool forks its workers at the first submit, and a worker forked while a plan
        # thread holds a lock (redaction's, the store's, logging's) would inherit it held and wait on it forever.
        futures = {workers.submit(run_notebook, str(cat[n].path), str(record.path), n, params): n for n in selected}
        pulled = prefetch.submit(threads, session, rest)
        try:
            for fut in as_completed([*pulled, *futures]):
                if fut in futures:
                    runs.append(_finished(fut, futures[fut], progress))
                    _raise_if_disk_full(None, runs[-1].error)
                    continue
                done += 1
                progress.captures(done, total, pulled[fut])
                if fut.exception() is not None:  # a bug or a full disk, not a source failing (those are recorded)
                    _raise_if_disk_full(fut.exception())
                    echo(f"  capture failed in the runner: {type(fut.exception()).__name__}: {fut.exception()}")
                if done == total:
                    failed = session.failed(*[c.name for c in rest])
                    echo(f"captured {len(rest)} of the plan in {time.perf_counter() - t0:.1f} s"
                         + (f" ({len(failed)} failed)" if failed else ""))
                    if read_ahead is not None:  # the final redaction pass reads the captures now, not after
                        threads.submit(read_ahead.add, record.data_files())
        except BaseException:  # a full disk, KeyboardInterrupt in a library caller: end the workers and
            stopping.end_children()  # their kernels, or leaving the pool would wait for every notebook
            raise
    return runs


def _raise_if_disk_full(exc: BaseException | None, error: str | None = None) -> None:
    """A capture or a notebook that failed because the disk is full stops the run."""
    full = isinstance(exc, OSError) and exc.errno in DiskFull.ERRNOS
    if full or (error and ("[Errno 28]" in error or "No space left on device" in error)):
        raise exc if full else DiskFull(f"no space left on device (a notebook: {error[:200]})")


@contextlib.contextmanager
def _disk_full_stops_the_run(now: dict):
    """A full disk anywhere in the run (its workers and kernels already ended) becomes one line naming the
    path and the ``.partial`` folder left (DiskFull, exit 1), never a traceback."""
    try:
        yield
    except (OSError, DiskFull) as exc:
        if isinstance(exc, OSError) and exc.errno not in DiskFull.ERRNOS:
            raise
        if isinstance(exc, OSError):
            exc = DiskFull(f"{exc.filename or '?'}: {os.strerror(exc.errno).lower()}")
        record = now.get("record")
        left = "" if record is None or record.sealed else f"; the unfinished record is left in {record.path.absolute()}"
        raise DiskFull(f"{exc}{left}") from None


def _finished(fut, name: str, progress: Progress) -> NotebookRun:
    try:
        nb_run = fut.result()
    except Exception as exc:  # noqa: BLE001 - a crashed worker is a failed notebook
        nb_run = NotebookRun(name, "failed", 0.0, f"{type(exc).__name__}: {exc}")
    progress.notebook_done(name, nb_run.status, nb_run.duration_s, nb_run.error)
    return nb_run


def _aws_identity(aws: dict) -> tuple[dict, dict]:
    """STS caller identity and the clock offset against AWS's Date header, as far as they are known."""
    from email.utils import parsedate_to_datetime

    from . import _aws

    try:
        sts = _aws.client("sts", aws, config=_aws.client_config(connect_timeout=3, read_timeout=5, max_attempts=2))
        before = utcnow()
        resp = sts.get_caller_identity()
        after = utcnow()
        # The UserId of a user or role is an AIDA/AROA id, key-shaped: kept as its stable marker.
        ident = redact.obj({k: resp.get(k) for k in ("Account", "Arn", "UserId")})
        clock = {}
        date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if date:
            server = parsedate_to_datetime(date)
            local_mid = before + (after - before) / 2
            clock = {"reference": "AWS STS Date header (1 s resolution)", "server_time": date,
                     "local_minus_server_s": round((local_mid.to_pydatetime() - server).total_seconds(), 3)}
        return ident, clock
    except Exception as exc:  # noqa: BLE001 - identity is recorded as unknown, the run goes on
        return {"error": redact.text(f"{type(exc).__name__}: {exc}")[:300]}, {}


def print_summary(result: RunResult, echo: Callable[[str], None] = print) -> None:
    from . import coverage

    echo("")
    echo(f"evidence record: {result.record}")
    top = next((h for h in result.findings.get("diagnosis", {}).get("hypotheses", []) if h["role"] == "primary"), None)
    if top:
        echo(f"diagnosis: {' -> '.join(top['chain'])} ({top['source']['runbook']}, {top['source']['section']})")
    for name, f in result.findings.items():
        if name == "diagnosis":
            continue
        headline = {k: v for k, v in f.items() if k not in ("status", "unknown", "failed_sources", "error")}
        echo(f"  {name}: {f['status']}")
        for k, v in list(headline.items())[:8]:
            text = json.dumps(v, default=str)
            echo(f"    {k}: {text if len(text) < 140 else text[:137] + '...'}")
        if f.get("unknown"):
            echo(f"    unknown (source failed): {', '.join(f['unknown'])}")
    failed = [n.name for n in result.notebooks if n.status not in (coverage.OK, coverage.NO_EVIDENCE, SKIPPED)]
    empty = [n.name for n in result.notebooks if n.status == coverage.NO_EVIDENCE]
    if failed:
        echo(f"FAILED notebooks: {', '.join(failed)} (their partial output is in the record)")
    if empty:
        echo(f"NO EVIDENCE: {', '.join(empty)} (every source failed, or one held no data where data must exist)")
    sources = coverage.run_failed_sources(result)
    if sources:
        echo(f"sources that did not answer ({len(sources)}):")
        for name, error in sources.items():
            echo(f"    {name}: {error if len(error) < 160 else error[:157] + '...'}")

