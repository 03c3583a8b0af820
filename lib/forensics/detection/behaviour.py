"""Behaviour against a baseline of days: what each actor did that it (or the account) had not done before.

Signals, one row per flagged call (``signals()``: ``row, signal, detail``), each from general attacker
behaviour and AWS's own documentation, never from one trail's event names:

- ``first_seen_api``: the principal (sessions folded to their role) called an API (service + event name)
  it never called in the baseline. Needs a baseline that has the principal.
- ``new_actor_mutation``: a mutating call (``readOnly: false``) by an actor (principal, address, client
  family) the baseline never saw. Needs a baseline.
- ``denied_burst``: ``denied_min`` or more denied calls (AccessDenied, UnauthorizedOperation, ...) by one
  actor within ``span``, or denied calls on ``denied_apis`` distinct APIs: probing what stolen credentials
  may do. A baseline that shows the same actor denied as often makes it routine (not flagged).
- ``role_outside_network``: a role session used from a network (IPv4 /24, IPv6 /48) its role never used in
  the baseline; with no baseline for the role, one session used from a second network after its first
  (an instance's credentials replayed elsewhere: AWS's GuardDuty finding
  ``InstanceCredentialExfiltration`` is the same idea).
- ``enumeration``: ``enum_apis`` or more distinct read-only APIs over ``enum_services`` or more services
  within ``span`` by one actor (reconnaissance tools sweep many services quickly); not flagged when the
  baseline shows the actor doing as much.
- ``sensitive_call``: the hand-written list (data/sensitive_calls.yaml): one signal among these.

Calls made by AWS for a principal (address ``AWS Internal`` or a service's host) and by AWS services
are never "new" and never "outside the network".
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from . import actors as _actors

SIGNAL_COLUMNS = ["row", "signal", "detail"]
DEFAULTS = {"span": "10min", "denied_min": 5, "denied_apis": 3, "enum_apis": 20, "enum_services": 3}


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=SIGNAL_COLUMNS)


def _rows(index, signal: str, detail) -> pd.DataFrame:
    index = list(index)
    details = detail if isinstance(detail, list) else [detail] * len(index)
    return pd.DataFrame({"row": index, "signal": signal, "detail": details})


def _has_baseline(baseline) -> bool:
    return baseline is not None and len(baseline) > 0


def first_seen_api(window: pd.DataFrame, baseline: pd.DataFrame | None) -> pd.DataFrame:
    if not _has_baseline(baseline) or not len(window):
        return _empty()
    known_who = set(baseline["who"])
    seen = set(zip(baseline["who"], baseline["event_source"].astype(str), baseline["event_name"].astype(str)))
    mask = [w in known_who and (w, str(s), str(e)) not in seen and not svc
            for w, s, e, svc in zip(window["who"], window["event_source"], window["event_name"],
                                    window["service_address"])]
    df = window[pd.Series(mask, index=window.index, dtype=bool)]
    return _rows(df.index, "first_seen_api", [f"{e} never called by this principal in the baseline"
                                              for e in df["event_name"]])


def new_actor_mutation(window: pd.DataFrame, baseline: pd.DataFrame | None) -> pd.DataFrame:
    if not _has_baseline(baseline) or not len(window):
        return _empty()
    seen_actor, seen_who = set(baseline["actor"]), set(baseline["who"])
    mask = window["mutating"] & ~window["actor"].isin(seen_actor) & ~window["service_address"]
    df = window[mask.astype(bool)]
    detail = ["mutating call by a principal new to the account" if w not in seen_who
              else "mutating call by a principal from an address or client new to it" for w in df["who"]]
    return _rows(df.index, "new_actor_mutation", detail)


def _windows(df: pd.DataFrame, span: str):
    """Per actor, the calls within ``span`` of each call (a sliding window: ``[t_i, t_i + span]``), as
    ``(actor, rows, distinct event names, distinct services)``: two pointers and running counts."""
    from collections import Counter

    width = pd.Timedelta(span)
    for actor, g in df.sort_values("timestamp", kind="stable").groupby("actor", sort=False):
        times, idx = g["timestamp"].tolist(), g.index.tolist()
        names, services = g["event_name"].astype(str).tolist(), g["event_source"].astype(str).tolist()
        n_names, n_svc = Counter(), Counter()
        j = 0
        for i in range(len(times)):
            while j < len(times) and times[j] - times[i] <= width:
                n_names[names[j]] += 1
                n_svc[services[j]] += 1
                j += 1
            yield actor, idx[i:j], len(n_names), len(n_svc)
            for c, k in ((n_names, names[i]), (n_svc, services[i])):
                c[k] -= 1
                if not c[k]:
                    del c[k]


def _baseline_peak(baseline: pd.DataFrame | None, span: str, measure) -> dict:
    """Per actor, the largest ``measure(rows, apis, services)`` over any ``span`` of the baseline."""
    if not _has_baseline(baseline):
        return {}
    peak: dict = {}
    for actor, rows, apis, services in _windows(baseline, span):
        peak[actor] = max(peak.get(actor, 0), measure(rows, apis, services))
    return peak


def _flag(windows, test, detail) -> tuple[list, list]:
    flagged: dict = {}
    for actor, rows, apis, services in windows:
        if test(actor, rows, apis, services):
            text = detail(rows, apis, services)
            for r in rows:
                flagged.setdefault(r, text)
    return list(flagged), list(flagged.values())


def denied_burst(window: pd.DataFrame, baseline: pd.DataFrame | None = None, *, span: str = DEFAULTS["span"],
                 denied_min: int = DEFAULTS["denied_min"], denied_apis: int = DEFAULTS["denied_apis"]) -> pd.DataFrame:
    denied = window[window["denied"].astype(bool)]
    if not len(denied):
        return _empty()
    base = baseline[baseline["denied"].astype(bool)] if _has_baseline(baseline) else None
    routine = _baseline_peak(base, span, lambda rows, apis, svc: len(rows))
    rows, detail = _flag(_windows(denied, span),
                         lambda actor, rows, apis, svc: (len(rows) >= denied_min or apis >= denied_apis)
                         and len(rows) > routine.get(actor, 0),
                         lambda rows, apis, svc: f"{len(rows)} denied calls on {apis} APIs within {span}")
    return _rows(rows, "denied_burst", detail) if rows else _empty()


def role_outside_network(window: pd.DataFrame, baseline: pd.DataFrame | None = None) -> pd.DataFrame:
    roles = window[window["session"].notna() & ~window["service_address"]]
    if not len(roles):
        return _empty()
    usual: dict[str, set] = {}
    if _has_baseline(baseline):
        b = baseline[baseline["session"].notna() & ~baseline["service_address"]]
        for who, nets in b.groupby("who")["network"]:
            usual[who] = set(nets)
    flagged, detail = [], []
    for (who, session), g in roles.sort_values("timestamp").groupby(["who", "session"], sort=False):
        if who in usual:
            out = g[~g["network"].isin(usual[who])]
            flagged += out.index.tolist()
            detail += [f"role session {session} used from {n}, a network its role never used in the baseline"
                       for n in out["network"]]
        else:
            first = g["network"].iloc[0]
            out = g[g["network"] != first]
            flagged += out.index.tolist()
            detail += [f"role session {session} first used from {first}, then from {n}" for n in out["network"]]
    return _rows(flagged, "role_outside_network", detail) if flagged else _empty()


def enumeration(window: pd.DataFrame, baseline: pd.DataFrame | None = None, *, span: str = DEFAULTS["span"],
                enum_apis: int = DEFAULTS["enum_apis"], enum_services: int = DEFAULTS["enum_services"]) -> pd.DataFrame:
    reads = window[~window["mutating"].astype(bool) & ~window["service_address"]]
    if not len(reads):
        return _empty()
    base = baseline[~baseline["mutating"].astype(bool)] if _has_baseline(baseline) else None
    routine = _baseline_peak(base, span, lambda rows, apis, svc: apis)
    rows, detail = _flag(_windows(reads, span),
                         lambda actor, rows, apis, svc: apis >= enum_apis and svc >= enum_services
                         and apis > routine.get(actor, 0),
                         lambda rows, apis, svc: f"{apis} distinct read APIs on {svc} services within {span}")
    return _rows(rows, "enumeration", detail) if rows else _empty()


def sensitive_call(window: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    names = set(names)
    df = window[window["event_name"].isin(names)]
    return _rows(df.index, "sensitive_call", "on the hand-written list (data/sensitive_calls.yaml)") if len(df) \
        else _empty()


def signals(window: pd.DataFrame, baseline: pd.DataFrame | None = None, *, sensitive: Iterable[str] = (),
            only: Iterable[str] | None = None, **params) -> pd.DataFrame:
    """Every behaviour signal over annotated frames (:func:`forensics.detection.actors.annotate`)."""
    if window is None or not len(window):
        return _empty()
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    run = {
        "first_seen_api": lambda: first_seen_api(window, baseline),
        "new_actor_mutation": lambda: new_actor_mutation(window, baseline),
        "denied_burst": lambda: denied_burst(window, baseline, span=p["span"], denied_min=p["denied_min"],
                                             denied_apis=p["denied_apis"]),
        "role_outside_network": lambda: role_outside_network(window, baseline),
        "enumeration": lambda: enumeration(window, baseline, span=p["span"], enum_apis=p["enum_apis"],
                                           enum_services=p["enum_services"]),
        "sensitive_call": lambda: sensitive_call(window, sensitive),
    }
    wanted = set(only) if only is not None else set(run)
    parts = [f() for name, f in run.items() if name in wanted]
    parts = [x for x in parts if len(x)]
    return pd.concat(parts, ignore_index=True) if parts else _empty()
