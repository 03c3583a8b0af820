"""Sigma rules over the trail frame: SigmaHQ's AWS CloudTrail rules (shipped) plus a user's own folder.

Rules are parsed by pySigma (the reference parser: modifiers, wildcards and conditions are applied by it);
the parsed condition tree is then evaluated here over a pandas frame, one vectorised mask per leaf.

Why not a SQL backend (pySigma's DuckDB backend): measured on a real trail (docs/security-detection.md)
it needs pySigma < 2, compares values case-sensitively (Sigma values are case-insensitive, so
``MFAUsed: 'NO'`` misses AWS's ``"No"``), fails a whole query when a rule names a field no record of the
batch has (``additionalEventData.MFAUsed`` in a trail without console logins), and a literal ``%`` or ``_``
becomes a LIKE wildcard. The evaluator here reads Sigma's semantics directly:

- string values match **case-insensitively** (``|cased`` is honoured), wildcards ``*``/``?`` are
  Sigma's, never SQL's;
- a field a record does not have is *no match* (``|exists: false`` and ``null`` match it);
- a list-valued field matches when any of its elements does;
- a keyword (field-less value) is searched in the whole record.

A rule the evaluator cannot read (an unknown modifier type) is skipped and listed in ``skipped``
with its reason: never silently.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import ForensicsError

#: The shipped rules (SigmaHQ, Detection Rule License 1.1: see rules/sigmahq/LICENSE.md and UPSTREAM.md)
SIGMAHQ_DIR = Path(__file__).resolve().parent / "rules" / "sigmahq"

#: Sigma field name -> frame column, where the frame has the field as its own column.
FRAME_FIELDS = {"eventName": "event_name", "eventSource": "event_source", "sourceIPAddress": "source_ip",
                "userAgent": "user_agent", "errorCode": "error_code", "awsRegion": "aws_region",
                "eventID": "event_id", "userIdentity.arn": "principal", "userIdentity.type": "principal_type",
                "eventType": "event_type", "eventCategory": "event_category"}

LEVELS = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
HIT_COLUMNS = ["row", "rule_id", "title", "level", "tags", "source"]


@dataclass
class Rule:
    """One parsed rule: what a hit names, and pySigma's rule object for its condition tree."""

    id: str
    title: str
    level: str
    tags: list[str]
    source: str          # "sigmahq" or the user's folder
    path: str
    sigma: object = field(repr=False)

    @property
    def attack(self) -> list[str]:
        """ATT&CK tags (``attack.t1078.004``, ``attack.persistence``)."""
        return [t for t in self.tags if t.startswith("attack.")]


@dataclass
class RuleSet:
    rules: list[Rule]
    skipped: list[dict]  # {"path", "reason"}


def _is_cloudtrail(rule) -> bool:
    ls = rule.logsource
    return (ls.product or "").lower() == "aws" and (ls.service or "").lower() in ("cloudtrail", "")


def load_rules(folder: Path | str = SIGMAHQ_DIR, source: str = "sigmahq") -> RuleSet:
    """Every ``*.yml``/``*.yaml`` of ``folder`` (recursively) that is an AWS CloudTrail rule (cached by
    folder and the files' modification times).

    A file that is not a Sigma rule is skipped with its reason; a folder that does not exist is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"rules folder {folder} does not exist or is not a folder")
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()))
    return _load_rules(str(folder), source, stamp)


try:
    from yaml import CSafeLoader as _YAML_LOADER
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _YAML_LOADER


@functools.lru_cache(maxsize=8)
def _load_rules(folder: str, source: str, stamp: tuple) -> RuleSet:
    """Every ``*.yml``/``*.yaml`` of ``folder`` (recursively) that is an AWS CloudTrail rule.

    A file that is not a Sigma rule is skipped with its reason; a folder that does not exist is an error."""
    from sigma.collection import SigmaCollection
    import yaml
    from sigma.exceptions import SigmaError

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"rules folder {folder} does not exist or is not a folder")
    rules, skipped = [], []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()):
        try:
            # SigmaCollection.from_yaml with libyaml's parser where PyYAML has it (about 8x faster; same documents)
            coll = SigmaCollection.from_dicts(list(yaml.load_all(path.read_text(), Loader=_YAML_LOADER)),
                                              collect_errors=True)
        except (SigmaError, ValueError, UnicodeDecodeError, yaml.YAMLError) as exc:
            skipped.append({"path": str(path), "reason": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        for err in getattr(coll, "errors", None) or []:
            skipped.append({"path": str(path), "reason": str(err)[:300]})
        for rule in coll.rules:
            if getattr(rule, "errors", None):
                skipped.append({"path": str(path), "reason": "; ".join(map(str, rule.errors))[:300]})
                continue
            if not _is_cloudtrail(rule):
                continue
            try:
                rule.detection.parsed_condition[0].parsed  # noqa: B018 - parse now: errors surface at load
            except SigmaError as exc:
                skipped.append({"path": str(path), "reason": str(exc)[:300]})
                continue
            rules.append(Rule(id=str(rule.id or path.stem), title=str(rule.title or path.stem),
                              level=str(getattr(rule.level, "name", rule.level) or "medium").lower(),
                              tags=[f"{t.namespace}.{t.name}" for t in rule.tags or []], source=source,
                              path=str(path), sigma=rule))
    return RuleSet(rules, skipped)


def rules_for(env_cloudtrail: dict | None, env_dir: Path | str | None = None) -> RuleSet:
    """The shipped rules plus the environment's own folder (``cloudtrail: {rules_dir: ...}``, relative to
    the environment file's folder ``env_dir``)."""
    shipped = load_rules()
    folder = (env_cloudtrail or {}).get("rules_dir")
    if not folder:
        return shipped
    path = Path(folder)
    if not path.is_absolute() and env_dir is not None:
        path = Path(env_dir) / path
    own = load_rules(path, source=f"own:{folder}")
    return RuleSet(shipped.rules + own.rules, shipped.skipped + own.skipped)


