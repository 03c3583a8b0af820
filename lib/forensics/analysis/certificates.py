"""Certificates and domains: what expires soon, which validations are stuck, where DNS does not say what the
certificates and distributions need, and how the edge answered. Pure functions on the frames of
:mod:`forensics.sources.certificates` (001 §3i, §3k).

"Days left" are counted from the incident's moment (the window's end), not from the time the notebook
runs: a replayed record gives the same answer.
"""

from __future__ import annotations

import json
import re

import pandas as pd

from ..window import iso

#: Statuses whose NotAfter is a real expiry (a pending or failed request has none that matters).
DATED = ("ISSUED", "EXPIRED")
#: Statuses of a validation or a renewal that is not done.
PENDING = ("PENDING_VALIDATION", "PENDING_AUTO_RENEWAL", "FAILED", "VALIDATION_TIMED_OUT")
#: CAA issuers that let ACM issue (its documentation lists all four).
AMAZON_CAS = ("amazon.com", "amazontrust.com", "awstrust.com", "amazonaws.com")
_CAA = re.compile(r'^\s*\d+\s+(issue|issuewild)\s+"?([^";\s]*)', re.I)
MAX_CNAME_HOPS = 8


def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _bare(name) -> str:
    return str(name or "").replace("\\052", "*").rstrip(".").lower()


def _split(text) -> list[str]:
    return [p.strip() for p in str(text or "").split(",") if p.strip()]


def covers(pattern: str, domain: str) -> bool:
    """Does a certificate name cover ``domain``? A wildcard covers exactly one label."""
    pattern, domain = _bare(pattern), _bare(domain)
    if pattern.startswith("*."):
        head, _, rest = domain.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == domain


def days_left(certs: pd.DataFrame, as_of) -> pd.Series:
    return ((certs["not_after"] - _utc(as_of)).dt.total_seconds() / 86400).round(2)


def expiring(certs: pd.DataFrame, as_of, warn_days: float, domains=()) -> dict[str, float]:
    """Name -> days left (negative: expired) of each certificate name with fewer than ``warn_days`` left.

    Only names that matter: certificates in use, or covering one of ``domains``. A name some in-use
    certificate covers is judged by the in-use ones (what is served); otherwise by the longest-lived
    certificate covering it (a renewed one replaces an old one)."""
    if certs is None or certs.empty:
        return {}
    c = certs[certs["status"].isin(DATED) & certs["not_after"].notna()].copy()
    if c.empty:
        return {}
    c["days"] = days_left(c, as_of)
    c["used"] = c["in_use_by"].fillna("").str.len() > 0
    c["names_"] = c["names"].map(_split)
    wanted = [_bare(d) for d in domains]
    rows = [(n, r.days, r.used) for r in c.itertuples() for n in r.names_
            if r.used or any(covers(n, d) for d in wanted)]
    out = {}
    for name in sorted({n for n, _, _ in rows}):
        mine = [(d, u) for n, d, u in rows if n == name]
        used = [d for d, u in mine if u]
        left = min(used) if used else max(d for d, _ in mine)
        if left < warn_days:
            out[name] = float(left)
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def expiring_imported(certs: pd.DataFrame, expiring_names) -> list[dict]:
    """The names of ``expiring`` (:func:`expiring`) served by an imported certificate (``type``
    IMPORTED): ACM never renews those (no validation to wait for), so they must be replaced by hand.
    A name also covered by an ACM-issued certificate in use is not listed (that one is renewed)."""
    if certs is None or certs.empty or not expiring_names or "type" not in certs:
        return []
    c = certs.assign(names_=certs["names"].map(_split), used=certs["in_use_by"].fillna("").str.len() > 0)
    out = []
    for name in expiring_names:
        mine = c[c["names_"].map(lambda ns: name in ns)]
        served = mine[mine["used"]] if mine["used"].any() else mine
        if len(served) and (served["type"].astype("str") == "IMPORTED").all():
            r = served.sort_values("not_after").iloc[0]
            out.append({"name": name, "certificate": r["arn"], "not_after": _iso(r["not_after"])})
    return out


