"""Signatures ranked by what changed at the onset: the exact binomial tail, and the ranking on counts whose
truth is known (a steady error with many events, a new one with fewer)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forensics.analysis import log_change


def _exact_sf(k, n, p):
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.mark.parametrize("k,n,p", [(0, 10, 0.3), (3, 10, 0.3), (10, 10, 0.3), (7, 12, 0.5), (40, 100, 0.25),
                                   (1, 1, 0.9), (150, 400, 0.33)])
def test_binomial_tail_is_exact(k, n, p):
    assert log_change.binom_sf(k, n, p) == pytest.approx(_exact_sf(k, n, p), rel=1e-9, abs=1e-300)


def test_binomial_tail_at_volume_is_finite_and_ordered():
    # 100,000 events split at the expected share: p about one half; far above it: tiny, never negative.
    middle = log_change.binom_sf(50_000, 100_000, 0.5)
    assert 0.49 < middle < 0.51
    assert 0.0 <= log_change.binom_sf(51_500, 100_000, 0.5) < 1e-20


MIN = pd.Timedelta(minutes=1)


def _per_minute(start, minutes, onset_i, rates):
    """Poisson counts per minute for {signature: (rate before, rate after)}."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(minutes):
        for sig, (before, after) in rates.items():
            lam = before if i < onset_i else after
            rows.append({"minute": start + i * MIN, "signature": sig, "events": float(rng.poisson(lam))})
    return pd.DataFrame(rows)


def test_a_steady_error_with_more_events_is_not_the_failure():
    start = pd.Timestamp("2026-01-01T00:00Z")
    rates = {"webhook check failed": (2400, 2400), "QueuePool limit reached": (0, 1200),
             "read timeout": (6, 6), "cache miss storm": (50, 150), "old job": (30, 0)}
    counts = _per_minute(start, 180, 120, rates)
    ranked = log_change.from_minutes(counts, start + 120 * MIN, start, start + 180 * MIN)
    assert ranked["signature"].tolist()[:2] == ["QueuePool limit reached", "cache miss storm"]
    by = ranked.set_index("signature")
    assert by.loc["QueuePool limit reached", "change"] == "new"
    assert by.loc["cache miss storm", "change"] == "grew" and by.loc["cache miss storm", "ratio"] == pytest.approx(3, rel=0.1)
    assert by.loc["webhook check failed", "change"] == "steady"
    assert by.loc["old job", "change"] == "gone"
    assert by.loc["webhook check failed", "before"] > by.loc["QueuePool limit reached", "after"]


def test_from_sample_uses_the_exposure_the_slices_cover():
    onset = pd.Timestamp("2026-01-01T02:00Z")
    slices, rows = [], []
    for i, at in enumerate(pd.date_range("2026-01-01T00:00Z", periods=12, freq="15min", tz="UTC")):
        slices.append({"slice": i, "start": at.isoformat(), "end": (at + pd.Timedelta(seconds=10)).isoformat()})
        # steady: 4 a second; after the onset also the failure, 12 a second; the cap cuts the busy slices
        per_s = 16 if at >= onset else 4
        for k in range(min(per_s * 10, 50)):
            ts = at + pd.Timedelta(seconds=k / per_s)
            failure = at >= onset and k % 4 != 0
            rows.append({"timestamp": ts, "message": "pool" if failure else "webhook", "slice": i})
    sample = pd.DataFrame(rows)
    ranked = log_change.from_sample(sample, sample["message"], slices, 50, onset)
    by = ranked.set_index("signature")
    assert ranked["signature"].iloc[0] == "pool" and by.loc["pool", "change"] == "new"
    # the capped slices cover 50 / 16 s each: the webhook's rate is the same 4 a second before and after
    assert by.loc["webhook", "rate_after_per_min"] == pytest.approx(by.loc["webhook", "rate_before_per_min"], rel=0.1)
    assert by.loc["webhook", "change"] == "steady"


def test_changed_at_onset_falls_back_to_the_sample_and_says_why():
    onset = pd.Timestamp("2026-01-01T01:00Z")
    sample = pd.DataFrame({"timestamp": [onset - pd.Timedelta("30min"), onset + pd.Timedelta("1min")],
                           "message": ["a", "b"], "slice": [0, 1], "via": ["filter_log_events"] * 2})
    sampling = {"slices": [{"slice": 0, "start": "2026-01-01T00:30Z", "end": "2026-01-01T00:31Z"},
                           {"slice": 1, "start": "2026-01-01T01:01Z", "end": "2026-01-01T01:02Z"}], "per_slice": 10}
    counts = pd.DataFrame(columns=["minute", "signature", "events"])
    counts.attrs["capture_error"] = "SourceError: AccessDeniedException"
    window = type("W", (), {"start": onset - pd.Timedelta("1h"), "end": onset + pd.Timedelta("1h")})
    ranked, basis = log_change.changed_at_onset(counts, sample, sampling, onset, window)
    assert basis.startswith("bounded sample (2 events from 2 slices, read with FilterLogEvents)")
    assert "AccessDeniedException" in basis and set(ranked["signature"]) == {"a", "b"}


def test_the_ranking_is_the_one_the_hand_written_beta_gave():
    """scipy's binomial tail replaced a hand-written regularised incomplete beta: the order, the change of
    every signature and its p-value are those the old code gave on these counts (pinned from it)."""
    start = pd.Timestamp("2026-01-01T00:00Z")
    rates = {"webhook check failed": (2400, 2400), "QueuePool limit reached": (0, 1200),
             "read timeout": (6, 6), "cache miss storm": (50, 150), "old job": (30, 0),
             "slow drift": (10, 12), "rare new": (0, 0.2), "tiny fell": (3, 1), "flat zero": (0.05, 0.05)}
    ranked = log_change.from_minutes(_per_minute(start, 180, 120, rates), start + 120 * MIN, start,
                                     start + 180 * MIN)
    assert list(zip(ranked["signature"], ranked["change"])) == [
        ("QueuePool limit reached", "new"), ("cache miss storm", "grew"), ("rare new", "new"),
        ("webhook check failed", "steady"), ("slow drift", "steady"), ("read timeout", "steady"),
        ("flat zero", "steady"), ("tiny fell", "fell"), ("old job", "gone")]
    old = [0.0, 0.0, 1.8816764231589174e-06, 0.22172083893633276, 0.02063367576063583, 0.013111919938653068,
           0.8959508205050043, 1.0, 1.0]
    assert ranked["p_value"].tolist() == pytest.approx(old, rel=1e-9, abs=1e-14)
