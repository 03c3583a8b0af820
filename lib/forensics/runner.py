"""`forensics run` / `forensics replay`: the batch run that turns an incident into a dated record.

Reads like the runbook it automates:
  validate parameters → new record folder → the capture plan (every capture of every selected notebook,
  deduplicated): the volatile PostgreSQL views first, then the rest in a rate-limited thread pool while
  the notebooks start → notebooks in parallel (papermill; each renders and redacts its own HTML) →
  findings.json → manifest.json → seal.
Nothing is written before the parameters are valid. A notebook that fails keeps its partial output
and is marked failed; the others complete; the record is still sealed and verifiable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import captures as caps
from . import contracts, defaults, diagnosis, evidence, postmortem, prefetch, redact, report_html
from .capture import CaptureStore, collect_sidecars, iso_ms
from .errors import ParamsError, RecordError
from .notebooks import catalogue
from .params import Incident, dump, load_incident, load_resolved
from .progress import Progress, cell_hook
from .redaction.record import Ahead
from .session import FINDINGS_DIR, IncidentSession
from .window import utcnow

CELL_TIMEOUT_S = defaults.CELL_TIMEOUT_S
SKIPPED = "skipped"


@dataclass
class NotebookRun:
    name: str
    status: str
    duration_s: float
    error: str | None = None
    html: str | None = None
    #: seconds the worker spent after the notebook: redacting it and rendering its HTML views
    render_s: float | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "duration_s": self.duration_s, "error": self.error,
                "notebook": f"notebooks/{self.name}.ipynb", "html": self.html, "render_s": self.render_s}


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
    incident = load_incident(incident_path, known_notebooks=list(cat))
    return incident, _select(incident, only, cat, "--only")


def run(incident_path: str | os.PathLike, out: str | os.PathLike = "evidence", jobs: int | None = None,
        only: list[str] | None = None, echo: Callable[[str], None] = print,
        progress: Progress | None = None, skip_preflight: bool = False) -> RunResult:
    incident, selected = validate(incident_path, only)
    if not skip_preflight:  # identity, window, every resource named: one line, exit 2, nothing written
        from .preflight import run as preflight
        echo(preflight(incident, selected).line())
    return _execute(incident, selected, Path(out), jobs, echo, catalogue(), progress=progress)


def replay(record: str | os.PathLike, out: str | os.PathLike | None = None, jobs: int | None = None,
           echo: Callable[[str], None] = print, progress: Progress | None = None) -> RunResult:
    """Re-execute a record's notebooks from its data/*.parquet, with no source contacted."""
    record = Path(record).resolve()
    manifest_path = record / evidence.MANIFEST
    if not manifest_path.exists():
        raise RecordError(f"{record}: not an evidence record (no {evidence.MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    incident = load_resolved(record / contracts.PARAMS_FILE)
    cat = catalogue()
    selected = [n["name"] for n in manifest["notebooks"]]
    missing = [n for n in selected if n not in cat]
    if missing:
        raise RecordError(f"{record}: notebook {missing[0]!r} is not in this checkout's notebooks/")
    out_dir = Path(out) if out else record.parent.parent
    return _execute(incident, selected, out_dir, jobs, echo, cat, replay_from=record,
                    replay_of={"record": str(record), "digest": manifest.get("digest")}, progress=progress)


def _execute(incident: Incident, selected: list[str], out: Path, jobs: int | None, echo, cat,
             replay_from: Path | None = None, replay_of: dict | None = None,
             progress: Progress | None = None) -> RunResult:
    started = utcnow()
    progress = progress or Progress(echo)
    record, captured_at = evidence.new_record_dir(out, incident)
    echo(f"record   {record.parent / captured_at}")
    echo(f"incident {incident.incident} [{incident.severity}] {incident.title}")
    echo(f"window   {incident.window}")
    (record / contracts.PARAMS_FILE).write_text(dump(incident.as_dict()))

    identity, clock = ({}, {}) if replay_from else _aws_identity(incident.environment.get("aws", {}))
    order = list(selected)
    jobs = max(1, jobs or os.cpu_count() or 1)
    params = {"incident_file": contracts.PARAMS_FILE, "record_dir": ".",
              "replay_from": str(replay_from) if replay_from else None}
    (record / contracts.NOTEBOOKS_DIR).mkdir()
    (record / contracts.HTML_DIR).mkdir()
    ahead = Ahead()  # the final redaction pass's reading of the captures, done while the notebooks run
    with IncidentSession(incident, CaptureStore(record, replay_from=replay_from, notebook="runner"),
                         "runner") as session:
        # 0. A notebook none of whose sources the environment configures is skipped, saying what it needs.
        runs: list[NotebookRun] = []
        for name in list(selected):
            needs = caps.sections_lacking(cat[name].captures, incident.environment)
            if needs:
                selected = [n for n in selected if n != name]
                runs.append(NotebookRun(name, SKIPPED, 0.0, f"needs a section the environment lacks: "
                                                            f"{' or '.join(needs)}"))
                echo(f"  skip   {name}: the environment has no {' or '.join(needs)} section")
        # 1. The capture plan, most volatile first: the live database views before anything else.
        plan, skipped = caps.plan([c for n in selected for c in cat[n].captures], incident.environment)
        echo(f"plan     {len(plan)} captures for {len(selected)} notebook(s)"
             + (f"; {len(skipped)} need sections the environment lacks" if skipped else ""))
        t0 = time.perf_counter()
        volatile = prefetch.pull_volatile(session, plan, lambda i, name: progress.captures(i, len(plan), name))
        if volatile:
            failed = session.failed(*[c.name for c in volatile])
            echo(f"volatile {len(volatile)} PostgreSQL captures in {time.perf_counter() - t0:.1f} s"
                 + (f" ({len(failed)} failed: {session.captures[failed[0]].error})" if failed else ""))
        rest = [c for c in plan if c not in volatile]

        # 2. The rest of the plan in threads, and the notebooks in processes, at the same time: a notebook
        #    that asks for a capture being pulled waits for it (one lock per capture) and reads it.
        #    Workers report the cell they are on through a queue (progress.cell_hook).
        echo(f"running  {len(selected)} notebook(s), {jobs} at a time: {', '.join(selected)}")
        with ThreadPoolExecutor(max_workers=defaults.PLAN_THREADS, thread_name_prefix="plan") as threads, \
                _progress_queue() as queue, progress.listen(queue), ProcessPoolExecutor(
                    max_workers=max(1, min(jobs, len(selected))), initializer=_worker_init,
                    initargs=(queue,)) as pool:
            pulled = prefetch.submit(threads, session, rest)
            futures = {pool.submit(_run_one, str(cat[n].path), str(record), n, params): n for n in selected}
            done = len(volatile)
            for fut in as_completed([*pulled, *futures]):
                if fut in futures:
                    runs.append(_finished(fut, futures[fut], progress))
                    continue
                done += 1
                progress.captures(done, len(plan), pulled[fut])
                if fut.exception() is not None:  # a bug, not a source failing (those are recorded)
                    echo(f"  capture failed in the runner: {type(fut.exception()).__name__}: {fut.exception()}")
                if done == len(plan):
                    failed = session.failed(*[c.name for c in rest])
                    echo(f"captured {len(rest)} of the plan in {time.perf_counter() - t0:.1f} s"
                         + (f" ({len(failed)} failed)" if failed else ""))
                    if replay_from is None:  # the final redaction pass reads the captures now, not after
                        threads.submit(ahead.add, sorted((record / contracts.DATA_DIR).glob("*.parquet")))
        progress.close()
    t_after = time.perf_counter()
    runs.sort(key=lambda r: order.index(r.name))

    # 3. Findings, manifest, seal.
    findings = _collect_findings(record, runs)
    from .coverage import apply as coverage  # a notebook that ran but saw nothing is "no evidence"
    coverage(record, runs, findings, cat, incident.environment)
    findings["diagnosis"] = diagnosis.for_record(findings, incident.environment)  # hypotheses ranked against the runbooks
    (record / contracts.FINDINGS_FILE).write_text(json.dumps(findings, indent=2, sort_keys=False) + "\n")
    captures = collect_sidecars(record)
    (record / contracts.POSTMORTEM_FILE).write_text(redact.text(postmortem.render(
        incident, findings, [r.to_json() for r in runs], [c["file"] for c in captures if c.get("file")],
        record_name=f"{record.parent.name}/{captured_at}")))
    # The reader's view: index.html over what is written so far, before the manifest seals it.
    report_html.write_index(record, incident, findings, [r.to_json() for r in runs], captures,
                            record_name=f"{record.parent.name}/{captured_at}")
    db_user = _db_user(record, captures)
    for d in (*evidence.SCRATCH,):
        shutil.rmtree(record / d, ignore_errors=True)
    # A secret found in any file (any kernel) is masked in all of them. What was detected when written (a
    # fresh capture, a notebook and its HTML redacted in the worker) is only masked, not detected again.
    # A replay's captures are the original's bytes: read (their secrets masked elsewhere), never rewritten.
    redact.scrub_record_files(record, detected=_detected_files(record, runs, captures), ahead=ahead,
                              keep=[record / c["file"] for c in captures
                                    if c.get("file") and c.get("replayed_from")])
    parts = evidence.ManifestParts(
        incident=incident, captured_at=captured_at, notebooks=[r.to_json() for r in runs], captures=captures,
        collector=evidence.collector(identity or None, db_user), started_at=iso_ms(started),
        finished_at=iso_ms(utcnow()), replay_of=replay_of, clock=clock)
    manifest = evidence.write_manifest(record, parts)
    final = record.parent / captured_at
    os.replace(record, final)
    evidence.seal(final)
    after = round(time.perf_counter() - t_after, 2)
    slowest = max((r.render_s or 0.0 for r in runs), default=0.0)
    echo(f"sealed   {after:.1f} s after the notebooks (the slowest notebook's rendering took {slowest:.1f} s)")
    return RunResult(final, runs, findings, manifest, after)


def _detected_files(record: Path, runs: list[NotebookRun], captures: list[dict]) -> list[Path]:
    """Files already scrubbed with the present rules: captures pulled now (``redact.frame`` before writing;
    a replayed one carries the original's bytes, redacted by whatever rules made it) and the notebooks the
    workers redacted before rendering their HTML (``html`` is set only then)."""
    out = [record / c["file"] for c in captures if c.get("file") and not c.get("replayed_from")]
    for r in runs:
        if r.html:
            out += [record / contracts.NOTEBOOKS_DIR / f"{r.name}.ipynb", record / r.html,
                    record / contracts.HTML_DIR / f"{r.name}.report.html"]
    return out


def _finished(fut, name: str, progress: Progress) -> NotebookRun:
    try:
        nb_run = fut.result()
    except Exception as exc:  # noqa: BLE001 - a crashed worker is a failed notebook
        nb_run = NotebookRun(name, "failed", 0.0, f"{type(exc).__name__}: {exc}")
    progress.notebook_done(name, nb_run.status, nb_run.duration_s, nb_run.error)
    return nb_run


_QUEUE = None  # a worker's end of the progress queue (set by _worker_init)


@contextlib.contextmanager
def _progress_queue():
    import multiprocessing

    queue = multiprocessing.Queue()
    try:
        yield queue
    finally:
        queue.close()
        queue.join_thread()


def _worker_init(queue) -> None:
    global _QUEUE
    _QUEUE = queue


def _run_one(nb_path: str, record: str, name: str, params: dict) -> NotebookRun:
    """One notebook in a worker process: papermill, then nbconvert to HTML (also for a failed one)."""
    import papermill as pm

    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    out_nb = Path(record) / contracts.NOTEBOOKS_DIR / f"{name}.ipynb"
    t0 = time.perf_counter()
    status, error = "ok", None
    try:
        pm.execute_notebook(nb_path, str(out_nb), parameters=params, cwd=record, kernel_name="python3",
                            progress_bar=False, log_output=False, execution_timeout=CELL_TIMEOUT_S,
                            request_save_on_cell_execute=True,
                            on_cell_execute=cell_hook(_QUEUE, name, json.loads(Path(nb_path).read_text())["cells"])
                            if _QUEUE is not None else None,
                            # ipykernel 7 warns on stderr that loopback TCP is unencrypted, per kernel.
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except Exception as exc:  # noqa: BLE001 - PapermillExecutionError, DeadKernelError, timeouts
        status = "failed"
        error = redact.text(_exec_error(exc))
    duration = round(time.perf_counter() - t0, 2)
    html = None
    t0 = time.perf_counter()
    if out_nb.exists():
        _redact_notebook(out_nb)
        try:
            html = _render_html(out_nb, Path(record) / contracts.HTML_DIR / f"{name}.html")
        except Exception as exc:  # noqa: BLE001
            error = (error + "; " if error else "") + f"HTML rendering failed: {exc}"
    return NotebookRun(name, status, duration, error, html, round(time.perf_counter() - t0, 2))


def _redact_notebook(path: Path) -> None:
    """Scrub secrets from an executed notebook: a traceback or a printed value may carry one that no
    capture saw (captures are redacted when pulled). Images are left alone (base64 is not text)."""

    def walk(value, key=""):
        if isinstance(value, str):
            return value if key.startswith("image/") else redact.text(value)
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        return value

    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    clean = walk(nb)
    if clean != nb:
        path.write_text(json.dumps(clean, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _exec_error(exc: Exception) -> str:
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        cell = getattr(exc, "exec_count", None)
        return f"{ename}: {evalue}" + (f" (cell [{cell}])" if cell else "")
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _render_html(nb_path: Path, html_path: Path) -> str:
    """html/<name>.html and its report view (no code cells), self-contained and offline."""
    return report_html.render_notebook(nb_path, html_path.parent, html_path.stem)


def _collect_findings(record: Path, runs: list[NotebookRun]) -> dict:
    out = {}
    for r in runs:
        path = record / FINDINGS_DIR / f"{r.name}.json"
        body = json.loads(path.read_text()) if path.exists() else {"findings": {}, "unknown": []}
        entry = {"status": r.status}
        if r.error:
            entry["reason" if r.status == SKIPPED else "error"] = r.error
        entry.update(body.get("findings", {}))
        entry["unknown"] = body.get("unknown", [])
        if body.get("failed_sources"):
            entry["failed_sources"] = body["failed_sources"]
        out[r.name] = entry
    return out


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


def _db_user(record: Path, captures: list[dict]) -> str | None:
    for c in captures:
        if c["name"] == "pg_settings" and c.get("file"):
            import pandas as pd

            df = pd.read_parquet(record / c["file"])
            if "current_user" in df.columns and len(df):
                return str(df["current_user"].iloc[0])
    return None


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
