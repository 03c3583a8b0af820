"""One timeline across sources: change events, alarms and detected onsets in one sorted frame, and
"what changed just before it started?".

Every frame becomes the change-event contract ``[timestamp, source, resource, kind, message]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .. import contracts
from ..window import iso

COLUMNS = list(contracts.EVENT_COLUMNS)
CHANGE_KINDS = contracts.CHANGE_KINDS


def empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.Series(dtype=contracts.TS_DTYPE),
            **{c: pd.Series(dtype="str") for c in COLUMNS[1:]},
        }
    )


def _utc(values) -> pd.Series:
    ts = pd.to_datetime(values, utc=True, errors="coerce")
    return pd.Series(ts).astype(contracts.TS_DTYPE).reset_index(drop=True)


def _fmt(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.4g}"


def onsets_as_events(onsets: pd.DataFrame, source: str = "onset", resource: str = "") -> pd.DataFrame:
    """Episodes from :func:`forensics.analysis.onset.find_onsets` as timeline events (kind ``onset``)."""
    if onsets is None or onsets.empty:
        return empty()
    rows = []
    for _, r in onsets.iterrows():
        rows.append(
            {
                "timestamp": r["start"],
                "source": source,
                "resource": resource,
                "kind": contracts.ONSET,
                "message": (
                    f"departure from baseline {_fmt(r.get('baseline'))} to {_fmt(r.get('peak'))} "
                    f"until {iso(r['end'])} (score {_fmt(r.get('score'))})"
                ),
            }
        )
    return _contract(pd.DataFrame(rows))


def _alarms(frame: pd.DataFrame) -> pd.DataFrame:
    """CloudWatch alarm history (DescribeAlarmHistory items, raw or snake_cased) as events."""
    cols = {c.lower().replace("_", ""): c for c in frame.columns}
    ts = cols.get("timestamp")
    name = cols.get("alarmname")
    summary = cols.get("historysummary") or cols.get("summary") or cols.get("message")
    item = cols.get("historyitemtype")
    out = pd.DataFrame(
        {
            "timestamp": frame[ts].to_numpy(),
            "source": "cloudwatch",
            "resource": frame[name].to_numpy(),
            "kind": contracts.ALARM if item is None
            else (contracts.ALARM + "-" + frame[item].astype(str).str.lower()).to_numpy(),
            "message": frame[summary].to_numpy() if summary else frame[name].to_numpy(),
        }
    )
    return out


def _contract(frame: pd.DataFrame) -> pd.DataFrame:
    """The five contract columns, typed; missing source/resource/kind become empty strings."""
    out = pd.DataFrame({"timestamp": _utc(frame["timestamp"])})
    for col in COLUMNS[1:]:
        values = frame[col].reset_index(drop=True) if col in frame else pd.Series([""] * len(frame))
        out[col] = values.astype("str").fillna("")
    return out


def _as_events(frame: pd.DataFrame) -> pd.DataFrame:
    lowered = {c.lower().replace("_", "") for c in frame.columns}
    if {"start", "end", "score"} <= set(frame.columns):
        return onsets_as_events(frame)
    if "alarmname" in lowered and "timestamp" in lowered:
        return _contract(_alarms(frame))
    if "timestamp" not in frame.columns:
        raise ValueError(f"not a timeline frame (no timestamp column): {list(frame.columns)}")
    return _contract(frame)


def merge(*frames: pd.DataFrame | None) -> pd.DataFrame:
    """All events of ``frames`` in one frame, sorted by time (undated ones last), exact duplicates
    removed. Accepts change-event frames (extra columns are dropped), ``find_onsets`` output and
    CloudWatch alarm history; ``None`` and empty frames are skipped."""
    parts = [_as_events(f) for f in frames if f is not None and len(f)]
    if not parts:
        return empty()
    out = pd.concat(parts, ignore_index=True)
    out = out.drop_duplicates(COLUMNS)
    out = out.sort_values(["timestamp", "source", "resource", "kind"], kind="stable", na_position="last")
    return out.reset_index(drop=True)


def change_before(
    events: pd.DataFrame,
    t,
    lookback: str | pd.Timedelta = "60min",
    kinds: Iterable[str] = CHANGE_KINDS,
    slack: str | pd.Timedelta = "0s",
) -> pd.Series | None:
    """The change most likely behind an onset at ``t``: among events in ``[t - lookback, t + slack]``,
    the latest of the first kind in ``kinds`` that has any (deployments first). ``slack`` admits an
    event inside the onset's own period (an onset at 09:05 stands for the minute 09:05-09:06).
    ``None`` when nothing of those kinds happened in the lookback."""
    if t is None or events is None or events.empty:
        return None
    t = pd.Timestamp(t)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    ev = merge(events)
    ev = ev[(ev["timestamp"] >= t - pd.Timedelta(lookback)) & (ev["timestamp"] <= t + pd.Timedelta(slack))]
    for kind in kinds:
        sel = ev[ev["kind"] == kind]
        if len(sel):
            return sel.iloc[-1]
    return None


def describe(event: pd.Series | None) -> dict | None:
    """A JSON-ready summary of one event (for findings): time as ISO-8601 UTC."""
    if event is None:
        return None
    return {
        "time": iso(event["timestamp"]),
        "source": str(event.get("source", "")),
        "resource": str(event.get("resource", "")),
        "kind": str(event.get("kind", "")),
        "message": str(event.get("message", "")),
    }
