"""The runbooks' entries as data: the built-in file and a user's, checked and compiled when loaded.

``runbooks/entries.yaml`` (and the file named by the environment's ``diagnosis.runbook_file``) holds the
symptoms and, per entry, the evidence for and against as JMESPath predicates over findings.json
(:mod:`forensics.diagnosis` weighs them). Loading checks a file against :data:`SCHEMA`, compiles every
expression, and checks that each ``finding:`` names a finding a notebook of the catalogue writes
(:func:`forensics.notebooks.unknown_finding`): a typo is a one-line ParamsError naming the file and the
entry, never a hypothesis whose evidence is silently "unknown".

JMESPath has no arithmetic, so a few functions are added (:class:`_Functions`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastjsonschema
import jmespath
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

    @jp_functions.signature({"types": ["object", "null"]}, {"types": ["string"]})
    def _func_pick(self, obj, text):
        """The entries of ``obj`` whose key contains ``text`` (a queue's onset by the task's word)."""
        if obj is None:
            return None
        return {k: v for k, v in obj.items() if text.lower() in str(k).lower()}

    @jp_functions.signature({"types": ["string", "null"]})
    def _func_role(self, principal):
        return None if principal is None else fold_principal(principal)

    @jp_functions.signature({"types": ["array", "null"]}, {"types": ["array", "null"]})
    def _func_fold_principals(self, calls, principals):
        """``calls`` (records with ``principal`` and ``new_principal``) with every principal folded to its
        role (:func:`fold_principal`) and ``new_principal`` false when the folded principal is known: a
        known principal of ``principals`` (``new`` false) or of ``calls`` folds to it. A new session
        name of a known role is not a new principal."""
        if calls is None:
            return None
        known = {fold_principal(r.get("principal")) for r in principals or []
                 if isinstance(r, dict) and r.get("new") is False and r.get("principal")}
        known |= {fold_principal(r.get("principal")) for r in calls
                  if isinstance(r, dict) and r.get("new_principal") is False and r.get("principal")}
        out = []
        for r in calls:
            if not isinstance(r, dict):
                continue
            p = fold_principal(r.get("principal")) if r.get("principal") else r.get("principal")
            new = r.get("new_principal")
            out.append({**r, "principal": p, "new_principal": (new and p not in known) if new is not None else None})
        return out


_OPTIONS = jmespath.Options(custom_functions=_Functions())
_ASSUMED = re.compile(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$")


def fold_principal(principal) -> str:
    """An STS assumed-role session ARN (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``, as CloudTrail's
    userIdentity.arn gives it) -> its role, ``arn:aws:iam::ACCOUNT:role/ROLE``: each session has a new
    name, the identity that holds the permissions is the role. Anything else unchanged."""
    text = str(principal)
    m = _ASSUMED.match(text)
    return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}" if m else text


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
        _validate()(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise ParamsError(path, _schema_error(exc)) from None
    return data


_VALIDATE = None


def _validate():
    """SCHEMA compiled once (fastjsonschema, nbformat's own validator: milliseconds to load, where importing
    jsonschema can take seconds)."""
    global _VALIDATE
    if _VALIDATE is None:
        _VALIDATE = fastjsonschema.compile(SCHEMA)
    return _VALIDATE


def _schema_error(exc) -> str:
    """``entries[0].for[0].weight: 'heavy' is not of type 'number'``: where, then what, on one line; a value
    from the file is shown short."""
    where = exc.name.removeprefix("data").lstrip(".") or "file"
    shown = repr(exc.value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if exc.rule == "required" and isinstance(exc.value, dict):
        missing = [k for k in exc.definition.get("required", []) if k not in exc.value]
        what = f"{missing[0]!r} is a required property" if missing else exc.message
    elif exc.rule == "type":
        what = f"{shown} is not of type {exc.definition.get('type')!r}"
    elif exc.rule == "additionalProperties" and isinstance(exc.value, dict):
        extra = sorted(set(exc.value) - set(exc.definition.get("properties", {})))
        what = f"unknown field(s): {', '.join(map(repr, extra))}"
    elif exc.rule == "enum":
        what = f"{shown} is not one of {exc.definition.get('enum')!r}"
    else:
        what = exc.message.removeprefix(exc.name).strip()
    return f"{where}: {' '.join(what.split())}"


def load(user_file: str | os.PathLike | None = None) -> Runbook:
    """The built-in entries plus a user's (``diagnosis.runbook_file``): a user entry with a built-in's
    id replaces it; new symptoms go after the built-in ones. A bad file, or a ``finding:`` that no notebook
    writes: ParamsError naming it."""
    from . import notebooks

    from .resources import builtin_notebook_dir

    files = [BUILTIN] + ([Path(user_file)] if user_file else [])
    # The findings the notebooks in use write, and those of the shipped notebooks (the built-in entries name
    # them even when $FORENSICS_NOTEBOOK_DIR points at a folder of one's own).
    cat = notebooks.catalogue()
    if builtin_notebook_dir().is_dir() and builtin_notebook_dir().resolve() != Path(notebooks.NOTEBOOK_DIR).resolve():
        cat = {**notebooks.catalogue(builtin_notebook_dir()), **cat}
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
            for f in [f for ev in e["for"] + e.get("against", []) for f in _findings(ev)]:
                why = notebooks.unknown_finding(f, cat)
                if why:
                    raise ParamsError(path, f"{where}: finding {f!r}: {why}")
            entries[e["id"]] = {**e, "_file": path.name}
    return Runbook(list(symptoms.values()), list(entries.values()), [str(p) for p in files], compiled)


def _findings(ev: dict) -> list[str]:
    f = ev["finding"]
    return [f] if isinstance(f, str) else list(f)