def _iso(ts) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def _options(cert) -> list[dict]:
    return json.loads(cert.validation) if isinstance(cert.validation, str) and cert.validation else []


def validation_pending(certs: pd.DataFrame) -> list[dict]:
    """Each domain whose validation (of a new certificate or of a renewal) is not done: the record ACM
    waits for is what to look for in DNS."""
    if certs is None or certs.empty:
        return []
    out = []
    for c in certs.itertuples():
        if c.status not in PENDING and c.renewal_status not in PENDING:
            continue
        for o in _options(c):
            if o.get("status") == "SUCCESS":
                continue
            out.append({"domain": o.get("domain"), "certificate": c.arn, "status": c.status,
                        "renewal_status": None if pd.isna(c.renewal_status) else c.renewal_status,
                        "validation_status": o.get("status"), "record_name": _bare(o.get("name")) or None,
                        "record_value": _bare(o.get("value")) or None})
    return sorted(out, key=lambda r: (r["domain"] or "", r["certificate"]))


def _zones(records: pd.DataFrame) -> list[str]:
    return sorted(set(records["zone"].dropna()), key=len, reverse=True) if len(records) else []


def _in_zones(name: str, zones: list[str]) -> bool:
    return any(name == z or name.endswith("." + z) for z in zones)


def _targets(records: pd.DataFrame, name: str) -> list[str]:
    """Where ``name`` points: its CNAME value or its alias target (A/AAAA alias)."""
    mine = records[records["name"] == name]
    out = [_bare(v) for v in mine.loc[mine["type"] == "CNAME", "values"].str.split(r" \| ").explode().dropna()]
    out += [_bare(a) for a in mine["alias_target"].dropna()]
    return [t for t in dict.fromkeys(out) if t]


def resolve(records: pd.DataFrame, name: str) -> list[str]:
    """The CNAME/alias chain of ``name`` through the records read (``[name, ..., last]``)."""
    chain = [_bare(name)]
    while len(chain) <= MAX_CNAME_HOPS:
        nxt = _targets(records, chain[-1])
        if not nxt or nxt[0] in chain:
            break
        chain.append(nxt[0])
    return chain


def _caa_for(records: pd.DataFrame, domain: str) -> tuple[str, list[str]] | None:
    """The CAA record set that governs ``domain``: its own, else its closest parent's (RFC 8659)."""
    labels = _bare(domain).lstrip("*.").split(".")
    for i in range(len(labels) - 1):
        name = ".".join(labels[i:])
        caa = records[(records["name"] == name) & (records["type"] == "CAA")]
        if len(caa):
            return name, [v for vals in caa["values"] for v in str(vals).split(" | ")]
    return None


def dns_mismatches(certs: pd.DataFrame, records: pd.DataFrame, distributions: pd.DataFrame | None,
                   domains=()) -> list[dict]:
    """Where DNS does not say what the certificates and distributions need (``domain, problem, expected,
    found``), in zones this account hosts (a name in someone else's DNS cannot be checked from here):

    - a pending validation's CNAME is missing or has another value (ACM cannot validate or renew);
    - a domain a distribution serves does not resolve to that distribution (through CNAMEs and aliases);
    - a distribution's alias its certificate does not cover;
    - a CAA record set that does not let Amazon issue (ACM cannot renew).
    """
    out: list[dict] = []
    records = records if records is not None else pd.DataFrame(columns=["zone", "name", "type", "values",
                                                                        "alias_target"])
    zones = _zones(records)
    for p in validation_pending(certs):
        name, value = p["record_name"], p["record_value"]
        if not name or not _in_zones(name, zones):
            continue
        found = _targets(records, name)
        if value not in found:
            out.append({"domain": p["domain"], "problem": "validation record missing" if not found
                        else "validation record differs", "expected": f"{name} CNAME {value}",
                        "found": ", ".join(found) or None})
    dists = distributions if distributions is not None else pd.DataFrame()
    by_arn = {c.arn: _split(c.names) for c in certs.itertuples()} if certs is not None and len(certs) else {}
    for d in dists.itertuples() if len(dists) else []:
        for alias in _split(d.aliases):
            chain = resolve(records, alias)
            if _in_zones(alias, zones) and chain[-1] != d.domain_name:
                out.append({"domain": alias, "problem": "no DNS record" if len(chain) == 1 and
                            records[records["name"] == alias].empty else "does not point at its distribution",
                            "expected": f"{alias} -> {d.domain_name} ({d.distribution_id})",
                            "found": " -> ".join(chain) if len(chain) > 1 else None})
            names = by_arn.get(d.certificate_arn)
            if names is not None and not any(covers(n, alias) for n in names):
                out.append({"domain": alias, "problem": "certificate does not cover the alias",
                            "expected": f"a certificate for {alias} on {d.distribution_id}",
                            "found": ", ".join(names)})
    for domain in dict.fromkeys(_bare(x) for x in domains):
        governing = _caa_for(records, domain)
        if governing is None:
            continue
        where, values = governing
        issuers = [m.group(2).lower() for m in map(_CAA.match, values) if m]
        if not any(i in AMAZON_CAS for i in issuers):
            out.append({"domain": domain, "problem": "CAA does not allow Amazon to issue",
                        "expected": f'{where} CAA 0 issue "amazon.com" (or no CAA)', "found": " | ".join(values)})
    return sorted(out, key=lambda r: (r["domain"], r["problem"]))


