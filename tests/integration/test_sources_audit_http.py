"""forensics.sources.audit against real HTTP servers on 127.0.0.1: the sandbox's audit application
(AuditServer over a real PostgreSQL table) and small stdlib servers that answer 500, garbage or a redirect."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import psycopg
import pytest

from forensics.errors import SourceError
from forensics_sandbox.audit_server import TABLE_SQL, AuditServer, append
from forensics.sources import audit
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox
TOKEN = "test-audit-token-7f3a9c"
ENV = "FORENSICS_TEST_AUDIT_TOKEN"
T0 = pd.Timestamp("2026-11-23T10:00:00Z")
WINDOW = IncidentWindow(T0, T0 + pd.Timedelta(hours=1))


@pytest.fixture(scope="module")
def app(pg_cluster):
    dsn = pg_cluster.dsn("app", application_name="audit-test")
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS audit_events")
        conn.execute(TABLE_SQL)
        for i in range(30):
            for tenant in ("a", "b"):
                append(conn, {"ts": (T0 + pd.Timedelta(minutes=3 * i - 15)).to_pydatetime(),
                              "event_id": f"00000000-0000-4000-8000-{ord(tenant)}{i:010d}", "tenant": tenant,
                              "actor": "service:scr-api", "action": "identity.update", "entity": f"identity:{i}",
                              "payload": {"i": i}})
        # tenant b: one row edited by hand
        conn.execute("UPDATE audit_events SET payload = '{\"i\": 999}'::jsonb, actor = 'psql:dba' "
                     "WHERE tenant = 'b' AND entity = 'identity:10'")
        conn.commit()
    server = AuditServer(dsn, TOKEN).start()
    yield server
    server.stop()
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE audit_events")


@pytest.fixture()
def token(monkeypatch):
    monkeypatch.setenv(ENV, TOKEN)
    return ENV


def test_replay_of_the_window_and_the_recomputed_chain(app, token):
    from forensics.analysis import integrity

    df = audit.audit_replay(app.base_url, ["a", "b"], WINDOW, token_env=token)
    assert list(df.columns[:9]) == list(audit.COLUMNS)
    assert len(df) == 2 * 20  # minutes -15..72 every 3: 20 of them in [T0, T0+60)
    assert df["ts"].min() >= WINDOW.start and df["ts"].max() < WINDOW.end
    r = integrity.verify_chain(df)
    assert r["tenants"]["a"]["intact"] and not r["tenants"]["b"]["intact"]
    assert r["first_broken"]["entity"] == "identity:10" and r["first_broken"]["actor"] == "psql:dba"


def test_the_applications_verdict(app, token):
    v = audit.verify_chain_endpoint(app.base_url, ["a", "b"], token_env=token)
    assert v["intact"].tolist() == [True, False] and v["http_status"].tolist() == [200, 409]
    assert v.loc[1, "first_broken_event"].endswith("10") and v.loc[1, "checked"] == 11


def test_wrong_or_missing_token(app, monkeypatch):
    monkeypatch.setenv(ENV, "not-the-token")
    with pytest.raises(SourceError, match="HTTP 401.*token in audit.token_env") as exc:
        audit.audit_replay(app.base_url, ["a"], WINDOW, token_env=ENV)
    assert "not-the-token" not in str(exc.value)
    monkeypatch.delenv(ENV)
    with pytest.raises(SourceError, match=f"{ENV} .* not set"):
        audit.audit_replay(app.base_url, ["a"], WINDOW, token_env=ENV)


class _Stub(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        assert self.headers["Authorization"] == f"Bearer {TOKEN}"
        kind = self.server.kind
        if kind == "500":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"<html>Internal Server Error</html>")
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
        else:
            body = {"garbage": b"not json {", "object": json.dumps({"no": "list"}).encode(),
                    "missing": json.dumps([{"ts": "2026-11-23T10:00:00Z"}]).encode()}[kind]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture()
def stub():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("kind, message", [
    ("500", "HTTP 500"), ("garbage", "not JSON"), ("object", "expected a JSON list"),
    ("missing", "missing field"), ("redirect", "HTTP 302"),
])
def test_bad_answers_are_one_line_source_errors(stub, kind, message):
    stub.kind = kind
    with pytest.raises(SourceError, match=message) as exc:
        audit.audit_replay(f"http://127.0.0.1:{stub.server_address[1]}", ["a"], WINDOW, token=TOKEN, timeout=5)
    assert TOKEN not in str(exc.value) and "\n" not in str(exc.value)


def test_unreachable_and_refused_urls():
    with pytest.raises(SourceError, match="unreachable"):
        audit.audit_replay("http://127.0.0.1:9", ["a"], WINDOW, token=TOKEN, timeout=2)
    with pytest.raises(SourceError, match="https"):
        audit.audit_replay("http://audit.example.com", ["a"], WINDOW, token=TOKEN)
    with pytest.raises(SourceError, match="plain base URL"):
        audit.audit_replay("https://u:p@audit.example.com", ["a"], WINDOW, token=TOKEN)


def test_exports_json_and_ndjson(app, token, tmp_path):
    df = audit.audit_replay(app.base_url, ["a"], IncidentWindow(T0 - pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=2)),
                            token_env=token)
    rows = [{**r, "ts": r["ts"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "payload": json.loads(r["payload"])}
            for r in df.to_dict(orient="records")]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "a.ndjson").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for name in ("a.json", "a.ndjson"):
        back = audit.read_export(tmp_path / name, WINDOW, ["a"])
        assert len(back) == 20
        from forensics.analysis import integrity

        assert integrity.verify_chain(back)["intact"] is True
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(SourceError, match="not JSON or NDJSON"):
        audit.read_export(tmp_path / "bad.json")
