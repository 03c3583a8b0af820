"""A CloudWatch Logs Insights engine for the sandbox: the subset of Logs Insights QL the project uses,
parsed to an AST and executed over a pandas frame of log events, vectorised (pyarrow strings, RE2).

moto 5.2 honours only ``fields``/``sort``/``limit`` and drops every other command without a word, so
queries "worked" in the sandbox that real Logs Insights would answer differently. Here every command
and function is either executed as AWS documents it or refused with :class:`MalformedQueryError`
naming it — never dropped.

Supported (AWS's "CloudWatch Logs Insights language query syntax" pages):

- commands ``fields`` (expressions, ``as`` aliases), ``display``, ``filter``, ``parse`` (glob with
  ``*`` and ``as``; regex with named groups ``(?<name>...)``), ``stats`` (``count(*)``, ``count(f)``,
  ``count_distinct``, ``sum``, ``avg``, ``min``, ``max``, ``stddev``, ``pct(f, N)`` alias
  ``percentile``; ``by`` fields, expressions and ``bin(period)``; several stats commands),
  ``sort`` (several keys, ``asc``/``desc``), ``limit``, ``dedup``; comments ``#``; pipes ``|``;
- operators ``and or not``, ``= != < <= > >=``, ``like``/``not like`` a "literal" (substring) or a
  /regex/, ``=~``, ``in [..]``/``not in [..]``, arithmetic ``+ - * / % ^``;
- functions ``ispresent isempty isblank coalesce strlen toupper tolower substr concat replace trim
  ltrim rtrim strcontains abs ceil floor greatest least bin datefloor dateceil fromMillis toMillis``;
- fields ``@timestamp @message @logStream @log @ingestionTime @ptr``, fields created by ``parse`` and
  ``fields``, and fields discovered in JSON messages (``a.b.c``, arrays as ``a.0``).

Result shape (GetQueryResults): rows of ``{field, value}``, every value a string, absent fields left
out of the row; timestamps and ``bin()`` values as ``YYYY-MM-DD HH:MM:SS.mmm`` (UTC); ``@ptr`` on
non-aggregate rows. Without ``sort``, events come newest first; ``stats`` rows in ascending order of
their ``by`` values. Percentiles are exact nearest-rank (AWS's are approximate); ``count_distinct``
is exact (AWS's is estimated past high cardinality). Regexes run on RE2 (as pyarrow compiles them),
with Python's ``re`` for what RE2 refuses (look-around).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

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


class MalformedQueryError(ValueError):
    """The query is not valid, or uses syntax this engine does not run (the message names it)."""

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


# ---- parser ------------------------------------------------------------------------------------
def parse(text: str) -> Query:
    """``text`` -> :class:`Query`; :class:`MalformedQueryError` on anything not supported."""
    if not text or not text.strip():
        raise MalformedQueryError("the query is empty")
    tokens = tokenize(text)
    if not tokens:
        raise MalformedQueryError("the query is empty (only comments)")
    commands, current = [], []
    for tok in tokens + [Token("punct", "|", len(text), len(text))]:
        if tok.kind == "punct" and tok.value == "|":
            if not current:
                raise MalformedQueryError(f"empty command before '|' at character {tok.start}", tok.start, tok.end)
            commands.append(_CommandParser(text, current).command())
            current = []
        else:
            current.append(tok)
    return Query(text, tuple(commands))


class _CommandParser:
    def __init__(self, text: str, tokens: list[Token]):
        self.text, self.tokens, self.pos = text, tokens, 0

    # -- helpers
    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            end = self.tokens[-1].end
            raise MalformedQueryError(f"{self.name}: unexpected end of command", end, end)
        self.pos += 1
        return tok

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "ident" and tok.value.lower() in words

    def at_punct(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.value == value

    def expect_punct(self, value: str) -> Token:
        tok = self.next()
        if tok.kind != "punct" or tok.value != value:
            self.fail(f"expected '{value}'", tok)
        return tok

    def fail(self, message: str, tok: Token | None = None):
        tok = tok or self.peek() or self.tokens[-1]
        raise MalformedQueryError(f"{self.name}: {message} at {self.text[tok.start:tok.end]!r} "
                                  f"(character {tok.start})", tok.start, tok.end)

    def span(self, start_tok: Token) -> str:
        return self.text[start_tok.start:self.tokens[self.pos - 1].end].strip()

    def done(self) -> None:
        if self.peek() is not None:
            self.fail("unexpected input")

    # -- commands
    def command(self) -> Command:
        head = self.tokens[0]
        self.name = str(head.value)
        if head.kind != "ident":
            raise MalformedQueryError(f"expected a command at {self.text[head.start:head.end]!r} "
                                      f"(character {head.start})", head.start, head.end)
        name = head.value.lower()
        self.name = name
        if name in KNOWN_UNSUPPORTED:
            raise MalformedQueryError(f"unsupported command '{head.value}': the sandbox's Logs Insights engine "
                                      f"runs {', '.join(SUPPORTED_COMMANDS)}", head.start, head.end)
        if name not in SUPPORTED_COMMANDS:
            raise MalformedQueryError(f"unknown command '{head.value}' (supported: {', '.join(SUPPORTED_COMMANDS)})",
                                      head.start, head.end)
        self.pos = 1
        if self.peek() is None:
            raise MalformedQueryError(f"{name}: missing arguments", head.start, head.end)
        cmd = getattr(self, "cmd_" + name)()
        self.done()
        for expr in _expressions(cmd):
            _check_regex_use(expr, name)
        return cmd

    def cmd_fields(self) -> Fields:
        items = []
        while True:
            expr = self.expr()
            self._reject_aggregates(expr)
            alias = self.alias()
            items.append((expr, alias or expr.text))
            if not self.at_punct(","):
                break
            self.next()
        return Fields("fields", tuple(items))

    def cmd_display(self) -> Display:
        names = []
        while True:
            tok = self.next()
            if tok.kind != "ident":
                self.fail("display takes field names", tok)
            names.append(tok.value)
            if not self.at_punct(","):
                break
            self.next()
        return Display("display", tuple(names))

    def cmd_filter(self) -> Filter:
        cond = self.expr()
        self._reject_aggregates(cond)
        return Filter("filter", cond)

    def cmd_parse(self) -> Parse:
        source: Expr = Field("@message", "@message")
        tok = self.peek()
        if tok.kind == "ident" and not self.at_word("as"):
            if tok.value.lower() in ("logfmt", "csv", "json"):
                self.fail(f"parse mode '{tok.value}' is not supported (glob and regex are)", tok)
            self.next()
            source = Field(tok.value, tok.value)
            if self.at_word("logfmt", "csv", "json"):
                self.fail(f"parse mode '{self.peek().value}' is not supported (glob and regex are)")
        tok = self.next()
        if tok.kind == "string":
            names = []
            if not self.at_word("as"):
                self.fail("a glob pattern needs 'as' and one name per '*'")
            self.next()
            while True:
                name_tok = self.next()
                if name_tok.kind != "ident":
                    self.fail("expected a field name", name_tok)
                names.append(name_tok.value)
                if not self.at_punct(","):
                    break
                self.next()
            pattern = _glob_to_regex(tok.value)
            if tok.value.count("*") != len(names):
                self.fail(f"the glob has {tok.value.count('*')} '*' but {len(names)} names", tok)
            return Parse("parse", source, pattern, tuple(names))
        if tok.kind == "regex":
            if self.peek() is not None:
                nxt = self.peek()
                self.fail(f"'{nxt.value}' after a parse regex is not supported", nxt)
            pattern, names = _named_groups(tok.value)
            if not names:
                self.fail("a parse regex needs named groups (?<name>...)", tok)
            _compile(pattern, self.name)
            return Parse("parse", source, pattern, tuple(names))
        self.fail("parse takes a \"glob\" or a /regex/", tok)

    def cmd_stats(self) -> Stats:
        aggregates, by = [], []
        while True:
            start = self.peek()
            expr = self.expr()
            if not (isinstance(expr, Call) and expr.name in AGGREGATES):
                self.fail("stats takes aggregate functions (count, count_distinct, sum, avg, min, max, stddev, "
                          "pct/percentile)", start)
            for arg in expr.args:
                self._reject_aggregates(arg)
            aggregates.append((expr, self.alias() or expr.text))
            if not self.at_punct(","):
                break
            self.next()
        if self.at_word("by"):
            self.next()
            while True:
                expr = self.expr()
                self._reject_aggregates(expr)
                by.append((expr, self.alias() or expr.text))
                if not self.at_punct(","):
                    break
                self.next()
        names = [n for _, n in aggregates + by]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            self.fail(f"duplicate output field {dupes[0]!r} (name one with 'as')", self.tokens[0])
        return Stats("stats", tuple(aggregates), tuple(by))

    def cmd_sort(self) -> Sort:
        keys = []
        while True:
            expr = self.expr()
            desc = False
            if self.at_word("asc", "desc"):
                desc = self.next().value.lower() == "desc"
            keys.append((expr, desc))
            if not self.at_punct(","):
                break
            self.next()
        return Sort("sort", tuple(keys))

    def cmd_limit(self) -> Limit:
        tok = self.next()
        if tok.kind != "number" or not isinstance(tok.value, int) or not 1 <= tok.value <= MAX_LIMIT:
            self.fail(f"limit takes a whole number from 1 to {MAX_LIMIT}", tok)
        return Limit("limit", tok.value)

    def cmd_dedup(self) -> Dedup:
        names = []
        while True:
            tok = self.next()
            if tok.kind != "ident":
                self.fail("dedup takes field names", tok)
            names.append(tok.value)
            if not self.at_punct(","):
                break
            self.next()
        return Dedup("dedup", tuple(names))

    def alias(self) -> str | None:
        if not self.at_word("as"):
            return None
        self.next()
        tok = self.next()
        if tok.kind != "ident":
            self.fail("expected a name after 'as'", tok)
        return tok.value

    def _reject_aggregates(self, expr: Expr) -> None:
        for node in _walk(expr):
            if isinstance(node, Call) and node.name in AGGREGATES:
                raise MalformedQueryError(f"{self.name}: aggregate function {node.name}() is only allowed as a "
                                          f"stats item, in {node.text!r}")

    # -- expressions (lowest precedence first)
    def expr(self) -> Expr:
        return self.or_expr()

    def or_expr(self) -> Expr:
        start = self.peek()
        left = self.and_expr()
        while self.at_word("or"):
            self.next()
            left = Binary(self.span(start), "or", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        start = self.peek()
        left = self.not_expr()
        while self.at_word("and"):
            self.next()
            left = Binary(self.span(start), "and", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        start = self.peek()
        if self.at_word("not"):
            self.next()
            operand = self.not_expr()
            return Unary(self.span(start), "not", operand)
        return self.comparison()

    def comparison(self) -> Expr:
        start = self.peek()
        left = self.additive()
        tok = self.peek()
        if tok is None:
            return left
        if tok.kind == "op" and tok.value in _COMPARISONS | {"=~"}:
            self.next()
            right = self.additive()
            op = "like" if tok.value == "=~" else tok.value
            if op == "like" and not isinstance(right, Regex):
                self.fail("=~ takes a /regex/", tok)
            return Binary(self.span(start), op, left, right)
        negate = False
        if self.at_word("not") and self.peek(1) is not None and self.peek(1).kind == "ident" \
                and self.peek(1).value.lower() in ("like", "in"):
            self.next()
            negate = True
        if self.at_word("like"):
            self.next()
            right = self.additive()
            if not isinstance(right, (Regex, Literal)) or (isinstance(right, Literal) and not isinstance(right.value, str)):
                self.fail("like takes a \"string\" or a /regex/", tok)
            return Binary(self.span(start), "not like" if negate else "like", left, right)
        if self.at_word("in"):
            self.next()
            right = self.primary()
            if not isinstance(right, ListExpr):
                self.fail("in takes a list [a, b, ...]", tok)
            return Binary(self.span(start), "not in" if negate else "in", left, right)
        if negate:
            self.fail("expected like or in after not", tok)
        return left

    def additive(self) -> Expr:
        start = self.peek()
        left = self.multiplicative()
        while self.peek() is not None and self.peek().kind == "op" and self.peek().value in "+-":
            op = self.next().value
            left = Binary(self.span(start), op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        start = self.peek()
        left = self.power()
        while self.peek() is not None and self.peek().kind == "op" and self.peek().value in ("*", "/", "%"):
            op = self.next().value
            left = Binary(self.span(start), op, left, self.power())
        return left

    def power(self) -> Expr:
        start = self.peek()
        left = self.unary()
        if self.peek() is not None and self.peek().kind == "op" and self.peek().value == "^":
            self.next()
            return Binary(self.span(start), "^", left, self.power())
        return left

    def unary(self) -> Expr:
        start = self.peek()
        if start is not None and start.kind == "op" and start.value == "-":
            self.next()
            operand = self.unary()
            if isinstance(operand, Literal) and isinstance(operand.value, (int, float)):
                return Literal(self.span(start), -operand.value)
            return Unary(self.span(start), "-", operand)
        return self.primary()

    def primary(self) -> Expr:
        tok = self.next()
        if tok.kind == "string":
            return Literal(self.span(tok), tok.value)
        if tok.kind == "number":
            return Literal(self.span(tok), tok.value)
        if tok.kind == "regex":
            pattern = _to_python_regex(tok.value)
            _compile(pattern, self.name)
            return Regex(self.span(tok), pattern)
        if tok.kind == "duration":
            amount, unit = tok.value
            canon = _UNITS.get(unit.lower()) or (_UNITS.get(unit.lower()[:-1]) if unit.lower().endswith("s") else None)
            if canon is None:
                self.fail(f"unknown time unit {unit!r}", tok)
            return Duration(self.span(tok), amount, canon)
        if tok.kind == "punct" and tok.value == "(":
            inner = self.expr()
            self.expect_punct(")")
            return inner
        if tok.kind == "punct" and tok.value == "[":
            items = []
            if not self.at_punct("]"):
                while True:
                    item = self.unary()
                    if not isinstance(item, Literal):
                        self.fail("a list holds literals only", tok)
                    items.append(item.value)
                    if not self.at_punct(","):
                        break
                    self.next()
            self.expect_punct("]")
            return ListExpr(self.span(tok), tuple(items))
        if tok.kind == "op" and tok.value == "*":
            return Star("*")
        if tok.kind == "ident":
            if self.at_punct("("):
                return self.call(tok)
            if tok.value.lower() in _KEYWORDS:
                self.fail("expected a field or a value", tok)
            return Field(self.span(tok), tok.value)
        self.fail("expected a field or a value", tok)

    def call(self, name_tok: Token) -> Call:
        name = name_tok.value.lower()
        if name not in FUNCTIONS and name not in AGGREGATES:
            self.fail(f"unsupported function {name_tok.value}()", name_tok)
        self.expect_punct("(")
        args = []
        if not self.at_punct(")"):
            while True:
                args.append(self.expr())
                if not self.at_punct(","):
                    break
                self.next()
        self.expect_punct(")")
        call = Call(self.span(name_tok), name, tuple(args))
        self._check_call(call, name_tok)
        return call

    def _check_call(self, call: Call, tok: Token) -> None:
        n = len(call.args)
        stars = [a for a in call.args if isinstance(a, Star)]
        if stars and not (call.name == "count" and n == 1):
            self.fail(f"'*' is only allowed in count(*), not in {call.text!r}", tok)
        if call.name in AGGREGATES:
            want = {"count": (0, 1), "pct": (2, 2), "percentile": (2, 2)}.get(call.name, (1, 1))
            if not want[0] <= n <= want[1]:
                self.fail(f"{call.name}() takes {want[0]}..{want[1]} arguments", tok)
            if call.name in ("pct", "percentile"):
                p = call.args[1]
                if not (isinstance(p, Literal) and isinstance(p.value, (int, float)) and 0 <= p.value <= 100):
                    self.fail(f"{call.name}() takes a percentile from 0 to 100", tok)
            return
        low, high = FUNCTIONS[call.name]
        if n < low or (high is not None and n > high):
            self.fail(f"{call.name}() takes {low}" + (f"..{high}" if high != low else "") + " arguments", tok)
        periods = {"bin": 0, "datefloor": 1, "dateceil": 1}
        if call.name in periods and not isinstance(call.args[periods[call.name]], Duration):
            self.fail(f"{call.name}() takes a time period such as 5m or 1h", tok)
        for i, arg in enumerate(call.args):
            if isinstance(arg, Duration) and periods.get(call.name) != i:
                self.fail(f"a time period is only allowed in bin(), datefloor(), dateceil(), not in {call.text!r}", tok)


def _expressions(cmd: Command) -> list:
    if isinstance(cmd, Fields):
        return [e for e, _ in cmd.items]
    if isinstance(cmd, Filter):
        return [cmd.condition]
    if isinstance(cmd, Stats):
        return [e for e, _ in cmd.aggregates + cmd.by]
    if isinstance(cmd, Sort):
        return [e for e, _ in cmd.keys]
    return []


def _check_regex_use(expr: Expr, command: str) -> None:
    """A /regex/ is a value only on the right of like / not like / =~ (found at parse time, so the
    API answers MalformedQueryException rather than a failed query)."""
    if isinstance(expr, Regex):
        raise MalformedQueryError(f"{command}: a /regex/ is only allowed after like or =~, not in {expr.text!r}")
    if isinstance(expr, Binary) and expr.op in ("like", "not like"):
        _check_regex_use(expr.left, command)
        return
    for child in _children(expr):
        _check_regex_use(child, command)


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


# ---- execution ---------------------------------------------------------------------------------
@dataclass
class Result:
    """A finished query in GetQueryResults' shape."""

    rows: list  # [[{"field": name, "value": text}, ...], ...]
    fields: list
    records_matched: int
    records_scanned: int
    bytes_scanned: int
    aggregated: bool = False
    statistics: dict = field(init=False)

    def __post_init__(self):
        self.statistics = {"recordsMatched": float(self.records_matched),
                           "recordsScanned": float(self.records_scanned),
                           "bytesScanned": float(self.bytes_scanned)}


