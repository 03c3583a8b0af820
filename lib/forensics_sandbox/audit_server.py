"""The application's audit endpoints, played by the sandbox on 127.0.0.1 from the cluster's audit table.

    GET /api/v1/tenants/<id>/audit-replay?from=<iso>&to=<iso>   200 JSON list of events (ts order)
    GET /api/v1/tenants/<id>/verify-chain                       200 {"intact": true, ...} or
                                                                409 {"intact": false, "first_broken": {...}}

Both require ``Authorization: Bearer <token>`` (401 otherwise). This is the *application's* side, written
independently of :mod:`forensics.analysis.integrity` (which re-derives the verdict from the replay), the
way the real service and the forensic notebook are two different programs.

The audit writer (:func:`append`) is how the service writes: it reads the tenant's last ``chain_hash``
and stores ``sha256(prev_hash + canonical(event))``. A row inserted by hand (psql) skips it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import psycopg

log = logging.getLogger(__name__)

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS audit_events (
    seq bigserial PRIMARY KEY,
    ts timestamptz NOT NULL,
    event_id uuid NOT NULL UNIQUE,
    tenant text NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    entity text,
    payload jsonb,
    prev_hash text NOT NULL,
    chain_hash text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_tenant_ts_idx ON audit_events (tenant, ts, seq);
"""
GENESIS = "0" * 64
_ROUTE = re.compile(r"^/api/v1/tenants/([^/]+)/(audit-replay|verify-chain)$")
_COLS = "ts, event_id::text, tenant, actor, action, entity, payload, prev_hash, chain_hash"


def _ts(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event: dict) -> str:
    body = {"action": event["action"], "actor": event["actor"], "entity": event.get("entity"),
            "event_id": str(event["event_id"]), "payload": event.get("payload"), "tenant": event["tenant"],
            "ts": event["ts"] if isinstance(event["ts"], str) else _ts(event["ts"])}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(prev_hash: str, event: dict) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode("utf-8")).hexdigest()


def append(conn, event: dict) -> str:
    """The service's audit writer: chain ``event`` onto its tenant's last row; returns the chain_hash."""
    row = conn.execute("SELECT chain_hash FROM audit_events WHERE tenant = %s ORDER BY ts DESC, seq DESC LIMIT 1",
                       (event["tenant"],)).fetchone()
    prev = row[0] if row else GENESIS
    h = digest(prev, event)
    conn.execute("INSERT INTO audit_events (ts, event_id, tenant, actor, action, entity, payload, prev_hash, "
                 "chain_hash) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)",
                 (event["ts"], event["event_id"], event["tenant"], event["actor"], event["action"],
                  event.get("entity"), json.dumps(event.get("payload")), prev, h))
    return h


def _row(r) -> dict:
    return {"ts": _ts(r[0]), "event_id": r[1], "tenant": r[2], "actor": r[3], "action": r[4], "entity": r[5],
            "payload": r[6], "prev_hash": r[7], "chain_hash": r[8]}


def verify(rows: list[dict]) -> dict:
    """The application's verify-chain over a tenant's whole chain."""
    prev = GENESIS
    for i, e in enumerate(rows):
        if e["prev_hash"] != prev:
            return {"intact": False, "checked": i + 1,
                    "first_broken": {"event_id": e["event_id"], "ts": e["ts"], "reason": "prev_hash mismatch"}}
        if digest(e["prev_hash"], e) != e["chain_hash"]:
            return {"intact": False, "checked": i + 1,
                    "first_broken": {"event_id": e["event_id"], "ts": e["ts"], "reason": "chain_hash mismatch"}}
        prev = e["chain_hash"]
    return {"intact": True, "checked": len(rows), "first_broken": None}


class AuditServer:
    """A threaded HTTP server on 127.0.0.1 serving the audit endpoints; ``stop()`` ends it."""

    def __init__(self, dsn: str, token: str, host: str = "127.0.0.1", port: int = 0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the sandbox audit server listens on loopback only")
        self.dsn = dsn
        self._token = token
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "AuditServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="sandbox-audit-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    # -- the application ------------------------------------------------------------------------------
    def _rows(self, tenant: str, start: str | None = None, end: str | None = None) -> list[dict]:
        sql = f"SELECT {_COLS} FROM audit_events WHERE tenant = %s"
        args: list = [tenant]
        if start:
            sql += " AND ts >= %s"
            args.append(start)
        if end:
            sql += " AND ts < %s"
            args.append(end)
        with psycopg.connect(self.dsn, connect_timeout=5) as conn:
            return [_row(r) for r in conn.execute(sql + " ORDER BY ts, seq", args).fetchall()]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "scr-api-audit/1.0"

            def log_message(self, fmt, *args):  # quiet: the request line is logged at debug level only
                log.debug("audit server: " + fmt, *args)

            def _send(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's naming
                auth = self.headers.get("Authorization", "")
                if not (auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].encode(),
                                                                           server._token.encode())):
                    return self._send(401, {"detail": "not authenticated"})
                url = urlparse(self.path)
                m = _ROUTE.match(url.path)
                if not m:
                    return self._send(404, {"detail": "not found"})
                tenant, what = unquote(m.group(1)), m.group(2)
                try:
                    if what == "audit-replay":
                        q = parse_qs(url.query)
                        return self._send(200, server._rows(tenant, (q.get("from") or [None])[0],
                                                            (q.get("to") or [None])[0]))
                    result = verify(server._rows(tenant))
                    return self._send(200 if result["intact"] else 409, {"tenant": tenant, **result})
                except (psycopg.Error, ValueError) as exc:
                    log.warning("audit server: %s", exc)
                    return self._send(500, {"detail": "internal error"})

        return Handler
