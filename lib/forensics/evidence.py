"""The evidence record on disk: :class:`Record` (its layout, creation and finish), its manifest, verification.

    evidence/<incident-date>_<incident-id>/<captured-at>/          (docs/record.md)
        params.yaml  notebooks/*.ipynb  html/*.html  data/*.parquet  figures/*.png
        findings.json  postmortem.md  index.html  manifest.json

``manifest.json`` lists every other file with its SHA-256 and size, every capture (source, call or
SQL, arguments, rows, pulled-at, duration, error), the notebooks and their status, versions, git
commit, collector identity, the window, the previous record's digest for the same incident, and a
final ``digest``: the SHA-256 of the manifest's own canonical JSON without that field. Editing any
file changes its hash; editing the manifest to match changes the digest; so every edit, deletion,
addition or rename is detected by :func:`verify`.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import math
import os
import platform
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import pandas as pd

from . import contracts
from .errors import DiskFull, RecordError
from .incident_lock import IncidentLock
from .params import REPO_ROOT, Incident

FORMAT = "forensics-evidence-record/1"
#: Working files of a run, folded into the manifest and removed before it is written.
SCRATCH = (contracts.SIDECAR_DIR, contracts.FINDINGS_SCRATCH_DIR)
PACKAGES = ("forensics", "pandas", "numpy", "pyarrow", "boto3", "botocore", "psycopg", "papermill", "nbclient",
            "nbconvert", "matplotlib", "ipykernel", "moto")


def incident_dir(out: Path, incident: Incident) -> Path:
    return Path(out) / f"{incident.date}_{incident.incident}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def manifest_digest(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def list_files(record: Path) -> list[str]:
    """Every file in a record except the manifest, as sorted POSIX paths relative to it."""
    out = []
    for p in record.rglob("*"):
        if p.is_file() or p.is_symlink():
            rel = p.relative_to(record).as_posix()
            if rel != contracts.MANIFEST_FILE:
                out.append(rel)
    return sorted(out)


def previous_record(parent: Path, captured_at: str) -> Path | None:
    """The newest finished record of the same incident before ``captured_at``."""
    earlier = sorted(p for p in parent.iterdir()
                     if p.is_dir() and not p.name.endswith(contracts.PARTIAL_SUFFIX) and p.name < captured_at
                     and (p / contracts.MANIFEST_FILE).exists())
    return earlier[-1] if earlier else None


# ---- who, when, with what ---------------------------------------------------------------------------
def tool_versions() -> dict:
    pkgs = {}
    for name in PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"python": platform.python_version(), "packages": pkgs, "git_commit": git_commit()}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        commit = out.stdout.strip() or None
        if commit:
            dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def collector(aws_identity: dict | None = None, db_user: str | None = None) -> dict:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001
        user = str(os.getuid())
    local = time.localtime()
    return {
        "os_user": user,
        "host": socket.gethostname(),
        "aws_identity": aws_identity,
        "db_user": db_user,
        "local_utc_offset_s": local.tm_gmtoff,
        "local_timezone": time.strftime("%Z", local),
    }


# ---- writing ----------------------------------------------------------------------------------------
@dataclass
class ManifestParts:
    incident: Incident
    captured_at: str
    notebooks: list[dict]
    captures: list[dict]
    collector: dict
    started_at: str
    finished_at: str
    replay_of: dict | None = None
    clock: dict = field(default_factory=dict)


def write_manifest(record: Path, parts: ManifestParts, hashed: Callable[[str], tuple[str, int]] | None = None) -> dict:
    """manifest.json over every file of ``record``; ``hashed(rel) -> (sha256, size)`` gives what is already
    known of a file (:meth:`Record.hashed`) so that no file is read twice. Call it under the incident's lock
    (:class:`Record` does): the previous record's digest is read here, at seal time."""
    hashed = hashed or (lambda rel: (sha256_file(record / rel), (record / rel).stat().st_size))
    files = [dict(zip(("path", "sha256", "size"), (rel, *hashed(rel)))) for rel in list_files(record)]
    parent = record.parent
    prev = previous_record(parent, parts.captured_at)
    prev_digest = None
    if prev is not None:
        try:
            prev_digest = json.loads((prev / contracts.MANIFEST_FILE).read_text()).get("digest")
        except (OSError, ValueError):
            prev_digest = "unreadable"
    inc = parts.incident
    manifest = {
        "format": FORMAT,
        "incident": {"id": inc.incident, "title": inc.title, "severity": inc.severity,
                     "environment": inc.environment.get("name")},
        "window": inc.window.as_dict(),
        "captured_at": parts.captured_at,
        "started_at": parts.started_at,
        "finished_at": parts.finished_at,
        "tool": tool_versions(),
        "collector": parts.collector,
        "clock": parts.clock,
        "parameters": contracts.PARAMS_FILE,
        "replay_of": parts.replay_of,
        "notebooks": parts.notebooks,
        "captures": parts.captures,
        "files": files,
        "previous_record": prev.name if prev else None,
        "previous_record_digest": prev_digest,
    }
    manifest["digest"] = manifest_digest(manifest)
    (record / contracts.MANIFEST_FILE).write_bytes(render_manifest(manifest))
    return manifest


