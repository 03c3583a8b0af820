"""Error signatures: group log messages by their template so "which errors, since when" is one table.

Two stages, both deterministic and independent of message order:

1. **Masking** (``mask``) replaces what varies between occurrences of the same event by ``<*>``:
   URLs, e-mails, paths, UUIDs, timestamps (ISO, clock times, syslog dates such as
   ``Sat Jun 11 03:04:05 2005``), IPv4/IPv6 and ``host:port`` pairs, quoted single tokens, hex ids,
   ``prefix-1234`` style ids (the prefix is kept: ``blk_<*>``, ``req-<*>``), numbers with or without
   a unit (durations, sizes, percentages). Only generic kinds: no rule was written for one system.
2. **Frequency grouping** after Brain (Yu et al., "Brain: Log Parsing with Bidirectional Parallel
   Tree", IEEE TSC 2023): among masked texts with the same number of tokens, each token is weighed by
   how often its (position, word) occurs. The words of a text that share one frequency, the largest
   such set, are its *longest common pattern*: they come from the logging statement. Texts with the
   same pattern form a group; in a group, a position outside the pattern taking ``min_distinct``
   distinct values or more, or a masked value, or only values already seen as a variable at that
   position in another group, is a variable; one with fewer values (``LEADING``/``FOLLOWING``) stays
   constant and so tells events apart. The first token gets no special treatment (a program name
   such as ``chrome.exe`` is as variable as any other field).

``min_distinct`` was chosen leave-one-system-out on five Loghub systems (Apache, HDFS, OpenSSH,
OpenStack, Zookeeper, 2022 corrected ground truth): tests/bench/test_bench_signatures.py picks it on
four systems and reports grouping accuracy on the fifth, beside Drain's published figure.

Speed: masking is done once per *digit shape* (texts that differ only in digit values; exact, see
``_mask_codes``), the digit shapes are found in Arrow, and grouping is done once per distinct masked
text.
"""

from __future__ import annotations

import operator
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

WILDCARD = "<*>"

