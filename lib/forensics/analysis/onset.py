"""When did it start? Departures of a metric from its own robust baseline, grouped into episodes.

Three steps, each robust to the incident it is looking for:

1. *Trailing baseline*: every point against the median of the recent *normal* points (a trailing
   12 h), in units of their spread: the MAD (x 1.4826), or, when larger, the distance from the median
   to the baseline's own 90th percentile (10th below the median) over a normal's (1.2816). For normal
   noise the two agree; for a metric that spikes all the time (EC2 CPU, request counts) the second
   measures a point in the series' own spikes, so spikes of the usual size are not departures. A
   point at |z| >= 3 counts. Points flagged anomalous stay out of the baseline, so a level shift (an
   error rate that jumps and stays) is one episode until the series comes back. Time-based windows
   make irregular sampling and NaN gaps harmless.
2. *Same time on previous days*, where the series has the history (at least 3 of the previous 7
   days): the nearest sample 24 h, 48 h, ... earlier, their median is the seasonal reference. A point
   counts only as far as it departs from *both* the trailing and the seasonal reference (the smaller
   z, same sign), as in Twitter's seasonal hybrid ESD: a spike that comes every day at 02:00 is not an
   episode. A few hours of minute data have no such history, and the trailing baseline alone decides.
3. *Change points* (PELT, ``ruptures``) on that z series with the BIC penalty: a segment whose median
   z is at least 2.5 is anomalous as a whole, so a sustained moderate shift is found, with its start
   where the level changed.

Departures of one sign closer than ``max_gap`` are one episode (a flapping incident is one incident).
An episode scores its median |z| x sqrt(points); it is kept when it scores at least 6 (a lone point
needs z 6, as in the first rounds; four in a row at z 3 do too: random noise rarely makes either) and at
least ``relative`` x the strongest one: a whole fortnight of a real metric has many small departures,
and the question is which one is *the* incident. The defaults were chosen on 18 labelled NAB series
(realTraffic, realKnownCause, realAdExchange) and 3 of the 6 realAWSCloudwatch series, and measured on
the other 3: see tests/bench/test_bench_onset.py; leave-one-series-out over all 24, the same grid and rule
choose them in 23 of 24 folds (tests/bench/test_bench_onset_loo.py, docs/onsets.md).
"""

from __future__ import annotations

import math
import warnings
from bisect import bisect_left, insort
from collections import deque
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

from ..window import IncidentWindow

ONSET_COLUMNS = ["start", "end", "score", "peak", "baseline"]
_MAD_TO_SIGMA = 1.4826


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start": pd.Series(dtype="datetime64[ns, UTC]"),
            "end": pd.Series(dtype="datetime64[ns, UTC]"),
            "score": pd.Series(dtype="float64"),
            "peak": pd.Series(dtype="float64"),
            "baseline": pd.Series(dtype="float64"),
        }
    )


def _clean(series: pd.Series) -> pd.Series:
    """Sorted, de-duplicated, numeric, NaN-free, with a tz-aware UTC index."""
    if not isinstance(series.index, pd.DatetimeIndex):
        raise TypeError("find_onsets needs a series indexed by timestamps")
    s = pd.to_numeric(series, errors="coerce").astype("float64")
    idx = s.index
    # Nanoseconds throughout: pandas 3 may give microsecond indexes, and asi8 follows the unit.
    s.index = (idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")).as_unit("ns")
    s = s[np.isfinite(s.to_numpy())]
    s = s[~s.index.duplicated(keep="last")].sort_index()
    return s


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) < 2:
        return pd.Timedelta(minutes=1)
    return pd.Timedelta(np.median(np.diff(index.asi8)), unit="ns")


#: z values beyond this count as this in the score: past it, the size of a departure says more about
#: how quiet the baseline was than about the incident.
Z_CAP = 50.0
#: default |z| for a point to count: against the trailing baseline, whose scale is at least the baseline's own
#: tail (``tail``), an episode must also score ``min_score``; against a fixed baseline, as before
TRAILING_THRESHOLD, FIXED_THRESHOLD = 3.0, 6.0
#: the shortest segment between two change points, in samples
SEGMENT_MIN_SIZE = 3


