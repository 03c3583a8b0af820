"""The postmortem draft: Markdown that follows the team's template (shared/seeds/004, "Postmortem
Template") filled from the record's findings: What Happened and Root Cause come from the runbook
diagnosis (one paragraph per hypothesis that holds, its evidence linked into the record); clear blanks
where the data cannot speak.

Written by the runner after every notebook has ended, so it sees all of their findings; the overview
notebook shows the same draft interactively (through :func:`forensics.safe_text.markdown`).

Every value that comes from the evidence or a parameter file (timeline messages, resources, query text,
evidence values, the incident's title, error messages) goes in through :func:`safe_text.md_text` (prose:
no tag, link or emphasis can start inside it) or :func:`safe_text.md_code` (a code span whose fence is
longer than any backtick run inside it); the whole draft then has its control characters shown as
escapes (:func:`safe_text.visible`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .diagnosis import diagnose, evidence_values, short
from .params import Incident
from .safe_text import md_code, md_text, safe_url, visible

BLANK = "_(to be completed by the incident team)_"


def _hhmm(iso_time: str | None) -> str:
    if not iso_time:
        return "--:--"
    return pd.Timestamp(iso_time).tz_convert("UTC").strftime("%H:%M")


def _fmt_int(v) -> str:
    return f"{int(v):,}" if isinstance(v, (int, float)) and v == v else "unknown"


#: findings already told by the "Slow statement" line
_SLOW_KEYS = ("top_statements", "top_statements_ranking")


def _slow_statement(findings: dict) -> tuple[str, str] | None:
    """The statement that took the most time, and how that was ranked, from the same ranking both
    notebooks use (:func:`forensics.analysis.statements.by_time_spent`): slow-queries' window delta
    when it ran, else db-connections' single snapshot."""
    sq, db = findings.get("slow-queries", {}), findings.get("db-connections", {})
    top = sq.get("top_statements") if sq.get("status", "ok") == "ok" else None
    if top:
        how = sq.get("top_statements_ranking") or "most time between two pg_stat_statements snapshots"
        return str(top[0].get("query")), f"slow-queries: {top[0].get('calls')} calls, {how}"
    if db.get("slow_statements"):
        how = db.get("slow_statements_ranking") or "most total time since pg_stat_statements was reset"
        return str(db["slow_statements"][0]), f"db-connections: {how}"
    return None


def _evidence_link(e: dict) -> str:
    if e.get("finding") == "timing":
        return f"timing: {md_text(e['says'])}"
    target = f"]({safe_url(e['html'])})" if e.get("html") else "]"
    shown = ", ".join(f"{md_text(k)} = {md_code(short(v, 100))}" for k, v in evidence_values(e))
    return f"{md_text(e['says'])} ([{shown}{target})"


def _hypothesis_paragraph(h: dict) -> list[str]:
    """One hypothesis that holds: what it says, the evidence for and against, the runbook's next step."""
    role = {"primary": "primary", "alternative": "alternative explanation, less supported",
            "concurrent": "concurrent, independent of the primary"}.get(h["role"], h["role"])
    src = h["source"]
    symptom = md_text(h['symptom'][0].upper() + h['symptom'][1:])
    text = (f"**{symptom}: {_chain(h)}** ({md_text(role)}). "
            f"{md_text(h['cause'])} Evidence: " + "; ".join(_evidence_link(e) for e in h["evidence_for"]) + ".")
    if h["evidence_against"]:
        text += " Against: " + "; ".join(_evidence_link(e) for e in h["evidence_against"]) + "."
    if h["unknown"]:
        text += " Unknown (finding missing): " + "; ".join(md_text(e["says"]) for e in h["unknown"]) + "."
    text += (f" Next step (runbook {md_code(src['runbook'])}, section \"{md_text(src['section'])}\"): "
             f"{md_text(h['next_step'])}")
    return [text, ""]


def _chain(h: dict) -> str:
    return md_text(" → ".join(h["chain"]) or h["id"])


