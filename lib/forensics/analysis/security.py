"""Who did what from where: CloudTrail events of the window against a baseline period before it.

"New" is defined against the *baseline* frame only (CloudTrail events of the hours before the window,
pulled as their own capture), plus any addresses the environment declares known (``known_ips``:
addresses or CIDR ranges, e.g. the office and the CI runners):

- a **new principal** made calls in the window and none in the baseline;
- a **new source IP** is an IP address that called in the window and not in the baseline, and is not
  known. AWS service names (``secretsmanager.amazonaws.com``) and ``AWS Internal`` are not addresses
  and are never "new".

A baseline that is short, or that was truncated, makes more things look new: say so next to the finding.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

#: Where the sensitive calls are listed, by category (data, not code: see the file's header).
SENSITIVE_CALLS_FILE = Path(__file__).resolve().parent.parent / "data" / "sensitive_calls.yaml"


def load_sensitive_calls(path: Path | str = SENSITIVE_CALLS_FILE) -> dict[str, str]:
    """``{event name: category}`` from the sensitive-calls file; a malformed file is a clear error."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    out: dict[str, str] = {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected categories at the top level")
    for category, body in data.items():
        events = (body or {}).get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
            raise ValueError(f"{path}: category {category!r} needs a list of event names under 'events'")
        for event in events:
            if event in out:
                raise ValueError(f"{path}: {event} is listed under both {out[event]!r} and {category!r}")
            out[event] = str(category)
    return out


#: event name -> category: what incident-response playbooks name for escalation, persistence, evasion
#: and exposure (IAM policies, access keys, login profiles, role trust, MFA, logging and detectors,
#: bucket policies/ACLs/public access blocks, KMS keys, secrets, network and snapshot exposure).
SENSITIVE_CATEGORY: dict[str, str] = load_sensitive_calls()
SENSITIVE_EVENTS = frozenset(SENSITIVE_CATEGORY)


def _ip(value) -> ipaddress._BaseAddress | None:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        return None


def is_ip(value) -> bool:
    return _ip(value) is not None


def _networks(known: Iterable[str] | None) -> list:
    out = []
    for k in known or ():
        try:
            out.append(ipaddress.ip_network(str(k), strict=False))
        except ValueError as exc:
            raise ValueError(f"known_ips: {k!r} is not an IP address or CIDR range") from exc
    return out


def _known(ip, networks) -> bool:
    addr = _ip(ip)
    return addr is not None and any(addr.version == n.version and addr in n for n in networks)


def _seen(baseline: pd.DataFrame | None, col: str) -> set:
    if baseline is None or not len(baseline) or col not in baseline.columns:
        return set()
    return set(baseline[col].dropna().astype(str))


def principals(events: pd.DataFrame, baseline: pd.DataFrame | None = None,
               sensitive: Iterable[str] = SENSITIVE_EVENTS) -> pd.DataFrame:
    """One row per principal of the window: calls, errors, sensitive calls, source IPs, first/last seen,
    and ``new`` (no call in the baseline). New principals first, then by calls."""
    cols = ["principal", "calls", "errors", "sensitive_calls", "source_ips", "first_seen", "last_seen", "new"]
    if events is None or not len(events):
        return pd.DataFrame(columns=cols)
    seen = _seen(baseline, "principal")
    sens = set(sensitive)
    df = events.assign(principal=events["principal"].fillna("unknown"),
                       _err=events["error_code"].notna(), _sens=events["event_name"].isin(sens))
    out = df.groupby("principal").agg(calls=("event_id", "size"), errors=("_err", "sum"),
                                      sensitive_calls=("_sens", "sum"),
                                      source_ips=("source_ip", lambda s: sorted(set(s.dropna().astype(str)))),
                                      first_seen=("timestamp", "min"), last_seen=("timestamp", "max")).reset_index()
    out["new"] = ~out["principal"].isin(seen)
    out["errors"] = out["errors"].astype(int)
    out["sensitive_calls"] = out["sensitive_calls"].astype(int)
    return out.sort_values(["new", "calls"], ascending=[False, False]).reset_index(drop=True)[cols]


