"""Secret-shaped NEGATIVES: lines that look like a leak to a pattern matcher but hold no secret, each of
which a responder needs intact (who did it, with which key id, on which resource, when).

Every line must come out of ``redact.text`` unchanged. Values are generated per seed (names, key ids,
hashes vary) so the rules cannot fit one spelling.

Families are split once, by a stable hash of their name, into DEV (looked at while tuning the rules) and
HOLDOUT (never looked at while tuning: tests/bench/test_bench_redact.py reports it), per line so that
(almost) every family has both. The split and the lines were written and committed before any rule was changed
for them (a first baseline run printed every line's result before the split was per line: disclosed in
docs/redaction.md).
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
from dataclasses import dataclass

_UP = string.ascii_uppercase + string.digits
_HEX = "0123456789abcdef"
_ALNUM = string.ascii_letters + string.digits
_PEOPLE = ["bert-jan", "alice.smith", "svc-export", "deploy-bot", "ops-admin", "j.doe", "maria_garcia", "ci-runner",
           "backup-job", "terraform", "kwame.mensah", "data-pipeline"]
_ROLES = ["forensics-read-only", "AdminAccess", "export-job-role", "eks-node", "github-actions-deploy"]
_REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-2", "eu-central-1", "us-west-2"]


@dataclass(frozen=True)
class Negative:
    family: str
    line: str


def split_of(family: str, index: int) -> str:
    """DEV or HOLDOUT, fixed by the family's name and the line's place in it (not chosen by looking at
    results): every class of negative but one (object-keys, all DEV) has lines in both splits."""
    return "holdout" if int(hashlib.sha256(f"{family}:{index}".encode()).hexdigest(), 16) % 3 == 0 else "dev"


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def families(seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    r = lambda a, n: _r(rng, a, n)  # noqa: E731
    who = rng.choice(_PEOPLE)
    who2 = rng.choice(_PEOPLE)
    role = rng.choice(_ROLES)
    region = rng.choice(_REGIONS)
    acct = str(rng.randint(10**11, 10**12 - 1))
    akid = "AKIA" + r(_UP, 16)
    asia = "ASIA" + r(_UP, 16)
    ts = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:" \
         f"{rng.randint(0, 59):02d}Z"
    f: dict[str, list[str]] = {}
    f["placeholder-vendor"] = [
        "aws_access_key_id = AKIAXXXXXXXXXXXXXXXX",
        "AWS_ACCESS_KEY_ID=AKIA0000000000000000",
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "stripe key sk_live_000000000000000000000000",
        "SLACK_TOKEN=xoxb-0000000000-0000000000-XXXXXXXXXXXXXXXXXXXXXXXX",
        "export AWS_SECRET_ACCESS_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "npm_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX in .npmrc.example",
    ]
    f["placeholder-field"] = [
        "api_key = '0000000000000000'",
        "token: 1234567890abcdef",
        "client_secret=abcdefghijklmnop",
        '"secret": "aaaaaaaaaaaaaaaa"',
        "API_TOKEN=1111111111111111",
        "auth_token: TOKEN_GOES_HERE",
        "access_token=<ACCESS_TOKEN>",
    ]
    f["low-entropy"] = [
        "api_key=abababababababab",
        "token=aaaabbbbccccdddd",
        "secret: 12121212121212",
        "SESSION_TOKEN=zzzzzzzzyyyyyyyy",
        "key=AAAABBBBCCCC1111",
        "auth_key: 1a1a1a1a1a1a1a1a",
    ]
    f["dictionary-words"] = [
        "token: expired",
        "secret: rotated",
        "api_key: missing",
        '"token": "invalid_grant"',
        "password_policy: strong",
        "auth: required",
        "secret_scan: disabled-by-admin",
        "access_token: not-provided",
        'client_secret: "regenerate-on-next-login"',
    ]
    f["principal-free-text"] = [
        f"CreateAccessKey: {who} called iam:CreateAccessKey",
        f"DeleteAccessKey: {who2} removed a key of {who}",
        f"GetSecretValue: {who} read prod/db",
        f"PutSecretValue: {who2} via console",
        f"UpdateAccessKey: {who} set Inactive",
        f"{ts} iam:CreateAccessKey by {who} from 203.0.113.{rng.randint(2, 250)}",
        f"secret rotation started by {who}",
        f"token refresh for user {who2}",
    ]
    f["principal-fields"] = [
        f'"userName": "{who}", "accessKeyId": "{akid}"',
        f"userIdentity.userName={who} eventName=CreateAccessKey",
        f'{{"eventName": "CreateAccessKey", "userName": "{who}", "requestParameters": {{"userName": "{who2}"}}}}',
        f"principal={who} action=secretsmanager:GetSecretValue",
        f"token_owner: {who}",
        f"key_owner={who2}",
        f"secret_owner: {who}",
    ]
    f["key-id-alone"] = [
        f"accessKeyId={akid}",
        f'"accessKeyId": "{asia}"',
        f"AccessKeyId: {akid}",
        f"{ts} CreateAccessKey {who} created {akid}",
        f"key {akid} of {who} used from 198.51.100.{rng.randint(2, 250)}",
        f"aws_access_key_id = {akid}",
        f"access key {asia} (assumed role {role})",
    ]
    f["arns"] = [
        f'"secret": "arn:aws:secretsmanager:{region}:{acct}:secret:prod/db-{r(_ALNUM, 6)}"',
        f"token_arn=arn:aws:iam::{acct}:role/{role}",
        f"key: arn:aws:kms:{region}:{acct}:key/{r(_HEX, 8)}-{r(_HEX, 4)}-{r(_HEX, 4)}-{r(_HEX, 4)}-{r(_HEX, 12)}",
        f"secret_id='arn:aws:secretsmanager:{region}:{acct}:secret:{r(_ALNUM, 6)}'",
        f"access denied for arn:aws:sts::{acct}:assumed-role/{role}/{who}",
        f"auth: arn:aws:iam::{acct}:user/{who}",
        f'"token": "arn:aws:sns:{region}:{acct}:alerts-{r(_HEX, 6)}"',
    ]
    f["times"] = [
        f"token_expires={ts}",
        f"secret: {ts}",
        f'"token": "{ts}"',
        f"api_key_created: {ts[:10]} {ts[11:19]}",
        f"session_token issued_at={rng.randint(1_700_000_000, 1_800_000_000)}",
        f"auth_time: {ts}",
    ]
    f["hashes-in-known-fields"] = [
        f"sha256={r(_HEX, 64)}",
        f'"ContentMD5": "{base64.b64encode(bytes(rng.getrandbits(8) for _ in range(16))).decode()}"',
        f"integrity: sha512-{base64.b64encode(bytes(rng.getrandbits(8) for _ in range(64))).decode()}",
        f'etag: "{r(_HEX, 32)}"',
        f"x-amz-content-sha256: {r(_HEX, 64)}",
        f"checksum={base64.b64encode(bytes(rng.getrandbits(8) for _ in range(32))).decode()}",
        f'"fingerprint": "{base64.b64encode(bytes(rng.getrandbits(8) for _ in range(30))).decode()}"',
        f"key_fingerprint: {':'.join(r(_HEX, 2) for _ in range(16))}",
        f"digest {base64.b64encode(bytes(rng.getrandbits(8) for _ in range(30))).decode()} verified",
    ]
    f["object-keys"] = [
        f'"key": "exports/2026/11/{rng.randint(1, 28):02d}/orders-{r(_HEX, 4)}.csv"',
        f"key=uploads/user-{rng.randint(1000, 9999)}/avatar_{r(_HEX, 4)}.png",
        f"s3 GetObject bucket=acme-data key=reports/{who}/q3.pdf",
        f'"Key": "logs/AWSLogs/{acct}/CloudTrail/{region}/2026/11/23/x.json.gz"',
        f"cache key=session:{rng.randint(1, 99999)}:cart ttl=300",
    ]
    f["resource-ids"] = [
        f"secret_name=prod/{who}/db",
        f"token_id={r(_HEX, 8)}-{r(_HEX, 4)}-{r(_HEX, 4)}-{r(_HEX, 4)}-{r(_HEX, 12)}",
        f"key=i-0{r(_HEX, 16)}",
        f"auth: sg-0{r(_HEX, 16)}",
        f"secret: vpc-{r(_HEX, 17)}",
        f"kms key alias/{role}-key",
    ]
    return f


def corpus(seed: int = 0, split: str | None = None) -> list[Negative]:
    return [Negative(fam, line) for fam, lines in families(seed).items()
            for i, line in enumerate(lines) if split is None or split_of(fam, i) == split]