def _root_cause(diag: dict, findings: dict) -> list[str]:
    """One paragraph per hypothesis that holds (primary, alternatives, concurrent incidents), then the
    hypotheses the evidence rules out, then the statement that took the most database time (ranked as the
    notebooks rank it); never a guess beyond the runbook entries."""
    holding = [h for h in diag.get("hypotheses", []) if h["holds"]]
    if diag.get("error"):
        lines = [f"The diagnosis could not run: {md_text(diag['error'])}", ""]
    elif not holding:
        lines = ["No runbook entry is supported by the evidence in this record.", ""]
    else:
        lines = []
        for h in holding:  # rank order: the primary and its alternatives, then each concurrent incident's
            lines += _hypothesis_paragraph(h)
        ruled_out = [h for h in diag["hypotheses"] if not h["holds"] and h["verdict"].startswith("refuted")]
        if ruled_out:
            lines.append("Ruled out by the evidence:")
            lines += [f"- {_chain(h)}: {md_text(h['verdict'])}" for h in ruled_out]
            lines.append("")
    slow = _slow_statement(findings)
    if slow:
        lines += [f"**Slow statement**: {md_code(slow[0][:200])} ({md_text(slow[1])}).", ""]
    return lines


def _what_happened(diag: dict) -> str:
    primary = next((h for h in diag.get("hypotheses", []) if h["role"] == "primary"), None)
    if primary is None:
        return ""
    out = f"The evidence supports {md_text(' → '.join(primary['chain']))}: {md_text(primary['cause'])}"
    if primary.get("timing") and primary["timing"].get("holds"):
        out += f" In order: {md_text(primary['timing']['says'])} UTC."
    concurrent = [h for h in diag["hypotheses"] if h["role"] == "concurrent"]
    if concurrent:
        out += (" Independent of it, in the same window: "
                + "; ".join(f"{md_text(h['symptom'])} ({md_text(' → '.join(h['chain']))})" for h in concurrent) + ".")
    return out


