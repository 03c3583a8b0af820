"""Authentication failures: 401/403 by minute, client IP and user agent; auth error signatures in the
application's log; PostgreSQL's refused sign-ins.

Requests come from the ALB access logs when the environment has them (every request, so ratios mean
something), else from the application's access lines in its log (only the lines the auth capture
selects: failures and errors). :func:`parse_access_line` reads the common shapes: the combined log
format (nginx, gunicorn), uvicorn's access line, JSON lines, and ``key=value`` (logfmt) lines; the
client address is the first of ``X-Forwarded-For`` when a line carries it.

Error signatures are data (``lib/forensics/data/auth_patterns.yaml``), first match wins.

"New" is defined against the baseline frame only (the same capture over the hours before the window)
plus the environment's known addresses (``cloudtrail.known_ips``), as in :mod:`.security`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .. import contracts
from . import onset as onset_mod
from .alb import TOOL_AGENTS
from .security import _known, _networks

PATTERNS_FILE = Path(__file__).resolve().parent.parent / "data" / "auth_patterns.yaml"
REQUEST_COLUMNS = ["timestamp", "client_ip", "user_agent", "method", "path", "status", "source"]
SIGNATURE_COLUMNS = ["timestamp", "signature", "source", "client_ip", "user_agent", "message"]
AUTH_STATUSES = (401, 403)
POSTGRES = "postgres_auth_failure"
#: An onset needs at least this many more auth failures a minute than usual: one person mistyping a
#: password does not make five a minute; a script or a broken deploy does.
ONSET_MIN_DELTA = 5.0


def load_patterns(path: Path | str = PATTERNS_FILE) -> list[tuple[str, str, tuple[re.Pattern, ...]]]:
    """``[(signature, description, regexes)]`` in file order; a malformed file is a clear error."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected signatures at the top level")
    out = []
    for name, body in data.items():
        pats = body.get("patterns") if isinstance(body, dict) else None
        if not isinstance(pats, list) or not pats:
            raise ValueError(f"{path}: signature {name!r} needs a list of regexes under 'patterns'")
        try:
            out.append((str(name), str(body.get("description") or ""), tuple(re.compile(p) for p in pats)))
        except re.error as exc:
            raise ValueError(f"{path}: signature {name!r}: bad regex ({exc})") from exc
    return out


PATTERNS = load_patterns()


def classify(message: str) -> str | None:
    """The auth error signature of a log message, else None."""
    for name, _, regexes in PATTERNS:
        if any(rx.search(message) for rx in regexes):
            return name
    return None


# ---- access lines -----------------------------------------------------------------------------------------
_COMBINED = re.compile(r'(?P<ip>[0-9a-fA-F.:]+(?:,\s*[0-9a-fA-F.:]+)*) \S+ \S+ \[[^\]]+\] '
                       r'"(?P<method>[A-Z]+) (?P<path>\S+)[^"]*" (?P<status>\d{3}) \S+'
                       r'(?: "[^"]*" "(?P<ua>[^"]*)")?')
_UVICORN = re.compile(r'(?P<ip>[0-9a-fA-F.:]+?):\d+ - "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_KEYS = {"status": ("status", "status_code", "http_status", "response_status"),
         "client_ip": ("client_ip", "x_forwarded_for", "forwarded_for", "remote_addr", "remote_ip", "client",
                       "ip", "source_ip"),
         "user_agent": ("user_agent", "http_user_agent", "ua", "agent"),
         "method": ("method", "http_method", "request_method"),
         "path": ("path", "url", "request_path", "uri")}


def _first_ip(value) -> str | None:
    if value is None:
        return None
    text = str(value).split(",")[0].strip()
    return text or None


def _pick(fields: dict, key: str):
    for k in _KEYS[key]:
        if fields.get(k) not in (None, "", "-"):
            return fields[k]
    return None


def _from_fields(fields: dict) -> dict | None:
    status = _pick(fields, "status")
    try:
        status = int(status)
    except (TypeError, ValueError):
        return None
    return {"client_ip": _first_ip(_pick(fields, "client_ip")), "user_agent": _pick(fields, "user_agent"),
            "method": _pick(fields, "method"), "path": _pick(fields, "path"), "status": status}


