"""Scrub secrets from text before anything is written to a record.

A secret is replaced by ``[REDACTED:<kind>:<8 hex>]`` where the hex is a keyed hash of the secret:
the same secret gives the same marker everywhere in a record (and across records on one machine), so
it stays correlatable ("the key used at 09:03 is the one used at 11:40") without being readable.
The key comes from ``FORENSICS_REDACT_KEY`` if set, else a fixed project salt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Any

import pandas as pd

_KEY = os.environ.get("FORENSICS_REDACT_KEY", "forensics-notebooks/redact/v1").encode()

# (kind, regex, group holding the secret or 0 for the whole match). Order matters: specific first.
_PATTERNS: list[tuple[str, re.Pattern, int]] = [
    ("private-key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
                               re.S), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA|A3T[A-Z0-9])[A-Z0-9]{16}\b"), 0),
    ("aws-secret-key", re.compile(
        r"(?i)(?:aws_?secret_?access_?key|secret_?access_?key|aws_secret)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})"), 1),
    ("aws-session-token", re.compile(
        r"(?i)(?:aws_?session_?token|x-amz-security-token)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40,})"), 1),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), 0),
    ("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), 0),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), 0),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"), 0),
    ("stripe-key", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b"), 0),
    ("stripe-webhook-secret", re.compile(r"\bwhsec_[A-Za-z0-9]{16,}\b"), 0),
    ("anthropic-key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}\b"), 0),
    ("openai-key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}\b"), 0),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), 0),
    ("sendgrid-key", re.compile(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b"), 0),
    ("twilio-key", re.compile(r"\bSK[0-9a-fA-F]{32}\b"), 0),
    ("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), 0),
    ("pypi-token", re.compile(r"\bpypi-[A-Za-z0-9_-]{50,}\b"), 0),
    ("datadog-key", re.compile(r"(?i)\b(?:dd_api_key|dd_app_key|datadog_api_key)[\"']?\s*[:=]\s*[\"']?([a-f0-9]{32,40})"), 1),
    ("bearer-token", re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/=-]{16,})"), 1),
    ("basic-auth", re.compile(r"(?i)\bbasic\s+([A-Za-z0-9+/]{12,}={0,2})"), 1),
    ("url-password", re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:([^@\s/]+)@"), 1),
    ("dsn-password", re.compile(r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s'\",;&]+)"), 1),
    ("secret-pair", re.compile(
        r"(?i)\b(?:passw(?:or)?d|pwd|secret|client_secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|token|"
        r"refresh[_-]?token|private[_-]?key|signing[_-]?key|encryption[_-]?key)[\"']?\s*[:=]\s*"
        r"('(?:[^'\\]|\\.)+'|\"(?:[^\"\\]|\\.)+\"|[^\s'\",;&}]+)"), 1),
    ("sql-password", re.compile(r"(?i)\bpassword\s+('(?:[^']|'')*')"), 1),
]
_MARKER = re.compile(r"\[REDACTED:[a-z-]+:[0-9a-f]{8}\]")
#: Splits text into the parts between markers and the markers themselves (odd indices): a marker is
#: never matched again by a later pattern (its kind, e.g. "password:", would look like a secret).
_MARKER_SPLIT = re.compile(r"(\[REDACTED:[a-z-]+:[0-9a-f]{8}\])")
#: Values of a key=value pair that are not secrets: bind placeholders ($1, ?, %s, :name), masks, empty.
_PLACEHOLDER = re.compile(r"^(?:\$\d+|\?|%s|%\(\w+\)s|:\w+|\*+|x+|<[^>]*>|\{\{?[^}]*\}\}?|null|none|redacted|)$",
                          re.I)


def marker(kind: str, secret: str) -> str:
    digest = hmac.new(_KEY, secret.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:8]
    return f"[REDACTED:{kind}:{digest}]"


def text(value: str) -> str:
    """``value`` with every secret replaced by its marker."""
    if not isinstance(value, str) or not value:
        return value
    for kind, rx, group in _PATTERNS:
        parts = _MARKER_SPLIT.split(value)
        value = "".join(part if i % 2 else rx.sub(lambda m, k=kind, g=group: _replace(m, k, g), part)
                        for i, part in enumerate(parts))
    return value


def _replace(m: re.Match, kind: str, group: int) -> str:
    secret = m.group(group)
    if secret is None or _MARKER.fullmatch(secret.strip("'\"")) or secret.startswith("[REDACTED:"):
        return m.group(0)
    if group == 0:
        return marker(kind, secret)
    start, end = m.span(group)
    quote = secret[0] if len(secret) >= 2 and secret[0] in "'\"" and secret[-1] == secret[0] else ""
    if quote:  # keep the quotes; the marker hashes what is inside, as for an unquoted value
        secret, start, end = secret[1:-1], start + 1, end - 1
    if group and _PLACEHOLDER.match(secret):
        return m.group(0)
    s0 = m.start(0)
    whole = m.group(0)
    return whole[: start - s0] + marker(kind, secret) + whole[end - s0:]


def found(value: str) -> list[str]:
    """The kinds of secret seen in ``value`` (used to refuse secret-looking parameters)."""
    if not isinstance(value, str):
        return []
    return [kind for kind, rx, group in _PATTERNS
            if rx.search(value) and rx.sub(lambda m, k=kind, g=group: _replace(m, k, g), value) != value]


def obj(value: Any) -> Any:
    """Redact every string inside nested dicts/lists."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {k: obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [obj(v) for v in value]
    return value


def frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell (and text inside list cells) redacted."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            out[col] = s.map(lambda v: obj(v) if isinstance(v, (str, list, tuple, dict)) else v)
    out.attrs = dict(df.attrs)
    return out
