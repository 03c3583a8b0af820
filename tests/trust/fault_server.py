"""A loopback HTTP server that plays a broken AWS endpoint, for fault injection without patching our code.

Modes: ``throttle`` (HTTP 400 ThrottlingException in the service's own protocol: botocore's adaptive
retries engage, then give up), ``429`` (Too Many Requests, no body), ``slow`` (answers after longer
than the client's read timeout), ``html`` (HTTP 200 with an HTML error page), ``truncated`` (HTTP 200,
the response cut in half). ``per_service`` picks a mode by the SigV4 credential scope's service name.
Every request is counted per service.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cbor_text(s: str) -> bytes:
    b = s.encode()
    return (bytes([0x60 + len(b)]) if len(b) < 24 else bytes([0x78, len(b)])) + b


def _cbor_map(d: dict) -> bytes:
    out = bytes([0xA0 + len(d)])
    for k, v in d.items():
        out += _cbor_text(k) + _cbor_text(v)
    return out


class FaultServer:
    def __init__(self, mode: str = "throttle", per_service: dict[str, str] | None = None, delay_s: float = 3.0):
        self.mode, self.per_service, self.delay_s = mode, per_service or {}, delay_s
        self.requests: Counter = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                m = _SCOPE.search(self.headers.get("Authorization", ""))
                service = m.group(1) if m else "unknown"
                server.requests[service] += 1
                ctype = self.headers.get("Content-Type", "")
                self.protocol_family = "cbor" if "cbor" in ctype else "json" if "json" in ctype else "query"
                mode = server.per_service.get(service, server.mode)
                try:
                    getattr(server, f"_{mode}")(self, service)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST  # noqa: N815

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fault-server", daemon=True)

    def start(self) -> "FaultServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- behaviours -------------------------------------------------------------------------------------
    @staticmethod
    def _send(h, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _throttle(self, h, service):
        proto = h.protocol_family
        if proto == "cbor":
            self._send(h, 400, _cbor_map({"__type": "ThrottlingException", "message": "Rate exceeded"}),
                       "application/cbor", {"smithy-protocol": "rpc-v2-cbor"})
        elif proto == "json":
            self._send(h, 400, b'{"__type":"ThrottlingException","message":"Rate exceeded"}',
                       "application/x-amz-json-1.1")
        else:
            self._send(h, 400, b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                               b"<Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>",
                       "text/xml")

    def _429(self, h, service):
        self._send(h, 429, b"Too Many Requests", "text/plain")

    def _slow(self, h, service):
        time.sleep(self.delay_s)
        self._send(h, 200, b"{}", "application/x-amz-json-1.1")  # too late: the client has hung up

    def _html(self, h, service):
        self._send(h, 200, b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway"
                           b"</h1><hr>nginx</body></html>", "text/html")

    def _truncated(self, h, service):
        proto = h.protocol_family
        if proto == "cbor":
            body = _cbor_map({"MetricDataResults": "x" * 40})[:20]
            self._send(h, 200, body, "application/cbor", {"smithy-protocol": "rpc-v2-cbor"})
        elif proto == "json":
            self._send(h, 200, b'{"events": [{"timestamp": 1763920000000, "message": "ERR', "application/x-amz-json-1.1")
        else:
            self._send(h, 200, b'<?xml version="1.0"?><DescribeEventsResponse><DescribeEventsResult><Events><Event>'
                               b"<Message>Reboo", "text/xml")
