"""Which field names hold a secret: ``DB_PASSWORD``, ``atlassianApiToken``, ``x-api-key``, ``client_secret``.

A name is cut into words (``_ - . :`` and camelCase); a word that *ends* in a secret word counts, so
``atlassian_api_token``, ``SlackBotToken``, ``apitoken`` and ``dbpassword`` all match (no word boundary
is needed before ``token``). A name whose *last* word says it is metadata (``_id``, ``_name``,
``_length``, ``_url``, ``_hash``...) names something about a secret, not the secret.

Three strengths: ``password`` (any non-placeholder value), ``secret`` (8+ chars, not plain words),
``weak`` (``key``, ``auth``, ``sig``, a vendor name: the value must be secret-shaped).
"""

from __future__ import annotations

import re
from functools import lru_cache

PASSWORD_WORDS = ("password", "passwd", "passphrase", "pwd", "pass", "pswd", "passwort", "contrasena", "senha")
SECRET_WORDS = ("token", "secret", "apikey", "credential", "credentials", "creds", "privatekey", "accesskey",
                "secretkey", "apisecret", "clientsecret", "authtoken", "sessiontoken", "secretaccesskey")
# Not "dsn"/"connection_string": a DSN's secret is its password, which the DSN and URL rules take out;
# the rest of it (host, port, user) is evidence.
WEAK_WORDS = ("key", "auth", "authorization", "sig", "signature", "cookie", "bearer", "license", "pat",
              "webhook", "hook", "sas")
#: Vendors whose name alone often labels a key (``HEROKU=...``, ``twilio_sid``...): weak strength.
VENDOR_WORDS = frozenset(
    "adafruit adobe airtable algolia alibaba asana atlassian jira confluence beamer bitbucket bittrex "
    "cloudflare codecov cohere coinbase confluent contentful databricks datadog discord doppler droneci "
    "dropbox duffel dynatrace easypost etsy facebook fastly finicity finnhub flickr flutterwave frameio "
    "freshbooks gitter gocardless grafana hashicorp heroku hubspot huggingface intercom jfrog "
    "artifactory kraken kucoin launchdarkly linkedin mailchimp mailgun mapbox mattermost "
    "messagebird netlify newrelic nytimes okta plaid planetscale postman prefect pulumi rapidapi "
    "rubygems scalingo sendbird sendgrid sendinblue sentry shippo shopify sidekiq slack snyk sonar "
    "sourcegraph square squarespace stripe sumo sumologic telegram travis twilio twitch twitter typeform "
    "yandex zendesk openai anthropic github gitlab npm pypi mongo mongodb redis rabbitmq amqp azure gcp "
    "firebase auth0 pagerduty opsgenie mixpanel amplitude braintree paypal razorpay".split())
#: Last words that describe a secret rather than hold it.
META_WORDS = frozenset(
    "id ids name names type types length len size count url uri endpoint host path file dir location "
    "arn hash hashed digest salt rounds algorithm algo alg format mode policy expiry expires expiration "
    "ttl at version versions prefix suffix header headers field fields label labels param params index "
    "column table enabled disabled required set exists present ref kind scope scopes issuer audience "
    "strength min max timeout rotation created updated used valid validity store storetype alias usage "
    "tokens keys secrets passwords limit limits bucket region regex pattern attempt attempts retry "
    "retries reset change changed policy provider method methods status state lifetime age mask masked "
    "env var variable placeholder hint hints text message error errors list class "
    # who and when: a responder needs them (token_owner: bert-jan, key_fingerprint: ab:cd:...)
    "owner owners user username users principal creator by holder subject account role group "
    "fingerprint checksum etag md5 sha sha1 sha256 sha512 integrity crc crc32 time date timestamp "
    "issued ts".split())
#: Verbs that start an API action's name (CreateAccessKey, GetSecretValue): ``CreateAccessKey: bert-jan
#: called ...`` names who called it, not a key.
API_VERBS = frozenset(
    "create delete get put update list describe rotate generate restore import upload enable disable tag "
    "untag attach detach decrypt encrypt set reset revoke cancel validate batch assume remove add change modify "
    "request issue export sign start stop associate disassociate register deregister copy schedule test".split())
#: Whole names that look secret-ish but are not (database keys, keyboard, metrics).
NOT_SECRET_NAMES = frozenset(
    "primary_key foreign_key sort_key partition_key hash_key range_key cache_key idempotency_key "
    "routing_key dedup_key dedupe_key public_key publishable_key pubkey object_key s3_key key_id "
    "access_key_id keyboard monkey turkey hotkey keypress keydown keyup keycode keystore keytab "
    "max_tokens prompt_tokens completion_tokens total_tokens input_tokens output_tokens num_tokens "
    "csrf_token xsrf_token page_token next_token continuation_token pagination_token nexttoken "
    "next_page_token cancellation_token sync_token public_token key_pair keypair bypass compass "
    "passenger passive passport passthrough pass_through surpass passed passes passing "
    "authored author authors authority authorities authorized authenticated authentication "
    "authorize authorizer authz keyword keywords keyspace keyset tokenizer tokenize tokenizers "
    "secretary token_bucket auth_method auth_type auth_mode auth_source auth_plugin "
    # AWS idempotency tokens (ClientToken, ClientRequestToken): the caller's request id, not a credential
    "client_token client_request_token idempotency_token request_token".split())

#: Weak words that count only when not followed by a letter or digit in the lowercased name
#: (``basicAuth``, ``auth_header`` yes; ``authValue`` no): the prefilter can only see them that way.
_WHOLE = {w: re.compile(w + r"(?![a-z0-9])") for w in ("auth", "authorization", "sig", "signature", "pat")}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")


def words(name: str) -> list[str]:
    return [w.lower() for part in _SPLIT.split(name) for w in _CAMEL.split(part) if w]


@lru_cache(maxsize=65536)
def strength(name: str) -> str | None:
    """'password', 'secret', 'weak' or None for a field name."""
    name = name.strip("\"'`[]$@:-")
    if not name or len(name) > 80:
        return None
    flat = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if flat in NOT_SECRET_NAMES or flat.replace("_", "") in NOT_SECRET_NAMES:
        return None
    ws = words(name)
    if "_".join(ws) in NOT_SECRET_NAMES:
        return None
    if not ws or ws[-1] in META_WORDS:
        return None
    if len(ws) > 1 and ws[0] in API_VERBS and name[:1].isupper() and not name.isupper() and name.isalnum():
        return None  # an API action (PascalCase, AWS style), not a field
    best = None
    for i, w in enumerate(ws):
        if w in NOT_SECRET_NAMES:
            continue
        if w.endswith(PASSWORD_WORDS[:4]) or w in ("pass", "pwd", "pswd", "passwort", "senha", "contrasena"):
            return "password"
        if w.endswith(SECRET_WORDS) or w in ("token", "secret"):
            best = "secret"
        elif best is None and (w in WEAK_WORDS and (w not in _WHOLE or _WHOLE[w].search(name.lower()))
                               or w.endswith("key") or w in VENDOR_WORDS):
            best = "weak"
    pairs = {a + b for a, b in zip(ws, ws[1:])}
    if best != "secret" and pairs & {"apikey", "accesskey", "secretkey", "privatekey", "authkey", "signingkey",
                                     "encryptionkey", "masterkey", "appkey", "licensekey", "accountkey"}:
        best = "secret"
    return best
