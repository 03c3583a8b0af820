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

JMESPath is the language AWS engineers already write in ``aws ... --query``; it has no arithmetic, so
a few functions are added (:class:`_Functions`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
import jsonschema
import pandas as pd
import yaml
from jmespath import functions as jp_functions

from .errors import ParamsError

BUILTIN = Path(__file__).resolve().parent / "runbooks" / "entries.yaml"
#: Metrics come per minute: a cause stamped in the same minute as its effect still precedes it.
DEFAULT_SLACK_S = 60
_TEMPLATE = re.compile(r"\{\{\s*(.+?)\s*\}\}")

_EVIDENCE = {
    "type": "object", "additionalProperties": False, "required": ["says", "finding", "holds"],
    "properties": {
        "says": {"type": "string", "minLength": 1},
        "finding": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
        "holds": {"type": "string", "minLength": 1},
        "weight": {"type": "number", "minimum": 0},
        "required": {"type": "boolean"},
        "refutes": {"type": "boolean"},
    },
}
_SOURCE = {"type": "object", "additionalProperties": False, "required": ["runbook", "section"],
           "properties": {"runbook": {"type": "string", "minLength": 1}, "section": {"type": "string", "minLength": 1}}}
SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "symptoms": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["id", "label"],
            "properties": {"id": {"type": "string"}, "label": {"type": "string"}}}},
        "entries": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "explains", "cause", "for", "next_step", "source"],
            "properties": {
                "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
                "explains": {"type": "string"},
                "cause": {"type": "string", "minLength": 1},
                "chain": {"type": "array", "items": {"type": "string"}},
                "for": {"type": "array", "items": _EVIDENCE, "minItems": 1},
                "against": {"type": "array", "items": _EVIDENCE},
                "order": {"type": "object", "additionalProperties": False, "required": ["steps"],
                          "properties": {
                              "steps": {"type": "array", "minItems": 2, "items": {
                                  "type": "object", "additionalProperties": False, "required": ["step", "at"],
                                  "properties": {"step": {"type": "string"}, "at": {"type": "string"}}}},
                              "slack_s": {"type": "number", "minimum": 0},
                              "within_min": {"type": "number", "minimum": 0}}},
                "next_step": {"type": "string", "minLength": 1},
                "source": _SOURCE,
                "also": {"type": "array", "items": _SOURCE},
            }}},
    },
}


class _Functions(jp_functions.Functions):
    @jp_functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})
    def _func_ratio(self, a, b):
        return None if a is None or b in (None, 0) else a / b

    @jp_functions.signature({"types": ["string", "null"]}, {"types": ["string", "null"]})
    def _func_minutes(self, earlier, later):
        t1, t2 = _when(earlier), _when(later)
        return None if t1 is None or t2 is None else (t2 - t1).total_seconds() / 60

    @jp_functions.signature({"types": ["object", "null"]}, {"types": ["string"]})
    def _func_tally(self, counts, text):
        if counts is None:
            return None
        return sum(v for k, v in counts.items() if text in k and isinstance(v, (int, float)))

    @jp_functions.signature({"types": ["object", "null"]}, {"types": ["string"]})
    def _func_share(self, counts, text):
        if not counts:
            return None
        total = sum(v for v in counts.values() if isinstance(v, (int, float)))
        return None if not total else self._func_tally(counts, text) / total


_OPTIONS = jmespath.Options(custom_functions=_Functions())


def _when(value) -> pd.Timestamp | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _path(finding: str) -> str:
    """``db-connections.pool_errors`` -> ``"db-connections".pool_errors`` (JMESPath quotes the notebook)."""
    notebook, _, rest = finding.partition(".")
    return f'"{notebook}"' + (f".{rest}" if rest else "")


@dataclass
class Runbook:
    """The symptoms (most customer-facing first) and the entries, with the files they came from."""

    symptoms: list[dict]
    entries: list[dict]
    files: list[str] = field(default_factory=list)
    compiled: dict = field(default_factory=dict)

    def search(self, expr: str, data: dict):
        try:
            return self.compiled[expr].search(data, options=_OPTIONS)
        except jmespath.exceptions.JMESPathError:  # a finding of the wrong type: unknown
            return None


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(path, "no such runbook file") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(path, f"unreadable runbook file: {' '.join(str(exc).split())[:200]}") from None
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.absolute_path).lstrip(".")
        raise ParamsError(path, f"{where or 'file'}: {exc.message}") from None
    return data


def load(user_file: str | os.PathLike | None = None) -> Runbook:
    """The built-in entries plus a user's (``diagnosis.runbook_file``): a user entry with a built-in's
    id replaces it; new symptoms go after the built-in ones. A bad file: ParamsError naming it."""
    files = [BUILTIN] + ([Path(user_file)] if user_file else [])
    symptoms: dict[str, dict] = {}
    entries: dict[str, dict] = {}
    compiled: dict[str, Any] = {}
    for path in files:
        data = _read(path)
        for s in data.get("symptoms") or []:
            symptoms.setdefault(s["id"], s)
        for e in data.get("entries") or []:
            where = f"entry {e['id']}"
            if e["explains"] not in symptoms:
                raise ParamsError(path, f"{where}: explains unknown symptom {e['explains']!r} "
                                        f"(known: {', '.join(symptoms)})")
            exprs = [ev["holds"] for ev in e["for"] + e.get("against", [])]
            exprs += [s["at"] for s in (e.get("order") or {}).get("steps", [])]
            exprs += [_path(f) for ev in e["for"] + e.get("against", []) for f in _findings(ev)]
            exprs += _TEMPLATE.findall(e["next_step"])
            for expr in exprs:
                if expr not in compiled:
                    try:
                        compiled[expr] = jmespath.compile(expr)
                    except jmespath.exceptions.JMESPathError as exc:
                        raise ParamsError(path, f"{where}: bad expression {expr!r}: "
                                                f"{' '.join(str(exc).split())[:160]}") from None
            entries[e["id"]] = {**e, "_file": path.name}
    return Runbook(list(symptoms.values()), list(entries.values()), [str(p) for p in files], compiled)


def _findings(ev: dict) -> list[str]:
    f = ev["finding"]
    return [f] if isinstance(f, str) else list(f)


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
