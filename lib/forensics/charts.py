"""The house style for every chart in a record, so that charts from different notebooks and
incidents read the same way: UTC time axis (labelled so: no reader should wonder which zone), the
incident window shaded, the onset as a red line, changes as dashed lines with short labels.

Figures are created without pyplot: nothing is registered globally, so a batch run does not
accumulate open figures, and a notebook shows a chart once, when it is returned (``_repr_png_``:
a bare matplotlib Figure shows as text in a kernel whose inline backend was never activated).
Long series are reduced to at most ``MAX_POINTS`` per line by keeping each bucket's minimum and
maximum, so a spike survives the reduction.

matplotlib is imported when the first chart is drawn, not with this module: a notebook's first cell
imports it, and what that cell costs delays the captures' prefetch (issue 22).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .window import IncidentWindow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

FIGSIZE = (10.0, 4.2)
BAR_FIGSIZE = (10.0, 4.8)
DPI = 110
MAX_POINTS = 2000
TITLE_SIZE = 12
LABEL_SIZE = 10
TICK_SIZE = 9
NOTE_SIZE = 8
WINDOW_COLOR = "#f2b134"
ONSET_COLOR = "red"
CHANGE_COLOR = "#555555"
LIMIT_COLOR = "darkred"
#: Event kinds that get a labelled marker; others get a thin unlabelled one.
LABELLED_KINDS = (
    "deployment",
    "rollback",
    "task-definition",
    "config-change",
    "parameter-change",
    "rds-event",
    "onset",
)
MAX_EVENT_LINES = 60
MAX_EVENT_LABELS = 8
_UTC = "UTC"


def _utc_index(index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return idx.tz_localize(_UTC) if idx.tz is None else idx.tz_convert(_UTC)


def _num(ts) -> float:
    """A timestamp as a matplotlib date number (naive values are taken as UTC)."""
    t = pd.Timestamp(ts)
    t = t.tz_localize(_UTC) if t.tzinfo is None else t.tz_convert(_UTC)
    import matplotlib.dates as mdates

    return float(mdates.date2num(t.tz_localize(None).to_datetime64()))


def downsample(series: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """At most ``max_points`` points: the series cut into ``max_points // 2`` equal time buckets,
    each kept as its minimum and maximum (in time order), so spikes and dips stay visible."""
    s = series.dropna()
    if len(s) <= max_points:
        return s
    s = s.sort_index()
    t = _utc_index(s.index).asi8
    buckets = max(max_points // 2, 1)
    span = t[-1] - t[0]
    b = np.minimum(((t - t[0]) * buckets) // max(span, 1), buckets - 1)
    v = s.to_numpy(dtype=float)
    frame = pd.DataFrame({"b": b, "v": v, "i": np.arange(len(v))})
    lo = frame.loc[frame.groupby("b")["v"].idxmin(), "i"].to_numpy()
    hi = frame.loc[frame.groupby("b")["v"].idxmax(), "i"].to_numpy()
    keep = np.unique(np.concatenate([lo, hi]))
    return s.iloc[keep]


def _as_wide(data: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """Series, wide frame (DatetimeIndex) or long metrics frame ``[timestamp, id/label, value]`` as
    one column per line, indexed by UTC time."""
    if isinstance(data, pd.Series):
        frame = data.to_frame(name=data.name if data.name is not None else "value")
    else:
        frame = data
        if "timestamp" in frame.columns:
            if "value" in frame.columns and ("label" in frame.columns or "id" in frame.columns):
                by = "label" if "label" in frame.columns and frame["label"].notna().all() else "id"
                frame = frame.pivot_table(index="timestamp", columns=by, values="value", aggfunc="mean")
            else:
                frame = frame.set_index("timestamp")
        frame = frame.select_dtypes(include="number")
    frame = frame.copy()
    frame.index = _utc_index(frame.index)
    return frame.sort_index()


@functools.cache
def _house_figure() -> type:
    """The Figure class of every chart (made on first use: matplotlib is imported here)."""
    from matplotlib.figure import Figure

    class HouseFigure(Figure):
        """A Figure that renders itself as PNG in Jupyter without pyplot."""

        def _repr_png_(self) -> bytes:
            return png(self)

    return HouseFigure


def png(fig: Figure) -> bytes:
    """The figure as the PNG a record keeps and a notebook shows: one rendering serves both (a rendering is
    0.2-0.3 s of CPU). No "Software" field, so the same chart gives the same bytes whatever matplotlib drew it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def new_figure(figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    fig = _house_figure()(figsize=figsize, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def _style_time_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=_UTC, minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=_UTC))
    ax.set_xlabel("UTC", fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, alpha=0.3, linewidth=0.6)


