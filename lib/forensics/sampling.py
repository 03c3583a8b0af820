"""The sampling plan of a bounded log sample, and the signatures it leads to count: read by name.

A ``<base>_sample`` capture (:mod:`forensics.captures.log_volume`) reads short slices of the window, spread
evenly and denser around a first guess of the onset; which slices, how many events each, the guess and
where it came from, and the fallback used when Logs Insights is unavailable are the capture's *sampling
plan*. It is recorded with the capture (its ``sampling`` argument) and read back by the notebooks that rank
the sample's signatures by change, by the sample's name::

    sampling = inc.sampling("app_error_sample")     # a SamplingPlan
    sampling.onset_guess, sampling.slices, sampling.per_slice

A replay reads the plan the original record recorded, so the ranking comes out the same.

:func:`signature_plan` chooses which of the sample's signatures are counted exactly over the whole window
(``<base>_signature_counts``) and the literal fragments that select each.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pandas as pd

from .analysis import fragments, log_change, onset, signatures
from .sources import log_volume
from .window import IncidentWindow


class SamplingPlan(Mapping):
    """A sample's plan as recorded (a read-only mapping: ``slices``, ``per_slice``, ``onset_guess``,
    ``onset_guess_from``, ``fallback``), with those keys as attributes. Empty when the sample was never
    planned (its environment section is absent)."""

    def __init__(self, recorded: Mapping | None = None):
        self._recorded = dict(recorded or {})

    def __getitem__(self, key: str):
        return self._recorded[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._recorded)

    def __len__(self) -> int:
        return len(self._recorded)

    def __repr__(self) -> str:
        return f"SamplingPlan({self._recorded!r})"

    @property
    def slices(self) -> list[dict]:
        return list(self._recorded.get("slices") or [])

    @property
    def per_slice(self) -> int:
        return int(self._recorded.get("per_slice") or 0)

    @property
    def onset_guess(self) -> str | None:
        return self._recorded.get("onset_guess")

    @property
    def onset_guess_from(self) -> str | None:
        return self._recorded.get("onset_guess_from")

    @property
    def fallback(self) -> dict:
        return dict(self._recorded.get("fallback") or {})

    def as_args(self) -> dict:
        return dict(self._recorded)


def onset_guess(per_minute: pd.DataFrame | None, window: IncidentWindow) -> pd.Timestamp:
    """Where errors first rose (from the per-minute counts), else the incident window's start."""
    if per_minute is not None and len(per_minute):
        total = per_minute.groupby(pd.to_datetime(per_minute["minute"], utc=True))["events"].sum().sort_index()
        found = onset.first_onset(total) if len(total) >= 10 else None
        if found is not None:
            return pd.Timestamp(found)
    return window.start


def plan(per_minute: pd.DataFrame | None, rate_name: str, window: IncidentWindow, context_window: IncidentWindow, *,
         per_slice: int, fallback: Mapping) -> SamplingPlan:
    """The plan of a sample over ``context_window``: slices around the onset guessed from ``per_minute`` (None
    when that capture failed: the guess is the window's start)."""
    guess = onset_guess(per_minute, window)
    return SamplingPlan({
        "slices": log_volume.slice_plan(context_window, guess), "per_slice": int(per_slice),
        "onset_guess": guess.isoformat(),
        "onset_guess_from": "window start" if per_minute is None or guess == window.start else rate_name,
        "fallback": dict(fallback)})


def signature_plan(sample: pd.DataFrame, sampling: SamplingPlan, window_start) -> dict:
    """Which of the sample's signatures to count exactly, with the fragments that select each
    (:func:`forensics.analysis.fragments.matchers`)."""
    sig = signatures.assign(sample["message"])
    guess = pd.Timestamp(sampling.onset_guess or window_start)
    changed = log_change.from_sample(sample, sig, sampling.slices, sampling.per_slice or 1, guess)
    return fragments.matchers(sample, sig, fragments.candidates(changed, sig.value_counts()))