_HEX = r"[0-9a-fA-F]"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_UNIT = (
    r"(?:ns|us|µs|ms|s|sec|secs|seconds?|min|mins|minutes?|h|hr|hours?|d|days?"
    r"|[kKMGT]i?B|[kKMGT]|bytes?|%)"
)
# (pattern, replacement, substrings of which one must occur for the pattern to be tried). Order
# matters: the most specific patterns first, so that e.g. an IP is not eaten as numbers. No pattern
# tells one digit from another (see mask_many).
_MASKS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    # URLs and e-mail addresses as a whole.
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>()]+"), WILDCARD, ("://",)),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), WILDCARD, ("@",)),
    # Absolute paths with their query string (also /host:port forms), before the dates and ids
    # they may contain.
    (re.compile(r"(?<![\w/.])/[^\s\"'()\[\]{}<>,;]*[^\s\"'()\[\]{}<>,;:.]"), WILDCARD, ("/",)),
    # UUIDs (also inside a longer token, e.g. network-vif-plugged:<uuid>).
    (re.compile(rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"), WILDCARD, ("-",)),
    # Timestamps: ISO-8601, syslog/ctime dates with day and month names, clock times (h:mm:ss, mm:ss).
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
        WILDCARD,
        ("-",),
    ),
    (
        re.compile(
            rf"\b(?:{_DAY}[a-z]*,?\s+)?{_MONTH}[a-z]*\.?\s+\d{{1,2}}"
            r"(?:,?\s+\d{4})?(?:\s+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:\s+\d{4})?\b"
            rf"|\b{_DAY}[a-z]*,?\s+\d{{1,2}}\s+{_MONTH}[a-z]*\s+\d{{4}}\b"
        ),
        WILDCARD,
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    ),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\b"), WILDCARD, (":",)),
    # IPv4 with optional port; IPv6 (8 groups, or with '::'); host names with a port.
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w])"), WILDCARD, (".",)),
    (re.compile(rf"(?<![\w:])(?:{_HEX}{{1,4}}:){{7}}{_HEX}{{1,4}}(?![\w:])"), WILDCARD, (":",)),
    (re.compile(rf"(?<![\w:])(?:{_HEX}{{1,4}}:)*:(?::?{_HEX}{{1,4}})+(?![\w:])"), WILDCARD, ("::",)),
    (re.compile(r"(?<![\w.-])(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*:\d{1,5}(?![\w:.])"), WILDCARD, (":",)),
    # Quoted single tokens: 'users', "users_pkey" (a quoted phrase with spaces is kept: it is often
    # the message itself, e.g. "GET /path HTTP/1.1").
    (re.compile(r"'[^'\s]{1,80}'"), f"'{WILDCARD}'", ("'",)),
    (re.compile(r'"[^"\s]{1,80}"'), f'"{WILDCARD}"', ('"',)),
    # Prefixed ids: keep the type, mask the value (blk_-123, req-ab12, i-0abc).
    (re.compile(r"\b([A-Za-z]+[_-])-?\d[\w-]*"), rf"\1{WILDCARD}", ("_", "-")),
    # Hex: 0x..., and bare hex runs of 8+ with at least one digit (hashes, session and request ids).
    (re.compile(rf"\b[0-9][xX]{_HEX}+\b"), WILDCARD, ("x", "X")),
    (re.compile(rf"\b(?={_HEX}*\d){_HEX}{{8,}}\b"), WILDCARD, ()),
    # Numbers with a unit (durations, sizes, percentages), then plain numbers; a leading '<' or '>'
    # ("lifetime <1 sec") belongs to the number.
    (re.compile(rf"(?<![\w.*])[<>]?[-+]?\d+(?:\.\d+)?\s?{_UNIT}(?![\w])"), WILDCARD, ()),
    (re.compile(r"(?<![\w*])[<>]?[-+]?\d+(?:[.,]\d+)*(?![\w])"), WILDCARD, ()),
]
_SPACES = re.compile(r"\s+")
# Variables joined by punctuation ("<*><*>", "<*>,<*>", "<*>:<*>", "<*>/<*>") are one variable.
_WILDCARD_RUN = re.compile(r"<\*>(?:[,:./_-]?<\*>)+")
# A variable followed by more of the same word is a variable as a whole: host names with an address
# in them (``ec2-<*>.compute.amazonaws.com``, ``<*>.dsl.example.net``). A ``key=`` or ``key:`` prefix
# and enclosing brackets or quotes stay.
_PARTLY_VARIABLE = re.compile(r"(?<![^\s=:(\[{'\"])[^\s=(\[{'\"]*<\*>[^\s)\]}'\",;]*[\w.-][^\s)\]}'\",;]*")


def mask(message: str) -> str:
    """A message with its variable parts replaced by ``<*>`` (stage 1 only)."""
    text = message if isinstance(message, str) else ("" if message is None else str(message))
    return _without_repeats(_masked(text, None)[0])


def _masked(text: str, sources: list[int] | None) -> tuple[str, list[int] | None]:
    """Every step of ``mask`` but the last (dropping repeated tokens).

    With ``sources`` (one offset per character of ``text``), each character of the result keeps the
    offset it was copied from (-1: written by a replacement), so that the digits left in the result
    can be traced back to the original (see ``_mask_codes``).
    """
    for pattern, replacement, needles in _MASKS:
        if not needles or any(n in text for n in needles):
            text, sources = _sub(pattern, replacement, text, sources)
    text, sources = _sub(_WILDCARD_RUN, WILDCARD, text, sources)
    if WILDCARD in text:
        text, sources = _sub(_PARTLY_VARIABLE, _partly_variable, text, sources)
    text, sources = _sub(_SPACES, " ", text, sources)
    stripped = text.strip()
    if sources is None or stripped == text:
        return stripped, sources
    start = len(text) - len(text.lstrip())
    return stripped, sources[start : start + len(stripped)]


def _sub(
    pattern: re.Pattern[str], replacement, text: str, sources: list[int] | None
) -> tuple[str, list[int] | None]:
    """``pattern.sub(replacement, text)``; with ``sources``, built match by match to carry them along."""
    if sources is None:
        return pattern.sub(replacement, text), None
    pieces: list[str] = []
    origins: list[int] = []
    last = 0
    for m in pattern.finditer(text):
        start, end = m.span()
        if callable(replacement):
            new = replacement(m)
        else:
            new = m.expand(replacement) if "\\" in replacement else replacement
        pieces += (text[last:start], new)
        if new == m.group(0):
            origins += sources[last:end]
        else:
            origins += sources[last:start]
            origins += [-1] * len(new)
        last = end
    if not pieces:
        return text, sources
    pieces.append(text[last:])
    origins += sources[last:]
    return "".join(pieces), origins


