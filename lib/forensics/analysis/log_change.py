"""Which log signatures changed at the onset: new since it, or grown most - not the most frequent.

A signature that was already there at the same rate (a harmless webhook check failing 40 times a second all
day) is not the failure, however many events it has. Each signature's events before and after the onset are
compared as two Poisson rates with the conditional (binomial) test: given ``n = before + after`` events and
exposures ``t_b``, ``t_a``, under "same rate" ``after ~ Binomial(n, t_a / (t_b + t_a))``; the one-sided
p-value is ``P(X >= after)`` (exact: ``scipy.stats.binom.sf``). Signatures whose rate
rose significantly (``p < alpha``, 0.01 by convention, not tuned on any data) come first, ordered by their
*excess* events after the onset (``after - rate_before * t_a``: how much of the incident they are); the rest
follow by count after the onset.

Two front ends: :func:`from_minutes` for exact per-minute counts (Logs Insights), :func:`from_sample` for the
bounded sample (slices of known exposure), the fallback when Insights is unavailable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

ALPHA = 0.01
RANK_COLUMNS = ["signature", "change", "before", "after", "rate_before_per_min", "rate_after_per_min", "ratio",
                "excess", "p_value"]


# ---- the test -------------------------------------------------------------------------------------------
def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p) (scipy's survival function is P(X > k))."""
    from scipy import stats  # here, not at import: scipy.stats takes a second a notebook's first cell skips

    return float(stats.binom.sf(k - 1, n, p))


def rate_increase_p(before: int, after: int, exposure_before: float, exposure_after: float) -> float:
    """One-sided p-value of "the rate after is higher than before" (conditional binomial test)."""
    if exposure_after <= 0 or exposure_before <= 0:
        return float("nan")
    n = int(before) + int(after)
    return binom_sf(int(after), n, exposure_after / (exposure_before + exposure_after))


# ---- ranking -----------------------------------------------------------------------------------------------
def rank(counts: pd.DataFrame, exposure_before_min: float, exposure_after_min: float,
         alpha: float = ALPHA) -> pd.DataFrame:
    """``counts`` (signature, before, after) -> the signatures ranked by what changed at the onset.

    ``change``: ``new`` (none before, significantly many after), ``grew`` (significant rise), ``steady``,
    ``fell`` (significant drop), ``gone``(none after, significantly many before)."""
    if counts.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c not in ("signature", "change") else object)
                             for c in RANK_COLUMNS})
    df = counts[["signature", "before", "after"]].copy()
    df["before"] = df["before"].astype("int64")
    df["after"] = df["after"].astype("int64")
    tb, ta = float(exposure_before_min), float(exposure_after_min)
    df["rate_before_per_min"] = df["before"] / tb if tb > 0 else np.nan
    df["rate_after_per_min"] = df["after"] / ta if ta > 0 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        df["ratio"] = df["rate_after_per_min"] / df["rate_before_per_min"]
    df["excess"] = df["after"] - df["rate_before_per_min"].fillna(0) * ta
    df["p_value"] = [rate_increase_p(b, a, tb, ta) for b, a in zip(df["before"], df["after"])]
    p_drop = [rate_increase_p(a, b, ta, tb) for b, a in zip(df["before"], df["after"])]
    rose = df["p_value"] < alpha
    fell = np.asarray(p_drop) < alpha
    df["change"] = np.select([rose & (df["before"] == 0), rose, fell & (df["after"] == 0), fell],
                             ["new", "grew", "gone", "fell"], "steady")
    df["_rose"] = rose
    df = df.sort_values(["_rose", "excess", "after", "signature"], ascending=[False, False, False, True],
                        kind="stable").drop(columns="_rose")
    return df[RANK_COLUMNS].reset_index(drop=True)


def _minutes(delta: pd.Timedelta) -> float:
    return max(delta / pd.Timedelta(minutes=1), 0.0)


def from_minutes(per_minute: pd.DataFrame, onset, start, end, alpha: float = ALPHA) -> pd.DataFrame:
    """Rank from exact per-minute counts (columns minute, signature, events) over ``[start, end)``; a minute
    bin starting at or after ``onset`` is after it (the onset is minute-aligned when it comes from metrics)."""
    onset, start, end = (pd.Timestamp(x) for x in (onset, start, end))
    if per_minute.empty:
        return rank(pd.DataFrame(columns=["signature", "before", "after"]), 1, 1, alpha)
    minute = pd.to_datetime(per_minute["minute"], utc=True)
    after = minute >= onset
    events = pd.to_numeric(per_minute["events"], errors="coerce").fillna(0)
    sig = per_minute["signature"].astype(str)
    counts = pd.DataFrame({"signature": sig, "before": events.where(~after, 0), "after": events.where(after, 0)})
    counts = counts.groupby("signature", sort=False, as_index=False)[["before", "after"]].sum()
    return rank(counts, _minutes(onset - start), _minutes(end - onset), alpha)


