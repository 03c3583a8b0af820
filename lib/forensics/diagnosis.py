"""Runbook-aware diagnosis: weigh the runbooks' causes against a record's findings.

The runbooks' symptom -> cause -> next step tables are data (``runbooks/entries.yaml``, plus a user's
file named by the environment's ``diagnosis.runbook_file``). Each entry is a hypothesis with evidence
for and against written as JMESPath predicates over findings.json, and a timing order (a cause must
precede its effect). :func:`diagnose` evaluates every entry and ranks them:

- a hypothesis *holds* when all its required evidence is there, nothing decisive refutes it, its
  timing is not violated and the evidence for outweighs the evidence against;
- the *primary* hypothesis is the best-supported one that holds for the most customer-facing symptom
  that has one (the symptoms' order in the file); others for the same symptom are *alternatives*;
  hypotheses that hold for other symptoms are *concurrent* incidents, never causes of the primary;
- evidence whose finding is missing is *unknown*: it neither supports nor refutes.

JMESPath is the language AWS engineers already write in ``aws ... --query``; loading the files (and the
few functions added to it) is :mod:`forensics.runbook`'s.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import ParamsError
from .runbook import (BUILTIN, DEFAULT_SLACK_S, SCHEMA, Runbook, _findings, _Functions, _path,  # noqa: F401
                      _TEMPLATE, _when, load)

def _evidence_item(rb: Runbook, ev: dict, findings: dict) -> dict:
    values = {f: rb.search(_path(f), findings) for f in _findings(ev)}
    notebook = _findings(ev)[0].split(".", 1)[0]
    return {"says": ev["says"], "finding": ", ".join(values),
            "value": next(iter(values.values())) if len(values) == 1 else values,
            "notebook": notebook, "html": f"html/{notebook}.html", "weight": ev.get("weight", 1)}


def _timing(rb: Runbook, order: dict | None, findings: dict) -> dict | None:
    if not order:
        return None
    slack = pd.Timedelta(seconds=order.get("slack_s", DEFAULT_SLACK_S))
    steps = [{"step": s["step"], "time": rb.search(s["at"], findings)} for s in order["steps"]]
    known = [(s, _when(s["time"])) for s in steps if _when(s["time"]) is not None]
    out = {"steps": steps, "holds": None, "says": ""}
    if len(known) < 2:
        out["says"] = "not enough of the steps have a time to check the order"
        return out
    for (a, ta), (b, tb) in zip(known, known[1:]):
        if ta > tb + slack:
            out["holds"] = False
            out["says"] = (f"{a['step']} ({a['time']}) comes after {b['step']} ({b['time']}): "
                           "a cause must precede its effect")
            return out
    span_min = (known[-1][1] - known[0][1]).total_seconds() / 60
    if order.get("within_min") is not None and span_min > order["within_min"]:
        out["holds"] = False
        out["says"] = (f"{known[0][0]['step']} and {known[-1][0]['step']} are {span_min:.0f} min apart "
                       f"(more than {order['within_min']:g})")
        return out
    out["holds"] = True
    out["says"] = " ≤ ".join(f"{s['step']} {t:%H:%M:%S}" for s, t in known)
    return out


def _next_step(rb: Runbook, text: str, findings: dict) -> str:
    def fill(m):
        value = rb.search(m.group(1), findings)
        return "(unknown)" if value is None else str(value)

    return " ".join(_TEMPLATE.sub(fill, text).split())


def evaluate(rb: Runbook, entry: dict, findings: dict) -> dict:
    """One hypothesis against the findings: its evidence for/against, unknowns, timing, verdict."""
    ev_for, ev_against, unknown, missing_required, refuted = [], [], [], [], []
    for ev in entry["for"]:
        result = rb.search(ev["holds"], findings)
        if result is None:
            unknown.append(_evidence_item(rb, ev, findings))
            if ev.get("required"):
                missing_required.append(ev["says"])
        elif result is True:
            ev_for.append(_evidence_item(rb, ev, findings))
        elif ev.get("required"):
            missing_required.append(ev["says"])
    for ev in entry.get("against", []):
        result = rb.search(ev["holds"], findings)
        if result is None:
            unknown.append(_evidence_item(rb, ev, findings))
        elif result is True:
            item = _evidence_item(rb, ev, findings)
            ev_against.append(item)
            if ev.get("refutes"):
                refuted.append(ev["says"])
    timing = _timing(rb, entry.get("order"), findings)
    if timing is not None and timing["holds"] is not None:
        item = {"says": timing["says"], "finding": "timing", "value": timing["steps"], "notebook": None,
                "html": None, "weight": 2}
        (ev_for if timing["holds"] else ev_against).append(item)
        if not timing["holds"]:
            refuted.append(timing["says"])
    score = sum(e["weight"] for e in ev_for) - sum(e["weight"] for e in ev_against)
    holds = not missing_required and not refuted and score > 0
    if holds:
        verdict = "holds"
    elif refuted:
        verdict = "refuted: " + "; ".join(refuted)
    elif missing_required:
        verdict = "not supported: no evidence that " + "; ".join(missing_required)
    else:
        verdict = "outweighed: the evidence against weighs at least as much as the evidence for"
    return {
        "id": entry["id"], "cause": " ".join(entry["cause"].split()), "explains": entry["explains"],
        "chain": entry.get("chain", []), "holds": holds, "verdict": verdict, "score": score,
        "evidence_for": ev_for, "evidence_against": ev_against, "unknown": unknown, "timing": timing,
        "next_step": _next_step(rb, entry["next_step"], findings),
        "source": {**entry["source"], "file": entry["_file"]}, "also": entry.get("also", []),
    }


def diagnose(findings: dict, runbook: Runbook | None = None) -> dict:
    """Every runbook entry evaluated against ``findings`` (findings.json: notebook -> findings), ranked.

    Returns ``{runbooks, primary, concurrent, symptoms, hypotheses}``; each hypothesis has ``rank`` and
    ``role`` (primary / alternative / concurrent / not holding) besides what :func:`evaluate` gives."""
    rb = runbook or load()
    data = {k: v for k, v in findings.items() if k != "diagnosis"}
    order = {s["id"]: i for i, s in enumerate(rb.symptoms)}
    labels = {s["id"]: s["label"] for s in rb.symptoms}
    results = [evaluate(rb, e, data) for e in rb.entries]
    results.sort(key=lambda h: (not h["holds"], order[h["explains"]], -h["score"]))
    holding = [h for h in results if h["holds"]]
    primary = holding[0] if holding else None
    best_per_symptom: dict[str, str] = {}
    for i, h in enumerate(results, 1):
        h["rank"] = i
        h["symptom"] = labels[h["explains"]]
        if not h["holds"]:
            h["role"] = "not holding"
        elif h is primary:
            h["role"] = "primary"
        elif h["explains"] == primary["explains"]:
            h["role"] = "alternative"
        elif h["explains"] in best_per_symptom:
            h["role"] = "alternative"
        else:
            h["role"] = "concurrent"
        if h["holds"]:
            best_per_symptom.setdefault(h["explains"], h["id"])
    return {
        "runbooks": [Path(f).name for f in rb.files],
        "primary": primary["id"] if primary else None,
        "concurrent": [h["id"] for h in results if h["role"] == "concurrent"],
        "symptoms": [{"id": s, "label": labels[s], "best": best_per_symptom.get(s)} for s in labels
                     if s in best_per_symptom],
        "hypotheses": results,
    }


def for_record(findings: dict, environment: dict) -> dict:
    """The diagnosis a record carries: built-in entries plus the environment's ``diagnosis.runbook_file``.
    A runbook file that cannot be read (gone since the run it is replayed from) is reported in the
    diagnosis, not raised: the notebooks' evidence is already written."""
    user_file = (environment.get("diagnosis") or {}).get("runbook_file")
    try:
        return diagnose(findings, load(user_file))
    except ParamsError as exc:
        return {"error": str(exc), "runbooks": [], "primary": None, "concurrent": [], "symptoms": [],
                "hypotheses": []}


def evidence_values(item: dict) -> list[tuple[str, object]]:
    """An evidence item's findings and their values, one pair per finding it reads."""
    if "," in item["finding"] and isinstance(item["value"], dict):
        return list(item["value"].items())
    return [(item["finding"], item["value"])]


def short(value, limit: int = 120) -> str:
    """A finding's value in one line, for a sentence or a table cell."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
