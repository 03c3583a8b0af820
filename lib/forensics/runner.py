"""`forensics run` / `forensics replay`: the batch run that turns an incident into a dated record.

Reads like the runbook it automates:
  validate parameters → new record folder → volatile captures first → notebooks in parallel
  (papermill) → HTML (nbconvert) → findings.json → manifest.json → seal.
Nothing is written before the parameters are valid. A notebook that fails keeps its partial output
and is marked failed; the others complete; the record is still sealed and verifiable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import evidence, postmortem, redact
from .capture import CaptureStore, collect_sidecars, iso_ms
from .errors import ParamsError, RecordError
from .notebooks import catalogue
from .params import Incident, dump, load_incident, load_resolved
from .session import FINDINGS_DIR, IncidentSession
from .window import utcnow

CELL_TIMEOUT_S = 900
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\ssrc=[\"']https?://[^>]*>\s*</script>", re.I)


@dataclass
class NotebookRun:
    name: str
    status: str
    duration_s: float
    error: str | None = None
    html: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "duration_s": self.duration_s, "error": self.error,
                "notebook": f"notebooks/{self.name}.ipynb", "html": self.html}


@dataclass
class RunResult:
    record: Path
    notebooks: list[NotebookRun]
    findings: dict
    manifest: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(n.status == "ok" for n in self.notebooks)

    @property
    def failed(self) -> list[str]:
        return [n.name for n in self.notebooks if n.status != "ok"]


def _select(incident: Incident, only: list[str] | None, cat: dict, where: str) -> list[str]:
    selected = list(only) if only else (incident.notebooks or list(cat))
    unknown = [n for n in selected if n not in cat]
    if unknown:
        raise ParamsError(where, f"unknown notebook {unknown[0]!r} (known: {', '.join(cat)})")
    return [n for n in cat if n in selected]  # catalogue order


def run(incident_path: str | os.PathLike, out: str | os.PathLike = "evidence", jobs: int | None = None,
        only: list[str] | None = None, echo: Callable[[str], None] = print) -> RunResult:
    cat = catalogue()
    incident = load_incident(incident_path, known_notebooks=list(cat))
    selected = _select(incident, only, cat, "--only")
    return _execute(incident, selected, Path(out), jobs, echo, cat)


def replay(record: str | os.PathLike, out: str | os.PathLike | None = None, jobs: int | None = None,
           echo: Callable[[str], None] = print) -> RunResult:
    """Re-execute a record's notebooks from its data/*.parquet, with no source contacted."""
    record = Path(record).resolve()
    manifest_path = record / evidence.MANIFEST
    if not manifest_path.exists():
        raise RecordError(f"{record}: not an evidence record (no {evidence.MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    incident = load_resolved(record / "params.yaml")
    cat = catalogue()
    selected = [n["name"] for n in manifest["notebooks"]]
    missing = [n for n in selected if n not in cat]
    if missing:
        raise RecordError(f"{record}: notebook {missing[0]!r} is not in this checkout's notebooks/")
    out_dir = Path(out) if out else record.parent.parent
    return _execute(incident, selected, out_dir, jobs, echo, cat, replay_from=record,
                    replay_of={"record": str(record), "digest": manifest.get("digest")})


def _execute(incident: Incident, selected: list[str], out: Path, jobs: int | None, echo, cat,
             replay_from: Path | None = None, replay_of: dict | None = None) -> RunResult:
    started = utcnow()
    record, captured_at = evidence.new_record_dir(out, incident)
    echo(f"record   {record.parent / captured_at}")
    echo(f"incident {incident.incident} [{incident.severity}] {incident.title}")
    echo(f"window   {incident.window}")
    (record / "params.yaml").write_text(dump(incident.as_dict()))

    identity, clock = ({}, {}) if replay_from else _aws_identity(incident.environment.get("aws", {}))
    # 1. Order of volatility: the live database views before anything else.
    if replay_from is None and incident.environment.get("postgres") and any(
            "postgres" in cat[n].sources for n in selected):
        t0 = time.perf_counter()
        from . import pull

        session = IncidentSession(incident, CaptureStore(record, notebook="runner"), "runner")
        pull.precapture(session)
        failed = session.failed()
        echo(f"volatile {len(session.captures)} PostgreSQL captures in {time.perf_counter() - t0:.1f} s"
             + (f" ({len(failed)} failed: {session.captures[failed[0]].error})" if failed else ""))

    # 2. Notebooks in parallel.
    jobs = max(1, jobs or os.cpu_count() or 1)
    params = {"incident_file": "params.yaml", "record_dir": ".",
              "replay_from": str(replay_from) if replay_from else None}
    runs: list[NotebookRun] = []
    (record / "notebooks").mkdir()
    (record / "html").mkdir()
    echo(f"running  {len(selected)} notebook(s), {jobs} at a time: {', '.join(selected)}")
    with ProcessPoolExecutor(max_workers=min(jobs, len(selected))) as pool:
        futures = {pool.submit(_run_one, str(cat[n].path), str(record), n, params): n for n in selected}
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                nb_run = fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker is a failed notebook
                nb_run = NotebookRun(name, "failed", 0.0, f"{type(exc).__name__}: {exc}")
            runs.append(nb_run)
            mark = "ok    " if nb_run.status == "ok" else "FAILED"
            echo(f"  {mark} {name} ({nb_run.duration_s:.1f} s)" + (f": {nb_run.error}" if nb_run.error else ""))
    runs.sort(key=lambda r: selected.index(r.name))

    # 3. Findings, manifest, seal.
    findings = _collect_findings(record, runs)
    (record / "findings.json").write_text(json.dumps(findings, indent=2, sort_keys=False) + "\n")
    captures = collect_sidecars(record)
    (record / "postmortem.md").write_text(redact.text(postmortem.render(
        incident, findings, [r.to_json() for r in runs], [c["file"] for c in captures if c.get("file")],
        record_name=f"{record.parent.name}/{captured_at}")))
    db_user = _db_user(record, captures)
    for d in (*evidence.SCRATCH,):
        shutil.rmtree(record / d, ignore_errors=True)
    redact.scrub_record_files(record)  # a secret found in any file (any kernel) is masked in all of them
    parts = evidence.ManifestParts(
        incident=incident, captured_at=captured_at, notebooks=[r.to_json() for r in runs], captures=captures,
        collector=evidence.collector(identity or None, db_user), started_at=iso_ms(started),
        finished_at=iso_ms(utcnow()), replay_of=replay_of, clock=clock)
    manifest = evidence.write_manifest(record, parts)
    final = record.parent / captured_at
    os.replace(record, final)
    evidence.seal(final)
    return RunResult(final, runs, findings, manifest)


def _run_one(nb_path: str, record: str, name: str, params: dict) -> NotebookRun:
    """One notebook in a worker process: papermill, then nbconvert to HTML (also for a failed one)."""
    import papermill as pm

    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    out_nb = Path(record) / "notebooks" / f"{name}.ipynb"
    t0 = time.perf_counter()
    status, error = "ok", None
    try:
        pm.execute_notebook(nb_path, str(out_nb), parameters=params, cwd=record, kernel_name="python3",
                            progress_bar=False, log_output=False, execution_timeout=CELL_TIMEOUT_S,
                            request_save_on_cell_execute=True,
                            # ipykernel 7 warns on stderr that loopback TCP is unencrypted, per kernel.
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except Exception as exc:  # noqa: BLE001 - PapermillExecutionError, DeadKernelError, timeouts
        status = "failed"
        error = redact.text(_exec_error(exc))
    duration = round(time.perf_counter() - t0, 2)
    html = None
    if out_nb.exists():
        _redact_notebook(out_nb)
        try:
            html = _render_html(out_nb, Path(record) / "html" / f"{name}.html")
        except Exception as exc:  # noqa: BLE001
            error = (error + "; " if error else "") + f"HTML rendering failed: {exc}"
    return NotebookRun(name, status, duration, error, html)


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
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    # Self-contained and offline: drop the template's CDN scripts (require.js, MathJax); nothing in
    # these notebooks needs them, and an evidence file must not fetch anything when opened.
    body = _EXTERNAL_SCRIPT.sub("", body)
    html_path.write_text(redact.text(body), encoding="utf-8")
    return html_path.relative_to(html_path.parent.parent).as_posix()


def _collect_findings(record: Path, runs: list[NotebookRun]) -> dict:
    out = {}
    for r in runs:
        path = record / FINDINGS_DIR / f"{r.name}.json"
        body = json.loads(path.read_text()) if path.exists() else {"findings": {}, "unknown": []}
        entry = {"status": r.status}
        if r.error:
            entry["error"] = r.error
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
    echo("")
    echo(f"evidence record: {result.record}")
    for name, f in result.findings.items():
        headline = {k: v for k, v in f.items() if k not in ("status", "unknown", "failed_sources", "error")}
        echo(f"  {name}: {f['status']}")
        for k, v in list(headline.items())[:8]:
            text = json.dumps(v, default=str)
            echo(f"    {k}: {text if len(text) < 140 else text[:137] + '...'}")
        if f.get("unknown"):
            echo(f"    unknown (source failed): {', '.join(f['unknown'])}")
    if result.failed:
        echo(f"FAILED notebooks: {', '.join(result.failed)} (their partial output is in the record)")
