"""The Logs Insights QL parser: text -> :class:`~.syntax.Query`, refusing with
:class:`~.syntax.MalformedQueryError` what AWS would refuse or this engine does not run."""

from __future__ import annotations


from .syntax import (
    AGGREGATES, Binary, Call, Command, Dedup, Display, Duration, Expr, FUNCTIONS, Field, Fields, Filter,
    KNOWN_UNSUPPORTED, Limit, ListExpr, Literal, MAX_LIMIT, MalformedQueryError, Parse, Query, Regex,
    SUPPORTED_COMMANDS, Sort, Star, Stats, Token, Unary, _COMPARISONS, _KEYWORDS, _UNITS, _children,
    _compile, _glob_to_regex, _named_groups, _to_python_regex, _walk, tokenize,
)


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
