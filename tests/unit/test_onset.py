from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forensics.analysis import onset
from forensics.analysis.onset import ONSET_COLUMNS, error_rate, find_onsets, first_onset
from forensics.window import IncidentWindow

T0 = pd.Timestamp("2026-05-30T08:00:00Z")


def _noise(n: int, *, level=10.0, sigma=1.0, seed=0, freq="1min") -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(level + rng.normal(0, sigma, n), index=pd.date_range(T0, periods=n, freq=freq))


def test_step_found_within_one_sample():
    s = _noise(240, seed=1)
    step_at = 150
    s.iloc[step_at:] += 12.0
    episodes = find_onsets(s)
    assert list(episodes.columns) == ONSET_COLUMNS
    assert len(episodes) >= 1
    top = episodes.iloc[0]
    assert abs(top["start"] - s.index[step_at]) <= pd.Timedelta(minutes=1)
    # The baseline is not absorbed by the new level: the episode lasts to the end of the series.
    assert top["end"] == s.index[-1]
    assert top["baseline"] == pytest.approx(10.0, abs=0.5)
    assert top["peak"] > 20
    assert first_onset(s) == top["start"]


def test_step_down_and_direction_filter():
    s = _noise(200, level=100.0, seed=2)
    s.iloc[120:] -= 40.0
    assert abs(first_onset(s, direction="down") - s.index[120]) <= pd.Timedelta(minutes=1)
    assert find_onsets(s, direction="up").empty


def test_flat_noisy_series_gives_none():
    for seed in range(5):
        assert find_onsets(_noise(2000, seed=seed)).empty
    assert first_onset(_noise(500, seed=9)) is None


def test_single_point_spike_is_an_episode_unless_min_duration_says_otherwise():
    s = _noise(300, seed=3)
    s.iloc[200] = 500.0
    spikes = find_onsets(s)  # real incidents are often one sample wide at 5-minute resolution
    assert len(spikes) == 1 and spikes.iloc[0]["start"] == s.index[200] == spikes.iloc[0]["end"]
    assert spikes.iloc[0]["peak"] == 500.0
    assert find_onsets(s, min_duration=2).empty


def test_weak_episodes_beside_the_incident_are_dropped_unless_relative_is_zero():
    s = _noise(600, seed=21)
    s.iloc[100] += 9.0  # one wobble: z about 9, score about 9
    s.iloc[300:400] += 20.0  # the incident: 100 samples at z about 20
    kept = find_onsets(s)
    assert len(kept) == 1 and kept.iloc[0]["start"] == s.index[300]
    everything = find_onsets(s, relative=0.0)
    assert len(everything) == 2 and set(everything["start"]) == {s.index[100], s.index[300]}


def test_a_flapping_departure_is_one_episode_within_max_gap():
    s = _noise(600, seed=23)
    for a in (300, 330, 360):  # three 10-minute bursts 20 minutes apart
        s.iloc[a : a + 10] += 20.0
    one = find_onsets(s)
    assert len(one) == 1 and (one.iloc[0]["start"], one.iloc[0]["end"]) == (s.index[300], s.index[369])
    assert len(find_onsets(s, max_gap="10min", relative=0.0)) == 3


def test_empty_frame_has_columns_and_utc_dtypes():
    out = find_onsets(_noise(50))
    assert out.empty and list(out.columns) == ONSET_COLUMNS
    assert str(out["start"].dtype) == "datetime64[ns, UTC]"


def test_alb_5xx_rate_after_deploy():
    """The main use: ~0.1% 5xx per minute jumps to ~20% five minutes after a deploy."""
    rng = np.random.default_rng(42)
    idx = pd.date_range("2026-05-30T09:00:00Z", periods=120, freq="1min")
    deploy = idx[60]
    requests = pd.Series(rng.poisson(800, len(idx)).astype(float), index=idx)
    p = np.where(idx >= deploy + pd.Timedelta(minutes=5), 0.20, 0.001)
    errors = pd.Series(rng.binomial(requests.astype(int), p).astype(float), index=idx)
    # CloudWatch omits zero-count datapoints: drop them from errors.
    errors = errors[errors > 0]
    rate = error_rate(errors, requests)
    onset = first_onset(rate, direction="up")
    assert onset is not None
    assert abs(onset - (deploy + pd.Timedelta(minutes=5))) <= pd.Timedelta(minutes=2)