def events_frame(timestamp, message, log_stream, log_group, *, ingestion_time=None, ptr=None,
                 account_id: str | None = None) -> pd.DataFrame:
    """The frame :func:`execute` runs on, from equal-length columns (sequences or arrays; ``log_stream``
    and ``log_group`` may be one string for all): ``timestamp`` and ``ingestion_time`` in epoch ms,
    ``ptr`` the record pointers (default: the row number); ``@log`` is ``account_id:log_group``."""
    ts = np.asarray(timestamp, dtype="int64")
    n = len(ts)
    ingest = ts if ingestion_time is None else np.asarray(ingestion_time, dtype="int64")
    group = _text_column(log_group, n)
    return pd.DataFrame({
        "@timestamp": ts.astype("datetime64[ms]"),
        "@message": _text_column(message, n),
        "@logStream": _text_column(log_stream, n),
        "@log": group if not account_id else (f"{account_id}:" + pd.Series(group)).array,
        "@ingestionTime": ingest.astype("datetime64[ms]"),
        _TS: ts,
        _PTR: np.arange(n, dtype="int64") if ptr is None else np.asarray(ptr),
    })


_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _text_column(values, n: int):
    import pyarrow as pa

    if isinstance(values, str):
        values = pd.Categorical.from_codes(np.zeros(n, dtype="int32"), [values])
    if isinstance(values, pd.Categorical):  # few distinct values (streams, groups): no per-row strings
        return pd.array(pa.DictionaryArray.from_arrays(values.codes.astype("int32"), pa.array(
            list(values.categories), type=pa.large_string())).cast(pa.large_string()), dtype=_STR)
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values if isinstance(values, (list, np.ndarray)) else list(values), type=pa.large_string())
    return pd.array(values, dtype=_STR)


