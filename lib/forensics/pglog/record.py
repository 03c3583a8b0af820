"""From the captured log (``pg_log_export``: CloudWatch events of RDS/Aurora, or the lines of self-hosted
files) to the entries and the frames of :mod:`.extract`, read once per process."""

from __future__ import annotations

import pandas as pd

from . import extract, reader
from .prefix import RDS_PREFIX

_CACHE: dict = {}


def entries_of(export: pd.DataFrame, prefix: str | None = None) -> pd.DataFrame:
    """Entries of a ``pg_log_export`` frame: files (``log_stream`` the format) parsed file by file, CloudWatch
    events (their own times filling in) with ``prefix`` (default RDS's)."""
    if export is None or not len(export):
        return reader.empty()
    frames = []
    streams = export["log_stream"].fillna("") if "log_stream" in export else pd.Series("", index=export.index)
    is_file = streams.isin(["stderr", "csvlog", "jsonlog", "rds"]) & export["timestamp"].isna()
    files = export[is_file]
    for (group, fmt), g in files.groupby(["log_group", streams[is_file]], sort=False):
        text = "\n".join(g["message"].astype(str).tolist()) + "\n"
        fmt_prefix = (prefix or RDS_PREFIX) if fmt == "rds" else prefix
        frames.append(reader.parse(text.encode("utf-8", "replace"), fmt, fmt_prefix))
    events = export[~is_file]
    if len(events):
        frames.append(reader.parse_events(events.sort_values("timestamp", kind="stable"), prefix))
    frames = [f for f in frames if len(f)]
    if not frames:
        return reader.empty()
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


def analysed(export: pd.DataFrame, prefix: str | None = None, window=None) -> dict[str, pd.DataFrame]:
    """:func:`forensics.pglog.extract.analyse` of the export (entries outside ``window`` left out), cached
    on the frame's identity so the captures derived from one export parse it once."""
    key = (id(export), len(export), prefix, None if window is None else (window.start, window.end))
    hit = _CACHE.get("key")
    if hit == key:
        return _CACHE["value"]
    entries = entries_of(export, prefix)
    if window is not None and len(entries):
        ts = entries["timestamp"]
        entries = entries[ts.isna() | ((ts >= window.start) & (ts <= window.end))].reset_index(drop=True)
    value = extract.analyse(entries)
    value["entries"] = entries
    value["summary"] = extract.summary_counts(entries, value)
    _CACHE.clear()
    _CACHE.update(key=key, value=value, ref=export)
    return value