def render_manifest(manifest: dict) -> bytes:
    """The one byte-exact form of a manifest: verify re-renders it, so even a whitespace edit shows."""
    return (json.dumps(manifest, indent=1, ensure_ascii=False, default=str) + "\n").encode()


def seal(record: Path) -> None:
    """Make a finished record read-only on disk (files 0444, folders 0555)."""
    for p in sorted(record.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if p.is_file():
            p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        elif p.is_dir():
            p.chmod(0o555)
    record.chmod(0o555)


# ---- verifying --------------------------------------------------------------------------------------
@dataclass
class Verification:
    record: Path
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    digest: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(record: str | os.PathLike) -> Verification:
    """Check every file against the manifest and the manifest against its digest."""
    record = Path(record)
    result = Verification(record)
    if not record.is_dir():
        raise RecordError(f"{record}: not a folder")
    mpath = record / contracts.MANIFEST_FILE
    if not mpath.exists():
        result.problems.append(f"missing: {contracts.MANIFEST_FILE}")
        result.problems += [f"extra: {rel} (not in any manifest)" for rel in list_files(record)]
        return result
    try:
        manifest = json.loads(mpath.read_text())
        listed = {f["path"]: f for f in manifest["files"]}
        digest = manifest["digest"]
    except (ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"changed: {contracts.MANIFEST_FILE} (unreadable: {exc})")
        return result
    result.digest = digest
    if manifest_digest(manifest) != digest:
        result.problems.append(f"changed: {contracts.MANIFEST_FILE} (its content does not match its digest)")
    elif render_manifest(manifest) != mpath.read_bytes():
        result.problems.append(f"changed: {contracts.MANIFEST_FILE} (not byte for byte as written)")
    present = set(list_files(record))
    for rel, entry in sorted(listed.items()):
        path = record / rel
        if rel not in present:
            result.problems.append(f"missing: {rel}")
            continue
        result.files_checked += 1
        if path.stat().st_size != entry.get("size") or sha256_file(path) != entry.get("sha256"):
            result.problems.append(f"changed: {rel}")
    for rel in sorted(present - set(listed)):
        result.problems.append(f"extra: {rel}")
    return result


def verify_chain(incident_folder: str | os.PathLike) -> list[str]:
    """Check that each record of one incident names its predecessor's digest (a hash chain)."""
    folder = Path(incident_folder)
    records = sorted(p for p in folder.iterdir() if p.is_dir() and (p / contracts.MANIFEST_FILE).exists()
                     and not p.name.endswith(contracts.PARTIAL_SUFFIX))
    problems, prev_digest, prev_name = [], None, None
    for rec in records:
        try:
            m = json.loads((rec / contracts.MANIFEST_FILE).read_text())
        except ValueError:
            problems.append(f"{rec.name}: manifest unreadable")
            prev_digest, prev_name = None, rec.name
            continue
        if m.get("previous_record") != prev_name or m.get("previous_record_digest") != prev_digest:
            problems.append(f"{rec.name}: chain broken (names {m.get('previous_record')} "
                            f"{m.get('previous_record_digest')}, expected {prev_name} {prev_digest})")
        if manifest_digest(m) != m.get("digest"):
            problems.append(f"{rec.name}: manifest does not match its digest")
        prev_digest, prev_name = m.get("digest"), rec.name
    return problems


# ---- the record being written -----------------------------------------------------------------------
class Record:
    """One evidence record: where each of its files goes, its creation and its finish.

        record = Record.create(out, incident)    # <out>/<date>_<incident>/<captured-at>.partial/, locked
        record.write_params(incident)            # params.yaml
        ... captures, notebooks, figures written into record.path by the runner and the notebooks ...
        record.finish(incident, notebooks, ...)  # findings → diagnosis → postmortem → index → scrub
                                                 #   → manifest → seal; returns the manifest
    Every file is hashed once: a file this class writes is hashed from the bytes written, the files the
    index checks are hashed there, and the manifest takes those digests for files unchanged since
    (same size, mtime and inode); it hashes only the rest (figures, files the final redaction rewrote).
    """

    def __init__(self, path: Path, captured_at: str, lock: IncidentLock | None = None):
        self.path = Path(path)  # the .partial folder until sealed, then the record's final folder
        self.captured_at = captured_at
        self.sealed = False
        self._lock = lock
        self._hashed: dict[str, tuple[tuple, str, int]] = {}  # rel -> (stat stamp, sha256, size)

    # -- layout (every name from contracts) --------------------------------------------------------------
    @property
    def incident_dir(self) -> Path:
        return self.path.parent

    @property
    def final_path(self) -> Path:
        return self.incident_dir / self.captured_at

    @property
    def name(self) -> str:
        """``<date>_<incident>/<captured-at>``, as the index and the postmortem name the record."""
        return f"{self.incident_dir.name}/{self.captured_at}"

    @staticmethod
    def notebook(name: str) -> str:
        return f"{contracts.NOTEBOOKS_DIR}/{name}.ipynb"

    @staticmethod
    def html(name: str) -> str:
        return f"{contracts.HTML_DIR}/{name}.html"

    @staticmethod
    def report(name: str) -> str:
        return f"{contracts.HTML_DIR}/{name}{contracts.REPORT_SUFFIX}.html"

    def data_files(self) -> list[Path]:
        return sorted((self.path / contracts.DATA_DIR).glob("*.parquet"))

    # -- creation ----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, out: str | os.PathLike, incident: Incident, wait: bool = True,
               echo: Callable[[str], None] = print) -> Record:
        """A fresh ``<captured-at>.partial`` folder, with the incident's lock held; never an existing
        folder (a second record in the same second waits for the next). ``wait``: when another run
        holds the incident, wait for it (saying so in one line) or raise :class:`RecordBusy`."""
        parent = incident_dir(Path(out), incident)
        _disk_full_is_one_line(parent, lambda: parent.mkdir(parents=True, exist_ok=True))
        lock = IncidentLock(parent)
        lock.acquire(wait=wait, echo=echo)
        try:
            while True:
                captured_at = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
                partial = parent / (captured_at + contracts.PARTIAL_SUFFIX)
                if not (parent / captured_at).exists() and not partial.exists():
                    with contextlib.suppress(FileExistsError):
                        _disk_full_is_one_line(partial, partial.mkdir)
                        for d in (contracts.NOTEBOOKS_DIR, contracts.HTML_DIR):
                            _disk_full_is_one_line(partial / d, (partial / d).mkdir)
                        return cls(partial, captured_at, lock)
                time.sleep(0.25)
        except BaseException:
            lock.release()
            raise

    def close(self) -> None:
        """Release the incident (sealed or not); the ``.partial`` folder of an unfinished record stays."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Record:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------------
    def write_text(self, rel: str, text: str) -> Path:
        """Write a file of the record and remember its digest (it is not read back to be hashed)."""
        path, data = self.path / rel, text.encode("utf-8")
        _disk_full_is_one_line(path, lambda: path.write_bytes(data))
        self._hashed[rel] = (_stamp(path), hashlib.sha256(data).hexdigest(), len(data))
        return path

    def write_params(self, incident: Incident) -> None:
        from .params import dump

        self.write_text(contracts.PARAMS_FILE, dump(incident.as_dict()))

    def digest(self, rel: str) -> str:
        return self.hashed(rel)[0]

    def hashed(self, rel: str) -> tuple[str, int]:
        """(sha256, size) of a file of the record, read and hashed once: a file unchanged since it was last
        hashed is not read again."""
        path = self.path / rel
        stamp = _stamp(path)
        known = self._hashed.get(rel)
        if known is None or known[0] != stamp:
            known = (stamp, sha256_file(path), stamp[0])
            self._hashed[rel] = known
        return known[1], known[2]

    # -- the finish ----------------------------------------------------------------------------------------
    def finish(self, incident: Incident, notebooks: list[dict], *, started_at: str, identity: dict | None = None,
               clock: dict | None = None, replay_of: dict | None = None, ahead=None,
               catalogue=None) -> tuple[dict, dict]:
        """findings → coverage → diagnosis → postmortem → index → scrub (the final redaction pass) → manifest →
        seal. ``notebooks``: each notebook's run (worker.NotebookRun.to_json()); with ``catalogue``, a notebook
        that ran but saw nothing becomes ``no evidence`` (forensics.coverage). Returns (findings, manifest)."""
        from . import coverage, diagnosis, postmortem, redact, report_html
        from .capture import collect_sidecars, iso_ms
        from .window import utcnow

        findings = self.collect_findings(notebooks)
        if catalogue is not None:
            coverage.apply(self.path, notebooks, findings, catalogue, incident.environment)
        findings["diagnosis"] = diagnosis.for_record(findings, incident.environment)  # ranked against the runbooks
        self.write_text(contracts.FINDINGS_FILE, strict_json(findings))
        captures = collect_sidecars(self.path)
        self.write_text(contracts.POSTMORTEM_FILE, redact.text(postmortem.render(
            incident, findings, notebooks, [c["file"] for c in captures if c.get("file")], record_name=self.name)))
        # The reader's view over what is written so far, before the manifest seals it (and lists it).
        html = report_html.index_html(self.path, incident, findings, notebooks, captures, record_name=self.name,
                                      digest=self.digest)
        self.write_text(contracts.INDEX_FILE, html)
        db_user = _db_user(self.path, captures)
        for d in SCRATCH:
            shutil.rmtree(self.path / d, ignore_errors=True)
        # A secret found in any file (any kernel) is masked in all of them. What was detected when written (a
        # fresh capture, a notebook and its HTML redacted in the worker) is only masked, not detected again.
        # A replay's captures are the original's bytes: read (their secrets masked elsewhere), never rewritten.
        _disk_full_is_one_line(self.path, lambda: redact.scrub_record_files(
            self.path, detected=self._detected(notebooks, captures), ahead=ahead,
            keep=[self.path / c["file"] for c in captures if c.get("file") and c.get("replayed_from")]))
        parts = ManifestParts(
            incident=incident, captured_at=self.captured_at, notebooks=notebooks, captures=captures,
            collector=collector(identity or None, db_user), started_at=started_at, finished_at=iso_ms(utcnow()),
            replay_of=replay_of, clock=clock or {})
        manifest = _disk_full_is_one_line(self.path / contracts.MANIFEST_FILE,
                                          lambda: write_manifest(self.path, parts, hashed=self.hashed))
        self.seal()
        return findings, manifest

    def collect_findings(self, notebooks: list[dict]) -> dict:
        """Each notebook's status and findings (its scratch ``.findings/<name>.json``), in run order."""
        out = {}
        for nb in notebooks:
            path = self.path / contracts.FINDINGS_SCRATCH_DIR / f"{nb['name']}.json"
            body = json.loads(path.read_text()) if path.exists() else {"findings": {}, "unknown": []}
            entry = {"status": nb["status"]}
            if nb.get("error"):
                entry["reason" if nb["status"] == contracts.SKIPPED else "error"] = nb["error"]
            entry.update(body.get("findings", {}))
            entry["unknown"] = body.get("unknown", [])
            if body.get("failed_sources"):
                entry["failed_sources"] = body["failed_sources"]
            out[nb["name"]] = entry
        return out

    def _detected(self, notebooks: list[dict], captures: list[dict]) -> list[Path]:
        """Files already scrubbed with the present rules: captures pulled now (``redact.frame`` before writing;
        a replayed one carries the original's bytes, redacted by whatever rules made it) and the notebooks the
        workers redacted before rendering their HTML (``html`` is set only then)."""
        out = [self.path / c["file"] for c in captures if c.get("file") and not c.get("replayed_from")]
        for nb in notebooks:
            if nb.get("html"):
                out += [self.path / self.notebook(nb["name"]), self.path / nb["html"],
                        self.path / self.report(nb["name"])]
        return out

    def seal(self) -> None:
        """Rename ``<captured-at>.partial`` to ``<captured-at>``, make it read-only, release the incident."""
        final = self.final_path
        _disk_full_is_one_line(final, lambda: os.replace(self.path, final))
        self.path, self.sealed = final, True
        seal(final)
        self.close()


def strict_json(obj) -> str:
    """``obj`` as strict JSON (RFC 8259: no bare Infinity or NaN, which jq and most parsers refuse): an infinite
    number becomes the string "Infinity" or "-Infinity", NaN null."""
    return json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _disk_full_is_one_line(path: Path, write: Callable):
    """Run ``write``; a full disk or quota becomes :class:`DiskFull` naming the path (the file, when the
    system says which)."""
    try:
        return write()
    except OSError as exc:
        if exc.errno not in DiskFull.ERRNOS:
            raise
        raise DiskFull(f"{exc.filename or path}: {os.strerror(exc.errno).lower()}") from None


def _db_user(record: Path, captures: list[dict]) -> str | None:
    for c in captures:
        if c["name"] == "pg_settings" and c.get("file"):
            df = pd.read_parquet(record / c["file"])
            if "current_user" in df.columns and len(df):
                return str(df["current_user"].iloc[0])
    return None