def render(incident: Incident, findings: dict, notebooks: Iterable[dict], data_files: Iterable[str],
           record_name: str | None = None) -> str:
    diag = findings.get("diagnosis") or diagnose(findings)
    findings = {k: v for k, v in findings.items() if k != "diagnosis"}
    ov = findings.get("overview", {})
    api = findings.get("api-errors", {})
    onset = ov.get("onset") or api.get("onset")
    duration = ov.get("duration_minutes")
    impact = ov.get("impact") or api.get("impact") or {}
    failed = ov.get("failed_requests", impact.get("failed_requests"))
    lines = [
        f"# Incident Postmortem: {md_text(incident.title)}",
        "",
        "> Draft generated from the evidence record"
        + (f" {md_code(record_name)}" if record_name else "") + ". Every figure below comes from a notebook of the "
        "record and links to it; sections marked as blanks need the incident team.",
        "",
        f"**Incident**: {md_text(incident.incident)}  ",
        f"**Date**: {incident.window.start:%Y-%m-%d}  ",
        f"**Severity**: {md_text(incident.severity)}  ",
        "**Duration**: " + (f"{duration:g} minutes" + (" (still ongoing at the end of the window)"
                                                          if ov.get("ongoing") else "")
                             if duration is not None else BLANK) + "  ",
        f"**Affected**: {md_text(incident.environment['name']) if incident.environment.get('name') else BLANK}  ",
        f"**Window examined**: {incident.window}",
        "",
        "## What Happened",
        "",
    ]
    if onset:
        summary = (f"From {_hhmm(onset)} UTC the service returned errors"
                   + (f" (5xx peaked at {api['error_rate_peak'] * 100:.1f}% of requests)"
                      if isinstance(api.get("error_rate_peak"), (int, float)) else "")
                   + (f"; {_fmt_int(failed)} requests failed" if failed is not None else "")
                   + (f", until {_hhmm(ov.get('recovered'))} UTC." if ov.get("recovered") else
                      ", and had not recovered by the end of the window."))
        change = api.get("suspected_change")
        if change:
            summary += (f" It began {_minutes_between(change.get('time'), onset)} after a {md_text(change.get('kind'))} "
                        f"of {md_code(change.get('resource'))}.")
        lines += [summary, ""]
    else:
        lines += [BLANK + " (no onset was detected in the ALB series)", ""]
    story = _what_happened(diag)
    if story:
        lines += [story, ""]
    lines += ["## Timeline", "", "Times in UTC. Detection, triage, mitigation and fix times are the team's.", ""]
    timeline = ov.get("timeline") or []
    security = [e for e in (findings.get("security") or {}).get("security_timeline") or [] if isinstance(e, dict)]
    if security:  # the security notebook's lines (read against its baseline) replace the overview's
        timeline = sorted([e for e in timeline if e.get("kind") != "security"] + security,
                          key=lambda e: str(e.get("time")))
    if timeline:
        for ev in timeline:
            kind = ev.get("kind") or ""
            # an alarm's message ("Alarm updated from OK to ALARM") does not name it: its resource does
            if kind.startswith("alarm") and ev.get("resource"):
                kind = f"{kind} {ev['resource']}"
            lines.append(f"- {_hhmm(ev.get('time'))} - {md_text(ev.get('source'))}: {md_text(kind)}: "
                         f"{md_text(str(ev.get('message'))[:160])}")
    else:
        lines.append(f"- {BLANK}")
    lines += ["- --:-- - Incident detected " + BLANK, "- --:-- - Mitigation deployed " + BLANK,
              "- --:-- - Service restored " + BLANK, "", "## Root Cause", "",
              "From the runbook entries the evidence supports (diagnosis in findings.json; confirm before "
              "publishing):", ""]
    lines += _root_cause(diag, findings)
    lines += ["## Impact", "",
              f"- Requests affected: {_fmt_int(failed) if failed is not None else BLANK}"
              + (f" of {_fmt_int(impact.get('requests'))} from the onset" + (" to the recovery" if ov.get("recovered") else
                                                                    " to the end of the window")
                 if impact.get("requests") else ""),
              f"- Users / tenants / organisations affected: {_affected(findings) or BLANK}",
              f"- Revenue impact: {BLANK}", "",
              "## What Went Well", "", f"- {BLANK}", "",
              "## What Went Wrong", "", f"- {BLANK}", "",
              "## Action Items", "", f"- [ ] {BLANK} - Owner: @name - Due: YYYY-MM-DD", "",
              "## Evidence", ""]
    for nb in notebooks:
        status = nb.get("status")
        link = f"[{nb['name']}](html/{nb['name']}.html)"
        lines.append(f"- {link} ({md_text(status)}) · executed notebook [notebooks/{nb['name']}.ipynb]"
                     f"(notebooks/{nb['name']}.ipynb)" + (f" · error: {md_text(nb.get('error'))}" if nb.get("error") else ""))
    files = sorted(data_files)
    if files:
        lines += ["", "Data pulled: " + ", ".join(f"[{f.split('/')[-1]}]({f})" for f in files)]
    unknown = {n: f.get("unknown") for n, f in findings.items() if f.get("unknown")}
    if unknown:
        lines += ["", "Unknown because a source failed: "
                  + "; ".join(f"{n}: {md_text(', '.join(map(str, keys)))}" for n, keys in unknown.items())]
    lines += ["", "Verify this record with `forensics verify <record>`; the manifest lists every file's SHA-256.", ""]
    return visible("\n".join(lines))


def _minutes_between(earlier: str | None, later: str | None) -> str:
    if not earlier or not later:
        return "some time"
    minutes = (pd.Timestamp(later) - pd.Timestamp(earlier)).total_seconds() / 60
    return f"{minutes:.0f} min"


def _affected(findings: dict) -> str | None:
    parts = []
    ai = findings.get("ai-cost", {})
    if ai.get("orgs_over_90pct"):
        parts.append(f"{len(ai['orgs_over_90pct'])} organisation(s) over 90% of AI budget")
    integ = findings.get("data-integrity", {})
    if integ.get("first_broken_event"):
        tenant = integ["first_broken_event"].get("tenant") if isinstance(integ["first_broken_event"], dict) else None
        parts.append(f"tenant {md_text(tenant)} audit chain broken" if tenant else "an audit chain is broken")
    return "; ".join(parts) or None