def new_source_ips(events: pd.DataFrame, baseline: pd.DataFrame | None = None,
                   known: Iterable[str] | None = None, sensitive: Iterable[str] = SENSITIVE_EVENTS) -> pd.DataFrame:
    """IP addresses that called in the window, not in the baseline and not known: calls, principals,
    event names, first/last seen. Earliest first."""
    cols = ["source_ip", "calls", "sensitive_calls", "principals", "event_names", "first_seen", "last_seen"]
    if events is None or not len(events):
        return pd.DataFrame(columns=cols)
    seen = _seen(baseline, "source_ip")
    nets = _networks(known)
    sens = set(sensitive)
    ips = events["source_ip"].astype("object")
    mask = ips.map(lambda v: is_ip(v) and str(v) not in seen and not _known(v, nets)).astype(bool)
    df = events[mask]
    if not len(df):
        return pd.DataFrame(columns=cols)
    df = df.assign(_sens=df["event_name"].isin(sens))
    out = df.groupby("source_ip").agg(calls=("event_id", "size"), sensitive_calls=("_sens", "sum"),
                                      principals=("principal", lambda s: sorted(set(s.dropna().astype(str)))),
                                      event_names=("event_name", lambda s: sorted(set(s.dropna().astype(str)))),
                                      first_seen=("timestamp", "min"), last_seen=("timestamp", "max")).reset_index()
    out["sensitive_calls"] = out["sensitive_calls"].astype(int)
    return out.sort_values(["first_seen", "source_ip"]).reset_index(drop=True)[cols]


def sensitive_calls(events: pd.DataFrame, baseline: pd.DataFrame | None = None,
                    known: Iterable[str] | None = None, names: Iterable[str] = SENSITIVE_EVENTS) -> pd.DataFrame:
    """Sensitive API calls of the window grouped by (principal, event, source IP): calls, failed calls,
    first/last seen, and whether the principal or the IP is new. New actors first, then by calls."""
    cols = ["principal", "event_name", "source_ip", "calls", "failed", "first_seen", "last_seen",
            "new_principal", "new_ip"]
    if events is None or not len(events):
        return pd.DataFrame(columns=cols)
    df = events[events["event_name"].isin(set(names))]
    if not len(df):
        return pd.DataFrame(columns=cols)
    df = df.assign(principal=df["principal"].fillna("unknown"), source_ip=df["source_ip"].fillna("unknown"),
                   _err=df["error_code"].notna())
    out = df.groupby(["principal", "event_name", "source_ip"]).agg(
        calls=("event_id", "size"), failed=("_err", "sum"), first_seen=("timestamp", "min"),
        last_seen=("timestamp", "max")).reset_index()
    seen_p, seen_ip, nets = _seen(baseline, "principal"), _seen(baseline, "source_ip"), _networks(known)
    out["failed"] = out["failed"].astype(int)
    out["new_principal"] = ~out["principal"].isin(seen_p)
    out["new_ip"] = out["source_ip"].map(lambda v: is_ip(v) and v not in seen_ip and not _known(v, nets)).astype(bool)
    out["_new"] = out["new_principal"] | out["new_ip"]
    out = out.sort_values(["_new", "calls", "first_seen"], ascending=[False, False, True])
    return out.drop(columns="_new").reset_index(drop=True)[cols]


def bursts(events: pd.DataFrame, names: Iterable[str] = SENSITIVE_EVENTS, freq: str = "1min",
           threshold: int = 10) -> pd.DataFrame:
    """(principal, event) pairs with at least ``threshold`` sensitive calls in one ``freq`` bucket."""
    cols = ["principal", "event_name", "minute", "calls"]
    if events is None or not len(events):
        return pd.DataFrame(columns=cols)
    df = events[events["event_name"].isin(set(names))]
    if not len(df):
        return pd.DataFrame(columns=cols)
    counts = df.groupby(["principal", "event_name", pd.Grouper(key="timestamp", freq=freq)]).size()
    counts = counts[counts >= threshold].rename("calls").reset_index().rename(columns={"timestamp": "minute"})
    return counts.sort_values(["calls", "minute"], ascending=[False, True]).reset_index(drop=True)[cols]


def calls_by_principal(events: pd.DataFrame, freq: str = "5min", top: int = 5,
                       always: Iterable[str] = ()) -> pd.DataFrame:
    """Calls per ``freq`` by principal (wide), the ``top`` busiest plus every principal in ``always``."""
    if events is None or not len(events):
        return pd.DataFrame()
    short = events.assign(who=events["principal"].fillna("unknown").map(short_principal))
    counts = short.groupby([pd.Grouper(key="timestamp", freq=freq), "who"]).size().unstack("who", fill_value=0)
    keep = counts.sum().sort_values(ascending=False).index[:top].tolist()
    keep += [short_principal(p) for p in always if short_principal(p) in counts.columns
             and short_principal(p) not in keep]
    return counts[keep]


def short_principal(arn: str) -> str:
    """``arn:aws:iam::123:user/alice`` -> ``user/alice``; assumed roles keep role/session."""
    text = str(arn)
    if text.startswith("arn:"):
        return text.split(":", 5)[-1]
    return text