def _without_repeats(text: str) -> str:
    """A list of ids ("blk_<*> blk_<*> blk_<*>") is one variable, whatever its length."""
    if WILDCARD not in text:
        return text
    tokens = text.split(" ")
    return " ".join(t for i, t in enumerate(tokens) if not _repeated(tokens, i))


def _repeated(tokens: list[str], i: int) -> bool:
    return bool(i) and tokens[i] == tokens[i - 1] and WILDCARD in tokens[i]


def _partly_variable(match: re.Match[str]) -> str:
    token = match.group(0)
    return WILDCARD if re.search(r"<\*>[^\s]*\w", token) else token


_DIGIT = re.compile(r"[0-9]")
# Byte value -> byte value with ASCII digits made "0". In UTF-8 a digit byte never occurs inside
# another character, so two texts have the same digit shape iff they differ only in ASCII digit values.
_SHAPE_BYTES = bytes.maketrans(b"0123456789", b"0000000000")


def mask_many(texts: Iterable[str]) -> list[str]:
    """``mask`` of each text (what ``assign`` does, on a list)."""
    texts = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
    try:
        array = pa.array(texts, type=pa.large_string())
    except UnicodeEncodeError:  # lone surrogates: not UTF-8, so not Arrow
        return [mask(t) for t in texts]
    codes, masks = _mask_codes(array)
    return [masks[c] for c in codes.tolist()]


def _mask_codes(texts: pa.LargeStringArray) -> tuple[np.ndarray, list[str]]:
    """The code of each text's ``mask`` in the returned list of distinct masks.

    Masking is done once per *digit shape* (the text with every ASCII digit ``0``): no step of ``mask``
    tells one ASCII digit from another but the last (dropping a token equal to the one before it), so
    texts of one shape are cut into the same spans and each digit left in the result is a copy of the
    digit at one fixed offset of the original. One text per shape is masked; when digits are left in
    it (``ssh2``, ``x86_64``), their offsets are traced and each other distinct text of the shape gets
    its own digits copied there (``_DigitFill``). Shapes are found in Arrow, without a Python loop per
    text.
    """
    shape_codes = pc.dictionary_encode(_digit_shapes(texts)).indices.to_numpy(zero_copy_only=False)
    first = np.unique(shape_codes, return_index=True)[1]  # the first text of each shape, by code
    index: dict[str, int] = {}
    shape_mask = np.empty(len(first), dtype=np.int64)
    fills: dict[int, _DigitFill] = {}
    for shape, text in enumerate(texts.take(pa.array(first, type=pa.int64())).to_pylist()):
        masked = _masked(text, None)[0]
        if _DIGIT.search(masked):
            fills[shape] = _DigitFill(text)
        shape_mask[shape] = index.setdefault(_without_repeats(masked), len(index))
    codes = shape_mask[shape_codes]
    if fills:
        members = np.flatnonzero(np.isin(shape_codes, np.fromiter(fills, dtype=np.int64)))
        distinct = pc.dictionary_encode(texts.take(pa.array(members, type=pa.int64())))
        which = distinct.indices.to_numpy(zero_copy_only=False)
        shapes = shape_codes[members[np.unique(which, return_index=True)[1]]].tolist()
        distinct_codes = [
            index.setdefault(fills[shape](text), len(index))
            for shape, text in zip(shapes, distinct.dictionary.to_pylist())
        ]
        codes[members] = np.array(distinct_codes, dtype=np.int64)[which]
    return codes, list(index)


def _digit_shapes(texts: pa.LargeStringArray) -> pa.Array:
    """Each text with its ASCII digits made ``0``, as binary (translated in pieces over Arrow's data)."""
    validity, offsets, data = texts.buffers()
    view = memoryview(data) if data is not None else memoryview(b"")
    shaped = bytearray(len(view))
    step = 1 << 20
    for start in range(0, len(view), step):
        shaped[start : start + step] = view[start : start + step].tobytes().translate(_SHAPE_BYTES)
    return pa.Array.from_buffers(
        pa.large_binary(), len(texts), [validity, offsets, pa.py_buffer(shaped)], offset=texts.offset
    )


