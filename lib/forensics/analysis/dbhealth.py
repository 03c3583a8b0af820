"""Database health beyond connections: storage running out, a lagging replica, a schema that is not
where the code expects it (alembic head, enum values). Pure functions; the db-health notebook calls them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: beyond ten years the "trend" is noise
MAX_HOURS = 24 * 365 * 10


def storage_hours_to_full(free_bytes: pd.Series, lookback: str | pd.Timedelta = "2h",
                          min_points: int = 10) -> dict:
    """Hours until ``FreeStorageSpace`` reaches zero at the rate it fell over the last ``lookback``
    (least-squares slope). ``hours_to_full`` is None when storage is not falling (or too few points);
    also ``free_gib_now``, ``rate_gib_per_hour`` (negative: falling) and ``full_at``."""
    s = free_bytes.dropna().sort_index()
    out = {"hours_to_full": None, "free_gib_now": None, "rate_gib_per_hour": None, "full_at": None}
    if s.empty:
        return out
    s = s[s.index >= s.index.max() - pd.Timedelta(lookback)]
    gib = s / 2**30
    out["free_gib_now"] = round(float(gib.iloc[-1]), 3)
    if len(s) < min_points:
        return out
    hours = (s.index - s.index[0]).total_seconds().to_numpy() / 3600.0
    slope, intercept = np.polyfit(hours, gib.to_numpy(dtype=float), 1)
    out["rate_gib_per_hour"] = round(float(slope), 4)
    if slope >= 0:
        return out
    now_fit = slope * hours[-1] + intercept
    h = max(float(now_fit) / -float(slope), 0.0)
    if h > MAX_HOURS:  # flat within rounding: not running out
        return out
    out["hours_to_full"] = round(h, 2)
    out["full_at"] = (s.index[-1] + pd.Timedelta(hours=h)).floor("min")
    return out


def lag_peak(lag_seconds: pd.Series) -> dict:
    """The replica lag's peak (seconds) and when; ``above_60s_minutes``: how long it stayed above a minute."""
    s = lag_seconds.dropna()
    if s.empty:
        return {"peak_s": None, "at": None, "above_60s_minutes": 0}
    return {"peak_s": float(s.max()), "at": s.idxmax(), "above_60s_minutes": int((s > 60).sum())}


def schema_at_head(alembic: pd.DataFrame, expected_head: str | None) -> dict:
    """Is the database at the alembic revision the code expects? ``at_head`` is None when the
    environment names no expected head (nothing to compare with)."""
    found = [] if alembic is None or alembic.empty else [v for v in alembic["version_num"].dropna().astype(str)]
    exists = bool(alembic["table_exists"].iloc[0]) if alembic is not None and len(alembic) else False
    at_head = None if not expected_head else (found == [expected_head])
    return {"at_head": at_head, "current": found[0] if len(found) == 1 else (found or None),
            "expected": expected_head, "table_exists": exists}


def enum_drift(enums: pd.DataFrame, expected: Mapping[str, list] | None) -> dict:
    """For every enum type the environment lists: the values the code expects that the database lacks
    (``missing``) and the ones the database has that the code does not know (``unexpected``). Only types
    with a difference are listed; a type the database does not have at all is ``{"missing_type": true}``.
    ``type`` may be ``schema.type``; a bare name matches the type in any schema."""
    out: dict[str, dict] = {}
    for name, values in (expected or {}).items():
        if "." in name:
            schema, typ = name.split(".", 1)
            sel = enums[(enums["schema"] == schema) & (enums["type"] == typ)]
        else:
            sel = enums[enums["type"] == name]
        if sel.empty:
            out[name] = {"missing_type": True, "missing": list(values), "unexpected": []}
            continue
        have = sel.sort_values("sort_order")["value"].astype(str).tolist()
        missing = [v for v in values if v not in have]
        unexpected = [v for v in have if v not in values]
        if missing or unexpected:
            out[name] = {"missing": missing, "unexpected": unexpected}
    return out
