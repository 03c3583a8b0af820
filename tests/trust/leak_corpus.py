"""A generated corpus of secrets in the forms real leaks take, each with false-positive twins.

Every value is fake (random per seed). A ``Leak`` with ``secret=None`` is a twin: a line that looks
like a leak but holds no secret (placeholder, example key, variable reference, low-entropy value, an
identifier) and must come out unchanged.

Families are split once, by a stable hash of their name, into DEV (the rules were designed and tuned
looking at these) and HOLDOUT (never looked at while tuning; tests/bench/test_bench_redact.py reports
its figures). Test assertions use DEV only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from dataclasses import dataclass

from .secrets_corpus import _ALNUM, _B64, _HEX, _UP, _URLSAFE, _r


@dataclass(frozen=True)
class Leak:
    family: str
    kind: str
    secret: str | None  # None: a twin that holds no secret and must survive unchanged
    line: str


def split_of(family: str) -> str:
    """DEV or HOLDOUT, fixed by the family's name (not chosen by looking at results)."""
    return "holdout" if int(hashlib.sha256(family.encode()).hexdigest(), 16) % 3 == 0 else "dev"


class _Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def r(self, alphabet: str, n: int) -> str:
        return _r(self.rng, alphabet, n)

    def pw(self) -> str:
        return self.r(_ALNUM, 9) + self.rng.choice("!#%^*~") + self.r(_ALNUM, 5)

    def pick(self, seq, k):
        return self.rng.sample(list(seq), k)


def contexts(name: str, value: str) -> list[str]:
    """``name``/``value`` written the ways code, config, env files, command lines and logs write them."""
    snake = name.lower()
    upper = name.upper()
    camel = snake.split("_")[0] + "".join(w.title() for w in snake.split("_")[1:])
    return [
        f'{snake} = "{value}"',
        f"{upper}={value}",
        f"export {upper}={value}",
        f"{snake}: {value}",
        f'  {snake}: "{value}"',
        f'{{"{snake}": "{value}", "region": "eu-west-1"}}',
        f"const {camel} = '{value}';",
        f'{camel} := "{value}"',
        f"app --{snake.replace('_', '-')}={value} --verbose",
        f"2026-11-23T18:09:01Z WARN retrying request {snake}={value} attempt=3",
        f"'{snake}' => '{value}',",
        f'<{camel}>{value}</{camel}>',
        f'os.environ["{upper}"] = "{value}"',
        f"ENV {upper}={value}",
    ]


def _ctx(g: _Gen, family, kind, names, value, k=3):
    return [Leak(family, kind, value, line) for line in g.pick(contexts(g.rng.choice(names), value), k)]


def _twins(g: _Gen, family, names, values, k=3):
    return [Leak(family, "twin", None, line) for v in values
            for line in g.pick(contexts(g.rng.choice(names), v), k)]


_REFS = ["${TOKEN}", "$2", "{{ secret }}", "<your-token>", "xxxxxxxxxxxxxxxx", "changeme", "${{ secrets.API_TOKEN }}",
         "%API_KEY%", "null", "********", "your_api_key_here", "REPLACE_ME", "<API_KEY>", "$API_TOKEN"]


