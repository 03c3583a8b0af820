"""The optional audit and cloudtrail environment sections."""

from __future__ import annotations

import pytest

from forensics.errors import ParamsError
from forensics.params import load_environment

BASE = """name: prod
aws: {region: eu-west-1}
alb: {load_balancer: app/x/1}
ecs: {cluster: c, services: [s]}
rds: {instance: db}
logs: {app: [/ecs/x]}
"""


def _env(tmp_path, extra: str):
    p = tmp_path / "env.yaml"
    p.write_text(BASE + extra)
    return load_environment(str(p))


def test_sections_are_optional_and_accepted(tmp_path):
    assert "audit" not in _env(tmp_path, "")
    env = _env(tmp_path, "audit: {base_url: 'https://app.example.com', token_env: AUDIT_TOKEN, tenants: [a, b]}\n"
                         "cloudtrail: {baseline_hours: 48, known_ips: [10.0.0.0/8]}\n")
    assert env["audit"]["tenants"] == ["a", "b"] and env["cloudtrail"]["baseline_hours"] == 48


@pytest.mark.parametrize("extra, message", [
    ("audit: {base_url: 'http://app.example.com', token_env: T, tenants: [a]}\n", "https://"),
    ("audit: {base_url: 'https://app.example.com', token_env: 'not a var', tenants: [a]}\n", "token_env"),
    ("audit: {base_url: 'https://app.example.com', token_env: T}\n", "audit.tenants"),
    ("audit: {base_url: 'https://app.example.com', token_env: T, tenants: [a], token: x}\n", "unknown field"),
])
def test_bad_audit_sections_are_refused(tmp_path, extra, message):
    with pytest.raises(ParamsError, match=message):
        _env(tmp_path, extra)


def test_loopback_http_is_allowed_for_the_sandbox(tmp_path):
    env = _env(tmp_path, "audit: {base_url: 'http://127.0.0.1:8123', token_env: T, tenants: [a]}\n")
    assert env["audit"]["base_url"].startswith("http://127.0.0.1")