# ---- the record view: Sigma field -> Series ----------------------------------------------------------------
class RecordView:
    """Field values of a trail frame by Sigma field name, computed once per field.

    Frame columns serve the fields they hold; every other field is read from ``detail`` (the record's
    JSON as delivered). A missing field is ``None``."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self._cache: dict[str, pd.Series] = {}
        self._records: list[dict] | None = None

    @property
    def records(self) -> list[dict]:
        if self._records is None:
            col = self.frame["detail"] if "detail" in self.frame.columns else pd.Series(None, index=self.frame.index)
            out = []
            for text in col.tolist():
                try:
                    rec = json.loads(text) if isinstance(text, str) and text else {}
                except ValueError:
                    rec = {}
                out.append(rec if isinstance(rec, dict) else {})
            self._records = out
        return self._records

    def field(self, name: str) -> pd.Series:
        if name not in self._cache:
            col = FRAME_FIELDS.get(name)
            if col and col in self.frame.columns:
                s = self.frame[col].astype("object")
                s = s.where(s.notna(), None)
            else:
                s = pd.Series([_walk(r, name) for r in self.records], index=self.frame.index, dtype="object")
            self._cache[name] = s
        return self._cache[name]

    def texts(self, name: str) -> tuple[pd.Series, bool]:
        """A field's values as text (``None`` when missing) and whether any value is a list."""
        key = "_texts:" + name
        if key not in self._cache:
            values = self.field(name).tolist()
            has_list = any(isinstance(v, list) for v in values)
            self._cache[key] = pd.Series([_as_text(v) for v in values], index=self.frame.index, dtype="string")
            self._cache["_haslist:" + name] = has_list
        return self._cache[key], bool(self._cache["_haslist:" + name])

    def text(self) -> pd.Series:
        """The whole record as text (for keyword values)."""
        if "_text" not in self._cache:
            if "detail" in self.frame.columns:
                s = self.frame["detail"].astype("object").fillna("")
            else:
                s = self.frame.astype(str).agg(" ".join, axis=1)
            self._cache["_text"] = s
        return self._cache["_text"]


def _walk(record: dict, dotted: str):
    node = record
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _as_text(v) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _match_scalars(series: pd.Series, test) -> pd.Series:
    """``test(text) -> bool`` over each value; list values match when any element does."""
    def one(v):
        if isinstance(v, list):
            return any(test(_as_text(x)) for x in v if x is not None) or test(_as_text(v))
        t = _as_text(v)
        return t is not None and test(t)
    return series.map(one).astype(bool)


def _match_text(view: "RecordView", name: str, rx: re.Pattern, full: bool) -> pd.Series:
    """A regex over a field's text, vectorised; list-valued fields fall back to any-element matching."""
    texts, has_list = view.texts(name)
    if has_list:
        f = rx.fullmatch if full else rx.search
        return _match_scalars(view.field(name), lambda t: t is not None and f(t) is not None)
    if full:
        out = texts.str.fullmatch(rx.pattern, flags=rx.flags & ~re.UNICODE)
    else:
        out = texts.str.contains(rx.pattern, flags=rx.flags & ~re.UNICODE, regex=True)
    return out.fillna(False).astype(bool)


class Unsupported(ForensicsError):
    """A value type the evaluator does not read: the rule is skipped with this reason."""


def _string_regex(value) -> re.Pattern:
    from sigma.types import SigmaCasedString

    regex = value.convert(escape_char="\\", wildcard_multi=".*", wildcard_single=".",
                          add_escaped=".*+?^$[](){}\\|")
    flags = re.DOTALL if isinstance(value, SigmaCasedString) else re.IGNORECASE | re.DOTALL
    return re.compile(regex, flags)