def key_moments(events: pd.DataFrame, baseline: pd.DataFrame | None = None, known: Iterable[str] | None = None,
                names: Iterable[str] = SENSITIVE_EVENTS, limit: int = 8) -> list[tuple]:
    """Chart markers: the first of each sensitive call by a new principal or from a new IP."""
    calls = sensitive_calls(events, baseline, known, names)
    calls = calls[calls["new_principal"] | calls["new_ip"]].sort_values("first_seen").head(limit)
    return [(r["first_seen"], f"{r['event_name']} by {short_principal(r['principal'])}")
            for r in calls.to_dict(orient="records")]


def as_records(frame: pd.DataFrame, limit: int | None = None, short: bool = False) -> list[dict]:
    """A frame as a list of plain dicts for findings (principals shortened when ``short``)."""
    from . import records

    recs = records(frame, limit)
    if short:
        for r in recs:
            if "principal" in r:
                r["principal"] = short_principal(r["principal"])
            if "principals" in r:
                r["principals"] = [short_principal(p) for p in r["principals"]]
    return recs


# ---- data events (S3 object calls) ----------------------------------------------------------------
#: S3 object-level calls (CloudTrail data events) when a frame has no ``event_category`` column.
S3_OBJECT_CALLS = frozenset({
    "GetObject", "HeadObject", "GetObjectAcl", "GetObjectAttributes", "GetObjectTagging", "GetObjectVersion",
    "SelectObjectContent", "RestoreObject", "PutObject", "CopyObject", "PutObjectAcl", "PutObjectTagging",
    "DeleteObject", "DeleteObjects", "DeleteObjectTagging", "CreateMultipartUpload", "UploadPart",
    "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload", "ListObjects", "ListObjectsV2",
    "ListObjectVersions", "ListMultipartUploads", "ListParts"})


def poisson_threshold(rate: float, alpha: float = 1e-4) -> int:
    """The smallest count ``c`` with ``P(X >= c) <= alpha`` for ``X ~ Poisson(rate)``."""
    if rate <= 0:
        return 1
    if rate > 700:  # exp(-rate) underflows: the normal approximation is tight here
        z = {1e-2: 2.326, 1e-3: 3.090, 1e-4: 3.719, 1e-5: 4.265, 1e-6: 4.753}.get(alpha, 3.719)
        return int(math.ceil(rate + z * math.sqrt(rate) + 0.5))
    pmf = math.exp(-rate)
    cdf, k = pmf, 0
    while 1.0 - cdf > alpha:
        k += 1
        pmf *= rate / k
        cdf += pmf
    return k + 1


def _data_events(events: pd.DataFrame) -> pd.DataFrame:
    if "event_category" in events.columns:
        mask = events["event_category"].astype("object").eq("Data").fillna(False).astype(bool)
    else:
        mask = pd.Series(False, index=events.index)
    source = events["event_source"].astype("object") if "event_source" in events.columns else None
    s3 = source.eq("s3.amazonaws.com").fillna(False).astype(bool) if source is not None else True
    mask = mask | (events["event_name"].isin(S3_OBJECT_CALLS) & s3)
    df = events[mask]
    bucket = df["bucket"] if "bucket" in df.columns else pd.Series(None, index=df.index, dtype="object")
    key = df["object_key"] if "object_key" in df.columns else pd.Series(None, index=df.index, dtype="object")
    return df.assign(principal=df["principal"].fillna("unknown"), bucket=bucket.astype("object").fillna("-"),
                     object_key=key,
                     _err=df["error_code"].notna() if "error_code" in df.columns else False,
                     _bytes=pd.to_numeric(df["bytes_out"], errors="coerce") if "bytes_out" in df.columns else 0.0)


