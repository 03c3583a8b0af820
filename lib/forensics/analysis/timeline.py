"""One timeline across sources: change events, alarms and detected onsets in one sorted frame, and
"what changed just before it started?".

Every frame becomes the change-event contract ``[timestamp, source, resource, kind, message]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .. import contracts
from ..window import iso

COLUMNS = list(contracts.EVENT_COLUMNS)

#: Changes someone made, besides ECS service deployments (contracts.DEPLOYMENT):
TASK_RUN = contracts.TASK_RUN             # a one-off ECS task (RunTask: a migration, a backfill)
LAMBDA_DEPLOY = "lambda-deploy"          # Lambda UpdateFunctionCode / configuration / alias
PARAMETER_CHANGE = "parameter-group-change"  # RDS/ElastiCache parameter group modified or reset
SECURITY_GROUP_CHANGE = "security-group-change"  # ingress/egress rules authorised, revoked, modified
#: Made changes (someone did something): the latest of these before an onset is the suspect.
MADE_CHANGES: tuple[str, ...] = (contracts.DEPLOYMENT, TASK_RUN, LAMBDA_DEPLOY, PARAMETER_CHANGE,
                                 SECURITY_GROUP_CHANGE)
#: Every kind that counts as a change: made changes, then what AWS reports (used only when no made change
#: is in the lookback).
CHANGE_KINDS: tuple[str, ...] = MADE_CHANGES + tuple(k for k in contracts.CHANGE_KINDS if k not in MADE_CHANGES)

#: CloudTrail eventName -> change kind (AWS API reference names; read-only calls are never changes).
CLOUDTRAIL_CHANGES = {
    "RunTask": TASK_RUN, "StartTask": TASK_RUN,
    "UpdateFunctionCode": LAMBDA_DEPLOY, "UpdateFunctionConfiguration": LAMBDA_DEPLOY,
    "PublishVersion": LAMBDA_DEPLOY, "UpdateAlias": LAMBDA_DEPLOY, "CreateFunction": LAMBDA_DEPLOY,
    "ModifyDBParameterGroup": PARAMETER_CHANGE, "ResetDBParameterGroup": PARAMETER_CHANGE,
    "ModifyDBClusterParameterGroup": PARAMETER_CHANGE, "ResetDBClusterParameterGroup": PARAMETER_CHANGE,
    "ModifyCacheParameterGroup": PARAMETER_CHANGE, "ResetCacheParameterGroup": PARAMETER_CHANGE,
    "AuthorizeSecurityGroupIngress": SECURITY_GROUP_CHANGE, "AuthorizeSecurityGroupEgress": SECURITY_GROUP_CHANGE,
    "RevokeSecurityGroupIngress": SECURITY_GROUP_CHANGE, "RevokeSecurityGroupEgress": SECURITY_GROUP_CHANGE,
    "ModifySecurityGroupRules": SECURITY_GROUP_CHANGE,
    "UpdateSecurityGroupRuleDescriptionsIngress": SECURITY_GROUP_CHANGE,
}


def empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.Series(dtype=contracts.TS_DTYPE),
            **{c: pd.Series(dtype="str") for c in COLUMNS[1:]},
        }
    )


def _utc(values) -> pd.Series:
    ts = pd.to_datetime(values, utc=True, errors="coerce")
    return pd.Series(ts).astype(contracts.TS_DTYPE).reset_index(drop=True)


def _fmt(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.4g}"


def onsets_as_events(onsets: pd.DataFrame, source: str = "onset", resource: str = "") -> pd.DataFrame:
    """Episodes from :func:`forensics.analysis.onset.find_onsets` as timeline events (kind ``onset``)."""
    if onsets is None or onsets.empty:
        return empty()
    rows = []
    for _, r in onsets.iterrows():
        rows.append(
            {
                "timestamp": r["start"],
                "source": source,
                "resource": resource,
                "kind": contracts.ONSET,
                "message": (
                    f"departure from baseline {_fmt(r.get('baseline'))} to {_fmt(r.get('peak'))} "
                    f"until {iso(r['end'])} (score {_fmt(r.get('score'))})"
                ),
            }
        )
    return _contract(pd.DataFrame(rows))


def _alarms(frame: pd.DataFrame) -> pd.DataFrame:
    """CloudWatch alarm history (DescribeAlarmHistory items, raw or snake_cased) as events."""
    cols = {c.lower().replace("_", ""): c for c in frame.columns}
    ts = cols.get("timestamp")
    name = cols.get("alarmname")
    summary = cols.get("historysummary") or cols.get("summary") or cols.get("message")
    item = cols.get("historyitemtype")
    out = pd.DataFrame(
        {
            "timestamp": frame[ts].to_numpy(),
            "source": "cloudwatch",
            "resource": frame[name].to_numpy(),
            "kind": contracts.ALARM if item is None
            else (contracts.ALARM + "-" + frame[item].astype(str).str.lower()).to_numpy(),
            "message": frame[summary].to_numpy() if summary else frame[name].to_numpy(),
        }
    )
    return out


def _contract(frame: pd.DataFrame) -> pd.DataFrame:
    """The five contract columns, typed; missing source/resource/kind become empty strings."""
    out = pd.DataFrame({"timestamp": _utc(frame["timestamp"])})
    for col in COLUMNS[1:]:
        values = frame[col].reset_index(drop=True) if col in frame else pd.Series([""] * len(frame))
        out[col] = values.astype("str").fillna("")
    return out


def _as_events(frame: pd.DataFrame) -> pd.DataFrame:
    lowered = {c.lower().replace("_", "") for c in frame.columns}
    if {"start", "end", "score"} <= set(frame.columns):
        return onsets_as_events(frame)
    if "alarmname" in lowered and "timestamp" in lowered:
        return _contract(_alarms(frame))
    if "timestamp" not in frame.columns:
        raise ValueError(f"not a timeline frame (no timestamp column): {list(frame.columns)}")
    return _contract(frame)


def merge(*frames: pd.DataFrame | None) -> pd.DataFrame:
    """All events of ``frames`` in one frame, sorted by time (undated ones last), exact duplicates
    removed. Accepts change-event frames (extra columns are dropped), ``find_onsets`` output and
    CloudWatch alarm history; ``None`` and empty frames are skipped."""
    parts = [_as_events(f) for f in frames if f is not None and len(f)]
    if not parts:
        return empty()
    out = pd.concat(parts, ignore_index=True)
    out = out.drop_duplicates(COLUMNS)
    out = out.sort_values(["timestamp", "source", "resource", "kind"], kind="stable", na_position="last")
    return out.reset_index(drop=True)


def cloudtrail_changes(trail: pd.DataFrame | None) -> pd.DataFrame:
    """CloudTrail events (the ``cloudtrail_events`` capture's columns) that change something
    (:data:`CLOUDTRAIL_CHANGES`) as timeline events; failed calls (an ``error_code``) changed nothing."""
    if trail is None or not len(trail) or "event_name" not in trail:
        return empty()
    t = trail[trail["event_name"].isin(set(CLOUDTRAIL_CHANGES))]
    if "error_code" in t:
        t = t[t["error_code"].isna() | (t["error_code"].astype("str").isin(["", "None", "<NA>", "nan"]))]
    if not len(t):
        return empty()
    who = t["principal"].astype("str") if "principal" in t else pd.Series([""] * len(t), index=t.index)
    res = t["resource"].astype("str") if "resource" in t else pd.Series([""] * len(t), index=t.index)
    return _contract(pd.DataFrame({
        "timestamp": t["timestamp"].to_numpy(), "source": "cloudtrail", "resource": res.to_numpy(),
        "kind": t["event_name"].map(CLOUDTRAIL_CHANGES).to_numpy(),
        "message": (t["event_name"].astype("str") + " by " + who).to_numpy()}))


def one_off_tasks(stopped: pd.DataFrame | None) -> pd.DataFrame:
    """ECS tasks not started by a service (``group`` is ``family:<name>``, as RunTask sets it, not
    ``service:<name>``) as ``task-run`` changes at their start: a migration run as a one-off task."""
    if stopped is None or not len(stopped) or "group" not in stopped:
        return empty()
    t = stopped[~stopped["group"].astype("str").str.startswith("service:")
                & stopped["group"].notna() & (stopped["group"].astype("str") != "")]
    if not len(t):
        return empty()
    when = t["started_at"].fillna(t["timestamp"]) if "started_at" in t else t["timestamp"]
    what = t["task_definition"].astype("str") if "task_definition" in t else t["group"].astype("str")
    return _contract(pd.DataFrame({
        "timestamp": when.to_numpy(), "source": "ecs", "resource": t["group"].astype("str").to_numpy(),
        "kind": TASK_RUN, "message": ("one-off task " + what).to_numpy()}))


def change_before(
    events: pd.DataFrame,
    t,
    lookback: str | pd.Timedelta = "60min",
    kinds: Iterable[str] = CHANGE_KINDS,
    slack: str | pd.Timedelta = "0s",
) -> pd.Series | None:
    """The change most likely behind an onset at ``t``: among events in ``[t - lookback, t + slack]``,
    the latest made change (:data:`MADE_CHANGES`: a deployment, a one-off task, a Lambda deploy, a
    parameter-group or security-group change) in ``kinds``; without one, the latest of the first other
    kind in ``kinds`` that has any (RDS events, then service events). ``slack`` admits an
    event inside the onset's own period (an onset at 09:05 stands for the minute 09:05-09:06).
    ``None`` when nothing of those kinds happened in the lookback."""
    if t is None or events is None or events.empty:
        return None
    t = pd.Timestamp(t)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    ev = merge(events)
    ev = ev[(ev["timestamp"] >= t - pd.Timedelta(lookback)) & (ev["timestamp"] <= t + pd.Timedelta(slack))]
    kinds = tuple(kinds)
    made = ev[ev["kind"].isin([k for k in kinds if k in MADE_CHANGES])]
    if len(made):  # someone's change: the latest one, whatever its kind (a migration after a deploy)
        return made.iloc[-1]
    for kind in kinds:
        sel = ev[ev["kind"] == kind]
        if len(sel):
            return sel.iloc[-1]
    return None


def describe(event: pd.Series | None) -> dict | None:
    """A JSON-ready summary of one event (for findings): time as ISO-8601 UTC."""
    if event is None:
        return None
    return {
        "time": iso(event["timestamp"]),
        "source": str(event.get("source", "")),
        "resource": str(event.get("resource", "")),
        "kind": str(event.get("kind", "")),
        "message": str(event.get("message", "")),
    }