_ZERO_DIGITS = str.maketrans("0123456789", "0000000000")


class _DigitFill:
    """``mask`` of any text of one shape, from the traced masking of one of them that left digits.

    The result is a %-format with one slot per run of digits copied from consecutive offsets of the
    original, filled from each text by slicing. Dropping a repeated token is decided once for the
    shape, unless two neighbouring tokens differ by digit values only (then it is done per text).
    """

    def __init__(self, representative: str) -> None:
        masked, sources = _masked(representative, list(range(len(representative))))
        assert sources is not None
        tokens = masked.split(" ")
        self.repeats_per_text = any(
            WILDCARD in t
            and _DIGIT.search(t)
            and t.translate(_ZERO_DIGITS) == tokens[i - 1].translate(_ZERO_DIGITS)
            for i, t in enumerate(tokens)
            if i
        )
        if not self.repeats_per_text and WILDCARD in masked:
            kept, kept_sources, offset = [], [], 0
            for i, token in enumerate(tokens):
                if not _repeated(tokens, i):
                    kept.append(token)
                    kept_sources += sources[offset : offset + len(token) + 1]  # with the space after
                offset += len(token) + 1
            masked = " ".join(kept)
            sources = kept_sources[: len(masked)]
        template: list[str] = []
        slices: list[slice] = []
        last = i = 0
        while i < len(masked):
            if not "0" <= masked[i] <= "9":
                i += 1
                continue
            j = i + 1
            while j < len(masked) and "0" <= masked[j] <= "9" and sources[j] == sources[j - 1] + 1:
                j += 1
            template += (masked[last:i].replace("%", "%%"), "%s")
            slices.append(slice(sources[i], sources[i] + j - i))
            last = i = j
        template.append(masked[last:].replace("%", "%%"))
        # No replacement writes a digit, so every digit left has an origin; if not, mask each text.
        exact = all(s.start >= 0 for s in slices)
        self.format = "".join(template) if exact else None
        self.digits = operator.itemgetter(*slices, slice(0, 0))  # always a tuple, with one item too many

    def __call__(self, text: str) -> str:
        if self.format is None:
            return mask(text)
        filled = self.format % self.digits(text)[:-1]
        return _without_repeats(filled) if self.repeats_per_text else filled


#: Chosen leave-one-system-out on the five Loghub dev systems (tests/bench/test_bench_signatures.py).
MIN_DISTINCT = 6


def _generalise(masked: dict[str, int], *, min_distinct: int = MIN_DISTINCT) -> dict[str, str]:
    """Stage 2: map each masked text (with its number of occurrences) to its template."""
    by_length: dict[int, list[tuple[list[str], int, str]]] = defaultdict(list)
    for text in sorted(masked):
        tokens = text.split(" ")
        by_length[len(tokens)].append((tokens, masked[text], text))
    groups: dict[tuple[str | None, ...], list[tuple[list[str], str]]] = defaultdict(list)
    for items in by_length.values():
        freq: Counter[tuple[int, str]] = Counter()
        for tokens, count, _ in items:
            for position, token in enumerate(tokens):
                freq[(position, token)] += count
        for tokens, _, text in items:
            weights = [freq[(p, t)] for p, t in enumerate(tokens)]
            # The longest common pattern: the frequency shared by most tokens (ties: the higher one).
            sizes = Counter(weights)
            root = max(sizes, key=lambda w: (sizes[w], w))
            groups[tuple(t if w == root else None for t, w in zip(tokens, weights))].append((tokens, text))
    # A slot outside the pattern is a variable when it takes many values or a masked one. The values
    # of such slots, at their position, make the same slot of another group a variable too when all
    # its values are among them (a program name in a rare event as in a frequent one).
    variables: dict[tuple[str | None, ...], set[int]] = {}
    seen_variable: dict[int, set[str]] = defaultdict(set)
    for key, members in groups.items():
        variables[key] = set()
        for position, word in enumerate(key):
            if word is None:
                values = {tokens[position] for tokens, _ in members}
                if len(values) >= min_distinct or (len(values) > 1 and any(WILDCARD in v for v in values)):
                    variables[key].add(position)
                    seen_variable[position] |= values
    result: dict[str, str] = {}
    for key, members in groups.items():
        variable = set(variables[key])
        for position, word in enumerate(key):
            if word is None and position not in variable:
                values = {tokens[position] for tokens, _ in members}
                if len(values) > 1 and values <= seen_variable[position]:
                    variable.add(position)
        for tokens, text in members:
            result[text] = " ".join(_variable_token(t) if p in variable else t for p, t in enumerate(tokens))
    return result


