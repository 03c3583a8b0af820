"""Legends that fit: five long signatures under a chart neither squash the plot nor make constrained layout
give up (its UserWarning, with a local path, used to show in the api-errors report)."""

import io
import warnings

import numpy as np
import pandas as pd

from forensics import charts
from forensics.window import IncidentWindow


def test_a_long_legend_fits_under_the_plot_without_a_warning():
    idx = pd.date_range("2026-05-30T09:00Z", periods=90, freq="min")
    labels = [f"sqlalchemy.exc.TimeoutError: QueuePool limit of size <n> overflow <n> reached ({i})" + "x" * 20
              for i in range(5)]
    wide = pd.DataFrame({label: np.random.default_rng(i).poisson(3, 90) for i, label in enumerate(labels)}, index=idx)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constrained layout's "not applied" UserWarning fails the test
        fig = charts.timeseries(wide, window=IncidentWindow(idx[30], idx[80]), title="Top signatures per minute",
                                ylabel="events / min", onset=idx[40])
        fig.savefig(io.BytesIO(), format="png")
    renderer = fig._get_renderer()
    legend = fig.axes[0].get_legend()
    assert legend.get_window_extent(renderer).width <= fig.bbox.width
    assert all(len(t.get_text()) <= charts.LEGEND_WIDTH for t in legend.get_texts())
    assert fig.axes[0].get_position().width > 0.8  # the plot keeps the figure's width