def test_nan_gaps_and_irregular_sampling():
    rng = np.random.default_rng(5)
    # Irregular: 40-80 s apart, with a NaN hole of 10 points.
    gaps = rng.integers(40, 80, 400).cumsum()
    idx = T0 + pd.to_timedelta(gaps, unit="s")
    values = 5 + rng.normal(0, 0.5, 400)
    values[100:110] = np.nan
    values[300:] += 10
    s = pd.Series(values, index=idx)
    episodes = find_onsets(s, window="30min", max_gap="3min")
    assert len(episodes) == 1
    assert episodes.iloc[0]["start"] == idx[300]


def test_fixed_baseline_period_and_level():
    s = _noise(180, seed=7)
    s.iloc[90:] += 8
    quiet = (T0, T0 + pd.Timedelta(minutes=60))
    assert find_onsets(s, baseline=quiet).iloc[0]["start"] == s.index[90]
    assert find_onsets(s, baseline=IncidentWindow(*quiet)).iloc[0]["start"] == s.index[90]
    assert find_onsets(s, baseline=10.0).iloc[0]["start"] == s.index[90]


def test_strongest_first_and_first_onset_ignores_weak_early_episode():
    s = _noise(400, seed=11)
    s.iloc[100:106] += 7  # weak, early
    s.iloc[250:] += 60  # the incident
    episodes = find_onsets(s, relative=0.0)
    assert len(episodes) == 2
    assert episodes.iloc[0]["start"] == s.index[250]
    assert list(find_onsets(s)["start"]) == [s.index[250]]
    assert episodes["score"].is_monotonic_decreasing
    assert first_onset(s) == s.index[250]
    assert first_onset(s, relative=0.0) == s.index[100]


def test_min_duration_as_time_span():
    s = _noise(200, seed=13)
    s.iloc[100:104] += 30  # 4 minutes
    assert len(find_onsets(s, min_duration="4min")) == 1
    assert find_onsets(s, min_duration="10min").empty


def test_naive_index_is_taken_as_utc_and_non_datetime_refused():
    s = _noise(200, seed=4)
    s.iloc[150:] += 20
    naive = s.copy()
    naive.index = naive.index.tz_localize(None)
    assert first_onset(naive) == s.index[150]
    with pytest.raises(TypeError):
        find_onsets(pd.Series([1.0, 2.0, 3.0]))


def test_error_rate_safe_with_zero_requests():
    idx = pd.date_range(T0, periods=4, freq="1min")
    req = pd.Series([100.0, 0.0, 50.0, 200.0], index=idx)
    err = pd.Series([1.0, 0.0, 10.0], index=idx[:3])  # last minute missing = zero errors
    rate = error_rate(err, req)
    assert rate.iloc[0] == pytest.approx(0.01)
    assert np.isnan(rate.iloc[1])
    assert rate.iloc[2] == pytest.approx(0.2)
    assert rate.iloc[3] == 0.0


def _daily_spikes(days: int, *, seed: int, freq="5min") -> pd.Series:
    """A quiet CPU-like metric with a backup job that spikes it every day at 02:00 for 15 minutes."""
    n = int(pd.Timedelta(days=days) / pd.Timedelta(freq))
    s = _noise(n, level=5.0, sigma=0.3, seed=seed, freq=freq)
    at_two = (s.index.hour == 2) & (s.index.minute < 15)
    s[at_two] += 40.0
    return s


def test_a_spike_every_day_at_the_same_hour_is_not_an_episode_once_three_days_show_it():
    s = _daily_spikes(10, seed=31)
    novel = s.index.get_indexer([pd.Timestamp("2026-06-07T14:00:00Z")])[0]
    s.iloc[novel : novel + 6] += 40.0  # the same size for twice as long, at an hour it never happens
    everything = find_onsets(s, relative=0.0)
    days_flagged = {t.normalize() for t in everything["start"] if t.hour == 2}
    assert len(days_flagged) <= 3  # the first days have no history to know better
    assert all(t < T0 + pd.Timedelta(days=4) for t in everything["start"] if t.hour == 2)
    assert find_onsets(s).iloc[0]["start"] == s.index[novel]
    # Without the seasonal reference, every day's spike is an episode.
    blind = find_onsets(s, relative=0.0, season=None)
    assert len({t.normalize() for t in blind["start"] if t.hour == 2}) >= 9


def test_short_minute_series_falls_back_to_the_trailing_baseline():
    """Production: a few hours of minute data, no previous day to compare with."""
    s = _noise(240, level=0.002, sigma=0.0005, seed=33)
    s.iloc[170:] += 0.01
    seasonal = find_onsets(s)
    assert abs(seasonal.iloc[0]["start"] - s.index[170]) <= pd.Timedelta(minutes=1)
    pd.testing.assert_frame_equal(seasonal, find_onsets(s, season=None))


