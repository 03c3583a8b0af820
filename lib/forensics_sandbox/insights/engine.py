"""The Logs Insights engine: a parsed query run command by command over a frame of log events
(:func:`execute`), answering in GetQueryResults' shape (:class:`Result`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .parser import parse
from .syntax import (
    AGGREGATES, Binary, Call, DEFAULT_FIELDS, DEFAULT_LIMIT, Dedup, Display, Duration, Expr, Field,
    Fields, Filter, Limit, ListExpr, Literal, MAX_LIMIT, MalformedQueryError, Parse, Query, Regex, Sort,
    Star, Stats, Unary, _COMPARISONS, _PTR, _TS,
)
from .values import (
    _STR, _aggregate, _as_bool, _as_time, _broadcast, _broadcast_num, _ceil_from_floor, _compare,
    _epoch_ms, _extract, _flatten, _floor_time, _format_rows, _json_text, _numeric, _present,
    _regex_contains, _sortable, _text_of, _to_text, _utf8_bytes,
)


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