def slice_exposure(sample: pd.DataFrame, slices: Iterable[Mapping], per_slice: int) -> pd.DataFrame:
    """Per slice: the interval the sample covers exactly. A slice that returned ``per_slice`` events (oldest
    first) covers [start, its last event]; one that returned fewer covers all of it."""
    rows = []
    ts = pd.to_datetime(sample["timestamp"], utc=True) if len(sample) else pd.Series(dtype="datetime64[ns, UTC]")
    for s in slices:
        lo, hi = pd.Timestamp(s["start"]), pd.Timestamp(s["end"])
        if "slice" in sample and len(sample):
            mine = ts[sample["slice"].to_numpy() == int(s["slice"])]
        else:
            mine = ts[(ts >= lo) & (ts < hi)]
        covered_to = hi if len(mine) < per_slice else min(hi, mine.max() + pd.Timedelta(milliseconds=1))
        rows.append({"slice": int(s["slice"]), "start": lo, "end": covered_to, "events": int(len(mine)),
                     "full": len(mine) >= per_slice})
    return pd.DataFrame(rows, columns=["slice", "start", "end", "events", "full"])


def from_sample(sample: pd.DataFrame, signature: pd.Series, slices: Iterable[Mapping], per_slice: int, onset,
                alpha: float = ALPHA) -> pd.DataFrame:
    """Rank from the bounded sample: each signature's events before/after the onset over the exposure the
    slices cover (split at the onset). Rates are estimates; the test accounts for the counts being small."""
    onset = pd.Timestamp(onset)
    cover = slice_exposure(sample, slices, per_slice)
    if cover.empty:
        return rank(pd.DataFrame(columns=["signature", "before", "after"]), 1, 1, alpha)
    tb = sum(_minutes(min(e, onset) - s) for s, e in zip(cover["start"], cover["end"]))
    ta = sum(_minutes(e - max(s, onset)) for s, e in zip(cover["start"], cover["end"]))
    ts = pd.to_datetime(sample["timestamp"], utc=True)
    ends = dict(zip(cover["slice"], cover["end"]))
    inside = ts < sample["slice"].map(ends) if "slice" in sample else pd.Series(True, index=sample.index)
    after = ts >= onset
    frame = pd.DataFrame({"signature": signature.astype(str).to_numpy(), "after": after.to_numpy(),
                          "inside": inside.to_numpy()})
    frame = frame[frame["inside"]]
    counts = frame.groupby("signature")["after"].agg(after="sum", total="size").reset_index()
    counts["before"] = counts["total"] - counts["after"]
    return rank(counts, tb, ta, alpha)


def per_minute_wide(per_minute: pd.DataFrame, signatures: list[str], width: int = 60, window=None) -> pd.DataFrame:
    """Per-minute counts of ``signatures`` as columns (for a chart), labels shortened to ``width``; every
    minute of ``window`` present, zero where no event came (``log_counts.fill_minutes``)."""
    from .log_counts import fill_minutes

    if per_minute.empty or not signatures:
        return pd.DataFrame()
    df = per_minute[per_minute["signature"].isin(signatures)].copy()
    df["minute"] = pd.to_datetime(df["minute"], utc=True)
    wide = fill_minutes(df.pivot_table(index="minute", columns="signature", values="events", aggfunc="sum").fillna(0),
                        window)
    wide = wide[[s for s in signatures if s in wide.columns]]
    wide.columns = [s if len(s) <= width else s[: width - 1] + "…" for s in wide.columns]
    return wide


EXACT = "exact per-minute counts (Logs Insights)"


def changed_at_onset(counts: pd.DataFrame, sample: pd.DataFrame, sampling: Mapping, onset, window,
                     alpha: float = ALPHA, label=None) -> tuple[pd.DataFrame, str]:
    """The signatures ranked by change at ``onset`` and what the ranking rests on: the exact per-minute
    ``counts`` when they came (``capture_error`` absent), else the bounded ``sample`` (with its
    ``sampling`` arguments: slices and cap), else nothing. ``window`` is the context window counted.
    ``label(messages) -> labels`` names the sample's events (default: their signatures; e.g. categories)."""
    from . import signatures

    label = label or signatures.assign

    if onset is None:
        return rank(pd.DataFrame(columns=["signature", "before", "after"]), 1, 1, alpha), "no onset to compare at"
    if not counts.attrs.get("capture_error") and len(counts):
        return from_minutes(counts, onset, window.start, window.end, alpha), EXACT
    if sample.attrs.get("capture_error") or not len(sample) or not sampling.get("slices"):
        why = sample.attrs.get("capture_error") or "no event in the sample"
        return rank(pd.DataFrame(columns=["signature", "before", "after"]), 1, 1, alpha), f"nothing to rank: {why}"
    via = "FilterLogEvents" if (sample.get("via") == "filter_log_events").any() else "Logs Insights"
    why = counts.attrs.get("capture_error") or "no exact counts"
    ranked = from_sample(sample, label(sample["message"]), sampling["slices"],
                         int(sampling["per_slice"]), onset, alpha)
    return ranked, (f"bounded sample ({len(sample):,} events from {len(sampling['slices'])} slices, read with {via}); "
                    f"exact counts unavailable: {why}")