def edge_rates(metrics: pd.DataFrame) -> pd.DataFrame:
    """The edge series wide: one column per ``"<distribution> <what>"`` label, indexed by time."""
    if metrics is None or metrics.empty:
        return pd.DataFrame()
    return metrics.pivot_table(index="timestamp", columns="label", values="value", aggfunc="last").sort_index()


def edge_error_rate_peak(metrics: pd.DataFrame, window) -> dict | None:
    """The highest 4xx or 5xx rate (% of requests) any distribution reached in the window, with when and how
    many requests it saw then. None when there is no edge data at all."""
    wide = edge_rates(metrics)
    if wide.empty:
        return None
    wide = wide[(wide.index >= _utc(window.start)) & (wide.index <= _utc(window.end))]
    cols = [c for c in wide.columns if c.endswith((" 4xx %", " 5xx %"))]
    if wide.empty or not cols:
        return None
    stacked = wide[cols].stack().dropna()
    if stacked.empty:
        return None
    (at, label), peak = stacked.idxmax(), float(stacked.max())
    dist, _, what = label.partition(" ")
    requests = wide.get(f"{dist} requests")
    n = None if requests is None or pd.isna(requests.get(at)) else int(requests.get(at))
    return {"distribution": dist, "series": what.replace(" %", ""), "peak_pct": round(peak, 2), "at": iso(at),
            "requests": n}


def verdict(findings: dict, warn_days: float, unknown=()) -> str:
    """One plain paragraph: what is wrong with certificates and domains, or that nothing is (``unknown``: the
    findings whose sources failed)."""
    problems = []
    for name, days in (findings.get("expiring") or {}).items():
        problems.append(f"{name} expired {-days:g} day(s) ago" if days < 0 else f"{name} expires in {days:g} day(s)")
    pending = findings.get("validation_pending") or []
    if pending:
        problems.append(f"validation waits for {', '.join(sorted({p['domain'] for p in pending}))}")
    for m in findings.get("dns_mismatches") or []:
        problems.append(f"{m['domain']}: {m['problem']}")
    if unknown:
        problems.append(f"not known (a source failed): {', '.join(unknown)}")
    if not problems:
        return (f"Nothing to find: no certificate in use ends within {warn_days:g} days, no validation is pending "
                "and DNS points where the certificates and distributions need it.")
    return "Found: " + "; ".join(problems) + "."


def expiry_markers(certs: pd.DataFrame) -> list[tuple]:
    """(NotAfter, label) of every certificate, for a chart's labelled markers (those outside it are not drawn)."""
    if certs is None or certs.empty:
        return []
    dated = certs[certs["not_after"].notna()]
    return [(r.not_after, f"certificate {r.domain} ends") for r in dated.itertuples()]