def parse_access_line(message: str) -> dict | None:
    """``{client_ip, user_agent, method, path, status}`` of an access line, else None."""
    text = str(message)
    brace = text.find("{")
    if brace >= 0 and text.rstrip().endswith("}"):
        try:
            obj = json.loads(text[brace:])
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            got = _from_fields({str(k).lower(): v for k, v in obj.items()})
            if got:
                return got
    m = _COMBINED.search(text)
    if m:
        return {"client_ip": _first_ip(m.group("ip")), "user_agent": m.group("ua") or None,
                "method": m.group("method"), "path": m.group("path"), "status": int(m.group("status"))}
    m = _UVICORN.search(text)
    if m:
        return {"client_ip": m.group("ip"), "user_agent": None, "method": m.group("method"),
                "path": m.group("path"), "status": int(m.group("status"))}
    if "=" in text:
        fields = {k.lower(): v[1:-1].replace('\\"', '"') if v.startswith('"') else v for k, v in _KV.findall(text)}
        return _from_fields(fields)
    return None


def _requests(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=REQUEST_COLUMNS)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True).astype(contracts.TS_DTYPE)
    df["status"] = df["status"].astype("Int64")
    for c in ("client_ip", "user_agent", "method", "path", "source"):
        df[c] = df[c].astype("object")
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def from_app_logs(events: pd.DataFrame | None) -> pd.DataFrame:
    """The access lines among log events (``[timestamp, message, ...]``) as requests (:data:`REQUEST_COLUMNS`)."""
    rows = []
    if events is not None and len(events):
        for ts, msg in zip(events["timestamp"], events["message"]):
            got = parse_access_line(msg)
            if got:
                rows.append({"timestamp": ts, **got, "source": "app_logs"})
    return _requests(rows)


def from_alb(logs: pd.DataFrame | None) -> pd.DataFrame:
    """ALB access-log rows (:mod:`forensics.sources.alb_logs`) as requests; the status is the load
    balancer's (what the client got)."""
    if logs is None or not len(logs):
        return _requests([])
    return _requests([{"timestamp": r.timestamp, "client_ip": r.client_ip, "user_agent": r.user_agent,
                       "method": r.request_verb, "path": r.path,
                       "status": None if pd.isna(r.elb_status_code) else int(r.elb_status_code), "source": "alb"}
                      for r in logs[["timestamp", "client_ip", "user_agent", "request_verb", "path",
                                     "elb_status_code"]].itertuples()])


def _auth(df: pd.DataFrame) -> pd.Series:
    return df["status"].isin(AUTH_STATUSES).fillna(False).astype(bool)


# ---- rates and onset --------------------------------------------------------------------------------------
def per_minute(requests: pd.DataFrame, start, end, freq: str = "1min") -> pd.DataFrame:
    """``unauthorized`` (401), ``forbidden`` (403) and, when every request is known (ALB), ``requests`` and
    ``auth_failure_rate`` per ``freq`` over ``[start, end)``; minutes without a failure are 0."""
    index = pd.date_range(pd.Timestamp(start).floor(freq), pd.Timestamp(end), freq=freq, inclusive="left")
    out = pd.DataFrame(index=index)
    df = requests[(requests["timestamp"] >= index[0]) & (requests["timestamp"] < pd.Timestamp(end))] \
        if len(index) else requests.iloc[0:0]
    bucket = df["timestamp"].dt.floor(freq)
    for name, code in (("unauthorized", 401), ("forbidden", 403)):
        counts = bucket[df["status"] == code].value_counts()
        out[name] = counts.reindex(index, fill_value=0).astype(int)
    if len(df) and (df["source"] == "alb").all():
        out["requests"] = bucket.value_counts().reindex(index, fill_value=0).astype(int)
        out["auth_failure_rate"] = (out["unauthorized"] + out["forbidden"]) / out["requests"].where(out["requests"] > 0)
    return out


def onset(rates: pd.DataFrame, min_delta: float = ONSET_MIN_DELTA) -> pd.Timestamp | None:
    """When 401+403 per minute rose above its own baseline (:func:`forensics.analysis.onset.first_onset`,
    upwards, at least ``min_delta`` a minute above it)."""
    if rates is None or not len(rates):
        return None
    series = (rates["unauthorized"] + rates["forbidden"]).astype(float)
    return onset_mod.first_onset(series, direction="up", min_delta=min_delta)


