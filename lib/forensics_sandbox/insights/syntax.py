"""Logs Insights QL as text and as a tree: the tokenizer, the AST, the language's names (commands,
functions, units) and :class:`MalformedQueryError`; regex helpers the parser and the engine share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from forensics.errors import ForensicsError

#: GetQueryResults returns at most this many rows; StartQuery's ``limit`` defaults to DEFAULT_LIMIT.
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000
SUPPORTED_COMMANDS = ("fields", "display", "filter", "parse", "stats", "sort", "limit", "dedup")
#: Logs Insights commands this engine refuses by name rather than ignore.
KNOWN_UNSUPPORTED = ("unnest", "lookup", "join", "pattern", "anomaly", "diff", "unmask", "filterindex",
                     "source", "fieldindex", "compare", "head", "tail")
#: Fields every event has, in the order a query without ``fields`` returns them.
DEFAULT_FIELDS = ("@timestamp", "@message", "@logStream", "@log", "@ingestionTime")
_TS, _PTR = "\x00ts", "\x00ptr"  # internal columns: event time (ms) and pointer, never shown


class MalformedQueryError(ForensicsError, ValueError):
    """The query is not valid, or uses syntax this engine does not run (the message names it). Under the
    project's error root; still a ValueError, as it was."""

    exit_code = 2

    def __init__(self, message: str, start: int | None = None, end: int | None = None):
        super().__init__(message)
        self.message, self.start, self.end = message, start, end


# ---- tokens ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, regex, number, duration, op, punct
    value: Any
    start: int
    end: int


_LEX = re.compile(r"""
  (?P<ws>\s+)
| (?P<comment>\#[^\n]*)
| (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
| (?P<backtick>`[^`]*`)
| (?P<number>\d+(?:\.\d+)?)(?P<unit>[A-Za-z]+)?
| (?P<ident>[@A-Za-z_$][\w.@$]*)
| (?P<op>!=|<=|>=|=~|[=<>+\-*/%^])
| (?P<punct>[|(),\[\]])
""", re.X)
# A "/" opens a regex literal unless it follows something that can end an operand.
_OPERAND_END = {"number", "string", "duration"}
_KEYWORDS = {"and", "or", "not", "like", "in", "as", "by", "asc", "desc"}
_STRING_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "/" and _regex_allowed(tokens):
            end = pos + 1
            while end < len(text) and text[end] != "/":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise MalformedQueryError(f"unterminated regular expression at character {pos}", pos, len(text))
            tokens.append(Token("regex", text[pos + 1:end].replace("\\/", "/"), pos, end + 1))
            pos = end + 1
            continue
        m = _LEX.match(text, pos)
        if not m:
            raise MalformedQueryError(f"unexpected character {text[pos]!r} at character {pos}", pos, pos + 1)
        kind = m.lastgroup if m.lastgroup != "unit" else "number"
        if kind == "string":
            raw = m.group(kind)[1:-1]
            tokens.append(Token("string", re.sub(r"\\(.)", lambda e: _STRING_ESCAPES.get(e.group(1), "\\" + e.group(1)),
                                                 raw), m.start(), m.end()))
        elif kind == "backtick":
            tokens.append(Token("ident", m.group(kind)[1:-1], m.start(), m.end()))
        elif kind == "number":
            if m.group("unit"):
                tokens.append(Token("duration", (float(m.group("number")), m.group("unit")), m.start(), m.end()))
            else:
                num = float(m.group("number"))
                tokens.append(Token("number", int(num) if num.is_integer() and "." not in m.group() else num,
                                    m.start(), m.end()))
        elif kind in ("ident", "op", "punct"):
            tokens.append(Token(kind, m.group(kind), m.start(), m.end()))
        pos = m.end()
    return tokens


def _regex_allowed(tokens: list[Token]) -> bool:
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind in _OPERAND_END or (last.kind == "punct" and last.value in ")]"):
        return False
    if last.kind == "ident":
        if last.value.lower() in _KEYWORDS - {"asc", "desc"} or last.value.lower() == "parse":
            return True
        # `parse <field> /regex/`: the field right after the command word
        before = tokens[-2] if len(tokens) > 1 else None
        return before is not None and before.kind == "ident" and before.value.lower() == "parse" and (
            len(tokens) == 2 or (tokens[-3].kind == "punct" and tokens[-3].value == "|"))
    return True


# ---- AST ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expr:
    text: str  # the query text it was parsed from: the name of its result field


