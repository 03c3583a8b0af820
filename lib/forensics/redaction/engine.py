"""Find secrets in one text: gates (one Aho-Corasick pass over the lowercased text) select the rules
that can match, each selected rule runs on the text between markers, the field-name rule last."""

from __future__ import annotations

import hmac
import os
import re

import ahocorasick

from . import keys, shape
from .rules import FIELD_GATE, FIELD_KEY, FIELD_TRIGGER, FIELD_VALUE, KEY_ID, RULES, UNLABELLED, VENDOR, Rule

_KEY = os.environ.get("FORENSICS_REDACT_KEY", "forensics-notebooks/redact/v1").encode()

MARKER = re.compile(r"\[REDACTED:[a-z0-9-]+:[0-9a-f]{8}\]")
#: Spans never scanned: markers (a marker is never redacted again) and base64 data URIs (embedded
#: figures: a 40-character run at the end of an image would otherwise look like an AWS secret key).
DATA_URI = r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]{16,}"
_PROTECTED = re.compile(r"(\[REDACTED:[a-z0-9-]+:[0-9a-f]{8}\]|" + DATA_URI + ")")
_FIELD_RULE = len(RULES)  # index of the field rule among the gates
_KEY_ID = RULES.index(KEY_ID)  # applied last, only beside a secret or alone (rules.KEY_ID)
_VENDOR = frozenset(range(len(VENDOR)))
_UNLABELLED = UNLABELLED[0]
#: Words one of which must stand in the 48 characters before an unlabelled 40-character AWS secret key
#: (``key=``, ``aws_secret...``, ``credentials:``) unless an access key id is in the same text: 40
#: base64 characters alone are as often a digest or a fingerprint.
#: A key id is "beside" a secret when the secret's marker is at most this many characters away (a key id
#: and its secret key or session token in one credentials block; not anywhere in a long JSON record).
_BESIDE = 200
_AWS_CONTEXT = ("secret", "key", "aws", "credential", "cred")


def digest(secret: str) -> str:
    """The 8 hex characters of ``secret``'s marker."""
    return hmac.digest(_KEY, secret.encode("utf-8", "replace"), "sha256").hex()[:8]


def marker(kind: str, secret: str) -> str:
    return f"[REDACTED:{kind}:{digest(secret)}]"


def _automaton() -> tuple[ahocorasick.Automaton, frozenset[int]]:
    gates: dict[str, set[int]] = {}
    always = set()
    for i, rule in enumerate(RULES):
        if not rule.gate:
            always.add(i)
        for word in rule.gate:
            gates.setdefault(word, set()).add(i)
    for word in FIELD_GATE:
        gates.setdefault(word, set()).add(_FIELD_RULE)
    auto = ahocorasick.Automaton()
    for word, idx in gates.items():
        auto.add_word(word, frozenset(idx))
    auto.make_automaton()
    return auto, frozenset(always)


_GATES, _ALWAYS = _automaton()


def _prefilters() -> tuple[str, ...]:
    """RE2 patterns (case-insensitive) whose union flags every text a rule could change. Two patterns,
    not one: the field trigger joined to the rest makes RE2's DFA several times slower than the two
    run one after the other (measured in tests/bench/test_bench_redact.py)."""
    literals = [re.escape(w) for rule in RULES if not rule.trigger for w in rule.gate]
    triggers = [rule.trigger for rule in RULES if rule.trigger and rule.gate]
    ungated = [rule.trigger for rule in RULES if not rule.gate]
    return ("(?i)(?:" + "|".join(literals + triggers + ungated) + ")", "(?i)(?:" + FIELD_TRIGGER + ")")


#: The vectorised prefilter: a text none of these match is left unchanged by ``detect``.
#: tests/trust/test_redact.py checks that on the corpus and on real log lines.
PREFILTERS = _prefilters()
PREFILTER = "|".join(PREFILTERS)  # one pattern, for tools that take one (slower in RE2)