# ---- clients ----------------------------------------------------------------------------------------------
def _seen(baseline: pd.DataFrame | None, col: str) -> set:
    if baseline is None or not len(baseline):
        return set()
    return set(baseline[col].dropna().astype(str))


def by_client_ip(requests: pd.DataFrame, baseline: pd.DataFrame | None = None,
                 known: Iterable[str] | None = None) -> pd.DataFrame:
    """Per client IP with at least one 401/403: ``auth_failures, unauthorized, forbidden, requests``
    (every request of that client the source shows), ``failure_ratio, user_agents, paths`` (most failed
    first, up to 5), ``first_failure, last_failure, new`` (not in the baseline, not known). Most failures first."""
    cols = ["client_ip", "auth_failures", "unauthorized", "forbidden", "requests", "failure_ratio", "user_agents",
            "paths", "first_failure", "last_failure", "new"]
    if requests is None or not len(requests):
        return pd.DataFrame(columns=cols)
    df = requests.assign(client_ip=requests["client_ip"].astype("object").fillna("-"), _auth=_auth(requests))
    fails = df[df["_auth"]]
    if not len(fails):
        return pd.DataFrame(columns=cols)
    total = df.groupby("client_ip").size()
    nets = _networks(known)
    seen = _seen(baseline, "client_ip")
    rows = []
    for ip, g in fails.groupby("client_ip", sort=False):
        rows.append({"client_ip": ip, "auth_failures": len(g), "unauthorized": int((g["status"] == 401).sum()),
                     "forbidden": int((g["status"] == 403).sum()), "requests": int(total[ip]),
                     "failure_ratio": len(g) / int(total[ip]),
                     "user_agents": sorted(set(g["user_agent"].dropna().astype(str))),
                     "paths": g["path"].dropna().astype(str).value_counts().head(5).index.tolist(),
                     "first_failure": g["timestamp"].min(), "last_failure": g["timestamp"].max(),
                     "new": ip != "-" and ip not in seen and not _known(ip, nets)})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["auth_failures", "client_ip"], ascending=[False, True]).reset_index(drop=True)


def by_user_agent(requests: pd.DataFrame, baseline: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per user agent with at least one 401/403: ``auth_failures, clients, new, tool`` (a scripting tool
    or scanner, :data:`forensics.analysis.alb.TOOL_AGENTS`). Most failures first."""
    cols = ["user_agent", "auth_failures", "clients", "new", "tool"]
    if requests is None or not len(requests):
        return pd.DataFrame(columns=cols)
    fails = requests[_auth(requests)].assign(user_agent=lambda d: d["user_agent"].astype("object").fillna("-"))
    if not len(fails):
        return pd.DataFrame(columns=cols)
    seen = _seen(baseline, "user_agent")
    out = fails.groupby("user_agent").agg(auth_failures=("user_agent", "size"),
                                          clients=("client_ip", "nunique")).reset_index()
    out["new"] = ~out["user_agent"].isin(seen) & (out["user_agent"] != "-")
    out["tool"] = out["user_agent"].map(lambda ua: bool(TOOL_AGENTS.search(ua)))
    return out.sort_values(["auth_failures", "user_agent"], ascending=[False, True]).reset_index(drop=True)[cols]


def new_clients(clients: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`by_client_ip` not seen in the baseline."""
    if clients is None or not len(clients):
        return pd.DataFrame(columns=list(clients.columns) if clients is not None else [])
    return clients[clients["new"].astype(bool)].reset_index(drop=True)


# ---- error signatures -------------------------------------------------------------------------------------
def signatures(events: pd.DataFrame | None) -> pd.DataFrame:
    """Each log event with an auth error signature: :data:`SIGNATURE_COLUMNS` (client and user agent from
    the line when it has them)."""
    rows = []
    if events is not None and len(events):
        for ts, msg in zip(events["timestamp"], events["message"].astype(str)):
            sig = classify(msg)
            if sig is None:
                continue
            line = parse_access_line(msg) or {}
            rows.append({"timestamp": ts, "signature": sig, "source": "app_logs",
                         "client_ip": line.get("client_ip"), "user_agent": line.get("user_agent"),
                         "message": msg.splitlines()[0][:300]})
    df = pd.DataFrame(rows, columns=SIGNATURE_COLUMNS)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True).astype(contracts.TS_DTYPE)
    return df


