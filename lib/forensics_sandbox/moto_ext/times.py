"""Timestamps as moto and the AWS APIs hand them over, as aware UTC datetimes."""

from __future__ import annotations

import datetime as dt


def utc(value) -> dt.datetime | None:
    """ISO-8601 text or a datetime -> aware UTC (naive values are UTC: moto stamps ``utcnow()``)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def epoch_utc(value) -> dt.datetime | None:
    """As :func:`utc`, also taking epoch seconds (how JSON APIs send times)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    return utc(value)


def aware(ts) -> dt.datetime:
    """pandas/datetime -> aware UTC datetime (what moto's serializers format correctly)."""
    if hasattr(ts, "to_pydatetime"):
        ts = ts.to_pydatetime()
    return utc(ts)
