"""ALB access logs (:mod:`forensics.sources.alb_logs`): which endpoints fail, on which targets, how latency
splits by endpoint; which client IPs and user agents are new or abusive.

An **endpoint** is the method and the path *template*: each path segment that is an identifier is
masked (:func:`path_template`), so ``GET /orders/1234`` and ``GET /orders/98`` are one endpoint
``GET /orders/{n}``. The same rule is written in SQL in ``queries/alb_endpoints.yaml``.

Abuse rules (each a flag with its reason, none fitted to one data set):

- ``auth_failures``: at least ``min_auth_failures`` (10) responses 401/403 and they are at least half of
  the client's requests (credential stuffing, forbidden probing);
- ``client_errors``: at least ``min_requests`` (20) requests and at least half of them 4xx (scanning:
  404s on paths that do not exist);
- ``rate``: the client's peak requests per minute is an outlier among the window's clients by the
  modified z-score (median and MAD, Iglewicz & Hoaglin: > 3.5) and above ``min_rate`` (60/min), or, with a
  baseline, above every client's peak in the baseline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .security import _known, _networks

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUM = re.compile(r"^[0-9]+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{16,}$")
_WITH_EXT = re.compile(r"^([A-Za-z0-9_\-]{16,})(\.[A-Za-z0-9]{1,5})$")
_DIGIT = re.compile(r"[0-9]")

#: User agents of tools rather than browsers or the platform's own clients (a lead, not a verdict).
TOOL_AGENTS = re.compile(r"sqlmap|nikto|nmap|masscan|zgrab|gobuster|dirbuster|ffuf|wfuzz|nuclei|hydra|"
                         r"python-requests|python-urllib|aiohttp|go-http-client|curl/|wget/|libwww-perl|"
                         r"okhttp|scrapy|httpclient", re.I)


def _segment(s: str) -> str:
    if _UUID.match(s):
        return "{uuid}"
    if _NUM.match(s):
        return "{n}"
    if _TOKEN.match(s) and _DIGIT.search(s):
        return "{id}"
    m = _WITH_EXT.match(s)
    if m and _DIGIT.search(m.group(1)):
        return "{id}" + m.group(2)
    return s


def path_template(path) -> str | None:
    """``/orders/1234/items/3f2b...`` -> ``/orders/{n}/items/{uuid}``: numbers, UUIDs and long tokens
    holding a digit (16+ characters of ``[A-Za-z0-9_-]``, optionally with a file extension) masked."""
    if path is None or (isinstance(path, float) and pd.isna(path)) or path is pd.NA:
        return None
    return "/".join(_segment(s) for s in str(path).split("/"))


def with_endpoints(logs: pd.DataFrame) -> pd.DataFrame:
    """``logs`` plus ``endpoint`` (``"GET /orders/{n}"``) and ``target`` (``ip:port``)."""
    verb = logs["request_verb"].astype("object").fillna("-")
    tmpl = _per_distinct(logs["path"], path_template).fillna("-")
    port = _per_distinct(logs["target_port"], lambda v: "-" if v is None or pd.isna(v) else str(int(v)))
    target = logs["target_ip"].astype("object").fillna("-") + ":" + port
    target = target.where(logs["target_ip"].notna(), None)
    return logs.assign(endpoint=verb + " " + tmpl, target=target)


def _per_distinct(values: pd.Series, fn) -> pd.Series:
    """``values.map(fn)``, calling ``fn`` once per distinct value (a missing value is ``fn(None)``): a busy
    load balancer's million requests hit a few hundred paths."""
    codes, uniques = pd.factorize(values.astype("object"))
    mapped = np.array([fn(u) for u in uniques] + [fn(None)], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def _status_flags(df: pd.DataFrame) -> pd.DataFrame:
    elb = df["elb_status_code"].astype("Float64")
    tgt = df["target_status_code"].astype("Float64")
    return df.assign(_5xx=(elb >= 500).fillna(False).astype(bool), _4xx=((elb >= 400) & (elb < 500)).fillna(False)
                     .astype(bool), _elb5xx=((elb >= 500) & tgt.isna()).fillna(False).astype(bool),
                     _tgt5xx=(tgt >= 500).fillna(False).astype(bool),
                     _auth=elb.isin([401, 403]).fillna(False).astype(bool))


def _latency_quantiles(df: pd.DataFrame, keys) -> pd.DataFrame:
    """p50, p95, p99 (and max) of ``target_processing_time`` per group of ``keys``, requests without a number
    there left out (NaN for a group with none); one vectorised pass, not a Python call per group."""
    seconds = pd.to_numeric(df["target_processing_time"], errors="coerce").astype("float64")
    grouped = df.assign(_seconds=seconds).groupby(keys)["_seconds"]
    out = grouped.quantile([0.5, 0.95, 0.99]).unstack()
    out.columns = ["p50", "p95", "p99"]
    return out.assign(max=grouped.max())


def endpoints(logs: pd.DataFrame, min_requests: int = 1) -> pd.DataFrame:
    """Per endpoint: ``requests, errors_5xx, elb_5xx`` (answered by the load balancer, no target
    response: 502/503/504), ``target_5xx, errors_4xx, error_rate`` (5xx / requests), ``p50, p95, p99``
    of ``target_processing_time`` (seconds; requests that reached a target), ``failing_targets`` (targets
    that answered or dropped it with a 5xx) and ``error_reasons``. Most 5xx first."""
    cols = ["endpoint", "requests", "errors_5xx", "elb_5xx", "target_5xx", "errors_4xx", "error_rate", "p50",
            "p95", "p99", "failing_targets", "error_reasons"]
    if logs is None or not len(logs):
        return pd.DataFrame(columns=cols)
    df = _status_flags(with_endpoints(logs))
    out = df.groupby("endpoint").agg(
        requests=("endpoint", "size"), errors_5xx=("_5xx", "sum"), elb_5xx=("_elb5xx", "sum"),
        target_5xx=("_tgt5xx", "sum"), errors_4xx=("_4xx", "sum")) \
        .join(_latency_quantiles(df, "endpoint")[["p50", "p95", "p99"]]).reset_index()
    fail = df[df["_5xx"]]
    targets = fail.groupby("endpoint")["target"].agg(lambda s: sorted(set(s.dropna()))).rename("failing_targets")
    reasons = fail.groupby("endpoint")["error_reason"].agg(lambda s: sorted(set(s.dropna().astype(str)))) \
        .rename("error_reasons")
    out = out.merge(targets, on="endpoint", how="left").merge(reasons, on="endpoint", how="left")
    for c in ("failing_targets", "error_reasons"):
        out[c] = out[c].map(lambda v: v if isinstance(v, list) else [])
    for c in ("errors_5xx", "elb_5xx", "target_5xx", "errors_4xx"):
        out[c] = out[c].astype(int)
    out["error_rate"] = out["errors_5xx"] / out["requests"]
    out = out[out["requests"] >= min_requests]
    return out.sort_values(["errors_5xx", "requests"], ascending=[False, False]).reset_index(drop=True)[cols]


def failing_endpoints(logs: pd.DataFrame, min_errors: int = 1) -> pd.DataFrame:
    """:func:`endpoints` with at least ``min_errors`` 5xx."""
    out = endpoints(logs)
    return out[out["errors_5xx"] >= min_errors].reset_index(drop=True)


def targets(logs: pd.DataFrame) -> pd.DataFrame:
    """Per target (``ip:port``): ``requests, errors_5xx, error_rate, p50, p95, p99, endpoints_failing``.
    Requests the load balancer could not give to any target are under target ``None``. Most 5xx first."""
    cols = ["target", "requests", "errors_5xx", "error_rate", "p50", "p95", "p99", "endpoints_failing"]
    if logs is None or not len(logs):
        return pd.DataFrame(columns=cols)
    df = _status_flags(with_endpoints(logs))
    df = df.assign(target=df["target"].fillna("(no target)"))
    out = df.groupby("target").agg(requests=("target", "size"), errors_5xx=("_5xx", "sum")) \
        .join(_latency_quantiles(df, "target")[["p50", "p95", "p99"]]).reset_index()
    failing = df[df["_5xx"]].groupby("target")["endpoint"].agg(lambda s: sorted(set(s))).rename("endpoints_failing")
    out = out.merge(failing, on="target", how="left")
    out["endpoints_failing"] = out["endpoints_failing"].map(lambda v: v if isinstance(v, list) else [])
    out["errors_5xx"] = out["errors_5xx"].astype(int)
    out["error_rate"] = out["errors_5xx"] / out["requests"]
    return out.sort_values(["errors_5xx", "requests"], ascending=[False, False]).reset_index(drop=True)[cols]


def latency(logs: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
    """p50/p95/p99 of ``target_processing_time`` by endpoint (and by ``freq`` bucket when given):
    ``[timestamp,] endpoint, requests, p50, p95, p99, max``."""
    keys = ["endpoint"] if not freq else [pd.Grouper(key="timestamp", freq=freq), "endpoint"]
    cols = (["timestamp"] if freq else []) + ["endpoint", "requests", "p50", "p95", "p99", "max"]
    if logs is None or not len(logs):
        return pd.DataFrame(columns=cols)
    df = with_endpoints(logs)
    out = df.groupby(keys).agg(requests=("endpoint", "size")).join(_latency_quantiles(df, keys)).reset_index()
    if freq:
        return out.sort_values(["timestamp", "endpoint"]).reset_index(drop=True)[cols]
    return out.sort_values("p95", ascending=False).reset_index(drop=True)[cols]


def _modified_z(values: pd.Series) -> pd.Series:
    med = values.median()
    mad = (values - med).abs().median()
    if not mad:
        return pd.Series(0.0, index=values.index).where(values <= med, float("inf"))
    return 0.6745 * (values - med) / mad


def client_ips(logs: pd.DataFrame, baseline: pd.DataFrame | None = None, known: Iterable[str] | None = None, *,
               min_requests: int = 20, min_auth_failures: int = 10, min_rate: int = 60,
               z: float = 3.5) -> pd.DataFrame:
    """Per client IP: ``requests, peak_per_minute, errors_4xx, auth_failures`` (401/403),
    ``error_4xx_ratio, auth_failure_ratio, user_agents, endpoints, first_seen, last_seen, new`` (not in the
    baseline, not in ``known`` ranges), ``abusive`` and ``reasons`` (module doc). Abusive and new first."""
    cols = ["client_ip", "requests", "peak_per_minute", "errors_4xx", "auth_failures", "error_4xx_ratio",
            "auth_failure_ratio", "user_agents", "endpoints", "first_seen", "last_seen", "new", "abusive",
            "reasons"]
    if logs is None or not len(logs):
        return pd.DataFrame(columns=cols)
    df = _status_flags(with_endpoints(logs))
    df = df.assign(client_ip=df["client_ip"].astype("object").fillna("-"))
    out = df.groupby("client_ip").agg(
        requests=("client_ip", "size"), errors_4xx=("_4xx", "sum"), auth_failures=("_auth", "sum"),
        user_agents=("user_agent", lambda s: sorted(set(s.dropna().astype(str)))),
        endpoints=("endpoint", "nunique"), first_seen=("timestamp", "min"),
        last_seen=("timestamp", "max")).reset_index()
    peak = df.groupby(["client_ip", pd.Grouper(key="timestamp", freq="1min")]).size().groupby("client_ip").max()
    out["peak_per_minute"] = out["client_ip"].map(peak).astype(int)
    out["errors_4xx"] = out["errors_4xx"].astype(int)
    out["auth_failures"] = out["auth_failures"].astype(int)
    out["error_4xx_ratio"] = out["errors_4xx"] / out["requests"]
    out["auth_failure_ratio"] = out["auth_failures"] / out["requests"]
    nets = _networks(known)
    seen: set = set()
    base_peak = None
    if baseline is not None and len(baseline):
        seen = set(baseline["client_ip"].dropna().astype(str))
        base_peak = int(baseline.groupby(["client_ip", pd.Grouper(key="timestamp", freq="1min")]).size().max())
    out["new"] = [ip not in seen and not _known(ip, nets) for ip in out["client_ip"]]
    zscore = _modified_z(out["peak_per_minute"].astype(float))
    reasons = []
    for row, zi in zip(out.itertuples(index=False), zscore):
        r = []
        if row.auth_failures >= min_auth_failures and row.auth_failure_ratio >= 0.5:
            r.append(f"{row.auth_failures} responses 401/403 ({row.auth_failure_ratio:.0%})")
        if row.requests >= min_requests and row.error_4xx_ratio >= 0.5:
            r.append(f"{row.error_4xx_ratio:.0%} of {row.requests} requests 4xx")
        if row.peak_per_minute >= min_rate and (
                (base_peak is not None and row.peak_per_minute > base_peak) or (base_peak is None and zi > z)):
            r.append(f"{row.peak_per_minute} requests in one minute"
                     + (f" (baseline peak {base_peak})" if base_peak is not None else " (outlier among clients)"))
        reasons.append(r)
    out["reasons"] = reasons
    out["abusive"] = out["reasons"].map(bool)
    out = out.sort_values(["abusive", "new", "requests"], ascending=[False, False, False], kind="stable")
    return out.reset_index(drop=True)[cols]


def user_agents(logs: pd.DataFrame, baseline: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per user agent: ``requests, clients, errors_4xx, error_4xx_ratio, first_seen, last_seen, new`` (not
    in the baseline), ``tool`` (a scanner or scripting library, :data:`TOOL_AGENTS`). New first, then by
    requests."""
    cols = ["user_agent", "requests", "clients", "errors_4xx", "error_4xx_ratio", "first_seen", "last_seen", "new",
            "tool"]
    if logs is None or not len(logs):
        return pd.DataFrame(columns=cols)
    df = _status_flags(logs).assign(user_agent=logs["user_agent"].astype("object").fillna("-"))
    out = df.groupby("user_agent").agg(requests=("user_agent", "size"), clients=("client_ip", "nunique"),
                                       errors_4xx=("_4xx", "sum"), first_seen=("timestamp", "min"),
                                       last_seen=("timestamp", "max")).reset_index()
    seen = set(baseline["user_agent"].dropna().astype(str)) if baseline is not None and len(baseline) else set()
    out["errors_4xx"] = out["errors_4xx"].astype(int)
    out["error_4xx_ratio"] = out["errors_4xx"] / out["requests"]
    out["new"] = ~out["user_agent"].isin(seen)
    out["tool"] = out["user_agent"].map(lambda ua: bool(TOOL_AGENTS.search(ua)))
    return out.sort_values(["new", "requests"], ascending=[False, False]).reset_index(drop=True)[cols]
