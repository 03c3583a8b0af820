"""The ALB's view of an incident: requests, 5xx and latency per period from the long metrics frame."""

from __future__ import annotations

import pandas as pd

#: metric query id (sources.cloudwatch.alb_queries) -> column
_COLUMNS = {"requests": "requests", "target_5xx": "target_5xx", "elb_5xx": "elb_5xx", "target_4xx": "target_4xx",
            "latency_avg": "latency_avg_s", "latency_maximum": "latency_max_s", "latency_p50": "latency_p50_s",
            "latency_p95": "latency_p95_s", "latency_p99": "latency_p99_s",
            "unhealthy_hosts": "unhealthy_hosts", "healthy_hosts": "healthy_hosts"}
FRAME_COLUMNS = ["requests", "target_5xx", "elb_5xx", "errors_5xx", "error_rate"]


def alb_frame(*metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per period (UTC index): requests, target/ELB 5xx, errors_5xx, error_rate (0..1) and the
    latency columns present. Missing periods of a count metric are zeros (CloudWatch omits them)."""
    frames = [m for m in metrics if m is not None and not m.empty]
    if not frames:
        return pd.DataFrame(columns=FRAME_COLUMNS, index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))
    long = pd.concat(frames, ignore_index=True)
    long = long[long["id"].isin(_COLUMNS)]
    wide = long.pivot_table(index="timestamp", columns="id", values="value", aggfunc="last")
    wide = wide.rename(columns=_COLUMNS).sort_index()
    wide.columns.name = None
    for col in ("requests", "target_5xx", "elb_5xx", "target_4xx"):
        wide[col] = wide[col].fillna(0.0) if col in wide else 0.0
    wide["errors_5xx"] = wide["target_5xx"] + wide["elb_5xx"]
    wide["error_rate"] = (wide["errors_5xx"] / wide["requests"].where(wide["requests"] > 0)).clip(0, 1)
    wide.index.name = "timestamp"
    return wide


def impact(frame: pd.DataFrame, start=None, end=None) -> dict:
    """Failed and total requests between start and end (the whole frame by default)."""
    sel = frame
    if start is not None:
        sel = sel[sel.index >= pd.Timestamp(start)]
    if end is not None:
        sel = sel[sel.index < pd.Timestamp(end)]
    total = float(sel["requests"].sum()) if "requests" in sel else 0.0
    failed = float(sel["errors_5xx"].sum()) if "errors_5xx" in sel else 0.0
    return {"requests": int(total), "failed_requests": int(failed),
            "failed_share": round(failed / total, 4) if total else None}
