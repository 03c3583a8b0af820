"""Is a value secret-shaped? Character classes, Shannon entropy and the placeholder/reference lists.

Thresholds (settled on the DEV split of tests/trust/leak_corpus.py, never on its held-out split):
- Shannon entropy H = -sum(p_c * log2 p_c) over the characters of the value. 40 random base64
  characters score about 4.6-4.9 bits; an English word 2.5-3.2; a lowercase hex digest <= 4.0.
- A *password* field (``password=``, ``DB_PASS:``) is secret whatever its shape, unless it is a
  placeholder or a reference to something else (``$1``, ``${DB_PASSWORD}``, ``os.environ[...]``).
- A *token/secret* field needs 8+ characters that are not plain lowercase words.
- A *weak* field (``key``, ``auth``, ``sig``, a vendor's name) needs a secret shape: 8+ characters,
  two or more character classes, not an identifier-like word chain, entropy >= 3.0.
"""

from __future__ import annotations

import math
import re
from collections import Counter

#: Values that stand for a secret without being one (documentation, templates, masks, bind markers).
#: AWS's documented example keys (AKIAIOSFODNN7EXAMPLE, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY) end in
#: EXAMPLE/EXAMPLEKEY and are treated as placeholders: kept, everywhere, by every rule.
PLACEHOLDER = re.compile(
    r"""^(?:\$\d+|\$\{\d+\}|\?+|%s|%\(\w+\)s|%[A-Za-z_]\w*%|@\w+@|:[A-Za-z_]\w*|\{\d{0,2}\}
    |[*.#x•-]+|x+|X+|0+|<[^>]*>|\[[^\]]*\]|\(?null\)?|nil|none|None|undefined|true|false|yes|no|on|off
    |empty|unset|unknown|n/?a|redacted|hidden|masked|secret|password|passwd|token|string|value|key
    |change_?me|change_?it|changeme\d*|placeholder|example|dummy|sample|fake|test|testing|todo|tbd)$""",
    re.I | re.X)
#: Substrings that mark a value as an example or an instruction, not a credential.
PLACEHOLDER_PART = re.compile(
    r"(?i)your[_-]?|<[a-z_ -]+>|xxxx|\*{3}|example|placeholder|changeme|change[_-]me|dummy|_here\b|"
    r"replace[_-]?(?:me|with)|insert[_-]|redacted|\[REDACTED|fake[_-]|sample[_-]|\.\.\.|…"
    r"|hidden_due_to_security_reasons")  # what CloudTrail writes in place of a password it withholds
#: References to a value held elsewhere: shell/CI/template variables, environment and config lookups.
REFERENCE = re.compile(
    r"""^(?:\$[A-Za-z_]\w*|\$\{[^}]*\}|\$\{\{[^}]*\}\}|\{\{[^}]*\}\}|\{\{-?[^}]*|\{%[^%]*%\}|%\{[^}]*\}
    |#\{[^}]*\}|\$\([^)]*\)|@Value\(.*|[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+(?:\(\))?|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+
    |(?:os\.environ|os\.getenv|getenv|process\.env|System\.getenv|ENV|env|secrets|vars|settings|config)\b.*
    |!Ref\b.*|!Sub\b.*|!GetAtt\b.*|arn:aws[\w-]*:.*|vault:.*|ssm:.*|secretsmanager:.*|file:.*
    |(?:/(?:[a-z0-9_.-]+|[A-Z][a-z0-9]*))+/?)$""",
    re.X)
#: Type names in annotations (``password: str``, ``apiKey: string;``), not values.
TYPE_NAMES = frozenset(
    "str string String int Integer bool boolean Boolean bytes Optional SecretStr SecretBytes Any any None "
    "number char object dict list Text text varchar Password Secret Token".split())
#: Plain lowercase word chains (``created_at``, ``user:42:profile`` has digits so is not one).
_WORDY = re.compile(r"^[a-z]+(?:[_.:/ -][a-z]+)*$")
#: Structured identifiers: segments that are each all letters or all digits (``user:42:profile``,
#: ``exports/2026/11/23/orders.csv``); a random secret mixes letters and digits inside a segment.
_STRUCTURED = re.compile(r"^(?:[A-Za-z]+|[0-9]+)(?:[_.:/@-]+(?:[A-Za-z]+|[0-9]+))+$")
_IDENT_LIKE = re.compile(r"^[A-Za-z][a-z]*(?:[A-Z][a-z]+)*(?:[_.:/-][A-Za-z][a-z0-9]*)*$")
_SEQ = "abcdefghijklmnopqrstuvwxyz0123456789"
#: ISO 8601 dates and times (``2026-11-26T03:04:00Z``): evidence on every line of a record, never a credential.
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$")


#: An object key or file path: two or more ``/``-separated segments, the last with a file extension
#: (``AWSLogs/1234/CloudTrail/eu-west-1/2026/11/23/1234_CloudTrail_..._aB3x.json.gz``). Random parts in
#: its file name do not make it a secret: it names the object (an unreadable file must stay findable).
_OBJECT_KEY = re.compile(r"^(?:s3://)?[^\s/]+(?:/[^\s/]+){2,}\.[A-Za-z][A-Za-z0-9]{0,5}(?:\.[A-Za-z0-9]{1,4})?$")