def execute(query: Query | str, events: pd.DataFrame, *, limit: int | None = None) -> Result:
    """Run ``query`` over ``events`` (a frame from :func:`events_frame`; the time range already applied).
    ``limit``: StartQuery's ``limit`` (default 1000), used when the query has no ``limit`` command."""
    if isinstance(query, str):
        query = parse(query)
    if limit is not None and not 1 <= int(limit) <= MAX_LIMIT:
        raise MalformedQueryError(f"limit must be from 1 to {MAX_LIMIT}, not {limit}")
    return _Run(query, events, limit).result()


class _Run:
    def __init__(self, query: Query, events: pd.DataFrame, limit: int | None):
        self.query, self.limit = query, limit
        self.df = events.copy(deep=False)  # columns added here never reach the caller's frame
        self.scanned = len(events)
        self.bytes = _utf8_bytes(events["@message"]) if len(events) else 0
        self.matched: int | None = None
        self.aggregated = False
        self.ordered = False  # an explicit sort happened; else events are served newest first
        self.shown: list[str] = []  # fields named by `fields` / created by `parse`, in order
        self.explicit_fields = False
        self.display: tuple | None = None
        self.json_cache: dict | None = None

    def result(self) -> Result:
        has_limit = any(isinstance(c, Limit) for c in self.query.commands)
        for cmd in self.query.commands:
            getattr(self, "run_" + cmd.name)(cmd)
        if self.matched is None:
            self.matched = len(self.df)
        if not has_limit:
            self._default_order()
            self.df = self.df.iloc[:self.limit or DEFAULT_LIMIT]
        self._default_order()
        self.df = self.df.iloc[:MAX_LIMIT]
        names = self._output_fields()
        rows = _format_rows(self.df, names, with_ptr=not self.aggregated)
        return Result(rows, names, self.matched, self.scanned, self.bytes, self.aggregated)

    def _output_fields(self) -> list[str]:
        if self.display is not None:
            return list(self.display)
        if self.aggregated:
            return [c for c in self.df.columns if not c.startswith("\x00")]
        base = [] if self.explicit_fields else list(DEFAULT_FIELDS)
        return list(dict.fromkeys(base + self.shown))

    def _default_order(self) -> None:
        if not self.ordered and not self.aggregated:
            self.df = self.df.sort_values(_TS, ascending=False, kind="stable")
            self.ordered = True

    # -- commands
    def run_fields(self, cmd: Fields) -> None:
        new = {}
        for expr, name in cmd.items:
            new[name] = self.column(expr)
        for name, values in new.items():
            self.df[name] = values if not np.isscalar(values) else _broadcast(values, self.df)
            self.shown.append(name)
        self.explicit_fields = True

    def run_display(self, cmd: Display) -> None:
        for name in cmd.names:
            if name not in self.df.columns:
                self.df[name] = self.lookup(name)
        self.display = cmd.names

    def run_filter(self, cmd: Filter) -> None:
        mask = self.evaluate(cmd.condition)
        mask = _as_bool(mask, self.df)
        self.df = self.df[mask]
        self.json_cache = None

    def run_parse(self, cmd: Parse) -> None:
        source = self.column(cmd.source)
        source = _to_text(source, self.df)
        extracted = _extract(source, cmd.pattern, len(cmd.names))
        for i, name in enumerate(cmd.names):
            self.df[name] = extracted[i]
            if name not in self.shown:
                self.shown.append(name)

    def run_sort(self, cmd: Sort) -> None:
        keys, ascending = [], []
        work = pd.DataFrame(index=self.df.index)
        for i, (expr, desc) in enumerate(cmd.keys):
            values = self.column(expr)
            work[f"k{i}"] = _sortable(values if not np.isscalar(values) else _broadcast(values, self.df))
            keys.append(f"k{i}")
            ascending.append(not desc)
        order = work.sort_values(keys, ascending=ascending, kind="stable", na_position="last").index
        self.df = self.df.loc[order]
        self.ordered = True

    def run_limit(self, cmd: Limit) -> None:
        self._mark_matched()
        self._default_order()
        self.df = self.df.iloc[:cmd.count]

    def run_dedup(self, cmd: Dedup) -> None:
        self._mark_matched()
        self._default_order()
        cols = {n: (self.df[n] if n in self.df.columns else self.lookup(n)) for n in cmd.names}
        keys = pd.DataFrame(cols, index=self.df.index)
        has_null = keys.isna().any(axis=1).to_numpy()
        keep = has_null | ~keys.duplicated(keep="first").to_numpy()
        self.df = self.df[keep]

    def run_stats(self, cmd: Stats) -> None:
        self._mark_matched()
        df = self.df
        work = pd.DataFrame(index=df.index)
        by_names = []
        for i, (expr, name) in enumerate(cmd.by):
            values = self.column(expr)
            work[f"b{i}"] = values if not np.isscalar(values) else _broadcast(values, df)
            by_names.append(name)
        args, columns = [], {}  # one work column per distinct argument (avg(x), pct(x, 99): one x)
        for call, _name in cmd.aggregates:
            if not call.args or isinstance(call.args[0], Star):
                args.append(None)
                continue
            arg = call.args[0]
            if arg.text not in columns:
                values = self.column(arg)
                columns[arg.text] = f"a{len(columns)}"
                work[columns[arg.text]] = values if not np.isscalar(values) else _broadcast(values, df)
            args.append(columns[arg.text])
        out = _aggregate(work, [f"b{i}" for i in range(len(cmd.by))], cmd.aggregates, args)
        out.columns = [name for _, name in cmd.aggregates] + by_names
        self.df = out[by_names + [name for _, name in cmd.aggregates]].reset_index(drop=True)
        self.aggregated = True
        self.ordered = True
        self.shown, self.explicit_fields, self.json_cache, self.display = [], True, None, None

    def _mark_matched(self) -> None:
        if self.matched is None:
            self.matched = len(self.df)

    # -- expressions
    def column(self, expr: Expr):
        """``expr`` as a Series over the current frame (or a scalar for a constant)."""
        return self.evaluate(expr)

    def lookup(self, name: str):
        if name in self.df.columns:
            return self.df[name]
        if not self.aggregated:
            return self._json_field(name)
        return pd.Series(np.nan, index=self.df.index, dtype="float64")

    def _json_field(self, name: str):
        """A field Logs Insights discovers in JSON log events (dotted path), null elsewhere."""
        if self.json_cache is None:
            msgs = self.df["@message"]
            is_json = msgs.str.startswith("{").fillna(False).to_numpy(dtype=bool)
            self.json_cache = {"rows": np.flatnonzero(is_json), "docs": None, "fields": {}}
            if is_json.any():
                docs = []
                for text in msgs.to_numpy()[is_json]:
                    try:
                        docs.append(_flatten(json.loads(text)))
                    except ValueError:
                        docs.append({})
                self.json_cache["docs"] = docs
        cache = self.json_cache
        if name not in cache["fields"]:
            out = pd.Series(np.nan, index=self.df.index, dtype=object)
            if cache["docs"]:
                vals = [d.get(name) for d in cache["docs"]]
                out.iloc[cache["rows"]] = vals
            present = out.dropna()
            if len(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
                out = out.astype("float64")
            else:
                out = pd.Series(pd.array([None if v is None or (isinstance(v, float) and math.isnan(v))
                                          else _json_text(v) for v in out], dtype=_STR), index=self.df.index)
            cache["fields"][name] = out
        return cache["fields"][name]

    def evaluate(self, expr: Expr):
        if expr.text in self.df.columns and not isinstance(expr, (Literal, Field)):
            return self.df[expr.text]  # e.g. `sort count(*)` after stats, `sort bin(5m)`
        if isinstance(expr, Literal):
            return expr.value
        if isinstance(expr, Field):
            return self.lookup(expr.name)
        if isinstance(expr, Regex):
            raise MalformedQueryError(f"a /regex/ is only allowed after like or =~, not in {expr.text!r}")
        if isinstance(expr, (Duration, ListExpr, Star)):
            raise MalformedQueryError(f"{expr.text!r} is not a value here")
        if isinstance(expr, Unary):
            value = self.evaluate(expr.operand)
            if expr.op == "not":
                return ~_as_bool(value, self.df)
            return -_numeric(value)
        if isinstance(expr, Binary):
            return self.binary(expr)
        if isinstance(expr, Call):
            return self.call(expr)
        raise MalformedQueryError(f"cannot evaluate {expr.text!r}")

    def binary(self, expr: Binary):
        op = expr.op
        if op in ("and", "or"):
            left = _as_bool(self.evaluate(expr.left), self.df)
            right = _as_bool(self.evaluate(expr.right), self.df)
            return (left & right) if op == "and" else (left | right)
        left = self.evaluate(expr.left)
        if op in ("like", "not like"):
            text = _to_text(left, self.df)
            if isinstance(expr.right, Regex):
                hit = _regex_contains(text, expr.right.pattern)
            else:
                hit = text.str.contains(expr.right.value, regex=False)
            hit = hit.fillna(False).astype(bool)
            return ~hit if op == "not like" else hit
        if op in ("in", "not in"):
            items = list(expr.right.items)
            series = left if not np.isscalar(left) else _broadcast(left, self.df)
            if items and all(isinstance(v, (int, float)) for v in items):
                hit = _numeric(series).isin(items)
            else:
                hit = _to_text(series, self.df).isin([_text_of(v) for v in items])
            hit = hit.fillna(False).astype(bool)
            return ~hit if op == "not in" else hit
        right = self.evaluate(expr.right)
        if op in _COMPARISONS:
            return _compare(op, left, right, self.df)
        a, b = _numeric(left), _numeric(right)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return a % b
        if op == "^":
            return a ** b
        raise MalformedQueryError(f"unsupported operator {op!r}")

    def call(self, expr: Call):
        name, args = expr.name, expr.args
        if name in AGGREGATES:
            raise MalformedQueryError(f"aggregate function {name}() is only allowed in stats")
        if name == "bin":
            return _floor_time(self.lookup("@timestamp"), args[0])
        if name in ("datefloor", "dateceil"):
            ts = _as_time(self.evaluate(args[0]), self.df)
            floor = _floor_time(ts, args[1])
            if name == "datefloor":
                return floor
            return floor.where(floor == ts, _ceil_from_floor(floor, args[1]))
        values = [self.evaluate(a) for a in args]
        df = self.df
        if name == "ispresent":
            return _present(values[0], df)
        if name == "isempty":
            return ~_present(values[0], df) | _to_text(values[0], df).eq("").fillna(False).astype(bool)
        if name == "isblank":
            return ~_present(values[0], df) | _to_text(values[0], df).str.strip().eq("").fillna(False).astype(bool)
        if name == "coalesce":
            out = values[0] if not np.isscalar(values[0]) else _broadcast(values[0], df)
            for v in values[1:]:
                out = out.where(out.notna(), v if np.isscalar(v) else v)
            return out
        if name in ("strlen", "toupper", "tolower", "trim", "ltrim", "rtrim"):
            text = _to_text(values[0], df)
            return {"strlen": lambda s: s.str.len().astype("float64"), "toupper": lambda s: s.str.upper(),
                    "tolower": lambda s: s.str.lower(), "trim": lambda s: s.str.strip(),
                    "ltrim": lambda s: s.str.lstrip(), "rtrim": lambda s: s.str.rstrip()}[name](text)
        if name == "substr":
            text = _to_text(values[0], df)
            start = int(values[1])
            stop = start + int(values[2]) if len(values) == 3 else None
            return text.str.slice(start, stop)
        if name == "concat":
            out = _to_text(values[0], df).fillna("")
            for v in values[1:]:
                out = out + _to_text(v, df).fillna("")
            return out
        if name == "replace":
            return _to_text(values[0], df).str.replace(_text_of(values[1]), _text_of(values[2]), regex=False)
        if name == "strcontains":
            hit = _to_text(values[0], df).str.contains(_text_of(values[1]), regex=False)
            return hit.astype("float64").where(hit.notna())
        if name in ("abs", "ceil", "floor"):
            return {"abs": np.abs, "ceil": np.ceil, "floor": np.floor}[name](_numeric(values[0]))
        if name in ("greatest", "least"):
            frame = pd.concat([_broadcast_num(v, df) for v in values], axis=1)
            return frame.max(axis=1) if name == "greatest" else frame.min(axis=1)
        if name == "frommillis":
            return pd.to_datetime(_broadcast_num(values[0], df), unit="ms").astype("datetime64[ms]")
        if name == "tomillis":
            return _epoch_ms(_as_time(values[0], df))
        raise MalformedQueryError(f"unsupported function {name}()")


# ---- value helpers -------------------------------------------------------------------------------
def _broadcast(value, df: pd.DataFrame) -> pd.Series:
    if isinstance(value, str):
        return pd.Series(pd.array([value] * len(df), dtype=_STR), index=df.index)
    if isinstance(value, bool):
        return pd.Series(value, index=df.index, dtype=bool)
    return pd.Series(float(value), index=df.index, dtype="float64")


def _broadcast_num(value, df):
    return _numeric(_broadcast(value, df) if np.isscalar(value) else value)


def _is_text(s) -> bool:
    return isinstance(s, pd.Series) and (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object)


def _is_time(s) -> bool:
    return isinstance(s, pd.Series) and pd.api.types.is_datetime64_dtype(s.dtype)


def _to_text(value, df) -> pd.Series:
    """Any value -> text Series (numbers as Logs Insights prints them, timestamps formatted)."""
    if np.isscalar(value):
        return _broadcast(_text_of(value), df)
    if _is_text(value) and value.dtype == _STR:
        return value
    if _is_time(value):
        return pd.Series(pd.array(_format_time(value), dtype=_STR), index=value.index)
    if value.dtype == bool:
        return pd.Series(pd.array(np.where(value.to_numpy(), "true", "false").astype(object), dtype=_STR),
                         index=value.index)
    if pd.api.types.is_numeric_dtype(value.dtype):
        return pd.Series(pd.array([None if v != v else _num_text(v) for v in value.to_numpy()], dtype=_STR),
                         index=value.index)
    return pd.Series(pd.array(value.to_numpy(dtype=object), dtype=_STR), index=value.index)


def _numeric(value):
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return np.nan
    if _is_time(value):
        return _epoch_ms(value)
    if value.dtype == bool:
        return value.astype("float64")
    if pd.api.types.is_numeric_dtype(value.dtype):
        return value.astype("float64")
    return pd.to_numeric(value, errors="coerce").astype("float64")


def _epoch_ms(ts: pd.Series) -> pd.Series:
    out = ts.astype("datetime64[ms]").astype("int64").astype("float64")
    return out.where(ts.notna())


def _as_time(value, df) -> pd.Series:
    if _is_time(value):
        return value
    if np.isscalar(value):
        value = _broadcast(value, df)
    if pd.api.types.is_numeric_dtype(value.dtype):
        return pd.to_datetime(value, unit="ms").astype("datetime64[ms]")
    return pd.to_datetime(value, errors="coerce", utc=True).dt.tz_localize(None).astype("datetime64[ms]")


def _as_bool(value, df) -> pd.Series:
    if np.isscalar(value):
        return pd.Series(bool(value), index=df.index)
    if value.dtype == bool:
        return value
    if pd.api.types.is_numeric_dtype(value.dtype):
        return value.fillna(0).astype(bool)
    return value.notna() & _to_text(value, df).ne("").fillna(False).astype(bool)


def _present(value, df) -> pd.Series:
    if np.isscalar(value):
        return pd.Series(True, index=df.index)
    return value.notna()


def _text_of(value) -> str:
    if isinstance(value, str):
        return value
    return _num_text(value)


def _num_text(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    value = float(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _compare(op: str, left, right, df) -> pd.Series:
    """Numbers compare as numbers (text fields holding numbers too), timestamps as epoch ms, the
    rest as text; a comparison with a missing value is false."""
    scalar_left, scalar_right = np.isscalar(left), np.isscalar(right)
    if scalar_left and scalar_right:
        return _broadcast(bool(_COMPARE[op](left, right)), df)
    if _is_time(left) or _is_time(right):
        a, b = _time_ms(left, df), _time_ms(right, df)
    elif any(_is_number(v) for v in (left, right)):
        a, b = _numeric(left), _numeric(right)
    else:
        a = left if scalar_left else _to_text(left, df)
        b = right if scalar_right else _to_text(right, df)
    out = _COMPARE[op](a, b)
    return (out & _notna(a) & _notna(b)).fillna(False).astype(bool)


def _is_number(value) -> bool:
    if isinstance(value, pd.Series):
        return value.dtype != bool and pd.api.types.is_numeric_dtype(value.dtype)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _time_ms(value, df):
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return pd.Timestamp(value, tz="UTC").value // 1_000_000
        except ValueError:
            raise MalformedQueryError(f"{value!r} is not a time") from None
    return _epoch_ms(_as_time(value, df))


def _notna(v):
    return v.notna() if isinstance(v, pd.Series) else (v == v)


_COMPARE = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _regex_contains(text: pd.Series, pattern: str) -> pd.Series:
    """pandas runs RE2 (pyarrow) on these strings, and Python's ``re`` for what RE2 refuses."""
    return text.str.contains(pattern, regex=True).fillna(False).astype(bool)


def _extract(text: pd.Series, pattern: str, groups: int) -> list[pd.Series]:
    """Groups ``g0..gN`` of ``pattern``'s first match per row (null where it does not match)."""
    try:
        import pyarrow.compute as pc

        found = pc.extract_regex(pd.array(text, dtype=_STR)._pa_array, pattern)  # noqa: SLF001
        parts = found.combine_chunks().flatten()  # flatten() keeps the struct's nulls
        return [pd.Series(pd.array(parts[i], dtype=_STR), index=text.index) for i in range(groups)]
    except Exception:  # noqa: BLE001 - RE2 refused the pattern (look-around...): Python's re
        frame = text.astype(object).str.extract(pattern, expand=True)
        return [pd.Series(pd.array(frame[f"g{i}"].to_numpy(dtype=object), dtype=_STR), index=text.index)
                for i in range(groups)]


def _floor_time(ts: pd.Series, period: Duration) -> pd.Series:
    ts = ts.astype("datetime64[ms]")
    unit, amount = period.unit, period.amount
    if unit in _UNIT_MS:
        step = int(round(amount * _UNIT_MS[unit]))
        if step <= 0:
            raise MalformedQueryError(f"the time period {period.text!r} must be positive")
        ms = ts.astype("int64")
        return pd.Series(((ms // step) * step).to_numpy().astype("datetime64[ms]"), index=ts.index).where(ts.notna())
    months = {"mo": 1, "q": 3, "y": 12}[unit] * int(amount)
    if months <= 0 or amount != int(amount):
        raise MalformedQueryError(f"the time period {period.text!r} must be a whole positive number")
    index = ts.dt.year * 12 + (ts.dt.month - 1)
    start = (index // months) * months
    out = pd.to_datetime({"year": start // 12, "month": start % 12 + 1, "day": 1}, errors="coerce")
    return pd.Series(out.to_numpy().astype("datetime64[ms]"), index=ts.index)


def _ceil_from_floor(floor: pd.Series, period: Duration) -> pd.Series:
    if period.unit in _UNIT_MS:
        return floor + pd.Timedelta(milliseconds=int(round(period.amount * _UNIT_MS[period.unit])))
    months = {"mo": 1, "q": 3, "y": 12}[period.unit] * int(period.amount)
    return floor + pd.DateOffset(months=months)


def _sortable(values: pd.Series) -> pd.Series:
    """Text that is all numbers sorts as numbers (parsed fields are text)."""
    if _is_text(values):
        num = pd.to_numeric(values, errors="coerce")
        if num.notna().sum() == values.notna().sum() and values.notna().any():
            return num
    if values.dtype == bool:
        return values.astype(int)
    return values


def _aggregate(work: pd.DataFrame, by: list[str], aggregates, args: list) -> pd.DataFrame:
    """One row per group of ``by`` (all rows when empty), one column per aggregate, then the keys."""
    if not len(work):
        return pd.DataFrame({**{f"x{j}": [] for j in range(len(aggregates))}, **{b: [] for b in by}})
    if by:
        keys = [work[b] for b in by]
        codes, uniques = _group_codes(keys)
    else:
        codes, uniques = np.zeros(len(work), dtype="int64"), []
    ngroups = int(codes.max()) + 1 if len(codes) else 0
    out, numbers = {}, {}
    for j, (call, _name) in enumerate(aggregates):
        col = args[j]
        name = call.name
        if name == "count" and col is None:
            out[f"x{j}"] = np.bincount(codes, minlength=ngroups).astype("float64")
            continue
        values = work[col]
        if name == "count":
            out[f"x{j}"] = np.bincount(codes, weights=values.notna().to_numpy(), minlength=ngroups)
            continue
        if name == "count_distinct":
            frame = pd.DataFrame({"g": codes, "v": values.to_numpy()})
            counts = frame.dropna().drop_duplicates().groupby("g").size()
            out[f"x{j}"] = counts.reindex(range(ngroups), fill_value=0).to_numpy().astype("float64")
            continue
        if name in ("min", "max") and (_is_time(values) or (_is_text(values) and _numeric(values).notna().sum()
                                                             < values.notna().sum())):
            grouped = pd.Series(values.to_numpy(), index=codes).groupby(level=0)
            res = (grouped.min() if name == "min" else grouped.max()).reindex(range(ngroups))
            out[f"x{j}"] = res.to_numpy()
            continue
        if col not in numbers:
            numbers[col] = _numeric(values).to_numpy(dtype="float64")
        num = numbers[col]
        s = pd.Series(num, index=codes)
        grouped = s.groupby(level=0)
        if name == "sum":
            res = grouped.sum(min_count=1)
        elif name == "avg":
            res = grouped.mean()
        elif name == "min":
            res = grouped.min()
        elif name == "max":
            res = grouped.max()
        elif name == "stddev":
            res = grouped.std(ddof=1)
        else:  # pct / percentile
            res = _nearest_rank(codes, num, float(call.args[1].value), ngroups)
        out[f"x{j}"] = pd.Series(res).reindex(range(ngroups)).to_numpy() if not isinstance(res, np.ndarray) else res
    frame = pd.DataFrame(out)
    for i, b in enumerate(by):
        frame[b] = uniques[i]
    if by:
        frame = frame.sort_values(by, kind="stable", na_position="last")
    return frame


def _group_codes(keys: list[pd.Series]):
    """A group code per row (nulls form groups too) and each key's value per group code."""
    frame = pd.DataFrame({f"k{i}": k.to_numpy() for i, k in enumerate(keys)})
    codes = frame.groupby(list(frame.columns), dropna=False, sort=False).ngroup().to_numpy()
    first_rows = np.unique(codes, return_index=True)[1]
    return codes, [k.iloc[first_rows].reset_index(drop=True) for k in keys]


def _nearest_rank(codes: np.ndarray, values: np.ndarray, p: float, ngroups: int) -> np.ndarray:
    ok = ~np.isnan(values)
    codes, values = codes[ok], values[ok]
    out = np.full(ngroups, np.nan)
    if not len(values):
        return out
    order = np.lexsort((values, codes))
    codes, values = codes[order], values[order]
    counts = np.bincount(codes, minlength=ngroups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    present = counts > 0
    rank = np.maximum(1, np.ceil(p / 100.0 * counts)).astype("int64")
    rank = np.minimum(rank, counts)
    out[present] = values[starts[present] + rank[present] - 1]
    return out


def _flatten(doc, prefix: str = "") -> dict:
    out = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.update(_flatten(v, f"{prefix}{i}."))
    elif prefix:
        out[prefix[:-1]] = doc
    return out


def _json_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _num_text(v)
    return str(v)


def _utf8_bytes(messages: pd.Series) -> int:
    try:
        import pyarrow.compute as pc

        return int(pc.sum(pc.binary_length(pd.array(messages, dtype=_STR)._pa_array)).as_py() or 0)  # noqa: SLF001
    except Exception:  # noqa: BLE001
        return int(sum(len(m.encode()) for m in messages.dropna()))


def _format_time(ts: pd.Series) -> np.ndarray:
    text = ts.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    return np.array([None if not isinstance(v, str) else v[:-3] for v in text.to_numpy(dtype=object)], dtype=object)


def _format_column(values: pd.Series) -> list:
    if _is_time(values):
        return list(_format_time(values))
    if values.dtype == bool:
        return ["true" if v else "false" for v in values.to_numpy()]
    if pd.api.types.is_numeric_dtype(values.dtype) and not _is_text(values):
        return [None if v != v else _num_text(v) for v in values.to_numpy()]
    out = []
    for v in values.to_numpy(dtype=object):
        if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
            out.append(None)
        elif isinstance(v, (pd.Timestamp, np.datetime64)):
            out.append(pd.Timestamp(v).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out.append(_num_text(v))
        else:
            out.append(str(v))
    return out


def _format_rows(df: pd.DataFrame, names: list[str], *, with_ptr: bool) -> list:
    columns = []
    for name in names:
        values = df[name] if name in df.columns else pd.Series(np.nan, index=df.index)
        columns.append((name, _format_column(values)))
    if with_ptr and _PTR in df.columns:
        columns.append(("@ptr", [str(v) for v in df[_PTR].to_numpy()]))
    rows = []
    for i in range(len(df)):
        rows.append([{"field": name, "value": col[i]} for name, col in columns if col[i] is not None])
    return rows
