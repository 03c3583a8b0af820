"""Scenario "security": a leaked access key is used from a new address to mint a key and read secrets.

The background is real: 363 CloudTrail records of an attack simulation on a real AWS account
(invictus-ir/aws_dataset, MIT; see ``sandbox/data/cloudtrail/README.md``), re-timed into the sandbox's
clock - the earlier 60% spread over the baseline day before the incident window, the rest over the
window, order kept. Planted on top, all in the window:

- T0+18 min: IAM user ``svc-legacy-reports`` (a reporting integration whose access key leaked; it made
  no call in the baseline day) calls ``GetCallerIdentity``, ``ListUsers`` and ``ListAccessKeys`` from
  ``203.0.113.77`` (TEST-NET-3: an address nobody used before) with a python-requests user agent;
- T0+20 min: the same principal, same address, ``CreateAccessKey`` for user ``ci-deploy`` (persistence);
- T0+21..24 min: a burst of ``secretsmanager:GetSecretValue`` (36 calls over the application's secrets)
  by the same principal from the same address.

``LookupEvents`` is served by the in-process handler in ``sandbox/moto_ext/cloudtrail.py``.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pandas as pd

from .. import moto_ext as ext
from . import Played, register
from .common import incident_fields, iso, timeline, uuid4

DATA = Path(__file__).resolve().parents[1] / "data" / "cloudtrail" / "invictus-ir-aws-dataset-subset.json.gz"
SEED = 4242
ACCOUNT = "123837392027"  # the dataset's account, so planted and real records belong together
ATTACKER_IP = "203.0.113.77"
PRINCIPAL_NAME = "svc-legacy-reports"
PRINCIPAL_ARN = f"arn:aws:iam::{ACCOUNT}:user/{PRINCIPAL_NAME}"
LEAKED_KEY = "AKIAZ7LEAKEDKEY4RPTS"  # 20 characters, shaped like a real key id (made up)
NEW_KEY_FOR = "ci-deploy"
BASELINE_HOURS = 24
SECRETS = ("scr/production/DATABASE_URL", "scr/production/OPENAI_API_KEY", "scr/production/ANTHROPIC_API_KEY",
           "scr/production/STRIPE_SECRET_KEY", "scr/production/JWT_SIGNING_KEY", "scr/production/SENDGRID_API_KEY")
BURST = 36
USER_AGENT = "python-requests/2.31.0"


def load_records() -> list[dict]:
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _retime(records: list[dict], t: dict) -> list[dict]:
    """The earlier 60% into [window_start - 20 h, window_start - 1 h], the rest into the window (2 min in
    from each side), each part mapped linearly so order and relative spacing are kept."""
    records = sorted(records, key=lambda r: (r["eventTime"], r["eventID"]))
    cut = int(len(records) * 0.6)
    parts = [(records[:cut], t["window_start"] - pd.Timedelta(hours=20), t["window_start"] - pd.Timedelta(hours=1)),
             (records[cut:], t["window_start"] + pd.Timedelta(minutes=2), t["end"] - pd.Timedelta(minutes=2))]
    out = []
    for part, lo, hi in parts:
        times = [pd.Timestamp(r["eventTime"]) for r in part]
        t0, t1 = min(times), max(times)
        span = (t1 - t0) or pd.Timedelta(seconds=1)
        for r, ts in zip(part, times):
            new = lo + (hi - lo) * ((ts - t0) / span)
            out.append({**r, "eventTime": iso(new.floor("s"))})
    return out


def _event(rng: random.Random, ts: pd.Timestamp, source: str, name: str, read_only: bool, params=None,
           resources=None) -> dict:
    return {
        "eventVersion": "1.08", "eventTime": iso(ts), "eventSource": source, "eventName": name,
        "awsRegion": "eu-west-1", "sourceIPAddress": ATTACKER_IP, "userAgent": USER_AGENT,
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAZ7EXAMPLEPRINCIPAL", "arn": PRINCIPAL_ARN,
                         "accountId": ACCOUNT, "accessKeyId": LEAKED_KEY, "userName": PRINCIPAL_NAME},
        "requestParameters": params, "eventID": uuid4(rng),
        "readOnly": read_only, "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
        "eventCategory": "Management", **({"resources": resources} if resources else {}),
    }


def planted(t: dict, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    d = t["deploy"]
    out = [_event(rng, d + pd.Timedelta(minutes=18), "sts.amazonaws.com", "GetCallerIdentity", True),
           _event(rng, d + pd.Timedelta(minutes=18, seconds=9), "iam.amazonaws.com", "ListUsers", True),
           _event(rng, d + pd.Timedelta(minutes=18, seconds=31), "iam.amazonaws.com", "ListAccessKeys", True,
                  {"userName": NEW_KEY_FOR}),
           _event(rng, d + pd.Timedelta(minutes=20), "iam.amazonaws.com", "CreateAccessKey", False,
                  {"userName": NEW_KEY_FOR})]
    for i in range(BURST):
        ts = d + pd.Timedelta(minutes=21) + pd.Timedelta(seconds=int(i * 180 / BURST) + rng.randint(0, 3))
        secret = SECRETS[i % len(SECRETS)]
        arn = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:{secret}-{rng.randint(100000, 999999)}"
        out.append(_event(rng, ts, "secretsmanager.amazonaws.com", "GetSecretValue", True, {"secretId": secret},
                          [{"accountId": ACCOUNT, "type": "AWS::SecretsManager::Secret", "ARN": arn}]))
    return out


@register("security")
def play(sb) -> Played:
    t = timeline(sb.now)
    real = _retime(load_records(), t)
    plant = planted(t)
    ext.add_cloudtrail_events(sb.backend("cloudtrail"), real + plant)
    create = next(e for e in plant if e["eventName"] == "CreateAccessKey")
    truth = {
        "principal": PRINCIPAL_ARN, "source_ip": ATTACKER_IP, "leaked_key": LEAKED_KEY,
        "create_access_key_at": pd.Timestamp(create["eventTime"]), "new_key_for": NEW_KEY_FOR,
        "get_secret_value_burst": BURST, "real_records": len(real),
        "baseline_records": sum(pd.Timestamp(r["eventTime"]) < t["window_start"] for r in real),
    }
    incident = incident_fields("SANDBOX-SECURITY", "Leaked access key suspected", "P0", t)
    resources = {"cloudtrail": {"baseline_hours": BASELINE_HOURS}}
    return Played(truth=truth, incident=incident, resources=resources, workloads=[])
