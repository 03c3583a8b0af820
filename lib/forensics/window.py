"""The incident window: two tz-aware UTC timestamps, and the CloudWatch periods they allow.

CloudWatch keeps 1-minute datapoints for 15 days, 5-minute for 63 days and 1-hour for 455 days
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#metrics-retention).
A window whose start is older than a resolution's retention can only be read at a coarser period;
a window older than 455 days cannot be read at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from .errors import WindowError

#: (maximum age of the window start, smallest period in seconds available at that age)
RETENTION = (
    (pd.Timedelta(hours=3), 1),  # high-resolution custom metrics only; standard metrics fall to 60
    (pd.Timedelta(days=15), 60),
    (pd.Timedelta(days=63), 300),
    (pd.Timedelta(days=455), 3600),
)
MAX_RETENTION = RETENTION[-1][0]
#: GetMetricData returns at most 100,800 datapoints per query; stay well under for charts.
MAX_POINTS_PER_SERIES = 1440


def to_utc(value, what: str = "timestamp") -> pd.Timestamp:
    """Parse an ISO-8601 string, datetime or Timestamp to a tz-aware UTC Timestamp.

    A naive value is refused: an incident time without an offset is ambiguous at 3 a.m.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise WindowError(f"{what} is empty")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise WindowError(f"{what} {value!r} is not an ISO-8601 timestamp") from exc
    if ts is pd.NaT:
        raise WindowError(f"{what} {value!r} is not a timestamp")
    if ts.tzinfo is None:
        raise WindowError(f"{what} {value!r} has no timezone; write it in UTC, e.g. 2026-05-30T09:00:00Z")
    return ts.tz_convert("UTC")


@dataclass(frozen=True)
class IncidentWindow:
    """[start, end) of an incident in UTC."""

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self):
        object.__setattr__(self, "start", to_utc(self.start, "window start"))
        object.__setattr__(self, "end", to_utc(self.end, "window end"))
        if self.end <= self.start:
            raise WindowError(f"window end {self.end.isoformat()} is not after start {self.start.isoformat()}")

    @property
    def duration(self) -> pd.Timedelta:
        return self.end - self.start

    def padded(self, before="0min", after="0min") -> "IncidentWindow":
        """The window widened, e.g. to see the baseline before the onset."""
        return IncidentWindow(self.start - pd.Timedelta(before), self.end + pd.Timedelta(after))

    def check_retention(self, now: pd.Timestamp | None = None) -> None:
        """Refuse a window CloudWatch can no longer serve (longer or older than 455 days)."""
        now = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
        if self.duration > MAX_RETENTION:
            raise WindowError(
                f"window of {self.duration.days} days is longer than CloudWatch metrics retention (455 days)"
            )
        if now - self.start > MAX_RETENTION:
            raise WindowError(
                f"window start {self.start.isoformat()} is older than CloudWatch metrics retention (455 days)"
            )

    def period(self, now: pd.Timestamp | None = None, max_points: int = MAX_POINTS_PER_SERIES) -> int:
        """The smallest standard CloudWatch period (60, 300, 3600 s or a multiple) that is both still
        retained for this window's start and keeps each series under ``max_points``."""
        now = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
        age = now - self.start
        smallest = None
        for max_age, period in RETENTION[1:]:
            if age <= max_age:
                smallest = period
                break
        if smallest is None:
            raise WindowError(
                f"window start {self.start.isoformat()} is older than CloudWatch metrics retention (455 days)"
            )
        seconds = self.duration.total_seconds()
        period = smallest
        for candidate in (60, 300, 900, 3600, 21600, 86400):
            if candidate < smallest:
                continue
            period = candidate
            if seconds / candidate <= max_points:
                break
        return period

    def contains(self, ts) -> bool:
        ts = to_utc(ts)
        return self.start <= ts < self.end

    def as_dict(self) -> dict:
        return {"start": iso(self.start), "end": iso(self.end)}

    def __str__(self) -> str:
        return f"{iso(self.start)} → {iso(self.end)} ({_human(self.duration)})"


# ---- windows derived from the incident's (the session reads them with the environment's settings) ----------
def context(window: IncidentWindow, before) -> IncidentWindow:
    """The window with ``before`` ahead of it: metrics and logs are read over this so the baseline before the
    incident shows."""
    return window.padded(before=before)


def baseline(window: IncidentWindow, hours: int) -> IncidentWindow:
    """The ``hours`` before the window: what "known" principals, addresses and clients means."""
    return IncidentWindow(window.start - pd.Timedelta(hours=hours), window.start)


def baseline_days(window: IncidentWindow, days: int) -> IncidentWindow:
    """The ``days`` before the window: the behaviour baseline of the trail's actors."""
    return IncidentWindow(window.start - pd.Timedelta(days=days), window.start)


def lookback(window: IncidentWindow, hours: int, at_least: IncidentWindow) -> IncidentWindow:
    """The ``hours`` up to the window's end, never starting later than ``at_least`` (e.g. backups: a daily job
    that failed last night is outside an hour-long incident window)."""
    return IncidentWindow(min(window.end - pd.Timedelta(hours=hours), at_least.start), window.end)


def heartbeat_span(window: IncidentWindow, context_before, longest_overdue) -> IncidentWindow:
    """The window with, before it, ``context_before`` or two overdue spans of the slowest job, the longer (so a
    daily job's last run before the window is seen)."""
    return window.padded(before=max(pd.Timedelta(context_before), 2 * pd.Timedelta(longest_overdue)))


def iso(ts) -> str | None:
    """ISO-8601 UTC with a Z, to the second: the one way timestamps are written in findings."""
    if ts is None or ts is pd.NaT:
        return None
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _human(td: pd.Timedelta) -> str:
    minutes = int(td.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h"


def utcnow() -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.now(dt.timezone.utc))