def flag(texts):
    """Boolean mask of the texts (a sequence of str) that may hold a secret, vectorised through pyarrow's
    RE2 kernels."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(texts, type=pa.large_string())
    hit = None
    for pattern in PREFILTERS:
        m = pc.match_substring_regex(arr, pattern)
        hit = m if hit is None else pc.or_(hit, m)
    return np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), bool)


def active_rules(low: str) -> list[int]:
    hit = set(_ALWAYS)
    for _, idx in _GATES.iter(low):
        hit |= idx
    return sorted(hit)


def detect(value: str, found: list[tuple[str, str]] | None = None) -> str:
    """``value`` with every detected secret replaced by its marker; (kind, secret) pairs appended to
    ``found``. Markers and data URIs already in ``value`` are cut out once, not once per rule, and the
    rules are gated on the text between them (a gate word is part of its rule's match). Access key ids
    last, over the whole text: masked where a secret's marker is near them (new or already there)."""
    hits: list[tuple[str, str]] = []
    if "[REDACTED:" not in value and ";base64," not in value:
        value = _detect_part(value, hits)
    else:
        parts = _PROTECTED.split(value)
        value = "".join(part if i % 2 else _detect_part(part, hits) for i, part in enumerate(parts))
    if any(p in value for p in _KEY_ID_PREFIXES):
        value = _key_ids(value, hits)
    if found is not None:
        found.extend(hits)
    return value


_KEY_ID_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA", "A3T")


def _key_ids(value: str, hits) -> str:
    """Mask the access key ids of ``value`` that are alone (the whole text) or within ``_BESIDE`` characters
    of a secret's marker; keep the others (rules.KEY_ID)."""
    alone = bool(KEY_ID.rx.fullmatch(value.strip().strip("\"'")))
    near = [m.span() for m in MARKER.finditer(value) if not m.group(0).startswith("[REDACTED:aws-access-key-id:")]
    if not alone and not near:
        return value

    protected = [m.span() for m in _PROTECTED.finditer(value)] if ";base64," in value else []
    out, pos = [], 0
    for m in KEY_ID.rx.finditer(value):
        if any(a <= m.start() < b for a, b in protected):
            continue
        if alone or any(a - _BESIDE <= m.end() and m.start() <= b + _BESIDE for a, b in near):
            out += [value[pos:m.start()], _replace(m, KEY_ID, hits, True)]
            pos = m.end()
    return "".join(out) + value[pos:] if out else value


#: A text at least this long (an HTML page, a notebook) first checks each selected rule's RE2 trigger on
#: the whole text: a rule whose trigger is absent cannot match, and RE2 finds that out far faster than the
#: rule's own Python pattern scanning the text.
BIG_TEXT = 16_384


def _triggered(value: str, rules: list[int]) -> list[int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array([value], type=pa.large_string())
    keep = []
    for i in rules:
        trigger = FIELD_TRIGGER if i == _FIELD_RULE else RULES[i].trigger
        if not trigger or pc.match_substring_regex(arr, "(?i)(?:" + trigger + ")")[0].as_py():
            keep.append(i)
    return keep


def _detect_part(value: str, hits) -> str:
    """Every rule but the key-id rule (``detect`` applies it last, over the whole text)."""
    rules = active_rules(value.lower())
    if len(value) >= BIG_TEXT:
        rules = _triggered(value, rules)
    for i in rules:
        if i == _FIELD_RULE:
            value = _apply(value, lambda part: _fields(part, hits))
        elif i != _KEY_ID:
            rule = RULES[i]
            vendor = i in _VENDOR
            value = _apply(value, lambda part, r=rule, v=vendor: r.rx.sub(lambda m: _replace(m, r, hits, v), part))
    return value


def _apply(value: str, fn) -> str:
    if "[REDACTED:" not in value and ";base64," not in value:
        return fn(value)
    parts = _PROTECTED.split(value)
    return "".join(part if i % 2 else fn(part) for i, part in enumerate(parts))


def _unquote(raw: str) -> tuple[str, bool]:
    if len(raw) >= 2 and raw[0] in "'\"`" and raw[-1] == raw[0]:
        return raw[1:-1], True
    return raw, False


def _replace(m: re.Match, rule: Rule, found, vendor: bool = False) -> str:
    secret = m.group(rule.group)
    if not secret or secret.startswith("[REDACTED:"):
        return m.group(0)
    start, end = m.span(rule.group)
    if vendor and (shape.low_entropy(secret) or (rule is not KEY_ID and shape.is_placeholder(secret))):
        return m.group(0)  # ghp_xxxx..., AKIA0000..., sk_live_0000...: the vendor's shape, no secret in it
    if rule is _UNLABELLED and not (any(w in m.string[max(0, start - 48):start].lower() for w in _AWS_CONTEXT)
                                    or KEY_ID.rx.search(m.string)):
        return m.group(0)
    if rule.group:
        inner, quoted = _unquote(secret)
        if quoted:  # keep the quotes; the marker hashes what is inside
            secret, start, end = inner, start + 1, end - 1
        if not secret or shape.is_placeholder(secret) or MARKER.fullmatch(secret):
            return m.group(0)
    if rule.check is not None and not rule.check(secret):
        return m.group(0)
    if rule.group == 2 and m.group(1) == secret:  # guest:guest@ - a default login, not a secret
        return m.group(0)
    if found is not None:
        found.append((rule.kind, secret))
    s0, whole = m.start(0), m.group(0)
    return whole[: start - s0] + marker(rule.kind, secret) + whole[end - s0:]


_GROUP0 = {}
for _rule in RULES:
    if _rule.group == 0:
        _GROUP0.setdefault(_rule.kind, []).append(_rule)


def plausible(kind: str, token: str) -> bool:
    """Could ``token`` alone be a secret of ``kind``? The final pass's check on a token whose keyed hash
    shares a marker's 32-bit digest: a chance match (about tokens x markers / 2^32 per record) must also
    have the shape of the kind it would be masked as. A token format (``github-token``, ``aws-secret-key``
    ...) must match its rule whole; any other kind must look generated, not be an identifier."""
    if kind == "aws-access-key-id":
        return False
    rules = _GROUP0.get(kind)
    if rules and kind not in ("private-key", "slack-webhook", "webhook-url"):
        return any(r.rx.fullmatch(token) and (r.check is None or r.check(token)) and not shape.low_entropy(token)
                   for r in rules)
    return not shape.is_identifier(token) and not shape.is_timestamp(token)


def field_secret(key: str, raw: str, op: str, key_quoted: bool, after: str, colon_before: bool = False) -> str | None:
    """The secret held by ``key op raw``, or None when the name or the value says it is none."""
    strength = keys.strength(key)
    if strength is None or (op == ":" and colon_before):
        return None  # arn:aws:secretsmanager:...:secret:prod/db is a path of names, not a field
    value, quoted = _unquote(raw)
    if not quoted and (after[:1] in ("(", "[") or raw.endswith(".")):
        return None  # code: a call or an index (os.environ["X"], get_token())
    if op == "," and not (key_quoted and quoted):
        return None
    if op == ":" and not quoted and not key_quoted and raw.startswith("//"):
        return None
    value = value.strip()
    if not value or value.startswith("[REDACTED:") or shape.is_placeholder(value) or shape.is_reference(value, quoted):
        return None
    if strength == "password":
        return value if len(value) >= 3 and value.lower() != key.strip("\"'`-").lower() else None
    if shape.is_identifier(value):
        return None  # an ARN, an AWS resource id, an object key or path, words: evidence, not a credential
    if strength == "secret":
        if len(value) < 8 or (value.isdigit() and len(value) < 12) or shape.entropy(value) < 2.5 \
                or shape.is_timestamp(value):
            return None
        return None if (not quoted and value.isalpha() and value.islower()) else value
    if any(c.isspace() for c in value):
        return None  # a weak name ("signature", "key") before a sentence: words, not a token
    if shape.is_object_key(value):
        return None  # {"key": "AWSLogs/.../x_20261123T0905Z_aB3x.json.gz"}: names an object; judged by content
    return value if shape.secret_shaped(value, 8, 3.0) else None


def _fields(text: str, found) -> str:
    """Apply the field rule: each ``name op`` is judged in turn; a value that is not a secret is scanned
    again for fields of its own (``reload: secret: X``)."""
    out, pos, copied = [], 0, 0
    while True:
        m = FIELD_KEY.search(text, pos)
        if m is None:
            break
        v = FIELD_VALUE.match(text, m.end())
        if v is None:
            pos = m.end()
            continue
        raw = v.group(0)
        if m.group("op") == "," and (m.start() == 0 or text[m.start() - 1] not in "\"'"
                                     or text[v.end():v.end() + 3].lstrip()[:1] == ":"):
            pos = m.end()  # JSON: "a value", "next key": ... ; a "k", "v" pair is a whole quoted name, then a value
            continue
        secret = field_secret(m.group("key"), raw, m.group("op"), bool(m.group("kq")), text[v.end():v.end() + 1],
                              m.start() > 0 and text[m.start() - 1] == ":")
        if secret is None:
            pos = m.end()
            continue
        if found is not None:
            found.append(("secret-pair", secret))
        start = v.start() + raw.index(secret)
        out.append(text[copied:start])
        out.append(marker("secret-pair", secret))
        copied = pos = start + len(secret)
    if not out:
        return text
    out.append(text[copied:])
    return "".join(out)