def is_object_key(value: str) -> bool:
    return bool(_OBJECT_KEY.match(value.strip()))


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def classes(value: str) -> int:
    """How many of: lowercase, uppercase, digits, other symbols."""
    return (any(c.islower() for c in value) + any(c.isupper() for c in value)
            + any(c.isdigit() for c in value) + any(not c.isalnum() for c in value))


def is_placeholder(value: str) -> bool:
    v = value.strip()
    if not v or PLACEHOLDER.match(v) or PLACEHOLDER_PART.search(v) or v.upper().endswith(("EXAMPLE", "EXAMPLEKEY")):
        return True
    if "<*>" in v:  # a log template (forensics.analysis.signatures): its variables are already masked
        return True
    if len(set(v.lower())) <= 2:  # aaaa, 0000, abab
        return True
    low = v.lower()
    return len(v) >= 6 and (low in _SEQ or low in _SEQ[::-1])  # abcdefgh, 123456


def is_sequence(value: str) -> bool:
    """Mostly runs of consecutive characters (``1234567890abcdef``, ``abcdefghijkl``): a placeholder."""
    v = value.lower()
    if len(v) < 8:
        return False
    steps = sum(ord(b) - ord(a) == 1 for a, b in zip(v, v[1:]))
    return steps >= 0.75 * (len(v) - 1)


def low_entropy(value: str) -> bool:
    """Too regular to be a generated secret: few distinct characters, a sequence, or under 3.0 bits per
    character over 12+ characters (random tokens of the shortest vendor alphabets score 3.3+)."""
    v = value.strip()
    if len(v) < 8:
        return False
    return len(set(v)) <= 4 or is_sequence(v) or (len(v) >= 12 and entropy(v) < 3.0)


#: AWS resource ids (``i-0abc...``, ``sg-...``, ``vpc-...``) and ARNs: what a responder looks for.
_AWS_RESOURCE = re.compile(r"^(?:arn:aws[\w-]*:.*|(?:i|sg|vpc|subnet|vol|snap|ami|eni|igw|nat|rtb|acl|eipalloc|lt|tgw|"
                           r"pcx|vpce|fs|db|r|rtbassoc|cluster|sgr|dopt|eigw|elb|prefix)-[0-9a-f]{8,17})$")
#: A file name at the end of a path-like value (``exports/2026/11/23/orders-2ed8.csv``).
_FILE_PATH = re.compile(r"^[\w.-]+(?:/[\w.=-]+)+\.[A-Za-z][A-Za-z0-9]{0,4}$")
_PLAIN_SEGMENT = re.compile(r"^(?:[A-Za-z]+(?:[_-][A-Za-z]+)*|[0-9]+)$")


def _words(v: str) -> bool:
    """A chain of lowercase words (``invalid_grant``, ``regenerate-on-next-login``); one unbroken lowercase run
    only when short and word-like (a 32-letter random run scores 4.3+ bits per character, a word about 3)."""
    if not _WORDY.match(v):
        return False
    segs = re.split(r"[_.:/ -]", v)
    if len(segs) >= 2:
        return max(map(len, segs)) <= 15
    return len(v) <= 16 and entropy(v) < 3.5


def is_identifier(value: str) -> bool:
    """Judged by content, whatever the field is called: an ARN, an AWS resource id, an object key or path
    (a file name, or mostly plain-word segments), a chain of lowercase words (``invalid_grant``,
    ``not-provided``), a sequence or a low-entropy run. Never a credential's shape."""
    v = value.strip()
    if _AWS_RESOURCE.match(v) or _FILE_PATH.match(v) or low_entropy(v) or _words(v):
        return True
    if "/" in v:
        segs = [s for s in v.strip("/").split("/") if s]
        return len(segs) >= 2 and sum(bool(_PLAIN_SEGMENT.match(s)) for s in segs) * 2 >= len(segs)
    return False


def is_timestamp(value: str) -> bool:
    return bool(_TIMESTAMP.match(value.strip()))


def is_reference(value: str, quoted: bool) -> bool:
    """``${TOKEN}``, ``$2``, ``{{ secret }}`` always; bare identifiers and dotted lookups when unquoted."""
    v = value.strip()
    if v.startswith(("${", "{{", "$(", "%{", "#{", "{%")) or re.match(r"^\$[A-Za-z_]\w*$", v):
        return True
    return not quoted and (bool(REFERENCE.match(v)) or v in TYPE_NAMES)


def secret_shaped(value: str, min_len: int = 8, min_entropy: float = 3.0) -> bool:
    """Looks random: long enough, mixed character classes, not a word chain, high enough entropy."""
    if len(value) < min_len or classes(value) < 2 or _WORDY.match(value) or _IDENT_LIKE.match(value) \
            or _STRUCTURED.match(value):
        return False
    if value.isdigit() or is_timestamp(value):
        return False
    return entropy(value) >= min_entropy


def worth_registering(value: str) -> bool:
    """Only values that cannot be an ordinary word are masked everywhere once found: masking ``app`` or
    ``postgres`` at every occurrence would wreck the record."""
    return len(value) >= 8 and not is_placeholder(value) and classes(value) >= 2 and entropy(value) >= 2.8 \
        and not _WORDY.match(value) and not is_timestamp(value)
