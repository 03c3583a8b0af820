"""The application's tamper-evident audit trail: ``[ts, event_id, tenant, actor, action, entity, payload,
prev_hash, chain_hash]`` (DESIGN §3).

Two ways in, one frame out:

- :func:`audit_replay` — the application's read-only forensic endpoint
  ``GET {base_url}/api/v1/tenants/<id>/audit-replay?from=&to=`` (a JSON list of events, or
  ``{"events": [...]}``), one request per tenant;
- :func:`read_export` — an exported JSON list or NDJSON file of the same events (when the API is
  down, or the export came from a backup).

:func:`verify_chain_endpoint` asks the application's own ``GET .../tenants/<id>/verify-chain`` for its
verdict (200: intact, 409: broken; a JSON body either way). The notebook compares that verdict with
the chain recomputed from the replayed events (:func:`forensics.analysis.integrity.verify_chain`).

Rules kept here:

- the bearer token comes from the environment variable *named* in the environment YAML
  (``audit.token_env``): never a parameter, never in a capture's arguments, never in an error message;
- requests go only to the configured ``base_url`` (redirects are refused, not followed), with
  connect and read timeouts; plain ``http://`` only to a loopback host (the sandbox);
- any failure (unreachable, timeout, 401/403, 5xx, a body that is not the expected JSON) is a
  one-line :class:`~forensics.errors.SourceError`.

``payload`` is kept as canonical JSON text (sorted keys, no spaces), so a frame round-trips through
parquet unchanged and the chain can be recomputed from the record alone.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from ..errors import SourceError
from ..window import IncidentWindow
from . import _empty, _one_line, _typed
from .call import Call

SOURCE = "audit"
COLUMNS = {"ts": "ts", "event_id": "str", "tenant": "str", "actor": "str", "action": "str", "entity": "str",
           "payload": "str", "prev_hash": "str", "chain_hash": "str"}
VERIFY_COLUMNS = {"tenant": "str", "intact": "boolean", "http_status": "Int64", "checked": "Int64",
                  "first_broken_event": "str", "detail": "str"}
REPLAY_PATH = "/api/v1/tenants/{tenant}/audit-replay"
VERIFY_PATH = "/api/v1/tenants/{tenant}/verify-chain"
#: the biggest response body read (a runaway replay must not exhaust the collector's memory)
MAX_BODY = 256 * 1024 * 1024


def canonical_payload(value) -> str:
    """A payload (dict, JSON text or None) as canonical JSON text: sorted keys, no spaces, UTF-8."""
    if value is None or (isinstance(value, float) and value != value):
        value = None
    elif isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value  # not JSON: kept as the text it is
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def token_from_env(token_env: str | None, token_file: str | None = None) -> str:
    """The bearer token held by the environment variable ``token_env`` (its *name* is the parameter), else
    by the file ``token_file`` (``audit.token_file``: the background sandbox writes one, mode 0600)."""
    if not token_env:
        raise SourceError(SOURCE, "no audit.token_env in the environment: name the variable holding the token")
    token = os.environ.get(token_env)
    if not token and token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()[:4096]
        except OSError as exc:
            raise SourceError(SOURCE, f"{token_env} is unset and the token file {token_file} (audit.token_file) "
                                      f"cannot be read: {exc.strerror or exc}") from None
    if not token:
        where = f" and the file {token_file} is empty" if token_file else ""
        raise SourceError(SOURCE, f"the environment variable {token_env} (audit.token_env) is not set or empty{where}")
    return token


def frame(events: list[dict]) -> pd.DataFrame:
    """Events (dicts as the endpoint or an export gives them) -> the contract frame, sorted by tenant
    chain order (ts, then the order given)."""
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise SourceError(SOURCE, "malformed audit events: expected a JSON list of objects")
    if not events:
        return _empty(COLUMNS)
    df = pd.DataFrame(events)
    missing = [c for c in ("ts", "event_id", "tenant", "actor", "action", "chain_hash") if c not in df.columns]
    if missing:
        raise SourceError(SOURCE, f"malformed audit events: missing field(s) {', '.join(missing)}")
    if "payload" in df.columns:
        df["payload"] = df["payload"].map(canonical_payload)
    try:
        out = _typed(df, COLUMNS)
    except (ValueError, TypeError) as exc:
        raise SourceError(SOURCE, f"malformed audit events: {_one_line(exc)}") from exc
    out["_order"] = range(len(out))
    out = out.sort_values(["tenant", "ts", "_order"], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


# ---- HTTP ---------------------------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - refuse, never follow
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to another URL refused ({code})", headers, fp)


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _check_base_url(base_url: str) -> str:
    from .._aws import is_loopback_url

    parsed = urllib.parse.urlparse(base_url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SourceError(SOURCE, f"audit.base_url must be an http(s) URL, got {base_url!r}")
    if parsed.scheme == "http" and not is_loopback_url(base_url):
        raise SourceError(SOURCE, "audit.base_url must be https:// (a bearer token never travels in clear text "
                                  "beyond loopback)")
    if parsed.query or parsed.fragment or parsed.username or parsed.password:
        raise SourceError(SOURCE, "audit.base_url must be a plain base URL (no query, fragment or credentials)")
    return base_url.rstrip("/")


def _url(base_url: str, path: str, tenant: str, query: dict | None = None) -> str:
    url = _check_base_url(base_url) + path.format(tenant=urllib.parse.quote(str(tenant), safe=""))
    return url + ("?" + urllib.parse.urlencode(query) if query else "")


def _get_json(url: str, token: str, what: str, timeout: float, ok=(200,)):
    """GET ``url`` with the bearer token; (status, parsed JSON). The token never appears in an error."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                                               "User-Agent": "forensics-notebooks"})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        status = exc.code
        body = exc.read(MAX_BODY + 1) if exc.fp is not None else b""
        if status not in ok:
            hint = {401: "; the token in audit.token_env is missing, wrong or expired",
                    403: "; the token in audit.token_env lacks the audit-replay permission"}.get(status, "")
            raise SourceError(SOURCE, f"{what} failed: HTTP {status} {_one_line(exc.reason, 80)}{hint}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kind = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else "unreachable"
        raise SourceError(SOURCE, f"{what} failed: {kind} ({_one_line(reason, 120)})") from None
    if len(body) > MAX_BODY:
        raise SourceError(SOURCE, f"{what} failed: response larger than {MAX_BODY // 2**20} MiB")
    try:
        return status, json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SourceError(SOURCE, f"{what} failed: HTTP {status} with a body that is not JSON "
                                  f"({_one_line(body[:80].decode('utf-8', 'replace'), 80)!r})") from None


def audit_replay(base_url: str, tenants, window: IncidentWindow, *, token_env: str | None = None,
                 token: str | None = None, timeout: float = 30.0, token_file: str | None = None) -> pd.DataFrame:
    """Every audit event of ``tenants`` in ``window``, one ``audit-replay`` request per tenant."""
    token = token or token_from_env(token_env, token_file)
    tenants = [tenants] if isinstance(tenants, str) else list(tenants or [])
    if not tenants:
        raise SourceError(SOURCE, "no tenants to replay (audit.tenants is empty)")
    query = {"from": window.start.strftime("%Y-%m-%dT%H:%M:%SZ"), "to": window.end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    events: list[dict] = []
    for tenant in tenants:
        what = f"audit-replay of tenant {tenant}"
        _, body = _get_json(_url(base_url, REPLAY_PATH, tenant, query), token, what, timeout)
        if isinstance(body, dict) and isinstance(body.get("events"), list):
            body = body["events"]
        if not isinstance(body, list) or not all(isinstance(e, dict) for e in body):
            raise SourceError(SOURCE, f"{what} failed: expected a JSON list of events, got {type(body).__name__}")
        events += [{**e, "tenant": e.get("tenant", tenant)} for e in body]
    return frame(events)


def verify_chain_endpoint(base_url: str, tenants, *, token_env: str | None = None, token: str | None = None,
                          timeout: float = 60.0, token_file: str | None = None) -> pd.DataFrame:
    """The application's own verdict per tenant: ``[tenant, intact, http_status, checked, first_broken_event,
    detail]`` (200 = intact, 409 = broken, both with a JSON body)."""
    token = token or token_from_env(token_env, token_file)
    tenants = [tenants] if isinstance(tenants, str) else list(tenants or [])
    rows = []
    for tenant in tenants:
        what = f"verify-chain of tenant {tenant}"
        status, body = _get_json(_url(base_url, VERIFY_PATH, tenant), token, what, timeout, ok=(200, 409))
        if not isinstance(body, dict):
            raise SourceError(SOURCE, f"{what} failed: expected a JSON object, got {type(body).__name__}")
        broken = body.get("first_broken") or {}
        rows.append({"tenant": tenant, "intact": bool(body.get("intact", status == 200)) and status == 200,
                     "http_status": status, "checked": body.get("checked"),
                     "first_broken_event": broken.get("event_id") if isinstance(broken, dict) else None,
                     "detail": _one_line(body.get("detail") or (broken.get("reason") if isinstance(broken, dict)
                                                                 else "") or "", 200) or None})
    return _typed(pd.DataFrame(rows), VERIFY_COLUMNS) if rows else _empty(VERIFY_COLUMNS)


def read_export(path: str | os.PathLike, window: IncidentWindow | None = None, tenants=None) -> pd.DataFrame:
    """An exported JSON list (or ``{"events": [...]}``) or NDJSON file of audit events, optionally
    narrowed to ``window`` and ``tenants``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(SOURCE, f"cannot read audit export {path}: {exc.strerror or exc}") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith(("[", "{")) and not _looks_ndjson(stripped):
            body = json.loads(text)
            events = body["events"] if isinstance(body, dict) and "events" in body else body
        else:
            events = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, KeyError) as exc:
        raise SourceError(SOURCE, f"audit export {path.name} is not JSON or NDJSON: {_one_line(exc, 120)}") from None
    df = frame(events)
    if tenants:
        wanted = [tenants] if isinstance(tenants, str) else list(tenants)
        df = df[df["tenant"].isin(wanted)]
    if window is not None:
        df = df[(df["ts"] >= window.start) & (df["ts"] < window.end)]
    return df.reset_index(drop=True)


def _looks_ndjson(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return len(lines) > 1 and lines[0].lstrip().startswith("{") and lines[0].rstrip().endswith("}")


def _recorded(base_url: str, tenants, window: IncidentWindow | None, token_env: str | None) -> dict:
    """What the manifest records of a request: the URL, tenants, window and the token's variable *name*."""
    out = {"base_url": base_url, "tenants": list(tenants or []), "token_env": token_env}
    if window is not None:
        out.update({"from": window.as_dict()["start"], "to": window.as_dict()["end"]})
    return out


def replay_call(base_url: str, tenants, window: IncidentWindow, *, token_env: str | None,
                timeout: float = 30.0, token_file: str | None = None) -> Call:
    """:func:`audit_replay` as one :class:`~forensics.sources.call.Call`."""
    return Call(None, _recorded(base_url, tenants, window, token_env),
                lambda: audit_replay(base_url, tenants, window, token_env=token_env, timeout=timeout,
                                     token_file=token_file))


def export_call(path: str, window: IncidentWindow, tenants) -> Call:
    """:func:`read_export` as one :class:`~forensics.sources.call.Call`."""
    return Call(None, {"file": path, "tenants": tenants, **window.as_dict()},
                lambda: read_export(path, window, tenants))


def verify_call(base_url: str, tenants, *, token_env: str | None, timeout: float = 60.0,
                token_file: str | None = None) -> Call:
    """:func:`verify_chain_endpoint` as one :class:`~forensics.sources.call.Call`."""
    return Call(None, _recorded(base_url, tenants, None, token_env),
                lambda: verify_chain_endpoint(base_url, tenants, token_env=token_env, timeout=timeout,
                                              token_file=token_file))
