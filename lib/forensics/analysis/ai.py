"""LLM spend: spend rate, model mix shift (fallback to an expensive model), organisations near budget.

Input: the per-minute aggregate of :func:`forensics.sources.tables.ai_calls_per_minute`
``[minute, org_id, model, provider, status, calls, prompt_tokens, completion_tokens, cost_usd]`` and the
budget frame of :func:`forensics.sources.tables.ai_budget_use`.

- :func:`spend_rate` — USD per hour, in buckets of ``freq`` (default 15 min).
- :func:`model_mix` — per minute, each model's share of calls (wide frame).
- :func:`model_shift` — which model took over, when, and what it did to cost.
- :func:`orgs_over` — organisations whose month-to-date spend passed a share of their budget.
- :func:`provider_errors` — provider failures and fallbacks in application logs, by signature.
"""

from __future__ import annotations

import re

import pandas as pd

from . import onset as onset_mod

PROVIDER_ERROR = re.compile(
    r"openai\.\w*(?:Error|Exception)|anthropic\.\w*(?:Error|Exception)(?::\s*overloaded)?|"
    r"falling back to [\w.:/-]+|budget (?:check|enforcement) (?:failed|skipped)", re.I)


def _minute_index(df: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(df["minute"], utc=True))


def spend_rate(calls: pd.DataFrame, freq: str = "15min") -> pd.Series:
    """USD per hour per ``freq`` bucket (the bucket's spend scaled to an hour)."""
    if calls is None or not len(calls):
        return pd.Series(dtype="float64", name="usd_per_hour")
    s = pd.Series(calls["cost_usd"].to_numpy(dtype=float), index=_minute_index(calls))
    per = s.groupby(s.index.floor(freq)).sum()
    out = per * (pd.Timedelta(hours=1) / pd.Timedelta(freq))
    out.name = "usd_per_hour"
    return out.sort_index()


OK_STATUSES = ("ok", "success", "succeeded", "completed")


def served(calls: pd.DataFrame) -> pd.DataFrame:
    """The rows of calls that were answered (status ok/success...), not the failed provider attempts."""
    return calls[calls["status"].astype(str).str.lower().isin(OK_STATUSES)]


def model_mix(calls: pd.DataFrame, value: str = "calls", served_only: bool = True) -> pd.DataFrame:
    """Per minute, each model's share of ``value`` (calls or cost_usd) among served calls (all
    attempts with ``served_only=False``); columns = models."""
    if calls is None or not len(calls):
        return pd.DataFrame()
    if served_only:
        calls = served(calls)
    wide = calls.assign(minute=_minute_index(calls)).pivot_table(index="minute", columns="model", values=value,
                                                                 aggfunc="sum", fill_value=0.0)
    total = wide.sum(axis=1)
    share = wide.div(total.where(total > 0), axis=0)
    share.columns = pd.Index([str(c) for c in share.columns], name=None)
    return share.astype("float64")


def model_shift(calls: pd.DataFrame, baseline: tuple | None = None) -> dict | None:
    """The model whose share of served calls rose the most after its onset, vs the ``baseline`` period
    ``(start, end)`` (default: the first third of the data).

    ``{"from": the baseline's main model, "to": the rising model, "at": its onset, "share_before",
    "share_after", "cost_per_call_before", "cost_per_call_after", "cost_share_after"}``; None if no
    model's share departs from its baseline.
    """
    calls = served(calls) if calls is not None and len(calls) else calls
    mix = model_mix(calls)
    if mix.empty or len(mix) < 6:
        return None
    if baseline is None:
        baseline = (mix.index[0], mix.index[0] + (mix.index[-1] - mix.index[0]) / 3)
    b0, b1 = pd.Timestamp(baseline[0]), pd.Timestamp(baseline[1])
    base = mix[(mix.index >= b0) & (mix.index < b1)]
    if base.empty:
        return None
    best = None
    for model in mix.columns:
        series = mix[model]
        start = onset_mod.first_onset(series, baseline=(b0, b1), direction="up", min_delta=0.1, min_duration=3)
        if start is None:
            continue
        after = series[series.index >= start]
        rise = float(after.mean() - base[model].mean())
        if best is None or rise > best[0]:
            best = (rise, model, start)
    if best is None:
        return None
    _, model, start = best
    ts = _minute_index(calls)
    before_rows, after_rows = calls[(ts >= b0) & (ts < b1)], calls[ts >= start]

    def per_call(rows):
        n = rows["calls"].sum()
        return float(rows["cost_usd"].sum() / n) if n else None

    main_before = before_rows.groupby("model")["calls"].sum().idxmax() if len(before_rows) else None
    cost_after = after_rows.groupby("model")["cost_usd"].sum()
    return {"from": str(main_before) if main_before is not None else None, "to": str(model), "at": start,
            "share_before": float(base[model].mean()), "share_after": float(mix.loc[mix.index >= start, model].mean()),
            "cost_per_call_before": per_call(before_rows), "cost_per_call_after": per_call(after_rows),
            "cost_share_after": float(cost_after.get(model, 0.0) / cost_after.sum()) if cost_after.sum() else None}


def error_share(calls: pd.DataFrame, by: str = "provider") -> pd.DataFrame:
    """Per minute and ``by`` (provider or model), the share of calls whose status is not ``ok``/``success``."""
    if calls is None or not len(calls):
        return pd.DataFrame()
    df = calls.assign(minute=_minute_index(calls),
                      failed=calls["calls"].where(~calls["status"].astype(str).str.lower().isin(OK_STATUSES), 0.0))
    g = df.groupby(["minute", by])[["calls", "failed"]].sum()
    share = (g["failed"] / g["calls"].where(g["calls"] > 0)).unstack(by)
    share.columns = pd.Index([str(c) for c in share.columns], name=None)
    return share.astype("float64")


def orgs_over(budgets: pd.DataFrame, threshold: float = 0.9) -> list[dict]:
    """Organisations at or above ``threshold`` of their monthly budget, highest share first."""
    if budgets is None or not len(budgets):
        return []
    over = budgets[budgets["share"] >= threshold].sort_values("share", ascending=False)
    return [{"org_id": str(r.org_id), "org_name": None if pd.isna(r.org_name) else str(r.org_name),
             "share": round(float(r.share), 4), "spend_mtd_usd": round(float(r.spend_mtd_usd), 2),
             "monthly_budget_usd": float(r.monthly_budget_usd)} for r in over.itertuples()]


def provider_errors(log_events: pd.DataFrame) -> pd.DataFrame:
    """``[signature, count, first_seen, last_seen]`` of provider errors/fallbacks found in log lines."""
    cols = ["signature", "count", "first_seen", "last_seen"]
    if log_events is None or not len(log_events):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    sig = log_events["message"].astype(str).str.extract(f"({PROVIDER_ERROR.pattern})", flags=re.I)[0]
    df = pd.DataFrame({"signature": sig, "timestamp": pd.to_datetime(log_events["timestamp"], utc=True)}).dropna()
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    g = df.groupby("signature")
    out = pd.DataFrame({"count": g.size(), "first_seen": g["timestamp"].min(),
                        "last_seen": g["timestamp"].max()}).reset_index()
    return out.sort_values(["count", "first_seen"], ascending=[False, True], kind="stable").reset_index(drop=True)[cols]