def families(g: _Gen) -> dict[str, list[Leak]]:
    f: dict[str, list[Leak]] = {}
    r = g.r

    akid, sk = "AKIA" + r(_UP, 16), r(_B64, 39) + "7"
    tok = "IQoJb3JpZ2luX2VjE" + r(_B64, 200)
    f["aws"] = [
        Leak("aws", "aws-access-key-id", akid, f"botocore.credentials Found credentials: {akid}"),
        Leak("aws", "aws-secret-key", sk, f"aws_secret_access_key = {sk}"),
        Leak("aws", "aws-secret-key", sk, f"sync failed, retrying with key={sk} region=eu-west-1"),
        Leak("aws", "aws-secret-key", sk, f"credentials: {akid}:{sk}"),
        Leak("aws", "aws-session-token", tok, f"export AWS_SESSION_TOKEN={tok}"),
        Leak("aws", "aws-session-token", tok, f"sts assume-role ok token {tok} expires 3600"),
        Leak("aws", "twin", None, "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
        Leak("aws", "twin", None, "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        Leak("aws", "twin", None, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"),
        Leak("aws", "twin", None, "aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}"),
        Leak("aws", "twin", None, f"commit {r(_HEX, 40)} merged"),
        Leak("aws", "twin", None, f"etag={r(_HEX, 40)} size=1532"),
    ]
    gh = ["ghp_" + r(_ALNUM, 36), "gho_" + r(_ALNUM, 36), "github_pat_" + r(_ALNUM, 22) + "_" + r(_ALNUM, 59)]
    f["github"] = [Leak("github", "github-token", t, line) for t in gh for line in
                   (f"git push https://x-access-token:{t}@github.com/acme/app", f"GITHUB_TOKEN={t}",
                    f"Authorization: token {t}")] + [
        Leak("github", "twin", None, "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}"),
        Leak("github", "twin", None, "github_token = os.environ[\"GITHUB_TOKEN\"]"),
        Leak("github", "twin", None, "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")]
    gl = "glpat-" + r(_URLSAFE, 20)
    f["gitlab"] = [Leak("gitlab", "gitlab-token", gl, line) for line in
                   (f"PRIVATE-TOKEN: {gl}", f"gitlab_token: {gl}", f"curl --header 'PRIVATE-TOKEN: {gl}' https://gl/api")] + \
        _twins(g, "gitlab", ["gitlab_token", "ci_job_token"], ["$CI_JOB_TOKEN", "<your-gitlab-token>"], 2)
    sl = f"xoxb-{g.rng.randint(10**10, 10**11)}-{g.rng.randint(10**10, 10**11)}-{r(_ALNUM, 24)}"
    hook = f"https://hooks.slack.com/services/T{r(_UP, 8)}/B{r(_UP, 8)}/{r(_ALNUM, 24)}"
    f["slack"] = [Leak("slack", "slack-token", sl, f"SLACK_BOT_TOKEN={sl}"),
                  Leak("slack", "slack-token", sl, f"slack_sdk.errors.SlackApiError: invalid_auth {sl}"),
                  Leak("slack", "slack-webhook", hook, f"webhook_url: {hook}"),
                  Leak("slack", "twin", None, "slack_bot_token: {{ slack_token }}"),
                  Leak("slack", "twin", None, "SLACK_BOT_TOKEN=xoxb-your-token")]
    st, rk = "sk_live_" + r(_ALNUM, 24), "rk_live_" + r(_ALNUM, 24)
    f["stripe"] = [Leak("stripe", "stripe-key", st, f"stripe.api_key = '{st}'"),
                   Leak("stripe", "stripe-key", rk, f"STRIPE_RESTRICTED_KEY={rk}"),
                   Leak("stripe", "stripe-key", st, f"Invalid API Key provided: {st}"),
                   Leak("stripe", "twin", None, "stripe.api_key = os.getenv(\"STRIPE_KEY\")"),
                   Leak("stripe", "twin", None, "STRIPE_PUBLISHABLE_KEY_NAME=checkout")]
    oa, an = "sk-proj-" + r(_URLSAFE, 48), "sk-ant-api03-" + r(_URLSAFE, 93) + "AA"
    f["llm"] = [Leak("llm", "openai-key", oa, f"OPENAI_API_KEY={oa}"),
                Leak("llm", "openai-key", oa, f"openai.AuthenticationError: Incorrect API key provided: {oa}"),
                Leak("llm", "anthropic-key", an, f'client = Anthropic(api_key="{an}")'),
                Leak("llm", "anthropic-key", an, f"x-api-key: {an}"),
                Leak("llm", "twin", None, "llm call model=gpt-4o prompt_tokens=1532 max_tokens=4096"),
                Leak("llm", "twin", None, "OPENAI_API_KEY=sk-..."),
                Leak("llm", "twin", None, "anthropic_api_key: str = Field(default=None)")]
    gk, ya = "AIza" + r(_URLSAFE, 35), "ya29." + r(_URLSAFE, 60)
    pk = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + r(_B64, 64)
    sa = json.dumps({"type": "service_account", "private_key_id": r(_HEX, 40),
                     "private_key": f"-----BEGIN PRIVATE KEY-----\n{pk}\n-----END PRIVATE KEY-----\n"})
    f["google"] = [Leak("google", "google-api-key", gk, f"GET /maps/api/geocode/json?address=x&key={gk}"),
                   Leak("google", "google-api-key", gk, f"firebase apiKey: \"{gk}\","),
                   Leak("google", "google-oauth-token", ya, f"Authorization: Bearer {ya}"),
                   Leak("google", "private-key", pk, sa),
                   Leak("google", "twin", None, '"private_key_id": "<PRIVATE_KEY_ID>"'),
                   Leak("google", "twin", None, "GOOGLE_API_KEY=${GOOGLE_API_KEY}")]
    acct = r(_B64, 86) + "=="
    sig = r(_B64, 43).replace("+", "%2B").replace("/", "%2F") + "%3D"
    cs = r(_URLSAFE, 3) + "8Q~" + r(_URLSAFE, 34)
    f["azure"] = [
        Leak("azure", "azure-storage-key", acct,
             f"DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={acct};EndpointSuffix=core.windows.net"),
        Leak("azure", "azure-sas", sig,
             f"GET https://acme.blob.core.windows.net/c/f.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-01&sig={sig}"),
        Leak("azure", "azure-ad-client-secret", cs, f"AZURE_CLIENT_SECRET={cs}"),
        Leak("azure", "twin", None, "AccountName=acmelogs;AccountKey=<storage-account-key>;EndpointSuffix=core.windows.net"),
        Leak("azure", "twin", None, "azure_client_id = 550e8400-e29b-41d4-a716-446655440000")]
    tw, twa = "SK" + r(_HEX, 32), r(_HEX, 32)
    f["twilio"] = [Leak("twilio", "twilio-key", tw, f"twilio api key sid {tw}"),
                   Leak("twilio", "secret-pair", twa, f"TWILIO_AUTH_TOKEN={twa}"),
                   Leak("twilio", "twin", None, "TWILIO_ACCOUNT_SID=ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")]
    sg = f"SG.{r(_URLSAFE, 22)}.{r(_URLSAFE, 43)}"
    mg = "key-" + r(_HEX, 32)
    f["email"] = [Leak("email", "sendgrid-key", sg, f"SENDGRID_API_KEY={sg}"),
                  Leak("email", "sendgrid-key", sg, f"UnauthorizedError key {sg}"),
                  Leak("email", "mailgun-key", mg, f"mailgun_api_key: {mg}"),
                  Leak("email", "mailgun-key", mg, f"requests.post(url, auth=('api', '{mg}'))"),
                  Leak("email", "twin", None, "MAILGUN_DOMAIN=mg.example.com")]
    dd = r(_HEX, 32)
    f["datadog"] = [Leak("datadog", "datadog-key", dd, f"DD_API_KEY={dd} agent starting"),
                    Leak("datadog", "secret-pair", dd, f"datadog_api_key: \"{dd}\""),
                    Leak("datadog", "twin", None, "DD_API_KEY=<DATADOG_API_KEY>"),
                    Leak("datadog", "twin", None, "dd.trace_id=4932843942793458394 dd.span_id=1234567")]
    npm, pypi = "npm_" + r(_ALNUM, 36), "pypi-AgEIcHlwaS5vcmc" + r(_URLSAFE, 60)
    f["registries"] = [Leak("registries", "npm-token", npm, f"//registry.npmjs.org/:_authToken={npm}"),
                       Leak("registries", "pypi-token", pypi, f"password = {pypi}"),
                       Leak("registries", "pypi-token", pypi, f"twine upload -u __token__ -p {pypi} dist/*"),
                       Leak("registries", "twin", None, "//registry.npmjs.org/:_authToken=${NPM_TOKEN}")]
    hk, shp, atl = str(uuid.UUID(int=g.rng.getrandbits(128))), "shpat_" + r(_HEX, 32), r(_ALNUM, 24)
    f["saas"] = [Leak("saas", "secret-pair", hk, f"HEROKU_API_KEY={hk}"),
                 Leak("saas", "shopify-token", shp, f"X-Shopify-Access-Token: {shp}"),
                 Leak("saas", "secret-pair", atl, f'atlassian_api_token = "{atl}"'),
                 Leak("saas", "secret-pair", atl, f"jira_api_token: {atl}"),
                 Leak("saas", "twin", None, "jira_base_url = https://acme.atlassian.net"),
                 Leak("saas", "twin", None, f"heroku_app_id = {uuid.UUID(int=g.rng.getrandbits(128))}")]
    jwt = (base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=") + "."
           + base64.urlsafe_b64encode(json.dumps({"sub": r(_HEX, 12)}).encode()).decode().rstrip("=") + "."
           + r(_URLSAFE, 43))
    basic = base64.b64encode(f"svc:{g.pw()}".encode()).decode()
    bearer = r(_URLSAFE, 40)
    f["http-auth"] = [Leak("http-auth", "jwt", jwt, f"auth failed for token {jwt}"),
                      Leak("http-auth", "bearer-token", bearer, f"Authorization: Bearer {bearer}"),
                      Leak("http-auth", "basic-auth", basic, f"Authorization: Basic {basic}"),
                      Leak("http-auth", "secret-pair", bearer, f"X-Api-Key: {bearer}"),
                      Leak("http-auth", "secret-pair", bearer, f"GET /v1/export?format=csv&apikey={bearer} 200"),
                      Leak("http-auth", "twin", None, "Authorization: Bearer ${TOKEN}"),
                      Leak("http-auth", "twin", None, "token bucket refill rate 40/s"),
                      Leak("http-auth", "twin", None, "X-Request-Id: 1-67a8f3b2-5c9d2e1f0a3b4c5d6e7f8a9b")]
    rsa = "MIIEpAIBAAKCAQEA" + r(_B64, 64) + "\n" + r(_B64, 64)
    ec = "MHcCAQEEI" + r(_B64, 60)
    f["pem"] = [Leak("pem", "private-key", rsa, f"-----BEGIN RSA PRIVATE KEY-----\n{rsa}\n-----END RSA PRIVATE KEY-----"),
                Leak("pem", "private-key", ec, f"key: |\n  -----BEGIN EC PRIVATE KEY-----\n  {ec}\n  -----END EC PRIVATE KEY-----"),
                Leak("pem", "twin", None, "-----BEGIN PUBLIC KEY----- (public keys are not secrets)"),
                Leak("pem", "twin", None, "ssl_certificate_key_path = /etc/ssl/private/server.key")]
    p = [g.pw() for _ in range(8)]
    f["connection-strings"] = [
        Leak("connection-strings", "url-password", p[0], f"mysql://app:{p[0]}@mysql.internal:3306/app"),
        Leak("connection-strings", "url-password", p[1], f"mongodb+srv://svc:{p[1]}@cluster0.ab1cd.mongodb.net/prod?retryWrites=true"),
        Leak("connection-strings", "url-password", p[2], f"MONGO_URL=mongodb://root:{p[2]}@mongo-0:27017,mongo-1:27017/admin"),
        Leak("connection-strings", "url-password", p[3], f"redis://default:{p[3]}@cache.internal:6379/0"),
        Leak("connection-strings", "url-password", p[4], f"amqp://guest:{p[4]}@rabbit:5672/vhost"),
        Leak("connection-strings", "url-password", p[5], f"jdbc:mysql://db:3306/app?user=app&password={p[5]}&useSSL=true"),
        Leak("connection-strings", "url-password", p[6], f"jdbc:sqlserver://db:1433;databaseName=app;user=sa;password={p[6]};"),
        Leak("connection-strings", "dsn-password", p[7], f"Server=db;Database=app;User Id=sa;Password={p[7]};"),
        Leak("connection-strings", "twin", None, "postgresql://app:${DB_PASSWORD}@db:5432/app"),
        Leak("connection-strings", "twin", None, "mongodb://localhost:27017/app"),
        Leak("connection-strings", "twin", None, "redis://redis:6379/0"),
        Leak("connection-strings", "twin", None, "amqp://guest:guest@localhost:5672//"),
    ]
    c = [g.pw() for _ in range(6)]
    f["command-lines"] = [
        Leak("command-lines", "cli-password", c[0], f"mysql -h db -u root -p{c[0]} app < dump.sql"),
        Leak("command-lines", "cli-password", c[1], f"pg_dump --dbname=app --password={c[1]}"),
        Leak("command-lines", "cli-password", c[2], f"sshpass -p {c[2]} ssh deploy@10.0.3.7"),
        Leak("command-lines", "cli-password", c[3], f"curl -u admin:{c[3]} https://grafana.internal/api/dashboards"),
        Leak("command-lines", "cli-password", c[4], f"redis-cli -h cache -a {c[4]} ping"),
        Leak("command-lines", "cli-password", c[5], f"docker login -u ci -p {c[5]} registry.internal"),
        Leak("command-lines", "twin", None, "mysql -h db -u root -p app"),
        Leak("command-lines", "twin", None, "app --password-file /run/secrets/db_password"),
        Leak("command-lines", "twin", None, "docker login -u ci -p $CI_REGISTRY_PASSWORD registry.internal"),
        Leak("command-lines", "twin", None, "curl -u $USER:$PASS https://grafana.internal/api"),
    ]
    sq = [g.pw().replace("'", "") for _ in range(2)]
    f["sql"] = [Leak("sql", "sql-password", sq[0], f"ALTER ROLE app_rw WITH LOGIN PASSWORD '{sq[0]}'"),
                Leak("sql", "sql-password", sq[1], f"CREATE USER 'report'@'%' IDENTIFIED BY '{sq[1]}';"),
                Leak("sql", "twin", None, "UPDATE users SET password_hash = $1 WHERE id = $2"),
                Leak("sql", "twin", None, "SELECT id FROM api_keys WHERE api_key = $1 AND revoked_at IS NULL")]
    names = ["db_password", "mysql_root_password", "smtp_pass", "ldap_bind_pwd", "redis_password", "admin_passwd"]
    f["password-fields"] = [leak for _ in range(4) for leak in _ctx(g, "password-fields", "secret-pair", names, g.pw())] \
        + _twins(g, "password-fields", names, ["${DB_PASSWORD}", "changeme", "<password>", "$2"], 2) + [
        Leak("password-fields", "twin", None, "password_reset_url = https://app/reset"),
        Leak("password-fields", "twin", None, "def login(username: str, password: str) -> bool:"),
        Leak("password-fields", "twin", None, "FATAL: password authentication failed for user \"app\"")]
    names = ["api_token", "auth_token", "refresh_token", "client_secret", "webhook_secret", "signing_secret",
             "app_secret", "access_token", "encryption_key", "api_key", "private_key", "secret_key"]
    f["token-fields"] = [leak for _ in range(6) for leak in
                         _ctx(g, "token-fields", "secret-pair", names, r(_URLSAFE, g.rng.randint(24, 48)))] \
        + _twins(g, "token-fields", names, _REFS, 1) + [
        Leak("token-fields", "twin", None, "token_type=bearer expires_in=3600"),
        Leak("token-fields", "twin", None, "secret_name = prod/app/db"),
        Leak("token-fields", "twin", None, "api_key_id = 42"),
        Leak("token-fields", "twin", None, "csrf_token_header = X-CSRFToken")]
    names = ["stripe", "twilio", "sentry_key", "pagerduty_integration_key", "segment_write_key", "algolia", "okta",
             "cloudflare", "linear", "postmark"]
    f["vendor-fields"] = [leak for _ in range(5) for leak in
                          _ctx(g, "vendor-fields", "secret-pair", names, r(_ALNUM, g.rng.choice([24, 32, 40])))] \
        + _twins(g, "vendor-fields", names, ["${VENDOR_KEY}", "xxxxxxxxxxxxxxxxxxxxxxxx"], 2)
    k = [g.pw(), r(_B64, 40)]
    f["bare-key"] = [Leak("bare-key", "secret-pair", k[0], f"db connect failed host=db.internal key={k[0]}"),
                     Leak("bare-key", "aws-secret-key", k[1], f"s3 upload retry key={k[1]}"),
                     Leak("bare-key", "secret-pair", k[0], f"?key={k[0]}&format=json"),
                     Leak("bare-key", "twin", None, "cache miss key=user:42:profile ttl=300"),
                     Leak("bare-key", "twin", None, "s3 put key=exports/2026/11/23/orders.csv"),
                     Leak("bare-key", "twin", None, "tags: [{Key: Name, Value: web}]"),
                     Leak("bare-key", "twin", None, "sort_key=created_at partition_key=tenant_id")]
    f["identifiers"] = [Leak("identifiers", "twin", None, line) for line in (
        f"request_id={uuid.UUID(int=g.rng.getrandbits(128))}",
        f"sha1 {r(_HEX, 40)}", f"sha256:{r(_HEX, 64)}",
        "arn:aws:iam::123456789012:role/forensics-read-only",
        f"image digest {r(_HEX, 64)} pushed",
        f"payload={base64.b64encode(r(_ALNUM, 120).encode()).decode()}",
        "app/scr-production-alb/4361f80389f5693e",
        f"GET /v2/{r(_HEX, 32)}/servers/detail HTTP/1.1 status: 200",
        "i-0a1b2c3d4e5f67890 ip-10-0-3-7.eu-west-1.compute.internal",
        f"trace_id={r(_HEX, 32)} span_id={r(_HEX, 16)}")]
    return f


def corpus(seed: int = 0, split: str | None = None) -> list[Leak]:
    out = []
    for family, leaks in families(_Gen(seed)).items():
        if split is None or split_of(family) == split:
            out.extend(leaks)
    return out