def data_access(events: pd.DataFrame, baseline: pd.DataFrame | None = None, *,
                baseline_minutes: float | None = None, freq: str = "1min", alpha: float = 1e-4,
                min_calls: int = 10) -> pd.DataFrame:
    """Object calls (CloudTrail data events) per principal, bucket and action, with their bursts.

    A **burst** is a ``freq`` bucket (a minute) whose count the principal's own baseline makes
    improbable: with ``rate`` = that principal's calls of that action on that bucket per minute over the
    baseline (``baseline_minutes`` long; no baseline or no calls there is a rate of 0), a minute with
    ``c`` calls is a burst when ``P(Poisson(rate) >= c) <= alpha`` and ``c >= min_calls``. The Poisson
    model is the usual one for independent requests; ``alpha`` (1e-4) makes a steady client flag about one
    minute in a week; ``min_calls`` keeps a handful of reads by a new principal from being a burst.

    Columns: ``principal, bucket, event_name, calls, objects, bytes_out, errors, first_seen, last_seen,
    peak_per_minute, peak_minute, baseline_per_minute, burst_threshold, burst_minutes, burst,
    new_principal`` (no object call on that bucket in the baseline). Bursts first, then by calls.
    """
    cols = ["principal", "bucket", "event_name", "calls", "objects", "bytes_out", "errors", "first_seen",
            "last_seen", "peak_per_minute", "peak_minute", "baseline_per_minute", "burst_threshold",
            "burst_minutes", "burst", "new_principal"]
    if events is None or not len(events):
        return pd.DataFrame(columns=cols)
    df = _data_events(events)
    if not len(df):
        return pd.DataFrame(columns=cols)
    keys = ["principal", "bucket", "event_name"]
    out = df.groupby(keys).agg(calls=("event_name", "size"), objects=("object_key", "nunique"),
                               bytes_out=("_bytes", "sum"), errors=("_err", "sum"),
                               first_seen=("timestamp", "min"), last_seen=("timestamp", "max")).reset_index()
    per_minute = df.groupby(keys + [pd.Grouper(key="timestamp", freq=freq)]).size().rename("n").reset_index()
    base = _data_events(baseline) if baseline is not None and len(baseline) else None
    if base is not None and len(base):
        minutes = baseline_minutes or max(1.0, (base["timestamp"].max() - base["timestamp"].min())
                                          / pd.Timedelta(freq))
        rates = (base.groupby(keys).size() / float(minutes)).rename("baseline_per_minute")
        seen = set(zip(base["principal"], base["bucket"]))
    else:
        rates = pd.Series(dtype=float, name="baseline_per_minute")
        seen = set()
    out = out.merge(rates.reset_index(), on=keys, how="left") if len(rates) else out.assign(baseline_per_minute=0.0)
    out["baseline_per_minute"] = out["baseline_per_minute"].fillna(0.0).astype(float)
    out["burst_threshold"] = [max(int(min_calls), poisson_threshold(r, alpha)) for r in out["baseline_per_minute"]]
    per_minute = per_minute.merge(out[keys + ["burst_threshold"]], on=keys)
    per_minute["_burst"] = per_minute["n"] >= per_minute["burst_threshold"]
    peak = per_minute.sort_values("n", ascending=False, kind="stable").drop_duplicates(keys)
    peak = peak.rename(columns={"n": "peak_per_minute", "timestamp": "peak_minute"})[
        keys + ["peak_per_minute", "peak_minute"]]
    bursts_ = per_minute.groupby(keys)["_burst"].sum().rename("burst_minutes").reset_index()
    out = out.merge(peak, on=keys).merge(bursts_, on=keys)
    out["burst_minutes"] = out["burst_minutes"].astype(int)
    out["burst"] = out["burst_minutes"] > 0
    out["errors"] = out["errors"].astype(int)
    out["bytes_out"] = out["bytes_out"].astype(float)
    out["new_principal"] = [(p, b) not in seen for p, b in zip(out["principal"], out["bucket"])]
    out = out.sort_values(["burst", "calls", "first_seen"], ascending=[False, False, True], kind="stable")
    return out.reset_index(drop=True)[cols]


# ---- community rules, behaviour against a baseline, actors' stories (forensics.detection) ----------------
def detect(events: pd.DataFrame, baseline: pd.DataFrame | None = None, cloudtrail: dict | None = None):
    """SigmaHQ's rules (and the environment's ``cloudtrail.rules_dir``), the behaviour signals against
    ``baseline`` and the hand-written list, over the window's trail: a
    :class:`forensics.detection.stories.Detection`."""
    from ..detection import sigma, stories

    rules = sigma.rules_for(cloudtrail or {})
    return stories.detect(events if events is not None else pd.DataFrame(), baseline, rules=rules,
                          sensitive=SENSITIVE_EVENTS)


def _plain(value):
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def suspicious_actors(det) -> list[dict]:
    """Every suspicious actor (no row limit), by evidence: score, rules, signals, calls, first/last."""
    cols = ["story", "score", "new_to_account", "calls", "flagged_calls", "first_seen", "last_seen", "rules",
            "signals", "mutations",
            "denied", "first_seen_apis", "principals", "addresses", "agents"]
    return [{k: _plain(r[k]) for k in cols} for r in det.suspicious.to_dict(orient="records")]


