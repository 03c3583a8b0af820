"""A corpus of fake secrets, generated per run (never real): one entry per kind of credential that
shows up in logs, SQL text and URLs during incidents. Each entry: the kind, the secret itself, and a
realistic line carrying it (a log line, a header, a DSN, SQL)."""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

_UP = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits
_B64 = _ALNUM + "+/"
_URLSAFE = _ALNUM + "-_"
_HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Secret:
    kind: str       # the marker kind redact.py must use
    secret: str     # the part that must never appear in a record
    line: str       # where it is found in the wild


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _jwt(rng: random.Random) -> str:
    def seg(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return (seg({"alg": "HS256", "typ": "JWT"}) + "." + seg({"sub": _r(rng, _HEX, 12), "org": rng.randint(1, 9999)})
            + "." + _r(rng, _URLSAFE, 43))


def corpus(seed: int = 0) -> list[Secret]:
    rng = random.Random(seed)
    r = lambda alphabet, n: _r(rng, alphabet, n)  # noqa: E731
    pw = lambda: r(_ALNUM, 10) + rng.choice("!#%^*") + r(_ALNUM, 5)  # noqa: E731
    out: list[Secret] = []

    def add(kind, secret, line):
        out.append(Secret(kind, secret, line))

    akid = "AKIA" + r(_UP, 16)
    add("aws-access-key-id", akid, f"botocore.credentials Found credentials in environment: {akid}")
    asia = "ASIA" + r(_UP, 16)
    add("aws-access-key-id", asia, f"assumed role, access key {asia} expires 2026-11-23T20:00:00Z")
    sk = r(_B64, 40)
    add("aws-secret-key", sk, f"export AWS_SECRET_ACCESS_KEY={sk}")
    sk2 = r(_B64, 40)
    add("aws-secret-key", sk2, f'{{"aws_secret_access_key": "{sk2}", "region": "eu-west-1"}}')
    tok = "IQoJb3JpZ2luX2VjE" + r(_B64, 180)
    add("aws-session-token", tok, f"X-Amz-Security-Token: {tok}")
    bearer = r(_URLSAFE, 40)
    add("bearer-token", bearer, f"GET /v1/orders Authorization: Bearer {bearer} 401")
    jwt = _jwt(rng)
    add("jwt", jwt, f"auth failed for token {jwt}")
    p = pw()
    add("url-password", p, f"sqlalchemy.exc.OperationalError: could not connect postgresql://app:{p}@db.internal:5432/app")
    p = pw()
    add("url-password", p, f"celery broker redis://:{p}@scr-redis.cache.internal:6379/0 unreachable")
    p = pw()
    add("url-password", p, f"webhook POST https://hooks-user:{p}@partner.example.com/ingest failed 502")
    p = r(_ALNUM, 14)
    add("dsn-password", p, f"connecting with 'host=db.internal port=5432 dbname=app user=app password={p}'")
    pk = "MIIEpAIBAAKCAQEA" + r(_B64, 64) + "\n" + r(_B64, 64) + "\n" + r(_B64, 32)
    pk = f"-----BEGIN RSA PRIVATE KEY-----\n{pk}\n-----END RSA PRIVATE KEY-----"
    add("private-key", pk, f"loaded signing key {pk}")
    pk2 = "b3BlbnNzaC1rZXktdjEAAAAA" + r(_B64, 60)
    pk2 = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{pk2}\n-----END OPENSSH PRIVATE KEY-----"
    add("private-key", pk2, f"deploy key={pk2}")
    g = "ghp_" + r(_ALNUM, 36)
    add("github-token", g, f"git clone https://x-access-token@github.com/acme/app (GITHUB_TOKEN {g})")
    g2 = "github_pat_" + r(_ALNUM, 22) + "_" + r(_ALNUM, 59)
    add("github-token", g2, f"using fine-grained token {g2}")
    gl = "glpat-" + r(_URLSAFE, 20)
    add("gitlab-token", gl, f"PRIVATE-TOKEN: {gl}")
    sl = f"xoxb-{rng.randint(10**10, 10**11)}-{rng.randint(10**10, 10**11)}-{r(_ALNUM, 24)}"
    add("slack-token", sl, f"slack_sdk.errors.SlackApiError: invalid_auth for {sl}")
    hook = f"https://hooks.slack.com/services/T{r(_UP, 8)}/B{r(_UP, 8)}/{r(_ALNUM, 24)}"
    add("slack-webhook", hook, f"alert sent to {hook}")
    st = "sk_live_" + r(_ALNUM, 24)
    add("stripe-key", st, f"stripe.error.AuthenticationError: Invalid API Key provided: {st}")
    wh = "whsec_" + r(_ALNUM, 32)
    add("stripe-webhook-secret", wh, f"STRIPE_WEBHOOK_SECRET loaded ({wh})")
    oa = "sk-proj-" + r(_URLSAFE, 48)
    add("openai-key", oa, f"openai.AuthenticationError: Incorrect API key provided: {oa}")
    an = "sk-ant-api03-" + r(_URLSAFE, 93) + "AA"
    add("anthropic-key", an, f"anthropic.AuthenticationError: invalid x-api-key {an}")
    gk = "AIza" + r(_URLSAFE, 35)
    add("google-api-key", gk, f"GET https://maps.googleapis.com/maps/api/geocode/json?address=x&key={gk}")
    sg = f"SG.{r(_URLSAFE, 22)}.{r(_URLSAFE, 43)}"
    add("sendgrid-key", sg, f"python_http_client.exceptions.UnauthorizedError key {sg}")
    npm = "npm_" + r(_ALNUM, 36)
    add("npm-token", npm, f"//registry.npmjs.org/:_authToken {npm}")
    pypi = "pypi-AgEIcHlwaS5vcmc" + r(_URLSAFE, 60)
    add("pypi-token", pypi, f"twine upload with {pypi}")
    tw = "SK" + r(_HEX, 32)
    add("twilio-key", tw, f"twilio api key sid {tw}")
    dd = r(_HEX, 32)
    add("datadog-key", dd, f"DD_API_KEY={dd} agent starting")
    basic = base64.b64encode(f"svc:{pw()}".encode()).decode()
    add("basic-auth", basic, f"upstream request Authorization: Basic {basic}")
    p = pw()
    add("dsn-password", p, f"2026-11-23 18:09:01 ERROR login failed user=ops password={p} ip=10.0.3.7")
    p = r(_ALNUM, 20)
    add("secret-pair", p, f"config reload: secret: {p}")
    p = r(_URLSAFE, 32)
    add("secret-pair", p, f"oauth refresh client_id=web client_secret={p} grant=refresh_token")
    p = r(_ALNUM, 32)
    add("secret-pair", p, f'POST /v1/llm {{"model": "gpt-4o", "api_key": "{p}"}}')
    p = r(_URLSAFE, 30)
    add("secret-pair", p, f"GET /export?format=csv&access_token={p} 200")
    p = r(_URLSAFE, 30)
    add("secret-pair", p, f"GET /reset?email=a%40b.c&token={p} 500")
    p = pw().replace("'", "")
    add("sql-password", p, f"ALTER ROLE app_rw WITH LOGIN PASSWORD '{p}'")
    p = r(_ALNUM, 16)
    add("sql-password", p, f"CREATE USER reporting PASSWORD '{p}' VALID UNTIL 'infinity'")
    p = "ak_" + r(_ALNUM, 29)
    add("secret-pair", p, f"SELECT id, org_id FROM api_keys WHERE api_key = '{p}' AND revoked_at IS NULL")
    return out


#: Identifiers that look random but are not secrets: they must survive redaction unchanged.
NOT_SECRETS = [
    "app/scr-production-alb/4361f80389f5693e",
    "targetgroup/scr-api-tg/73e2d6bc24d8a067",
    "arn:aws:ecs:eu-west-1:123456789012:task/scr-production/0a1b2c3d4e5f67890a1b2c3d4e5f6789",
    "arn:aws:ecs:eu-west-1:123456789012:task-definition/scr-api-production:42",
    "arn:aws:iam::123456789012:role/forensics-read-only",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "550e8400-e29b-41d4-a716-446655440000",
    "queryid -4932843942793458394",
    "commit 11c1996a6e4b0a2f33c1b7c2d8d9e0f1a2b3c4d5",
    "request_id=1-67a8f3b2-5c9d2e1f0a3b4c5d6e7f8a9b",
    "FATAL: password authentication failed for user \"app\"",
    "FATAL: remaining connection slots are reserved for non-replication superuser connections",
    "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00",
    "SELECT id FROM api_keys WHERE api_key = $1 AND revoked_at IS NULL",
    "UPDATE users SET password_hash = $1 WHERE id = $2",
    "llm call model=gpt-4o prompt_tokens=1532 completion_tokens=211 max_tokens=4096",
    "i-0a1b2c3d4e5f67890 ip-10-0-3-7.eu-west-1.compute.internal",
    "2026-11-23T18:08:00.123456Z",
    "scr-api-production:42",
    "ecs-svc/1234567890123456789",
    "password=$1",
    "token bucket refill rate 40/s",
]
