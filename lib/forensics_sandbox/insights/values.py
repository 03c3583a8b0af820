"""The engine's vectorised value helpers: broadcasting, text/number/time coercion, comparisons, regex
matching, time floors, aggregation (stats) and the result's text formatting."""

from __future__ import annotations


import numpy as np
import pandas as pd

from .syntax import Duration, MalformedQueryError, _PTR, _UNIT_MS


_STR = pd.StringDtype("pyarrow", na_value=np.nan)


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
