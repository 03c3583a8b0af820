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

The package: :mod:`.syntax` (tokens, the tree, the language's names), :mod:`.parser` (text -> tree),
:mod:`.engine` (tree x events -> result) and :mod:`.values` (the engine's vectorised helpers).
"""

from __future__ import annotations

from .engine import Result, events_frame, execute
from .parser import parse
from .syntax import (
    AGGREGATES, DEFAULT_FIELDS, DEFAULT_LIMIT, FUNCTIONS, KNOWN_UNSUPPORTED, MAX_LIMIT, SUPPORTED_COMMANDS,
    Binary, Call, Command, Dedup, Display, Duration, Expr, Field, Fields, Filter, Limit, ListExpr, Literal,
    MalformedQueryError, Parse, Query, Regex, Sort, Star, Stats, Token, Unary, _to_python_regex, tokenize,
)

__all__ = [
    "AGGREGATES", "DEFAULT_FIELDS", "DEFAULT_LIMIT", "FUNCTIONS", "KNOWN_UNSUPPORTED", "MAX_LIMIT",
    "SUPPORTED_COMMANDS", "Binary", "Call", "Command", "Dedup", "Display", "Duration", "Expr", "Field", "Fields",
    "Filter", "Limit", "ListExpr", "Literal", "MalformedQueryError", "Parse", "Query", "Regex", "Result", "Sort",
    "Star", "Stats", "Token", "Unary", "events_frame", "execute", "parse", "tokenize",
]