def postgres_failures(pg_entries: pd.DataFrame | None) -> pd.DataFrame:
    """PostgreSQL's authentication failures (:func:`forensics.analysis.pglog.parse_events` entries of
    category ``authentication_failure``) in the shape of :func:`signatures`."""
    if pg_entries is None or not len(pg_entries):
        return signatures(None)
    pg = pg_entries[pg_entries["category"] == "authentication_failure"]
    df = pd.DataFrame({"timestamp": pg["timestamp"], "signature": POSTGRES, "source": "postgres",
                       "client_ip": pg["client"], "user_agent": pg["user"].map(lambda u: f"db user {u}" if u else None),
                       "message": pg["message"]}, columns=SIGNATURE_COLUMNS)
    return df.reset_index(drop=True)


def top_auth_errors(*frames: pd.DataFrame) -> pd.DataFrame:
    """Per signature over the frames of :func:`signatures`/:func:`postgres_failures`: ``events, first_seen,
    last_seen, clients`` (up to 5, most frequent first), ``source, example``. Most events first."""
    cols = ["signature", "events", "first_seen", "last_seen", "clients", "source", "example"]
    parts = [f for f in frames if f is not None and len(f)]
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.concat(parts, ignore_index=True)
    rows = []
    for sig, g in df.groupby("signature", sort=False):
        rows.append({"signature": sig, "events": len(g), "first_seen": g["timestamp"].min(),
                     "last_seen": g["timestamp"].max(),
                     "clients": g["client_ip"].dropna().astype(str).value_counts().head(5).index.tolist(),
                     "source": g["source"].iloc[0], "example": g.sort_values("timestamp")["message"].iloc[0]})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["events", "signature"], ascending=[False, True]).reset_index(drop=True)


def per_minute_by_signature(frame: pd.DataFrame, start, end, freq: str = "1min") -> pd.DataFrame:
    """Events per ``freq`` by signature (wide, one column each), minutes without any being 0."""
    index = pd.date_range(pd.Timestamp(start).floor(freq), pd.Timestamp(end), freq=freq, inclusive="left")
    if frame is None or not len(frame):
        return pd.DataFrame(index=index)
    counts = frame.groupby([frame["timestamp"].dt.floor(freq), "signature"]).size().unstack("signature", fill_value=0)
    return counts.reindex(index, fill_value=0)


def verdict(onset_at, clients: pd.DataFrame, errors: pd.DataFrame) -> str:
    """One plain sentence, including when there is nothing to find."""
    if onset_at is None and not len(errors) and not len(clients):
        return "Nothing to find: no 401/403 and no authentication error in the window."
    parts = []
    if onset_at is not None:
        parts.append(f"auth failures rose from {pd.Timestamp(onset_at).strftime('%H:%M')}Z")
    else:
        parts.append("no rise in auth failures above their usual level")
    new = new_clients(clients) if len(clients) else clients
    if len(new):
        top = new.iloc[0]
        parts.append(f"{len(new)} new client(s) failing, most {top['client_ip']} ({top['auth_failures']} failures)")
    if len(errors):
        parts.append(f"top error {errors.iloc[0]['signature']} ({errors.iloc[0]['events']})")
    return "; ".join(parts) + "."


def has_alb_logs(env: dict) -> bool:
    """Whether the environment names the ALB's access-log bucket (then requests come from there)."""
    return bool(((env or {}).get("alb") or {}).get("access_logs"))


def within(frame: pd.DataFrame, window) -> pd.DataFrame:
    """The rows of ``frame`` whose ``timestamp`` is in ``[window.start, window.end)``."""
    if frame is None or not len(frame):
        return frame
    return frame[(frame["timestamp"] >= window.start) & (frame["timestamp"] < window.end)].reset_index(drop=True)


def combined(*frames: pd.DataFrame) -> pd.DataFrame:
    """Frames of :func:`signatures`/:func:`postgres_failures` as one, by time."""
    parts = [f for f in frames if f is not None and len(f)]
    if not parts:
        return signatures(None)
    return pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
