from __future__ import annotations

import time

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from forensics import charts
from forensics.window import IncidentWindow

WINDOW = IncidentWindow("2026-05-30T09:00:00Z", "2026-05-30T10:00:00Z")


def minutes(n=180, start="2026-05-30T08:00:00Z", seed=0) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(10, 1, n), index=pd.date_range(start, periods=n, freq="1min"), name="cpu")


def test_downsample_keeps_spike_and_dip():
    idx = pd.date_range("2026-05-30T00:00:00Z", periods=100_000, freq="1s")
    s = pd.Series(np.random.default_rng(1).normal(0, 1, len(idx)), index=idx)
    s.iloc[54_321] = 1_000.0
    s.iloc[77_777] = -1_000.0
    d = charts.downsample(s, 2000)
    assert len(d) <= 2000
    assert d.max() == 1_000.0 and d.idxmax() == idx[54_321]
    assert d.min() == -1_000.0
    assert d.index.is_monotonic_increasing
    short = minutes(50)
    assert charts.downsample(short).equals(short)


def test_timeseries_long_window_is_downsampled_and_fast():
    idx = pd.date_range("2026-05-29T00:00:00Z", periods=200_000, freq="1s")
    frame = pd.DataFrame({"a": np.ones(len(idx)), "b": np.zeros(len(idx))}, index=idx)
    frame.iloc[150_000, 0] = 42.0
    started = time.perf_counter()
    fig = charts.timeseries(frame, window=WINDOW, title="long", ylabel="x")
    ax = fig.axes[0]
    data_lines = [ln for ln in ax.lines if ln.get_label() in ("a", "b")]
    assert len(data_lines) == 2
    assert all(len(ln.get_xdata()) <= charts.MAX_POINTS for ln in data_lines)
    assert max(data_lines[0].get_ydata()) == 42.0
    assert time.perf_counter() - started < 5


def test_house_style_window_onset_events_utc():
    onset = pd.Timestamp("2026-05-30T09:05:00Z")
    events = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2026-05-30T09:00:00Z", "2026-05-30T09:02:00Z", "2026-05-01T00:00:00Z"]
            ),
            "source": "ecs",
            "resource": "prod/api",
            "kind": ["deployment", "service-event", "deployment"],  # the last one is out of view
            "message": ["api:42 PRIMARY", "has started 2 tasks", "api:41"],
        }
    )
    fig = charts.timeseries(
        minutes(),
        window=WINDOW,
        title="CPU",
        ylabel="%",
        onset=onset,
        events=events,
        markers=[(pd.Timestamp("2026-05-30T09:40:00Z"), "rollback")],
    )
    assert isinstance(fig, Figure)
    assert tuple(fig.get_size_inches()) == charts.FIGSIZE and fig.dpi == charts.DPI
    ax = fig.axes[0]
    # The incident window is shaded over exactly its extent.
    spans = [p for p in ax.patches if p.get_label() == "incident window"]
    assert len(spans) == 1
    x0, x1 = spans[0].get_x(), spans[0].get_x() + spans[0].get_width()
    assert x0 == pytest.approx(mdates.date2num(np.datetime64("2026-05-30T09:00:00")))
    assert x1 == pytest.approx(mdates.date2num(np.datetime64("2026-05-30T10:00:00")))
    # The onset is a red vertical line at the onset.
    red = [ln for ln in ax.lines if ln.get_color() == "red"]
    assert len(red) == 1
    assert red[0].get_xdata()[0] == pytest.approx(mdates.date2num(np.datetime64("2026-05-30T09:05:00")))
    # Changes are dashed; only the ones in view are drawn; the deployment and the marker are labelled.
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 3
    texts = [t.get_text() for t in ax.texts]
    assert any("deploy api:42" in t for t in texts)
    assert any("rollback" in t for t in texts)
    assert not any("has started" in t for t in texts)
    assert ax.get_xlabel() == "UTC"
    assert ax.get_title(loc="left") == "CPU"


def test_tick_labels_are_utc_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        fig = charts.timeseries(minutes(60, start="2026-05-30T09:00:00Z"), title="t", ylabel="y")
        fig.canvas.draw()
        labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
        assert "09:30" in labels, labels
        assert isinstance(fig.axes[0].xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_long_metrics_frame_and_given_axes():
    idx = pd.date_range("2026-05-30T09:00:00Z", periods=10, freq="1min")
    long = pd.concat(
        [
            pd.DataFrame({"timestamp": idx, "id": "a", "label": "p50", "value": 1.0}),
            pd.DataFrame({"timestamp": idx, "id": "b", "label": "p99", "value": 3.0}),
        ]
    )
    fig, ax = charts.new_figure()
    out = charts.timeseries(long, title="latency", ylabel="s", ax=ax)
    assert out is fig
    assert sorted(ln.get_label() for ln in ax.lines) == ["p50", "p99"]


def test_empty_series_says_no_data():
    empty = pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    fig = charts.timeseries(empty, window=WINDOW, title="nothing", ylabel="")
    assert any(t.get_text() == "no data" for t in fig.axes[0].texts)


def test_limit_line_in_view():
    fig = charts.timeseries(minutes(), title="connections", ylabel="n")
    ax = fig.axes[0]
    line = charts.limit_line(ax, 100, "max_connections")
    assert line.get_ydata()[0] == 100 and line.get_label() == "max_connections"
    assert ax.get_ylim()[1] > 100
    assert any("max_connections 100" in t.get_text() for t in ax.texts)


def test_bar_largest_on_top_and_png_repr():
    fig = charts.bar(pd.Series({"b": 4, "a": 120, "c": 9}), "Top", xlabel="count")
    ax = fig.axes[0]
    bars = sorted(ax.patches, key=lambda r: -r.get_y())  # top first
    assert [r.get_width() for r in bars] == [120, 9, 4]
    by_height = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
    assert [label for _, label in by_height] == ["a", "c", "b"]
    assert fig._repr_png_().startswith(b"\x89PNG")
