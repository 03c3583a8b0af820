"""A loopback HTTP proxy in front of the sandbox's moto server, for what a real AWS Region does that moto does
not: answer slowly (``delay_s``: a Region answers in 100-500 ms) or refuse operations a policy lacks
(``deny``: HTTP 400 ``AccessDeniedException`` by ``X-Amz-Target``). Everything else is forwarded unchanged.
It forwards only to loopback and stops with the test that started it."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse


class LoopbackProxy:
    def __init__(self, target_url: str, *, delay_s: float = 0.0, deny: set[str] | tuple = ()):
        target = urlparse(target_url)
        assert target.hostname in ("127.0.0.1", "localhost"), "the proxy only forwards to loopback"
        self.target = (target.hostname, target.port)
        self.delay_s = delay_s
        self.deny = set(deny)
        self.requests = 0
        self.denied: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LoopbackProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status, body: bytes, headers):
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                op = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                if op in proxy.deny:
                    proxy.denied.append(op)
                    msg = {"__type": "AccessDeniedException", "message": f"User is not authorized to perform: {op}"}
                    return self._answer(400, json.dumps(msg).encode(), [("Content-Type", "application/x-amz-json-1.1")])
                time.sleep(proxy.delay_s)
                proxy.requests += 1
                conn = http.client.HTTPConnection(*proxy.target, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self._answer(resp.status, data, resp.getheaders())

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def incident_through(sandbox_params: dict, endpoint_url: str, folder: Path) -> Path:
    """A copy of the sandbox's incident whose environment sends every AWS call to ``endpoint_url`` (a proxy):
    the environment and the incident written into ``folder``; returns the incident's path."""
    import yaml

    env = yaml.safe_load(Path(sandbox_params["environment"]).read_text())
    env["aws"]["endpoint_url"] = endpoint_url
    env_path = Path(folder) / "env-delayed.yaml"
    env_path.write_text(yaml.safe_dump(env))
    incident = yaml.safe_load(Path(sandbox_params["incident"]).read_text())
    incident["environment"] = str(env_path)
    path = Path(folder) / "incident-delayed.yaml"
    path.write_text(yaml.safe_dump(incident))
    return path