def find_onsets(
    series: pd.Series,
    *,
    baseline: tuple | float | IncidentWindow | None = None,
    min_duration: int | str | pd.Timedelta = 1,
    threshold: float | None = None,
    direction: Literal["both", "up", "down"] = "both",
    window: int | str | pd.Timedelta = "12h",
    min_periods: int | None = None,
    max_gap: int | str | pd.Timedelta = 24,
    min_delta: float = 0.0,
    relearn_after: int | str | pd.Timedelta | None = None,
    relative: float = 0.5,
    season: str | pd.Timedelta | None = "24h",
    seasons: int = 7,
    min_seasons: int = 3,
    season_tolerance: int | str | pd.Timedelta | None = None,
    changepoints: bool = True,
    segment_threshold: float = 2.5,
    tail: float = 0.1,
    min_score: float = 6.0,
) -> pd.DataFrame:
    """Anomalous episodes of ``series``, strongest first: ``[start, end, score, peak, baseline]``.

    - ``baseline``: ``None`` for a trailing baseline over ``window`` (samples if an int, else a
      time span) learnt from normal points only, once it holds ``min_periods`` points (default:
      two hours of samples, at least 5 and at most 30); ``(start, end)`` or an ``IncidentWindow``
      to take median/MAD over a fixed quiet period (e.g. the hour before the incident); a number
      for a known normal level.
    - A point is anomalous when ``|x - median| / scale >= threshold`` in ``direction`` and the
      departure is at least ``min_delta`` in the series' units (e.g. 0.01 for one percentage point).
      ``threshold`` defaults to 3 with the trailing baseline, where ``scale`` is at least the
      distance from the median to the baseline's ``1 - tail`` quantile above it (``tail`` below it)
      over a normal's (``tail=0``: the MAD alone), and to 6 with a fixed baseline (MAD alone).
    - An episode is a run of anomalous points of one sign, bridging up to ``max_gap`` of normal
      samples (int) or time; it is kept when it lasts ``min_duration`` samples (int) or that much
      time (``min_duration=3`` ignores single-point spikes).
    - ``relearn_after``: accept a new level as normal after that long (samples or time); ``None``
      keeps the pre-episode baseline for as long as the departure lasts.
    - ``season``: compare with the same time on up to ``seasons`` previous periods (the sample
      nearest to t - k x season, within ``season_tolerance``: half a sample step by default) once
      ``min_seasons`` (at least 1) of them exist; ``None`` for the trailing baseline alone. Only with the
      trailing baseline (``baseline=None``).
    - ``changepoints``: also flag whole segments between change points whose median z is at least
      ``segment_threshold`` (and each point's departure at least ``min_delta``, in ``direction``).
    - ``score``: the median robust z over the episode (each z capped at :data:`Z_CAP`) times the
      square root of its length in samples: a long sustained shift outranks one that barely
      crosses the line. Episodes scoring under ``min_score`` or under ``relative`` x the strongest
      are dropped (``relative=0, min_score=0`` keeps all). ``peak`` is the most extreme value,
      ``baseline`` the baseline level at the start.
    """
    s = _clean(series)
    if len(s) < 2:
        return _empty()
    if hasattr(baseline, "start") and hasattr(baseline, "end"):  # an IncidentWindow
        baseline = (baseline.start, baseline.end)
    values = s.to_numpy()
    times = s.index.asi8
    step = _step(s.index)

    def as_span(v) -> pd.Timedelta:
        return step * v if isinstance(v, (int, np.integer)) else pd.Timedelta(v)

    window_ns = as_span(window).value
    if threshold is None:  # measured for the trailing baseline (see the module's docstring); 6 as before else
        threshold = TRAILING_THRESHOLD if baseline is None else FIXED_THRESHOLD
    if not 0.0 <= tail < 0.5:
        raise ValueError(f"tail must be in [0, 0.5), not {tail}")
    if min_seasons < 1:
        raise ValueError(f"min_seasons must be at least 1, not {min_seasons}")
    quantiles = [tail, 0.5, 1.0 - tail]
    tail_z = NormalDist().inv_cdf(1.0 - tail) if tail > 0 else np.inf  # 0: the MAD alone
    if min_periods is None:
        min_periods = int(np.clip(pd.Timedelta(hours=2) / step, 5, 30))
    gap_ns = as_span(max_gap).value if not isinstance(max_gap, (int, np.integer)) else None
    # A floor on the scale: an exactly constant baseline (MAD 0) must not turn the first wobble
    # into an infinite z. 0.1% of the series' robust range, or 1% of the level.
    lo, hi = np.percentile(values, [1, 99])
    global_floor = max(1e-3 * (hi - lo), 1e-12)

    z = np.full(len(values), np.nan)
    level = np.full(len(values), np.nan)
    if baseline is not None and not (isinstance(baseline, tuple) and len(baseline) == 2):
        med = float(baseline)
        # Noise from successive differences: a level shift or a spike touches one or two of them
        # only, so this stays honest even when most of the series is the incident.
        noise = _MAD_TO_SIGMA * float(np.median(np.abs(np.diff(values)))) / np.sqrt(2)
        scale = max(noise, 0.01 * abs(med), global_floor)
        z = (values - med) / scale
        level[:] = med
    elif baseline is not None:
        b0, b1 = (pd.Timestamp(b) for b in baseline)
        b0 = b0.tz_localize("UTC") if b0.tzinfo is None else b0.tz_convert("UTC")
        b1 = b1.tz_localize("UTC") if b1.tzinfo is None else b1.tz_convert("UTC")
        ref = s[(s.index >= b0) & (s.index < b1)].to_numpy()
        if len(ref) < 2:
            return _empty()
        med = float(np.median(ref))
        scale = max(_robust_scale(ref, med), 0.01 * abs(med), global_floor)
        z = (values - med) / scale
        level[:] = med
    else:
        relearn = (
            None
            if relearn_after is None
            else (as_span(relearn_after).value if not isinstance(relearn_after, (int, np.integer)) else None)
        )
        relearn_n = relearn_after if isinstance(relearn_after, (int, np.integer)) else None
        if season is not None:
            seasonal, n_seasons = _seasonal_reference(
                times,
                values,
                pd.Timedelta(season).value,
                seasons,
                step.value // 2 if season_tolerance is None else as_span(season_tolerance).value,
            )
            use_season = n_seasons >= min_seasons
        else:
            use_season = np.zeros(len(values), dtype=bool)

        def trailing(exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            """z and baseline level of every point; ``exclude``: points kept out of the baseline."""
            z = np.full(len(values), np.nan)
            level = np.full(len(values), np.nan)
            hist_t: deque[int] = deque()
            hist_v: deque[float] = deque()
            hist_r: deque[float] = deque()  # latest residuals from the seasonal reference, <= len(hist_t)
            # The same values kept sorted: quantiles, medians and MADs by index, not a sort per point.
            sorted_v: list[float] = []
            sorted_r: list[float] = []
            run_start_t: int | None = None
            run_n = 0
            for i, (t, v) in enumerate(zip(times, values)):
                # Forget what is older than the window, but never below min_periods points: during a
                # long episode the baseline stays the last normal stretch instead of emptying out.
                while len(hist_t) > min_periods and hist_t[0] < t - window_ns:
                    hist_t.popleft()
                    _remove_sorted(sorted_v, hist_v.popleft())
                while len(hist_r) > len(hist_t):
                    _remove_sorted(sorted_r, hist_r.popleft())
                anomalous = False
                if len(hist_v) >= min_periods:
                    q_lo, med, q_hi = (_quantile_sorted(sorted_v, q) for q in quantiles)
                    scale = max(_robust_scale_sorted(sorted_v, med, hist_v), 0.01 * abs(med), global_floor)
                    # Measured in the baseline's own tail on this side: a metric that spikes every hour is
                    # not anomalous for spiking (for normal noise this scale is the standard deviation).
                    scale = max(scale, ((q_hi - med) if v >= med else (med - q_lo)) / tail_z)
                    z[i] = (v - med) / scale
                    if use_season[i] and len(hist_r) >= min_periods:
                        # As unusual as the smaller of the two departures, and only if both agree in sign:
                        # a value ordinary for this time of day is not an episode, however far from the
                        # last 12 hours it is.
                        r_scale = _robust_scale_sorted(sorted_r, _median_sorted(sorted_r), hist_r)
                        zs = (v - seasonal[i]) / max(r_scale, scale)
                        z[i] = np.sign(z[i]) * min(abs(z[i]), max(0.0, np.sign(z[i]) * zs))
                    level[i] = med
                    anomalous = _is_anomalous(z[i], v - med, threshold, direction, min_delta)
                anomalous = anomalous or (exclude is not None and exclude[i])
                if anomalous:
                    run_start_t = t if run_start_t is None else run_start_t
                    run_n += 1
                    long_enough = (relearn_n is not None and run_n > relearn_n) or (
                        relearn is not None and t - run_start_t > relearn
                    )
                    if not long_enough:
                        continue
                else:
                    run_start_t, run_n = None, 0
                hist_t.append(t)
                hist_v.append(float(v))
                insort(sorted_v, float(v))
                if use_season[i]:
                    hist_r.append(float(v - seasonal[i]))
                    insort(sorted_r, float(v - seasonal[i]))
            return z, level

        z, level = trailing(None)

    flags = _flags(z, values - level, threshold, direction, min_delta)
    if changepoints:
        segments = _segment_flags(z, values - level, segment_threshold, direction, min_delta)
        if baseline is None and segments.any():
            # Once more with the segments kept out of the trailing baseline, which would otherwise
            # learn a moderate shift as normal and end the episode before the series comes back.
            z, level = trailing(segments)
            flags = _flags(z, values - level, threshold, direction, min_delta)
            segments = _segment_flags(z, values - level, segment_threshold, direction, min_delta)
        flags |= segments
    episodes = _episodes(flags, np.sign(np.nan_to_num(z)), times, gap_ns, max_gap)
    rows = []
    for a, b in episodes:
        idx = np.arange(a, b + 1)
        idx = idx[flags[idx]]
        n = len(idx)
        span = pd.Timedelta(int(times[idx[-1]] - times[idx[0]]), unit="ns") + step
        if isinstance(min_duration, (int, np.integer)):
            if n < min_duration:
                continue
        elif span < pd.Timedelta(min_duration):
            continue
        zabs = np.minimum(np.abs(z[idx]), Z_CAP)
        k = idx[np.argmax(np.abs(z[idx]))]
        rows.append(
            {
                "start": s.index[idx[0]],
                "end": s.index[idx[-1]],
                "score": float(np.median(zabs) * np.sqrt(n)),
                "peak": float(values[k]),
                "baseline": float(level[idx[0]]),
            }
        )
    if not rows:
        return _empty()
    out = pd.DataFrame(rows, columns=ONSET_COLUMNS)
    out = out[out["score"] >= max(min_score, relative * out["score"].max())]
    return out.sort_values(["score", "start"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _seasonal_reference(
    times: np.ndarray, values: np.ndarray, period: int, seasons: int, tolerance: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per point, what the same time of day (``period``) looked like on up to ``seasons`` previous
    periods: on each, the value within +-``tolerance`` closest to this point's value (a spike that
    recurs a few minutes earlier or later still matches), then the median over the periods.
    Returns that reference and how many periods had data."""
    n = len(values)
    matches = np.full((seasons, n), np.nan)
    for k in range(1, seasons + 1):
        target = times - k * period
        lo = np.searchsorted(times, target - tolerance, side="left")
        hi = np.searchsorted(times, target + tolerance, side="right")
        width = int((hi - lo).max(initial=0))
        best = np.full(n, np.inf)
        for o in range(width):
            j = lo + o
            ok = j < hi
            cand = np.where(ok, values[np.minimum(j, n - 1)], np.nan)
            dist = np.abs(cand - values)
            better = ok & (dist < best)
            best[better] = dist[better]
            matches[k - 1, better] = cand[better]
    counts = np.isfinite(matches).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no history yet
        ref = np.nanmedian(matches, axis=0)
    return ref, counts


def _segment_flags(
    z: np.ndarray, delta: np.ndarray, threshold: float, direction: str, min_delta: float
) -> np.ndarray:
    """Points of the segments whose median z is at least ``threshold``: change points (PELT, exact,
    on the z series, which is already in units of the baseline's noise) with the BIC penalty for a
    change in mean of unit-variance noise, 2 ln n. A sustained shift of 3 sigma never reaches
    the pointwise threshold but is unmistakable over 50 samples."""
    sig = np.clip(np.nan_to_num(z), -Z_CAP, Z_CAP)
    n = len(sig)
    out = np.zeros(n, dtype=bool)
    if n < 2 * SEGMENT_MIN_SIZE:
        return out
    import ruptures as rpt  # here, not at import: it loads scipy.signal (a second) a notebook's first cell skips

    algo = rpt.KernelCPD(kernel="linear", min_size=SEGMENT_MIN_SIZE).fit(sig.reshape(-1, 1))
    a = 0
    for b in algo.predict(pen=2.0 * np.log(n)):
        m = float(np.median(sig[a:b]))
        if (direction != "down" and m >= threshold) or (direction != "up" and m <= -threshold):
            out[a:b] = (np.sign(sig[a:b]) == np.sign(m)) & (np.abs(np.nan_to_num(delta[a:b])) >= min_delta)
        a = b
    return out


# Order statistics of a sorted window, equal to the last bit to numpy's (``np.quantile``, linear method;
# ``np.median``; the MAD as ``np.median(np.abs(h - med))``), without sorting the window at every point.


def _remove_sorted(values: list[float], v: float) -> None:
    del values[bisect_left(values, v)]


def _quantile_sorted(values: list[float], q: float) -> float:
    """``np.quantile(values, q)`` (linear interpolation, numpy's arithmetic) of a sorted list."""
    n = len(values)
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return values[-1]
    if virtual < 0:
        return values[0]
    below = math.floor(virtual)
    gamma = virtual - below
    a, b = values[below], values[below + 1]
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


def _median_sorted(values: list[float]) -> float:
    """``np.median`` of a sorted list."""
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _kth_deviation(values: list[float], med: float, below: int, k: int) -> float:
    """The k-th smallest (0-based) of ``|values - med|``: the deviations below the median, read
    outwards from ``below`` (the first index not under it), and those above it are two sorted runs."""
    n_a, n_b = below, len(values) - below
    lo, hi = max(0, k + 1 - n_b), min(k + 1, n_a)
    while lo < hi:  # the fewest taken from the run below such that its next one is not smaller
        i = (lo + hi) // 2
        if med - values[below - 1 - i] < values[below + k - i] - med:
            lo = i + 1
        else:
            hi = i
    out = -np.inf
    if lo > 0:
        out = med - values[below - lo]
    if k - lo >= 0:
        out = max(out, values[below + k - lo] - med)
    return out


def _robust_scale_sorted(values: list[float], med: float, ordered) -> float:
    """:func:`_robust_scale` of a sorted list; ``ordered``: the same values in their original order,
    for the rare mean absolute deviation (a sum whose rounding depends on the order)."""
    n = len(values)
    below = bisect_left(values, med)
    if n % 2:
        mad = _kth_deviation(values, med, below, n // 2)
    else:
        low, high = _kth_deviation(values, med, below, n // 2 - 1), _kth_deviation(values, med, below, n // 2)
        mad = (low + high) / 2
    if mad > 0:
        return _MAD_TO_SIGMA * mad
    dev = np.abs(np.fromiter(ordered, dtype=float, count=len(ordered)) - med)
    return 1.2533 * float(np.add.reduce(dev) / len(dev))  # np.mean's own sum and division


def _robust_scale(values: np.ndarray, med: float) -> float:
    """MAD as a standard deviation; when more than half the values equal the median (sparse
    counts: zero errors most minutes) the MAD is 0 and the mean absolute deviation takes over
    (x 1.2533, normal-consistent), so scattered single errors do not read as infinite z."""
    dev = np.abs(values - med)
    mad = float(np.median(dev))
    return _MAD_TO_SIGMA * mad if mad > 0 else 1.2533 * float(np.mean(dev))


def _flags(
    z: np.ndarray, delta: np.ndarray, threshold: float, direction: str, min_delta: float
) -> np.ndarray:
    return np.array(
        [
            _is_anomalous(zz, dd, threshold, direction, min_delta) if np.isfinite(zz) else False
            for zz, dd in zip(z, delta)
        ],
        dtype=bool,
    )


def _is_anomalous(z: float, delta: float, threshold: float, direction: str, min_delta: float) -> bool:
    if abs(delta) < min_delta:
        return False
    if direction == "up":
        return z >= threshold
    if direction == "down":
        return z <= -threshold
    return abs(z) >= threshold


def _episodes(flags, signs, times, gap_ns, max_gap) -> list[tuple[int, int]]:
    """[first, last] index pairs of runs of flagged points with the same sign, bridging short gaps."""
    out: list[tuple[int, int]] = []
    start = last = None
    sign = 0.0
    for i in np.flatnonzero(flags):
        if start is not None:
            close = (times[i] - times[last] <= gap_ns) if gap_ns is not None else (i - last - 1 <= max_gap)
            if close and signs[i] == sign:
                last = i
                continue
            out.append((start, last))
        start = last = i
        sign = signs[i]
    if start is not None:
        out.append((start, last))
    return out


def first_onset(series: pd.Series, *, relative: float = 0.1, **kwargs) -> pd.Timestamp | None:
    """The earliest start among significant episodes (score >= ``relative`` x the strongest), so
    that an early wobble does not pre-date the real incident. ``kwargs`` go to :func:`find_onsets`."""
    episodes = find_onsets(series, relative=relative, **kwargs)
    if episodes.empty:
        return None
    return pd.Timestamp(episodes["start"].min())


def error_rate(errors: pd.Series, requests: pd.Series) -> pd.Series:
    """Share of requests that failed, per timestamp; NaN where there were no requests (unknown,
    not 0%), and missing error datapoints count as 0 (CloudWatch omits zero-count periods)."""
    req = pd.to_numeric(requests, errors="coerce").astype("float64")
    err = pd.to_numeric(errors, errors="coerce").astype("float64")
    req, err = req.align(err, join="outer")
    err = err.fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = err / req.where(req > 0)
    rate.name = "error_rate"
    return rate
