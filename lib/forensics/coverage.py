"""Coverage: what each notebook's sources answered, so a record never says "ok" over nothing.

Per capture (from its :class:`~forensics.capture.CaptureMeta`: ``rows``, ``error``, ``reading``):

- ``failed``   the source did not answer (``error``);
- ``no data``  it answered with no row where the window must hold some (:data:`EXPECTS_DATA`: a
               configured load balancer with no RequestCount all window, a DB instance with no CPU metric);
- ``partial``  it answered but said part could not be read (objects, lines, a fallback taken);
- ``answered`` otherwise (zero rows included, where zero is a possible answer: no error logged).

Per notebook: a notebook that ran (``ok``) is ``no evidence`` when its captures failed and none of the
others returned a row, or when one that must hold data holds none. Its ``failed_sources`` lists both, with why. Findings derived from
a failed capture are already null and listed under ``unknown`` (``IncidentSession.finding(needs=...)``).

Per run (:func:`exit_code`): 0 when every notebook ran with evidence and every configured source answered;
1 when a notebook failed, has no evidence, or a configured source did not answer (the record is still
written and sealed; the summary names them). A capture whose environment section is absent is not a
configured source and does not count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

OK, NO_EVIDENCE = "ok", "no evidence"
FAILED, NO_DATA, PARTIAL, ANSWERED = "failed", "no data", "partial", "answered"

#: captures that, when their resource is configured, must hold rows over any window: why
EXPECTS_DATA: dict[str, str] = {
    "alb_metrics": "a configured load balancer reports RequestCount for every minute it serves",
    "rds_metrics": "a running DB instance reports CPUUtilization every minute",
    "ecs_metrics": "a running ECS service reports CPUUtilization every minute",
    "elasticache_metrics": "a running cache node reports CPUUtilization every minute",
    "ecs_deployments": "an ECS service always has a primary deployment",
    "alb_access_logs": "a load balancer with access logs delivers a file every 5 minutes it serves",
}


@dataclass(frozen=True)
class Coverage:
    capture: str
    state: str
    rows: int | None
    why: str | None = None


def of_capture(meta: Mapping, expects_data: bool | None = None) -> Coverage:
    """One capture's coverage from its metadata (a CaptureMeta's ``to_json()`` or a manifest entry)."""
    name = meta["name"]
    expects = name in EXPECTS_DATA if expects_data is None else expects_data
    if meta.get("error"):
        return Coverage(name, FAILED, meta.get("rows"), meta["error"])
    if expects and not meta.get("rows"):
        return Coverage(name, NO_DATA, 0, f"no data where data must exist ({EXPECTS_DATA.get(name, 'expected')})")
    reading = meta.get("reading") or {}
    if reading.get("errors") or reading.get("bad_lines") or reading.get("insights_error") or meta.get("truncated"):
        return Coverage(name, PARTIAL, meta.get("rows"))
    return Coverage(name, ANSWERED, meta.get("rows"))


def configured(name: str, env: Mapping) -> bool:
    """Whether the environment configures the capture's sources (else its failure is "not configured")."""
    from . import captures

    try:
        return not captures.get(name).missing_sections(env)
    except KeyError:
        return True


def notebook(captures: Iterable[Mapping], env: Mapping) -> tuple[str, dict[str, str]]:
    """(``ok`` or ``no evidence``, {capture: why}) for a notebook that ran, from its captures' metadata."""
    covs = [of_capture(m) for m in captures if configured(m["name"], env)]
    why = {c.capture: c.why for c in covs if c.state in (FAILED, NO_DATA)}
    # "all failed": nothing returned a row and something failed (a capture with nothing configured to ask
    # for, e.g. replica events without a replica, answers empty without a call: it is no evidence either)
    nothing = not any(c.rows for c in covs if c.state != FAILED)
    if covs and ((nothing and any(c.state == FAILED for c in covs)) or any(c.state == NO_DATA for c in covs)):
        return NO_EVIDENCE, why
    return OK, why


def failed_sources(captures: Iterable[Mapping], env: Mapping) -> dict[str, str]:
    """{capture: error} of the run's configured sources that did not answer."""
    return {m["name"]: m["error"] for m in captures if m.get("error") and configured(m["name"], env)}


def apply(record: Path, runs: list, findings: dict, cat: Mapping, env: Mapping) -> None:
    """Mark the notebooks that ran but saw nothing ``no evidence`` (their run and their findings entry), and
    list every capture that failed or held no data under the entry's ``failed_sources``."""
    from .capture import collect_sidecars

    metas = {m["name"]: m for m in collect_sidecars(record)}
    for run in runs:  # a notebook's run: a dict (name, status) as the record keeps it
        name = run["name"]
        entry = findings.get(name)
        if entry is None or name not in cat:
            continue
        names = set(cat[name].captures) | set(entry.get("failed_sources") or {})
        status, why = notebook([metas[n] for n in sorted(names) if n in metas], env)
        if why:
            entry["failed_sources"] = {**(entry.get("failed_sources") or {}), **why}
        if run["status"] == OK and status == NO_EVIDENCE:
            run["status"] = entry["status"] = NO_EVIDENCE


def run_failed_sources(result) -> dict[str, str]:
    """The configured sources of a finished run that did not answer (from its manifest)."""
    manifest = result.manifest or {}
    if not manifest.get("captures"):
        path = Path(result.record) / "manifest.json"
        manifest = json.loads(path.read_text()) if path.exists() else {}
    return failed_sources(manifest.get("captures") or [], _env_of(result.record))


def _env_of(record) -> dict:
    from . import contracts
    from .params import load_resolved

    try:
        return load_resolved(Path(record) / contracts.PARAMS_FILE).environment
    except Exception:  # noqa: BLE001 - no environment: every failed capture counts
        return {}


def exit_code(result) -> int:
    """0: every notebook ran with evidence and every configured source answered; else 1."""
    statuses = {n.status for n in result.notebooks}
    if statuses - {OK, "skipped"}:
        return 1
    return 1 if run_failed_sources(result) else 0
