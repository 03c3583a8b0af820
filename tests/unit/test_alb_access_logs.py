"""ALB access logs: the documented entry format parsed completely (real cloudgoat lines, tests/data/alb,
and lines in today's 33-field format), path templates, and the api-errors / security analyses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forensics.analysis import alb
from forensics.sources import alb_logs, query_engines

DATA = Path(__file__).resolve().parents[1] / "data" / "alb" / "cloudgoat_rce_web_app_elasticloadbalancing.log"
T0 = pd.Timestamp("2026-05-30T09:00:00Z")


def line(sec: float = 0, *, client="203.0.113.9:51000", target="10.0.1.20:8080", times=("0.001", "0.050", "0.000"),
         elb="200", tgt="200", verb="GET", path="/api/orders/1234", ua="Mozilla/5.0 (X11; Linux x86_64)",
         error_reason="-", extra: str = "") -> str:
    """One entry in the documented format, every field through request_transform_status (33)."""
    t = (T0 + pd.Timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (f'https {t} app/web/0123456789abcdef {client} {target} {times[0]} {times[1]} {times[2]} {elb} {tgt} '
            f'512 2048 "{verb} https://shop.example.com:443{path}?page=2 HTTP/1.1" "{ua}" '
            f'ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1a2b '
            f'"Root=1-58337364-23a8c76965a2ef7629b185e3" "shop.example.com" '
            f'"arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 {t} '
            f'"forward" "-" "{error_reason}" "{target}" "{tgt}" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"{extra}')


def test_real_2019_lines_parse_every_field():
    rows, bad = alb_logs.parse_lines(DATA.read_text().splitlines(), "cloudgoat.log")
    assert len(rows) == 32 and bad == []
    df = alb_logs.frame(rows)
    first = df.iloc[0]
    assert first["timestamp"] == pd.Timestamp("2019-06-18T21:36:23.594569Z")
    assert (first["client_ip"], first["client_port"], first["target_ip"], first["target_port"]) == (
        "10.10.10.23", 5132, "10.0.10.254", 9000)
    assert (first["request_verb"], first["path"], first["request_proto"]) == ("GET", "/mkja1xijqf0abo1h9glg.html",
                                                                              "HTTP/1.1")
    assert first["user_agent"].startswith("Mozilla/5.0 (Windows NT 10.0")
    assert first["trace_id"] == "Root=1-5d095963-e2b838a764ed31d017b74cce" and first["actions_executed"] == "forward"
    assert first["request_creation_time"] == pd.Timestamp("2019-06-18T21:36:35.592Z")
    assert pd.isna(first["ssl_cipher"]) and pd.isna(first["redirect_url"]) and pd.isna(first["conn_trace_id"])
    assert str(df["elb_status_code"].dtype) == "Int64" and str(df["timestamp"].dtype) == "datetime64[us, UTC]"


def test_current_format_dash_minus_one_ipv6_and_extra_fields():
    rows, bad = alb_logs.parse_lines([
        line(0),
        line(1, target="-", times=("-1", "-1", "-1"), elb="503", tgt="-", error_reason="-"),
        line(2, client="[2001:db8::7]:443", extra=' "a-field-from-2030" 42'),
    ])
    assert bad == []
    df = alb_logs.frame(rows)
    ok, unreachable, v6 = (df.iloc[i] for i in range(3))
    assert ok["target_processing_time"] == 0.05 and ok["conn_trace_id"] == "TID_1234abcd5678ef90"
    assert ok["classification"] is pd.NA or pd.isna(ok["classification"])
    assert ok["query"] == "page=2" and ok["host"] == "shop.example.com" and ok["matched_rule_priority"] == 1
    assert ok["target_port_list"] == "10.0.1.20:8080" and ok["target_status_code_list"] == "200"
    assert pd.isna(unreachable["target_ip"]) and pd.isna(unreachable["target_processing_time"])
    assert unreachable["elb_status_code"] == 503 and pd.isna(unreachable["target_status_code"])
    assert (v6["client_ip"], v6["client_port"]) == ("2001:db8::7", 443)
    assert v6["extra_fields"] == "a-field-from-2030 42"


def test_short_lines_are_counted_not_parsed():
    cut = line(3)[:200]
    rows, bad = alb_logs.parse_lines([line(0), cut, line(1), "http 2026-05-30T09:00:00Z app/x/y"])
    assert len(rows) == 2
    assert [n for n, _ in bad] == [2, 4] and "the file's format has 33" in bad[0][1]
    with pytest.raises(alb_logs.ShortLine):
        alb_logs.parse_line("http 2026-05-30T09:00:00Z app/x/y")


@pytest.mark.parametrize("path,template", [
    ("/api/orders/1234/items/7", "/api/orders/{n}/items/{n}"),
    ("/u/3f2b8c1e-9d4a-4b6e-8f00-0123456789ab/avatar", "/u/{uuid}/avatar"),
    ("/files/mkja1xijqf0abo1h9glg.html", "/files/{id}.html"),
    ("/t/eyJhbGciOiJIUzI1NiJ9abc123", "/t/{id}"),
    ("/health", "/health"), ("/static/application-settings.css", "/static/application-settings.css"),
    ("/", "/"),
])
def test_path_template(path, template):
    assert alb.path_template(path) == template


def _incident() -> pd.DataFrame:
    lines = []
    for i in range(200):  # healthy traffic from many clients
        lines.append(line(i * 3, client=f"198.51.100.{i % 40}:5{i:04d}", path=f"/api/products/{i}",
                          times=("0.001", f"{0.02 + (i % 10) / 1000:.3f}", "0.000")))
    for i in range(60):  # the failing endpoint: target 10.0.1.21 answers 500 slowly, then the ALB gives 504s
        t, slow = ("10.0.1.21:8080", True) if i % 2 else ("10.0.1.20:8080", False)
        lines.append(line(100 + i * 5, client=f"198.51.100.{i % 40}:6{i:04d}", path=f"/api/checkout/{1000 + i}",
                          verb="POST", target=t, tgt="500" if slow else "200", elb="500" if slow else "200",
                          times=("0.001", "2.500" if slow else "0.300", "0.000")))
    for i in range(10):
        lines.append(line(400 + i, client="10.0.1.99:7000", path="/api/checkout/77", verb="POST", target="-",
                          times=("-1", "-1", "-1"), elb="504", tgt="-"))
    for i in range(150):  # a credential-stuffing client: 150 logins in 75 s, mostly 401, a scripting UA
        lines.append(line(600 + i * 0.5, client="192.0.2.66:4444", path="/api/login", verb="POST",
                          elb="401" if i % 10 else "200", tgt="401" if i % 10 else "200",
                          ua="python-requests/2.31.0"))
    rows, bad = alb_logs.parse_lines(lines)
    assert not bad
    return alb_logs.frame(rows)


def test_failing_endpoint_targets_and_latency():
    logs = _incident()
    worst = alb.failing_endpoints(logs).iloc[0]
    assert worst["endpoint"] == "POST /api/checkout/{n}" and worst["errors_5xx"] == 40
    assert worst["elb_5xx"] == 10 and worst["target_5xx"] == 30 and worst["failing_targets"] == ["10.0.1.21:8080"]
    assert worst["p50"] == pytest.approx(1.4) and worst["p99"] == pytest.approx(2.5)
    tg = alb.targets(logs).set_index("target")
    assert tg.loc["10.0.1.21:8080", "errors_5xx"] == 30 and tg.loc["(no target)", "errors_5xx"] == 10
    assert tg.loc["10.0.1.20:8080", "errors_5xx"] == 0
    lat = alb.latency(logs)
    assert lat.iloc[0]["endpoint"] == "POST /api/checkout/{n}" and lat.iloc[0]["max"] == 2.5
    per = alb.latency(logs, freq="5min")
    assert {"timestamp", "endpoint", "p95"} <= set(per.columns) and per["timestamp"].is_monotonic_increasing


def test_the_same_endpoints_from_duckdb_sql():
    logs = _incident()
    sql = query_engines.run_duckdb("alb_endpoints", {"alb_logs": logs},
                                   {"start": T0, "end": T0 + pd.Timedelta(hours=1)})
    py = alb.endpoints(logs)
    assert sql.attrs["engine"] == "duckdb"
    merged = py.merge(sql, on="endpoint", suffixes=("", "_sql"))
    assert len(merged) == len(py) == len(sql)
    for col in ("requests", "errors_5xx", "elb_5xx", "target_5xx", "errors_4xx"):
        assert (merged[col] == merged[f"{col}_sql"]).all(), col
    assert (merged["p95"] - merged["p95_sql"]).abs().max() < 1e-9
    # the real 2019 lines too: the SQL and the Python path rule agree
    real = alb_logs.frame(alb_logs.parse_lines(DATA.read_text().splitlines())[0])
    sql = query_engines.run_duckdb("alb_endpoints", {"alb_logs": real}, {"start": "2019-06-18T00:00:00Z",
                                                                         "end": "2019-06-19T00:00:00Z"})
    assert sorted(sql["endpoint"]) == sorted(alb.endpoints(real)["endpoint"]) and "GET /{id}.html" in set(sql["endpoint"])


def test_abusive_and_new_clients_and_agents():
    logs = _incident()
    ips = alb.client_ips(logs, known=["10.0.0.0/8"])
    top = ips.iloc[0]
    assert top["client_ip"] == "192.0.2.66" and top["abusive"] and top["new"]
    assert any("401/403" in r for r in top["reasons"]) and any("in one minute" in r for r in top["reasons"])
    assert not ips[ips["client_ip"] != "192.0.2.66"]["abusive"].any()
    assert not ips.set_index("client_ip").loc["10.0.1.99", "new"]  # a known range
    baseline = logs[logs["client_ip"] != "192.0.2.66"]
    ips = alb.client_ips(logs, baseline)
    assert ips[ips["new"]]["client_ip"].tolist() == ["192.0.2.66"]
    uas = alb.user_agents(logs, baseline)
    assert uas.iloc[0]["user_agent"] == "python-requests/2.31.0" and uas.iloc[0]["new"] and uas.iloc[0]["tool"]
    assert uas.iloc[0]["error_4xx_ratio"] == pytest.approx(0.9)


def test_empty_frames():
    empty = alb_logs.frame([])
    assert list(empty.columns) == list(alb_logs.COLUMNS)
    for fn in (alb.endpoints, alb.targets, alb.latency, alb.client_ips, alb.user_agents):
        assert fn(empty).empty


def _reference_stats(logs: pd.DataFrame, key: str) -> pd.DataFrame:
    """The per-group definition, one group at a time: requests, and quantiles of the numeric processing times."""
    df = alb.with_endpoints(logs)
    rows = []
    for k, g in df.groupby(key):
        t = pd.to_numeric(g["target_processing_time"], errors="coerce").dropna()
        rows.append({key: k, "requests": len(g), **{f"p{int(q * 100)}": float(t.quantile(q)) if len(t) else float("nan")
                                                    for q in (0.5, 0.95, 0.99)},
                     "max": float(t.max()) if len(t) else float("nan")})
    return pd.DataFrame(rows)


def test_per_group_latency_equals_the_one_group_at_a_time_definition():
    """Endpoints, targets and latency take their quantiles in one vectorised pass: equal to the quantiles of each
    group's numeric times (missing times, a group with none, a request that reached no target)."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = 5_000
    paths = np.array([f"/orders/{i}" for i in range(40)] + ["/health", "/v1/users/a1b2c3d4e5f6a7b8c9", None], dtype=object)
    times = rng.exponential(0.2, n)
    times[rng.random(n) < 0.1] = np.nan
    logs = pd.DataFrame({
        "timestamp": pd.date_range("2026-12-07T12:00Z", periods=n, freq="700ms"),
        "request_verb": rng.choice(["GET", "POST", None], n),
        "path": rng.choice(paths, n),
        "target_ip": rng.choice(np.array(["10.0.1.5", "10.0.2.7", "10.0.3.9", None], dtype=object), n),
        "target_port": rng.choice(np.array([8080, 8081, None], dtype=object), n),
        "target_processing_time": times,
        "elb_status_code": rng.choice([200, 200, 502, 404], n),
        "target_status_code": rng.choice([200.0, 500.0, np.nan], n),
        "error_reason": None,
    })
    logs.loc[logs["path"] == "/health", "target_processing_time"] = np.nan  # a group with no number at all
    for key, got in (("endpoint", alb.endpoints(logs)), ("target", alb.targets(logs.assign(
            target_ip=logs["target_ip"].fillna("10.0.9.9"))))):
        want = _reference_stats(logs if key == "endpoint" else logs.assign(target_ip=logs["target_ip"].fillna("10.0.9.9")),
                                key)
        merged = got.merge(want, on=key, suffixes=("", "_want"))
        assert len(merged) == len(want) == len(got)
        for c in ("requests", "p50", "p95", "p99"):
            assert np.allclose(merged[c], merged[f"{c}_want"], equal_nan=True, rtol=0, atol=1e-12), (key, c)
    lat = alb.latency(logs)
    want = _reference_stats(logs, "endpoint")
    merged = lat.merge(want, on="endpoint", suffixes=("", "_want"))
    assert len(merged) == len(want) and merged["p99"].isna().any()
    for c in ("requests", "p50", "p95", "p99", "max"):
        assert np.allclose(merged[c], merged[f"{c}_want"], equal_nan=True, rtol=0, atol=1e-12), c
    by_minute = alb.latency(logs, freq="1min")
    assert by_minute["requests"].sum() == logs["path"].notna().sum() + logs["path"].isna().sum()