_KEY_PREFIX = re.compile(r"^[\w.-]+[=:]")


def _variable_token(token: str) -> str:
    """``user=<*>`` for ``user=alice``: the field name stays in the template."""
    m = _KEY_PREFIX.match(token)
    return (m.group(0) + WILDCARD) if m and m.end() < len(token) else WILDCARD


def assign(messages: pd.Series | Iterable[str], *, min_distinct: int = MIN_DISTINCT) -> pd.Series:
    """Each message's signature (template text), same index as ``messages``.

    The result depends on the batch (stage 2 compares messages with each other) but never on its
    order; missing messages get ``<NA>``. Masking is done once per digit shape and grouping once per
    distinct masked text, so repeated lines, and lines differing only in numbers, cost little.
    """
    s = messages if isinstance(messages, pd.Series) else pd.Series(list(messages))
    present = s.notna().to_numpy()
    text = pa.array((s if present.all() else s[present]).astype(str).array)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    masked_codes, masked_uniques = _mask_codes(text.cast(pa.large_string()))
    occurrences = np.bincount(masked_codes, minlength=len(masked_uniques))
    mapping = _generalise({m: int(n) for m, n in zip(masked_uniques, occurrences)}, min_distinct=min_distinct)
    templates = pa.array([mapping[m] for m in masked_uniques], type=pa.large_string())
    per_event = np.zeros(len(s), dtype=np.int64)
    per_event[present] = masked_codes
    values = templates.take(pa.array(per_event, mask=~present))
    return pd.Series(pd.array(values, dtype="string"), index=s.index, name="signature")


TOP_COLUMNS = ["signature", "count", "first_seen", "last_seen", "example"]


def top(
    messages: pd.Series, timestamps: pd.Series | pd.DatetimeIndex | None = None, n: int = 10
) -> pd.DataFrame:
    """The ``n`` most frequent signatures with their first/last occurrence and one real example.

    ``timestamps`` aligns positionally with ``messages``; when absent, ``messages``'s index is used
    if it is a DatetimeIndex. Ties on count are broken by first_seen then signature, so the table
    is stable from one run to the next.
    """
    msgs = messages if isinstance(messages, pd.Series) else pd.Series(list(messages))
    if timestamps is None:
        ts = msgs.index if isinstance(msgs.index, pd.DatetimeIndex) else None
    else:
        ts = timestamps
    frame = pd.DataFrame({"message": msgs.to_numpy(dtype=object)})
    if ts is not None:
        frame["timestamp"] = pd.to_datetime(pd.Series(ts).to_numpy(), utc=True)
    else:
        frame["timestamp"] = pd.NaT
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame = frame[frame["message"].notna()].reset_index(drop=True)
    if frame.empty:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in TOP_COLUMNS})
        out["count"] = out["count"].astype("int64")
        out["first_seen"] = pd.to_datetime(out["first_seen"], utc=True)
        out["last_seen"] = pd.to_datetime(out["last_seen"], utc=True)
        return out
    frame["signature"] = assign(frame["message"]).to_numpy()
    frame = frame.sort_values("timestamp", kind="stable")
    grouped = frame.groupby("signature", sort=False)
    out = pd.DataFrame(
        {
            "count": grouped.size(),
            "first_seen": grouped["timestamp"].min(),
            "last_seen": grouped["timestamp"].max(),
            "example": grouped["message"].first(),
        }
    ).reset_index()
    out = out.sort_values(["count", "first_seen", "signature"], ascending=[False, True, True], kind="stable")
    out = out.head(n).reset_index(drop=True)
    out["example"] = out["example"].astype("string")
    out["signature"] = out["signature"].astype("string")
    return out[TOP_COLUMNS]