def test_sustained_moderate_shift_is_found_by_change_points():
    """+3 sigma for two hours never reaches z 6, but as a segment it is unmistakable."""
    s = _noise(600, seed=35)
    s.iloc[400:520] += 3.0
    top = find_onsets(s).iloc[0]
    assert abs(top["start"] - s.index[400]) <= pd.Timedelta(minutes=3)
    assert abs(top["end"] - s.index[519]) <= pd.Timedelta(minutes=3)
    assert find_onsets(s, changepoints=False, threshold=6.0).empty  # pointwise at z 6 it is never seen


def test_change_point_segments_respect_direction_and_min_delta():
    s = _noise(600, seed=37)
    s.iloc[400:520] -= 3.0
    assert find_onsets(s, direction="up").empty
    assert not find_onsets(s, direction="down").empty
    assert find_onsets(s, min_delta=10.0).empty


def _spiky(n: int, seed: int) -> pd.Series:
    """A quiet CPU-like metric at 5-minute resolution with a spike to 3-5x its level one sample in three."""
    rng = np.random.default_rng(seed)
    s = pd.Series(2.0 + rng.normal(0, 0.05, n), index=pd.date_range(T0, periods=n, freq="5min"))
    spikes = rng.choice(n, n // 3, replace=False)
    s.iloc[spikes] += rng.uniform(4.0, 8.0, len(spikes))
    return s


def test_spikes_of_the_usual_size_are_not_episodes_in_a_spiky_series():
    """The spread is at least the baseline's own 90th-percentile distance: a metric that spikes all day is
    measured in its spikes, so only a departure beyond them is an episode (on the MAD alone every spike is)."""
    s = _spiky(600, seed=41)
    mad_alone = find_onsets(s, tail=0.0, threshold=6.0)  # the spikes, bridged into one episode of 46 hours
    assert (mad_alone["end"] - mad_alone["start"]).max() > pd.Timedelta(hours=24)
    assert find_onsets(s, relative=0.0).empty
    s.iloc[400:412] += 40.0  # an hour far above any spike
    top = find_onsets(s)
    assert len(top) == 1 and top.iloc[0]["start"] == s.index[400] and top.iloc[0]["end"] == s.index[411]


def test_a_lone_point_needs_z_6_and_a_short_run_at_z_3_to_4_is_kept():
    s = _noise(600, seed=43)
    s.iloc[300] += 4.5  # one point at z about 4.5: score 4.5 < 6
    assert find_onsets(s, relative=0.0).empty
    s.iloc[400:406] += 3.5  # six in a row at z about 3.5: score about 8.6
    top = find_onsets(s, relative=0.0)
    assert len(top) == 1 and abs(top.iloc[0]["start"] - s.index[400]) <= pd.Timedelta(minutes=1)
    everything = find_onsets(s, relative=0.0, min_score=0.0)  # the lone point too, and noise at z 3
    assert {s.index[300], top.iloc[0]["start"]} <= set(everything["start"])


def test_tail_out_of_range_is_refused():
    with pytest.raises(ValueError, match="tail must be in"):
        find_onsets(_noise(100), tail=0.5)
    with pytest.raises(ValueError, match="min_seasons must be at least 1"):
        find_onsets(_noise(100), min_seasons=0)


def test_sorted_window_statistics_equal_numpys_to_the_last_bit():
    """The trailing baseline keeps its window sorted and reads quantiles, median and MAD by index: the same
    floats as np.quantile / np.median / _robust_scale, ties and a MAD of 0 (mean absolute deviation)
    included."""
    rng = np.random.default_rng(5)
    for trial in range(3000):
        n = int(rng.integers(1, 90))
        h = rng.normal(size=n) if trial % 2 else rng.integers(0, 4, size=n).astype(float)
        srt = sorted(h.tolist())
        for q in (0.0, 0.05, 0.1, 0.15, 0.5, 0.85, 0.9, 0.95, 1.0):
            assert onset._quantile_sorted(srt, q) == float(np.quantile(h, q))
        assert onset._median_sorted(srt) == float(np.median(h))
        for med in (float(np.quantile(h, 0.5)), float(h[0]), float(h.max()) + 1.0):
            assert onset._robust_scale_sorted(srt, med, h.tolist()) == onset._robust_scale(h, med)


def test_sorted_window_follows_insertions_and_removals():
    rng = np.random.default_rng(6)
    window: list[float] = []
    srt: list[float] = []
    for v in rng.integers(0, 6, size=500).astype(float).tolist():
        window.append(v)
        onset.insort(srt, v)
        if len(window) > 30:
            onset._remove_sorted(srt, window.pop(0))
        assert srt == sorted(window)