def _leaf(view: RecordView, name: str | None, value) -> pd.Series:
    from sigma import types as st

    idx = view.frame.index
    if name is None:  # keyword: anywhere in the record
        if isinstance(value, st.SigmaString):
            rx = _string_regex(value)
            body = rx.pattern
            body = body[2:] if body.startswith(".*") else body
            body = body[:-2] if body.endswith(".*") else body
            inner = re.compile(body, rx.flags)
            return view.text().map(lambda t: bool(inner.search(t))).astype(bool)
        raise Unsupported(f"keyword value of type {type(value).__name__}")
    s = view.field(name)
    if isinstance(value, st.SigmaExpansion):
        out = pd.Series(False, index=idx)
        for v in value.values:
            out |= _leaf(view, name, v)
        return out
    if isinstance(value, st.SigmaExists):
        present = s.map(lambda v: v is not None).astype(bool)
        return present if value.exists else ~present
    if isinstance(value, st.SigmaNull):
        return s.map(lambda v: v is None).astype(bool)
    if isinstance(value, st.SigmaString):
        return _match_text(view, name, _string_regex(value), full=True)
    if isinstance(value, st.SigmaRegularExpression):
        flags = 0
        for f in value.flags:
            flags |= st.SigmaRegularExpression.sigma_to_python_flags[f]
        rx = re.compile(value.regexp.original if hasattr(value.regexp, "original") else str(value.regexp), flags)
        return _match_text(view, name, rx, full=False)
    if isinstance(value, st.SigmaBool):
        want = "true" if value.boolean else "false"
        return _match_scalars(s, lambda t: t is not None and t.lower() == want)
    if isinstance(value, st.SigmaNumber):
        want = value.number
        def num(t):
            try:
                return float(t) == float(want)
            except (TypeError, ValueError):
                return False
        return _match_scalars(s, num)
    if isinstance(value, st.SigmaCompareExpression):
        ops = {"LT": float.__lt__, "LTE": float.__le__, "GT": float.__gt__, "GTE": float.__ge__,
               "NEQ": float.__ne__}
        op, n = ops[value.op.name], float(value.number.number)
        def cmp(t):
            try:
                return op(float(t), n)
            except (TypeError, ValueError):
                return False
        return _match_scalars(s, cmp)
    if isinstance(value, st.SigmaCIDRExpression):
        net = value.network
        def inside(t):
            try:
                a = ipaddress.ip_address(t)
            except ValueError:
                return False
            return a.version == net.version and a in net
        return _match_scalars(s, inside)
    if isinstance(value, st.SigmaFieldReference):
        other = view.field(value.field)
        a, b = [_as_text(v) for v in s.tolist()], [_as_text(v) for v in other.tolist()]
        if value.starts_with:
            return pd.Series([x is not None and y is not None and x.lower().startswith(y.lower())
                              for x, y in zip(a, b)], index=idx)
        if value.ends_with:
            return pd.Series([x is not None and y is not None and x.lower().endswith(y.lower())
                              for x, y in zip(a, b)], index=idx)
        return pd.Series([x is not None and y is not None and x.lower() == y.lower() for x, y in zip(a, b)],
                         index=idx)
    raise Unsupported(f"value of type {type(value).__name__} on {name}")


def _eval(view: RecordView, node) -> pd.Series:
    from sigma import conditions as c

    if isinstance(node, c.ConditionAND):
        out = pd.Series(True, index=view.frame.index)
        for a in node.args:
            out &= _eval(view, a)
        return out
    if isinstance(node, c.ConditionOR):
        out = pd.Series(False, index=view.frame.index)
        for a in node.args:
            out |= _eval(view, a)
        return out
    if isinstance(node, c.ConditionNOT):
        return ~_eval(view, node.args[0])
    if isinstance(node, c.ConditionFieldEqualsValueExpression):
        return _leaf(view, node.field, node.value)
    if isinstance(node, c.ConditionValueExpression):
        return _leaf(view, None, node.value)
    raise Unsupported(f"condition node {type(node).__name__}")


def evaluate(frame: pd.DataFrame, ruleset: RuleSet) -> tuple[pd.DataFrame, list[dict]]:
    """Hits of every rule over ``frame``: one row per (record, rule) with the frame's index as ``row``.

    Returns ``(hits, skipped)``: rules the evaluator could not read are listed, not dropped silently."""
    if frame is None or not len(frame):
        return pd.DataFrame(columns=HIT_COLUMNS), list(ruleset.skipped)
    view = RecordView(frame)
    parts, skipped = [], list(ruleset.skipped)
    for rule in ruleset.rules:
        try:
            mask = pd.Series(False, index=frame.index)
            for cond in rule.sigma.detection.parsed_condition:
                mask |= _eval(view, cond.parsed)
        except Unsupported as exc:
            skipped.append({"path": rule.path, "reason": str(exc)})
            continue
        rows = frame.index[mask.to_numpy(dtype=bool)]
        if len(rows):
            parts.append(pd.DataFrame({"row": rows, "rule_id": rule.id, "title": rule.title, "level": rule.level,
                                       "tags": [rule.attack] * len(rows), "source": rule.source}))
    hits = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=HIT_COLUMNS)
    return hits, skipped
