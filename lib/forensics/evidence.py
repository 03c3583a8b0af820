"""The evidence record on disk: its folder, its manifest, and verification.

    evidence/<incident-date>_<incident-id>/<captured-at>/
        params.yaml  notebooks/*.ipynb  html/*.html  data/*.parquet  figures/*.png
        findings.json  postmortem.md  manifest.json

``manifest.json`` lists every other file with its SHA-256 and size, every capture (source, call or
SQL, arguments, rows, pulled-at, duration, error), the notebooks and their status, versions, git
commit, collector identity, the window, the previous record's digest for the same incident, and a
final ``digest``: the SHA-256 of the manifest's own canonical JSON without that field. Editing any
file changes its hash; editing the manifest to match changes the digest; so every edit, deletion,
addition or rename is detected by :func:`verify`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

from . import contracts
from .errors import RecordError
from .params import REPO_ROOT, Incident

FORMAT = "forensics-evidence-record/1"
MANIFEST = contracts.MANIFEST_FILE
#: Working files of a run, folded into the manifest and removed before it is written.
SCRATCH = (contracts.SIDECAR_DIR, contracts.FINDINGS_SCRATCH_DIR)
PARTIAL_SUFFIX = ".partial"
PACKAGES = ("forensics", "pandas", "numpy", "pyarrow", "boto3", "botocore", "psycopg", "papermill", "nbclient",
            "nbconvert", "matplotlib", "ipykernel", "moto")


def incident_dir(out: Path, incident: Incident) -> Path:
    return Path(out) / f"{incident.date}_{incident.incident}"


def new_record_dir(out: Path, incident: Incident) -> tuple[Path, str]:
    """A fresh ``<captured-at>.partial`` folder; never an existing one (a second run in the same
    second waits for the next)."""
    parent = incident_dir(out, incident)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        captured_at = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
        final = parent / captured_at
        partial = parent / (captured_at + PARTIAL_SUFFIX)
        if not final.exists() and not partial.exists():
            try:
                partial.mkdir()
                return partial, captured_at
            except FileExistsError:
                pass
        time.sleep(0.25)


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
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def previous_record(parent: Path, captured_at: str) -> Path | None:
    """The newest finished record of the same incident before ``captured_at``."""
    earlier = sorted(p for p in parent.iterdir()
                     if p.is_dir() and not p.name.endswith(PARTIAL_SUFFIX) and p.name < captured_at
                     and (p / MANIFEST).exists())
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


def write_manifest(record: Path, parts: ManifestParts) -> dict:
    files = [{"path": rel, "sha256": sha256_file(record / rel), "size": (record / rel).stat().st_size}
             for rel in list_files(record)]
    parent = record.parent
    prev = previous_record(parent, parts.captured_at)
    prev_digest = None
    if prev is not None:
        try:
            prev_digest = json.loads((prev / MANIFEST).read_text()).get("digest")
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
    (record / MANIFEST).write_bytes(render_manifest(manifest))
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
    mpath = record / MANIFEST
    if not mpath.exists():
        result.problems.append(f"missing: {MANIFEST}")
        result.problems += [f"extra: {rel} (not in any manifest)" for rel in list_files(record)]
        return result
    try:
        manifest = json.loads(mpath.read_text())
        listed = {f["path"]: f for f in manifest["files"]}
        digest = manifest["digest"]
    except (ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"changed: {MANIFEST} (unreadable: {exc})")
        return result
    result.digest = digest
    if manifest_digest(manifest) != digest:
        result.problems.append(f"changed: {MANIFEST} (its content does not match its digest)")
    elif render_manifest(manifest) != mpath.read_bytes():
        result.problems.append(f"changed: {MANIFEST} (not byte for byte as written)")
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
    records = sorted(p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST).exists()
                     and not p.name.endswith(PARTIAL_SUFFIX))
    problems, prev_digest, prev_name = [], None, None
    for rec in records:
        try:
            m = json.loads((rec / MANIFEST).read_text())
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
