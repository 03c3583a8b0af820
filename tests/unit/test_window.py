import pandas as pd
import pytest

from forensics.errors import WindowError
from forensics.window import IncidentWindow, iso

NOW = pd.Timestamp("2026-11-23T12:00:00Z")


def test_window_converts_offsets_to_utc():
    w = IncidentWindow("2026-11-23T10:00:00+01:00", "2026-11-23T11:30:00Z")
    assert w.start == pd.Timestamp("2026-11-23T09:00:00Z")
    assert iso(w.start) == "2026-11-23T09:00:00Z"
    assert w.duration == pd.Timedelta(minutes=150)


@pytest.mark.parametrize("start, end, period", [
    ("2026-11-23T09:00:00Z", "2026-11-23T12:00:00Z", 60),      # recent: 1-minute data
    ("2026-11-01T09:00:00Z", "2026-11-01T12:00:00Z", 300),     # 22 days old: 5-minute data only
    ("2026-07-01T09:00:00Z", "2026-07-01T12:00:00Z", 3600),    # 145 days old: 1-hour data only
    ("2026-11-20T00:00:00Z", "2026-11-23T12:00:00Z", 300),     # 3.5 days at 1 min > 1440 points
])
def test_period_follows_retention_and_point_budget(start, end, period):
    assert IncidentWindow(start, end).period(now=NOW) == period


def test_retention_refuses_windows_cloudwatch_no_longer_has():
    with pytest.raises(WindowError, match="older than CloudWatch metrics retention"):
        IncidentWindow("2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z").check_retention(now=NOW)
    IncidentWindow("2026-11-23T00:00:00Z", "2026-11-23T01:00:00Z").check_retention(now=NOW)


def test_padded_and_contains():
    w = IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z").padded(before="30min")
    assert w.contains("2026-11-23T08:45:00Z")
    assert not w.contains("2026-11-23T10:00:00Z")
