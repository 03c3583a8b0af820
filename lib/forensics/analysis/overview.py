"""The incident as a whole: when it started and ended, how long, how many requests failed, and one
timeline across every source. Pure functions; the overview notebook and the postmortem use them."""

from __future__ import annotations

import pandas as pd

from .. import contracts
from ..window import iso
from . import onset as onset_mod
from . import timeline
from .integrations import CRM_SYNC_FAILED
from .security import SENSITIVE_EVENTS

#: Series whose departure from baseline marks the incident, most user-visible first.
HEADLINE_SERIES = ("error_rate", "latency_p99_s", "latency_avg_s")
#: Timeline kinds that make the postmortem (service events and the like are too many to list).
TIMELINE_KINDS = ("deployment", "rollback", "onset", "recovered", "task-stopped", contracts.TASK_RUN, "rds-event",
                  "failover",
                  "elasticache-event", "alarm", "config-change", contracts.JOB_SILENT, contracts.JOB_FAILED,
                  contracts.BACKUP, contracts.BACKUP_FAILED, contracts.CERTIFICATE_EXPIRY, "security",
                  CRM_SYNC_FAILED, *sorted(SENSITIVE_EVENTS))
#: Events of one kind from one source closer than this are one line ("x36") in the timeline.
BURST_GAP = pd.Timedelta(minutes=10)
MAX_TIMELINE_ROWS = 40


def incident_span(traffic: pd.DataFrame, window) -> dict:
    """Onset and recovery of the error rate (falling back to latency): ``onset``, ``recovered``
    (None while it is still going on at the end of the data), ``duration_minutes`` (to recovery,
    else to the end of the window, with ``ongoing`` true)."""
    out = {"onset": None, "recovered": None, "duration_minutes": None, "ongoing": None, "signal": None}
    for col in HEADLINE_SERIES:
        if col not in traffic or traffic[col].dropna().empty:
            continue
        series = traffic[col].dropna()
        episodes = onset_mod.find_onsets(series)
        started = onset_mod.first_onset(series)
        if started is None:
            continue
        out["signal"] = col
        out["onset"] = started
        ep = episodes[episodes["start"] == started]
        end = pd.Timestamp(ep["end"].iloc[0]) if len(ep) else None
        last = series.index.max()
        step = _step(series.index)
        if end is not None and end + step <= last:
            # the series is back to its baseline after the episode's last anomalous point
            out["recovered"] = end + step
            out["ongoing"] = False
            stop = out["recovered"]
        else:
            out["ongoing"] = True
            stop = min(pd.Timestamp(window.end), last + step)
        out["duration_minutes"] = round((stop - started).total_seconds() / 60, 1)
        break
    return out


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) < 2:
        return pd.Timedelta(minutes=1)
    return pd.Series(index).diff().median()


def build_timeline(*event_frames: pd.DataFrame, span: dict | None = None, kinds=TIMELINE_KINDS,
                   window=None) -> pd.DataFrame:
    """Change events of every source plus the detected onset and recovery, sorted; limited to the
    kinds worth reading in a postmortem and (with ``window``) to the window padded by an hour before."""
    frames = [f for f in event_frames if f is not None and len(f)]
    extra = []
    if span and span.get("onset") is not None:
        extra.append({"timestamp": span["onset"], "source": "analysis", "resource": span.get("signal") or "",
                      "kind": "onset", "message": f"{span.get('signal')} departs from its baseline"})
    if span and span.get("recovered") is not None:
        extra.append({"timestamp": span["recovered"], "source": "analysis", "resource": span.get("signal") or "",
                      "kind": "recovered", "message": f"{span.get('signal')} back to its baseline"})
    if extra:
        frames.append(pd.DataFrame(extra))
    merged = timeline.merge(*frames)
    if merged.empty:
        return merged
    merged = merged[merged["kind"].isin(kinds)]
    if window is not None:
        lo = pd.Timestamp(window.start) - pd.Timedelta(hours=1)
        merged = merged[(merged["timestamp"] >= lo) & (merged["timestamp"] <= pd.Timestamp(window.end))]
    return _collapse_bursts(merged).tail(MAX_TIMELINE_ROWS).reset_index(drop=True)


def _collapse_bursts(events: pd.DataFrame) -> pd.DataFrame:
    """36 GetSecretValue calls in two minutes are one line of a postmortem timeline, not 36."""
    if events.empty:
        return events
    rows, last = [], {}
    for _, r in events.iterrows():
        # one alarm flapping is a burst; two different alarms firing are two lines
        # a suspicious actor's calls stay one line per actor and call (security.security_timeline)
        key = (r["source"], r["kind"], r["resource"] if r["kind"] == "alarm" else
               (r["resource"], str(r["message"]).split(" - ")[0].split(" ×")[0]) if r["kind"] == "security" else "")
        prev = last.get(key)
        if prev is not None and r["timestamp"] - prev["until"] <= BURST_GAP and r["kind"] not in ("onset", "recovered"):
            prev["count"] += 1
            prev["until"] = r["timestamp"]
            continue
        entry = {**r.to_dict(), "count": 1, "until": r["timestamp"]}
        rows.append(entry)
        last[key] = entry
    for e in rows:
        if e["count"] > 1:
            e["message"] = (f"{e['message']} (x{e['count']} until {e['until']:%H:%M})")
    return pd.DataFrame(rows)[list(events.columns)]


def security_events(cloudtrail_events: pd.DataFrame | None, cloudtrail: dict | None = None) -> pd.DataFrame:
    """The suspicious actors' flagged calls as timeline events (kind ``security``), from the window's trail
    alone (rules and the signals that need no baseline: the security notebook adds the baseline's), so the
    timeline shows an attack with no ALB configured. Empty without a trail."""
    from . import security

    if cloudtrail_events is None or not len(cloudtrail_events):
        return timeline.empty()
    return security.security_timeline(security.detect(cloudtrail_events, None, cloudtrail))


def timeline_records(events: pd.DataFrame) -> list[dict]:
    """The timeline as findings: [{time (ISO UTC), source, resource, kind, message}]."""
    if events is None or events.empty:
        return []
    return [{"time": iso(r["timestamp"]), "source": str(r["source"]), "resource": str(r["resource"]),
             "kind": str(r["kind"]), "message": str(r["message"])} for _, r in events.iterrows()]