def actor_stories(det) -> list[dict]:
    """Each suspicious actor's whole story: its calls in order, grouped by (caller, event), with count,
    first and last time, errors, resources, signals and rules; and its decisive calls."""
    out = []
    for story in det.suspicious["story"]:
        calls = det.story(story).drop(columns=["weight"])
        out.append({"story": story, "decisive": det.decisive(story),
                    "calls": [{k: _plain(v) for k, v in r.items()} for r in calls.to_dict(orient="records")]})
    return out


def flagged_calls(det) -> list[dict]:
    """Every flagged call of the window (a rule hit or a behaviour signal): never cut."""
    return [{k: _plain(v) for k, v in r.items()} for r in det.flagged.to_dict(orient="records")]


def rule_hits(det) -> list[dict]:
    """Rule hits grouped by rule: title, id, level, ATT&CK tags, where the rule comes from, calls, actors."""
    if not len(det.hits):
        return []
    h = det.hits.assign(actor=det.frame.loc[det.hits["row"], "actor"].to_numpy(),
                        event_name=det.frame.loc[det.hits["row"], "event_name"].to_numpy())
    out = []
    for (rid, title, level, source), g in h.groupby(["rule_id", "title", "level", "source"], sort=False):
        out.append({"rule_id": rid, "title": title, "level": level, "attack": list(g["tags"].iloc[0]),
                    "source": source, "calls": len(g), "events": sorted(set(map(str, g["event_name"])))[:20],
                    "actors": sorted(set(map(str, g["actor"])))[:20]})
    return sorted(out, key=lambda r: (-LEVEL_ORDER.get(r["level"], 2), -r["calls"]))


LEVEL_ORDER = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


#: behaviour signals strong enough for a timeline line on their own (first-seen APIs, enumeration and the
#: hand list are in flagged_calls and the stories, not on the timeline)
TIMELINE_SIGNALS = frozenset({"role_outside_network", "denied_burst", "new_actor_mutation"})


def security_timeline(det) -> pd.DataFrame:
    """Timeline events (``contracts.EVENT_COLUMNS``) of the suspicious actors' decisive calls: a rule of
    level medium or above, a strong behaviour signal, or a listed sensitive call by an actor new to the
    account (or of unknown newness: no baseline); one line per (actor, event name) run without a 10-minute
    gap, so the overview and the postmortem show the attack
    with no ALB. Every flagged call stays in ``flagged_calls``."""
    from .. import contracts

    cols = list(contracts.EVENT_COLUMNS)
    f = det.flagged
    if not len(f) or not len(det.suspicious):
        return pd.DataFrame(columns=cols)
    sus = det.suspicious
    # new to the account, or unknown (no baseline): their listed sensitive calls are lines too
    new = set(sus.loc[sus["new_to_account"].isna() | sus["new_to_account"].fillna(False).astype(bool), "story"])
    f = f[f["story"].isin(set(sus["story"]))]
    strong = [any(LEVEL_ORDER.get(lv, 2) >= 2 for lv in levels) or bool(set(sig) & TIMELINE_SIGNALS)
              or (story in new and "sensitive_call" in sig)
              for levels, sig, story in zip(f["levels"], f["signals"], f["story"])]
    f = f[pd.Series(strong, index=f.index, dtype=bool)]
    if not len(f):
        return pd.DataFrame(columns=cols)
    # one line per run of the same call by the same actor (no gap over 10 minutes)
    f = f.sort_values("timestamp", kind="stable")
    gap = f.groupby(["story", "event_name"], sort=False)["timestamp"].diff() > pd.Timedelta(minutes=10)
    f = f.assign(run=gap.astype(int).groupby([f["story"], f["event_name"]]).cumsum())
    g = f.groupby(["story", "event_name", "run"], sort=False).agg(
        timestamp=("timestamp", "min"), until=("timestamp", "max"), n=("event_name", "size"),
        errors=("error_code", lambda s: int(s.notna().sum())),
        why=("rules", lambda s: sorted({x for v in s for x in v})),
        sig=("signals", lambda s: sorted({x for v in s for x in v}))).reset_index()
    who = g["story"].map(lambda s: short_principal(str(s).split(" | ")[0]))
    msg = [f"{w} called {e}" + (f" ×{n} until {u:%H:%M}" if n > 1 else "") + (f" ({x} failed)" if x else "")
           + (f" - {', '.join(r + s)}" if (r or s) else "")
           for w, e, n, u, x, r, s in zip(who, g["event_name"], g["n"], g["until"], g["errors"], g["why"], g["sig"])]
    out = pd.DataFrame({"timestamp": g["timestamp"], "source": "cloudtrail", "resource": who, "kind": "security",
                        "message": [m[:300] for m in msg]})
    for c in cols:
        if c not in out.columns:
            out[c] = None
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)[cols]