def _events_as_markers(events) -> list[tuple[pd.Timestamp, str, bool]]:
    """(time, short label, labelled?) from a change-event frame or a list of (time, label)."""
    if events is None:
        return []
    if isinstance(events, pd.DataFrame):
        if events.empty:
            return []
        out = []
        for _, r in events.iterrows():
            if pd.isna(r.get("timestamp")):
                continue
            kind = str(r.get("kind") or "")
            message = str(r.get("message") or "")
            label = kind if not message else f"{kind}: {message}" if kind else message
            if kind == "deployment":
                label = f"deploy {message}"
            out.append((pd.Timestamp(r["timestamp"]), label, kind in LABELLED_KINDS))
        return out
    return [(pd.Timestamp(t), str(label), True) for t, label in events]


def _short(text: str, width: int = 28) -> str:
    """A label from evidence, as text: control characters shown escaped, ``$`` never starting mathtext
    (an attacker's ``$\\frac{$`` would otherwise fail the figure at draw time)."""
    from .safe_text import visible

    text = " ".join(visible(text).split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("$", r"\$")


def timeseries(
    frame_or_series: pd.Series | pd.DataFrame,
    *,
    window: IncidentWindow | tuple | None = None,
    title: str = "",
    ylabel: str = "",
    onset=None,
    markers: Sequence[tuple] | pd.DataFrame | None = None,
    events: pd.DataFrame | Sequence[tuple] | None = None,
    ax: Axes | None = None,
    max_points: int = MAX_POINTS,
) -> Figure:
    """One or more time series in the house style; returns the figure (of ``ax`` when given).

    ``markers`` (a list of ``(timestamp, label)``) and ``events`` (a change-event frame) are drawn
    as dashed vertical lines; deployments and other changes get a short label at the top, other
    events (service messages...) a faint line only, so a busy timeline stays readable.
    """
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    wide = _as_wide(frame_or_series)
    x_lo, x_hi = [], []
    drawn = 0
    for column in wide.columns:
        s = downsample(wide[column], max_points)
        if s.empty:
            continue
        x = s.index.tz_convert(_UTC).tz_localize(None).to_numpy()
        ax.plot(x, s.to_numpy(dtype=float), linewidth=1.3, label=str(column))
        x_lo.append(s.index[0])
        x_hi.append(s.index[-1])
        drawn += 1
    if not drawn:
        ax.text(
            0.5,
            0.5,
            "no data",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="grey",
            fontsize=LABEL_SIZE,
        )
    if window is not None:
        start, end = (window.start, window.end) if isinstance(window, IncidentWindow) else window
        ax.axvspan(
            _num(start), _num(end), color=WINDOW_COLOR, alpha=0.15, linewidth=0, label="incident window"
        )
        x_lo.append(_utc_index([start])[0])
        x_hi.append(_utc_index([end])[0])
    if x_lo:
        lo, hi = min(x_lo), max(x_hi)
        if hi > lo:
            ax.set_xlim(_num(lo), _num(hi))
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    if onset is not None and not pd.isna(onset):
        ax.axvline(_num(onset), color=ONSET_COLOR, linewidth=1.6, label="onset")
    all_markers = _events_as_markers(markers) + _events_as_markers(events)
    if x_lo:
        in_view = [
            (t, lab, strong)
            for t, lab, strong in all_markers
            if _utc_index([t])[0] >= min(x_lo) and _utc_index([t])[0] <= max(x_hi)
        ]
    else:
        in_view = all_markers
    in_view.sort(key=lambda m: (not m[2], _utc_index([m[0]])[0]))
    labelled = 0
    for t, label, strong in in_view[:MAX_EVENT_LINES]:
        x = _num(t)
        ax.axvline(
            x,
            color=CHANGE_COLOR,
            linestyle="--",
            linewidth=1.0 if strong else 0.6,
            alpha=0.9 if strong else 0.35,
        )
        if strong and labelled < MAX_EVENT_LABELS:
            ax.text(
                x,
                0.98 - 0.07 * (labelled % 4),
                " " + _short(label),
                transform=trans,
                rotation=0,
                ha="left",
                va="top",
                fontsize=NOTE_SIZE,
                color=CHANGE_COLOR,
                clip_on=True,
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
            )
            labelled += 1
    ax.set_title(title, fontsize=TITLE_SIZE, loc="left")
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    _style_time_axis(ax)
    if drawn > 1 or onset is not None:
        _legend_below(ax)
    return fig


#: characters of a legend label (the full text belongs in the table beside the chart)
LEGEND_WIDTH = 48
#: characters a legend row holds across the figure's width at NOTE_SIZE
LEGEND_ROW_CHARS = 120


def _legend_below(ax: Axes) -> None:
    """The legend below the axes (inside, it would hide the data or the change labels at the top), its
    labels shortened and as many columns as fit the figure's width: a legend wider than the figure makes
    constrained layout squash the plot (or give up, with a warning in the notebook)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    labels = [_short(label, LEGEND_WIDTH) for label in labels]
    widest = max(len(label) for label in labels) + 6  # the handle and the gap
    ncol = max(1, min(5, len(labels), LEGEND_ROW_CHARS // widest))
    ax.legend(handles, labels, fontsize=NOTE_SIZE, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol,
              frameon=False)


def bar(
    series: pd.Series,
    title: str = "",
    *,
    xlabel: str = "",
    ax: Axes | None = None,
    max_bars: int = 20,
    label_width: int = 60,
) -> Figure:
    """Horizontal bars, largest on top (counts per signature, connections per application...)."""
    fig, ax = new_figure(BAR_FIGSIZE) if ax is None else (ax.figure, ax)
    s = pd.to_numeric(series, errors="coerce").dropna().sort_values(ascending=False).head(max_bars)
    labels = [_short(str(i), label_width) for i in s.index]
    positions = np.arange(len(s))[::-1]
    bars = ax.barh(positions, s.to_numpy(dtype=float), color="#4c72b0")
    ax.set_yticks(positions, labels, fontsize=TICK_SIZE)
    for rect, value in zip(bars, s.to_numpy()):
        text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"
        ax.text(
            rect.get_width(),
            rect.get_y() + rect.get_height() / 2,
            " " + text,
            va="center",
            fontsize=NOTE_SIZE,
        )
    if s.empty:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
    ax.set_title(title, fontsize=TITLE_SIZE, loc="left")
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.tick_params(axis="x", labelsize=TICK_SIZE)
    ax.grid(True, axis="x", alpha=0.3, linewidth=0.6)
    ax.margins(x=0.12)
    return fig


def limit_line(ax: Axes, y: float, label: str, *, color: str = LIMIT_COLOR) -> Line2D:
    """A horizontal limit (max_connections, a budget) with its label, kept inside the view."""
    from matplotlib.transforms import blended_transform_factory

    line = ax.axhline(float(y), color=color, linestyle=":", linewidth=1.4, label=label, zorder=1.5)
    lo, hi = ax.get_ylim()
    if float(y) >= hi:
        ax.set_ylim(lo, float(y) * 1.08 if y > 0 else float(y) + 1)
    ax.text(
        1.0,
        float(y),
        f"{label} {float(y):,.0f} ",
        transform=blended_transform_factory(ax.transAxes, ax.transData),
        ha="right",
        va="bottom",
        fontsize=NOTE_SIZE,
        color=color,
    )
    return line