@dataclass(frozen=True)
class Literal(Expr):
    value: Any


@dataclass(frozen=True)
class Regex(Expr):
    pattern: str


@dataclass(frozen=True)
class Duration(Expr):
    amount: float
    unit: str  # ms, s, m, h, d, w, mo, q, y


@dataclass(frozen=True)
class Field(Expr):
    name: str


@dataclass(frozen=True)
class Star(Expr):
    pass


@dataclass(frozen=True)
class Call(Expr):
    name: str
    args: tuple


@dataclass(frozen=True)
class Unary(Expr):
    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple


@dataclass(frozen=True)
class Command:
    name: str


@dataclass(frozen=True)
class Fields(Command):
    items: tuple  # ((expr, alias|None), ...)


@dataclass(frozen=True)
class Display(Command):
    names: tuple


@dataclass(frozen=True)
class Filter(Command):
    condition: Expr


@dataclass(frozen=True)
class Parse(Command):
    source: Expr
    pattern: str  # a Python regex with groups g0..gN
    names: tuple


@dataclass(frozen=True)
class Stats(Command):
    aggregates: tuple  # ((Call, output name), ...)
    by: tuple  # ((expr, output name), ...)


@dataclass(frozen=True)
class Sort(Command):
    keys: tuple  # ((expr, descending), ...)


@dataclass(frozen=True)
class Limit(Command):
    count: int


@dataclass(frozen=True)
class Dedup(Command):
    names: tuple


@dataclass(frozen=True)
class Query:
    text: str
    commands: tuple


_UNITS = {"ms": "ms", "msec": "ms", "millisecond": "ms", "s": "s", "sec": "s", "second": "s",
          "m": "m", "min": "m", "minute": "m", "h": "h", "hr": "h", "hour": "h", "d": "d", "day": "d",
          "w": "w", "week": "w", "mo": "mo", "mon": "mo", "month": "mo", "q": "q", "qtr": "q", "quarter": "q",
          "y": "y", "yr": "y", "year": "y"}
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
AGGREGATES = {"count", "count_distinct", "sum", "avg", "min", "max", "stddev", "pct", "percentile"}
#: function name -> (min args, max args); None: any number
FUNCTIONS = {"ispresent": (1, 1), "isempty": (1, 1), "isblank": (1, 1), "coalesce": (1, None),
             "strlen": (1, 1), "toupper": (1, 1), "tolower": (1, 1), "substr": (2, 3), "concat": (1, None),
             "replace": (3, 3), "trim": (1, 1), "ltrim": (1, 1), "rtrim": (1, 1), "strcontains": (2, 2),
             "abs": (1, 1), "ceil": (1, 1), "floor": (1, 1), "greatest": (1, None), "least": (1, None),
             "bin": (1, 1), "datefloor": (2, 2), "dateceil": (2, 2), "frommillis": (1, 1), "tomillis": (1, 1)}
_COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}



# ---- regex and tree helpers shared by the parser and the engine ----------------------------------
def _walk(expr):
    yield expr
    for child in _children(expr):
        yield from _walk(child)


def _children(expr):
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Unary):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    return ()


def _to_python_regex(pattern: str) -> str:
    """Logs Insights (Java-style) named groups ``(?<name>`` -> ``(?P<name>`` (RE2 and ``re`` read both
    forms differently); look-behind ``(?<=`` / ``(?<!`` stays."""
    return re.sub(r"\(\?<(?![=!])", "(?P<", pattern)


def _named_groups(pattern: str) -> tuple[str, list[str]]:
    """A parse regex -> (regex with groups renamed g0..gN, the original names in order)."""
    names: list[str] = []

    def rename(m):
        names.append(m.group(1))
        return f"(?P<g{len(names) - 1}>"

    renamed = re.sub(r"\(\?P?<(?![=!])([^>]+)>", rename, pattern)
    return renamed, names


def _glob_to_regex(glob: str) -> str:
    """``parse`` glob -> regex: literal text between lazy ``*`` captures; a trailing ``*`` takes the rest."""
    parts = glob.split("*")
    out = []
    for i, part in enumerate(parts):
        out.append(re.escape(part))
        if i < len(parts) - 1:
            out.append(f"(?P<g{i}>.*)" if i == len(parts) - 2 and parts[-1] == "" else f"(?P<g{i}>.*?)")
    return "".join(out)


def _compile(pattern: str, command: str):
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise MalformedQueryError(f"{command}: invalid regular expression /{pattern}/: {exc}") from None
