"""Series that mean zero are zero: Logs Insights returns no row for a minute without events; the
per-minute frames charted are filled over the window, so a sparse stream is not drawn as a flat line."""

import pandas as pd

from forensics.analysis import log_change, log_counts
from forensics.window import IncidentWindow

T0 = pd.Timestamp("2026-05-30T09:00:00Z")
WINDOW = IncidentWindow(T0, T0 + pd.Timedelta(minutes=70))


def sparse(n=13):
    """13 events in 70 minutes, one a minute at irregular minutes: what Insights returns (no zero rows)."""
    minutes = [T0 + pd.Timedelta(minutes=m) for m in (2, 3, 9, 15, 16, 22, 30, 41, 42, 50, 58, 63, 69)[:n]]
    return minutes


def test_a_sparse_rate_is_zero_between_its_events():
    rate = pd.DataFrame({"minute": sparse(), "log_group": "/ecs/app", "events": 1})
    wide = log_counts.rate_per_minute(rate, WINDOW)
    assert len(wide) == 70 and wide.index[0] == T0 and wide.index[-1] == T0 + pd.Timedelta(minutes=69)
    col = wide["/ecs/app"]
    assert col.sum() == 13 and (col == 0).sum() == 57  # not a flat line at 1 a minute
    assert col[T0 + pd.Timedelta(minutes=4)] == 0


def test_per_minute_by_hit_and_the_signatures_chart_are_filled_too():
    kinds = pd.DataFrame({"minute": sparse(3), "hit": ["transport closed"] * 3, "events": [2, 1, 5],
                          "first_event": sparse(3), "last_event": sparse(3)})
    wide = log_counts.per_minute(kinds, window=WINDOW)
    assert len(wide) == 70 and wide["transport closed"].sum() == 8
    counts = pd.DataFrame({"minute": sparse(3), "signature": ["a"] * 3, "events": [1, 1, 1]})
    top = log_change.per_minute_wide(counts, ["a"], window=WINDOW)
    assert len(top) == 70 and top["a"].sum() == 3


def test_without_a_window_the_gaps_inside_are_filled_and_nothing_is_invented():
    rate = pd.DataFrame({"minute": [T0, T0 + pd.Timedelta(minutes=5)], "log_group": "g", "events": [3, 4]})
    wide = log_counts.rate_per_minute(rate)
    assert list(wide["g"]) == [3, 0, 0, 0, 0, 4]
    assert log_counts.rate_per_minute(rate.iloc[0:0], WINDOW).empty  # no series: "no data", not a zero line
