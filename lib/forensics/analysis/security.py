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
from collections.abc import Iterable

import pandas as pd

#: API calls worth a look in any security incident: credentials, identities and policies, secrets,
#: audit trail tampering, keys, network exposure.
SENSITIVE_EVENTS = frozenset({
    # IAM: new credentials, identities, privileges
    "CreateAccessKey", "UpdateAccessKey", "CreateLoginProfile", "UpdateLoginProfile", "CreateUser",
    "AttachUserPolicy", "PutUserPolicy", "AttachRolePolicy", "PutRolePolicy", "UpdateAssumeRolePolicy",
    "AddUserToGroup", "CreatePolicyVersion", "SetDefaultPolicyVersion", "DeactivateMFADevice", "CreateRole",
    "ConsoleLogin", "GetSessionToken", "GetFederationToken",
    # secrets and parameters
    "GetSecretValue", "PutSecretValue", "UpdateSecret", "DeleteSecret", "GetParameter", "GetParameters",
    "GetParametersByPath", "GetPasswordData",
    # the audit trail itself
    "StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors",
    # keys and exposure
    "DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "AuthorizeSecurityGroupIngress", "PutBucketPolicy",
    "PutBucketAcl", "DeleteBucketPolicy", "ModifyDBInstance", "ModifySnapshotAttribute",
    "ModifyDBSnapshotAttribute",
})


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
    if frame is None or not len(frame):
        return []
    out = frame.head(limit) if limit else frame
    recs = out.to_dict(orient="records")
    if short:
        for r in recs:
            if "principal" in r:
                r["principal"] = short_principal(r["principal"])
            if "principals" in r:
                r["principals"] = [short_principal(p) for p in r["principals"]]
    return recs
