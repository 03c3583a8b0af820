"""Authentication failures: access lines of every common shape, ALB rows, per-minute rates and their onset,
clients and user agents against a baseline, auth error signatures and PostgreSQL's refused sign-ins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forensics.analysis import auth, pglog
from forensics.sources import alb_logs
from forensics.window import IncidentWindow

ALB_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "alb" / "cloudgoat_rce_web_app_elasticloadbalancing.log"
T0 = pd.Timestamp("2026-11-23T10:00:00Z")


@pytest.mark.parametrize("line,want", [
    ('198.51.100.23 - - [23/Nov/2026:10:00:01 +0000] "POST /api/v1/login HTTP/1.1" 401 53 "-" "python-requests/2.31"',
     ("198.51.100.23", "python-requests/2.31", "POST", "/api/v1/login", 401)),
    ('203.0.113.9, 10.0.1.5 - - [23/Nov/2026:10:00:01 +0000] "GET /a HTTP/1.1" 403 0 "-" "curl/8.5.0"',
     ("203.0.113.9", "curl/8.5.0", "GET", "/a", 403)),
    ('INFO:     10.0.1.84:51234 - "GET /api/v1/orders/3 HTTP/1.1" 401 Unauthorized',
     ("10.0.1.84", None, "GET", "/api/v1/orders/3", 401)),
    ('{"level": "warning", "status_code": 403, "remote_addr": "192.0.2.1", "path": "/admin", "user_agent": "x/1"}',
     ("192.0.2.1", "x/1", None, "/admin", 403)),
    ('2026-11-23 10:00:01,002 WARNING [auth] rejected status=401 client_ip="192.0.2.7, 10.0.0.2" user_agent="a b/1" '
     'reason="Signature has expired" path=/me', ("192.0.2.7", "a b/1", None, "/me", 401)),
])
def test_access_lines_of_every_common_shape(line, want):
    got = auth.parse_access_line(line)
    assert (got["client_ip"], got["user_agent"], got["method"], got["path"], got["status"]) == want


@pytest.mark.parametrize("line", ["Traceback (most recent call last):", "rows=401 and nothing else",
                                  '{"status": "ok"}', "user=bob logged in"])
def test_lines_that_are_not_access_lines(line):
    assert auth.parse_access_line(line) is None


@pytest.mark.parametrize("message,signature", [
    ("jwt.exceptions.ExpiredSignatureError: Signature has expired", "jwt_expired"),
    ("jwt.exceptions.InvalidSignatureError: Signature verification failed", "bad_signature"),
    ("jwt.exceptions.DecodeError: Not enough segments", "jwt_invalid"),
    ("HTTPException 401: Could not validate credentials", "jwt_invalid"),
    ("RuntimeError: SECRET_KEY is not set", "missing_secret_key"),
    ("django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty", "missing_secret_key"),
    ('reason="Incorrect email or password"', "bad_credentials"),
    ("rejected: invalid API key sk-...", "invalid_api_key"),
    ("The user doesn't have enough privileges", "forbidden"),
    ("order listing account_id=4 rows=12", None),
])
def test_auth_error_signatures(message, signature):
    assert auth.classify(message) == signature


def _events(rows) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime([r[0] for r in rows], utc=True),
                         "message": [r[1] for r in rows], "log_group": "g", "log_stream": "s", "event_id": "e"})


def _line(ip, ua, status, reason, path="/api/v1/users/me"):
    return f'WARNING auth rejected status={status} client_ip={ip} user_agent="{ua}" reason="{reason}" path={path}'


def _scenario():
    """60 min: a browser with expired tokens every 4 min throughout; from minute 30 a script at 20/min."""
    rows = [(T0 + pd.Timedelta(minutes=m, seconds=7), _line("192.0.2.14", "Mozilla/5.0", 401,
                                                            "ExpiredSignatureError: Signature has expired"))
            for m in range(0, 60, 4)]
    for m in range(30, 45):
        for j in range(20):
            status, reason = (403, "not enough privileges") if j % 10 == 0 else (401, "Incorrect email or password")
            rows.append((T0 + pd.Timedelta(minutes=m, seconds=3 * j),
                         _line("198.51.100.23", "python-requests/2.31.0", status, reason, "/api/v1/login")))
    return _events(sorted(rows))


def test_onset_rates_and_new_clients_from_application_lines():
    events = _scenario()
    requests = auth.from_app_logs(events)
    rates = auth.per_minute(requests, T0, T0 + pd.Timedelta(minutes=60))
    assert len(rates) == 60 and "requests" not in rates  # the app log shows failures, not every request
    assert rates["unauthorized"].sum() == 15 + 270 and rates["forbidden"].sum() == 30
    assert auth.onset(rates) == T0 + pd.Timedelta(minutes=30)
    window = IncidentWindow(T0 + pd.Timedelta(minutes=20), T0 + pd.Timedelta(minutes=60))
    baseline = auth.from_app_logs(events[events["timestamp"] < window.start])
    clients = auth.by_client_ip(auth.within(requests, window), baseline)
    top = clients.iloc[0]
    assert top["client_ip"] == "198.51.100.23" and top["auth_failures"] == 300 and top["forbidden"] == 30
    assert top["new"] and top["user_agents"] == ["python-requests/2.31.0"] and top["paths"] == ["/api/v1/login"]
    assert clients.set_index("client_ip").loc["192.0.2.14", "new"] == False  # noqa: E712 - seen before
    assert auth.new_clients(clients)["client_ip"].tolist() == ["198.51.100.23"]
    agents = auth.by_user_agent(auth.within(requests, window), baseline)
    assert agents.iloc[0][["user_agent", "new", "tool"]].tolist() == ["python-requests/2.31.0", True, True]
    # an address the environment knows is never new
    assert not auth.by_client_ip(requests, None, known=["198.51.100.0/24"]).set_index("client_ip").loc[
        "198.51.100.23", "new"]


def test_no_onset_without_a_rise_of_at_least_five_a_minute():
    rng = np.random.default_rng(7)
    index = pd.date_range(T0, periods=120, freq="1min")
    noisy = pd.DataFrame({"unauthorized": rng.integers(0, 3, 120), "forbidden": 0}, index=index)
    assert auth.onset(noisy) is None
    assert auth.onset(auth.per_minute(auth.from_app_logs(None), T0, T0 + pd.Timedelta(minutes=10))) is None


def _alb_frame() -> pd.DataFrame:
    """The real sample's first line rewritten into a baseline client and a new one failing auth."""
    template = ALB_SAMPLE.read_text().splitlines()[0].split(" ")
    lines = []
    for k in range(40):
        f = list(template)
        new = k >= 10
        f[1] = (T0 + pd.Timedelta(seconds=30 * k)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        f[3] = ("198.51.100.23" if new else "10.10.10.23") + ":5132"
        f[8] = f[9] = "401" if new and k % 2 else "200"
        lines.append(" ".join(f))
    rows, errors = alb_logs.parse_lines(lines)
    assert not errors
    return alb_logs.frame(rows)


def test_alb_rows_give_every_request_so_rates_and_ratios():
    requests = auth.from_alb(_alb_frame())
    assert (requests["source"] == "alb").all() and requests["user_agent"].str.startswith("Mozilla").all()
    rates = auth.per_minute(requests, T0, T0 + pd.Timedelta(minutes=20))
    assert rates["requests"].sum() == 40 and rates["unauthorized"].sum() == 15
    assert rates["auth_failure_rate"].max() == pytest.approx(0.5)
    baseline = requests[requests["client_ip"] == "10.10.10.23"]
    clients = auth.by_client_ip(requests, baseline)
    assert clients["client_ip"].tolist() == ["198.51.100.23"]  # only clients with failures
    assert clients.iloc[0][["requests", "auth_failures", "failure_ratio", "new"]].tolist() == [30, 15, 0.5, True]


def test_top_errors_join_application_signatures_and_postgres_refusals():
    app = auth.signatures(_scenario())
    pg = pglog.parse_stderr([
        '2026-11-23 10:40:00 UTC:198.51.100.23(50412):scr_admin@app:[28731]:FATAL:  password authentication '
        'failed for user "scr_admin"',
        '2026-11-23 10:40:00 UTC:198.51.100.23(50412):scr_admin@app:[28731]:DETAIL:  Connection matched pg_hba.conf',
        '2026-11-23 10:41:00 UTC:10.0.1.9(50413):app@app:[28732]:ERROR:  relation "x" does not exist'])
    top = auth.top_auth_errors(app, auth.postgres_failures(pg))
    assert top["signature"].tolist() == ["bad_credentials", "forbidden", "jwt_expired", auth.POSTGRES]
    assert top.iloc[0]["events"] == 270 and top.iloc[0]["clients"] == ["198.51.100.23"]
    row = top.set_index("signature").loc[auth.POSTGRES]
    assert row["events"] == 1 and row["clients"] == ["198.51.100.23"] and row["source"] == "postgres"
    wide = auth.per_minute_by_signature(auth.combined(app, auth.postgres_failures(pg)), T0, T0 + pd.Timedelta(hours=1))
    assert wide.loc[T0 + pd.Timedelta(minutes=40), auth.POSTGRES] == 1 and wide["bad_credentials"].sum() == 270


def test_nothing_to_find_is_said_plainly():
    empty = auth.by_client_ip(auth.from_app_logs(None))
    assert auth.verdict(None, empty, auth.top_auth_errors()) == (
        "Nothing to find: no 401/403 and no authentication error in the window.")


def test_the_patterns_file_is_checked(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("x:\n  patterns: ['(']\n")
    with pytest.raises(ValueError, match="bad regex"):
        auth.load_patterns(bad)
    bad.write_text("x: {description: y}\n")
    with pytest.raises(ValueError, match="needs a list"):
        auth.load_patterns(bad)
