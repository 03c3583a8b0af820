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
from .played import Played, register
from .common import bucket_for, incident_fields, iso, timeline, uuid4

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
TRAIL_BUCKET, TRAIL_PREFIX = "scr-cloudtrail-logs", "org-trail"
EXPORTS_BUCKET = "scr-customer-exports"
EXFIL_OBJECTS = 400
WORKER_ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/scr-export-worker/export-7f3a"


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


def _data_event(rng: random.Random, ts: pd.Timestamp, arn: str, ip: str, agent: str, key: str,
                identity_type: str = "IAMUser") -> dict:
    return {
        "eventVersion": "1.09", "eventTime": iso(ts), "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
        "awsRegion": "eu-west-1", "sourceIPAddress": ip, "userAgent": agent,
        "userIdentity": {"type": identity_type, "arn": arn, "accountId": ACCOUNT},
        "requestParameters": {"bucketName": EXPORTS_BUCKET, "key": key, "Host": f"{EXPORTS_BUCKET}.s3.amazonaws.com"},
        "additionalEventData": {"bytesTransferredOut": rng.randint(20_000, 900_000)},
        "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{EXPORTS_BUCKET}/{key}"},
                      {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{EXPORTS_BUCKET}"}],
        "eventID": uuid4(rng), "readOnly": True, "eventType": "AwsApiCall",
        "managementEvent": False, "recipientAccountId": ACCOUNT, "eventCategory": "Data",
    }


def data_events(t: dict, seed: int = SEED + 1) -> tuple[list[dict], list[dict]]:
    """(background, exfiltration): the export worker's steady reads over the baseline day and the window,
    and the leaked key's bulk read of the export bucket."""
    rng = random.Random(seed)
    background = []
    ts = t["window_start"] - pd.Timedelta(hours=BASELINE_HOURS - 1)
    while ts < t["end"]:
        background.append(_data_event(rng, ts, WORKER_ROLE, f"10.0.1.{rng.randint(10, 60)}", "aws-sdk-go-v2/1.30",
                                      f"exports/{ts:%Y/%m/%d}/org-{rng.randint(100, 999)}.csv.gz", "AssumedRole"))
        ts += pd.Timedelta(seconds=rng.randint(45, 75))
    start = t["deploy"] + pd.Timedelta(minutes=25)
    exfil = [_data_event(rng, start + pd.Timedelta(seconds=int(i * 180 / EXFIL_OBJECTS)), PRINCIPAL_ARN, ATTACKER_IP,
                         USER_AGENT, f"exports/customers/part-{i:05d}.csv.gz") for i in range(EXFIL_OBJECTS)]
    return background, exfil


@register("security")
def play(sb) -> Played:
    t = timeline(sb.now)
    real = _retime(load_records(), t)
    plant = planted(t)
    ext.add_cloudtrail_events(sb.backend("cloudtrail"), real + plant)  # LookupEvents: management events
    background, exfil = data_events(t)
    from ..s3_evidence import put_trail

    trail_bucket = bucket_for(TRAIL_BUCKET, sb.account_id)
    put_trail(sb.client("s3"), trail_bucket, TRAIL_PREFIX, ACCOUNT, "eu-west-1", real + plant + background + exfil)
    create = next(e for e in plant if e["eventName"] == "CreateAccessKey")
    truth = {
        "principal": PRINCIPAL_ARN, "source_ip": ATTACKER_IP, "leaked_key": LEAKED_KEY,
        "create_access_key_at": pd.Timestamp(create["eventTime"]), "new_key_for": NEW_KEY_FOR,
        "get_secret_value_burst": BURST, "real_records": len(real),
        "baseline_records": sum(pd.Timestamp(r["eventTime"]) < t["window_start"] for r in real),
        "exfil_bucket": EXPORTS_BUCKET, "exfil_objects": EXFIL_OBJECTS,
        "exfil_at": pd.Timestamp(exfil[0]["eventTime"]), "trail_bucket": trail_bucket,
    }
    incident = incident_fields("SANDBOX-SECURITY", "Leaked access key suspected", "P0", t)
    resources = {"cloudtrail": {"baseline_hours": BASELINE_HOURS, "bucket": trail_bucket, "prefix": TRAIL_PREFIX}}
    return Played(truth=truth, incident=incident, resources=resources, workloads=[])
