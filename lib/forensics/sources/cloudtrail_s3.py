"""CloudTrail from the trail's S3 bucket: management *and data* events of the window.

``LookupEvents`` serves management events only, for 90 days, at 2 calls/s; the trail's delivery files
hold everything the trail logs (S3 object reads and writes included when data events are on). The
environment's section::

    cloudtrail: {bucket: my-trail, prefix: org-trail, accounts: [123456789012], regions: [eu-west-1],
                 organization_id: o-abc123def4}

``prefix``, ``accounts``, ``regions`` and ``organization_id`` are optional: absent accounts are found by
listing ``<prefix>/AWSLogs/`` (and ``AWSLogs/<org-id>/``) one level deep, absent regions by listing
``<account>/CloudTrail/``. Only the day prefixes of the window are then listed.

The frame has :data:`forensics.sources.cloudtrail.RECORD_COLUMNS` (the LookupEvents columns plus
``event_category, event_type, resources, bucket, object_key, bytes_out, recipient_account_id``), oldest
first. ``attrs``: ``bucket, prefixes, objects_listed, objects_read, bytes_read, errors`` (one
``{key, error}`` per unreadable object), ``truncated``, ``engine`` and ``bytes_scanned``.
"""

from __future__ import annotations

import pandas as pd

from ..window import IncidentWindow
from . import _empty, _typed
from . import s3_objects as so
from .call import Call
from .cloudtrail import RECORD_COLUMNS, record_row

SOURCE = "cloudtrail"
#: A delivery file is stamped when written; its events are up to ~15 minutes older (the invictus-ir
#: trail: at most 13). A file stamped an hour after the window's end is still read.
DEFAULT_DELIVERY_DELAY = pd.Timedelta("1h")
#: The file-name stamp has 5-minute granularity.
STAMP_GRANULARITY = pd.Timedelta("5min")


def trail_bases(cloudtrail: dict, aws: dict | None = None, *, client=None) -> list[str]:
    """``<prefix>/AWSLogs/[<org>/]<account>/CloudTrail/<region>`` for every account and region configured
    or, where not configured, found in the bucket."""
    s3 = so.read_client("s3", aws, client)
    bucket, prefix = _bucket(cloudtrail), cloudtrail.get("prefix") or ""
    org = cloudtrail.get("organization_id")
    accounts = [str(a) for a in cloudtrail.get("accounts") or []]
    if accounts:
        accounts = [f"{org}/{a}" if org else a for a in accounts]
    else:
        accounts = so.discover_accounts(s3, bucket, prefix, org, SOURCE)
    return so.delivery_bases(s3, bucket, prefix, "CloudTrail", accounts, cloudtrail.get("regions"), SOURCE)


def _bucket(cloudtrail: dict) -> str:
    bucket = (cloudtrail or {}).get("bucket")
    if not bucket:
        raise ValueError("cloudtrail: bucket is required to read the trail from S3")
    return str(bucket)


def _records(document, key: str) -> list[dict]:
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise so.ObjectError("not a CloudTrail delivery file (no Records list)")
    return records


def trail_events(cloudtrail: dict, window: IncidentWindow, aws: dict | None = None, *,
                 delivery_delay=DEFAULT_DELIVERY_DELAY, max_bytes: int = so.DEFAULT_MAX_BYTES,
                 client=None) -> pd.DataFrame:
    """Every record of ``window`` in the trail's delivery files, oldest first (see the module doc)."""
    s3 = so.read_client("s3", aws, client)
    bucket = _bucket(cloudtrail)
    reading = so.Reading(bucket)
    bases = trail_bases(cloudtrail, aws, client=s3)
    keys = so.window_keys(s3, bucket, bases, window, reading, before=STAMP_GRANULARITY,
                          after=pd.Timedelta(delivery_delay), source=SOURCE)
    rows: list[dict] = []
    for key, doc in so.read_each(s3, keys, reading, lambda k: _records(so.read_json(s3, bucket, k, reading, SOURCE),
                                                                         k), max_bytes=max_bytes):
        rows += [record_row(r) for r in doc if isinstance(r, dict)]
    df = _typed(pd.DataFrame(rows), RECORD_COLUMNS) if rows else _empty(RECORD_COLUMNS)
    df = df[(df["timestamp"] >= window.start) & (df["timestamp"] < window.end)]
    df = df.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)
    df.attrs.update(reading.attrs())
    return df


def trail_call(cloudtrail: dict, window: IncidentWindow, aws: dict | None = None, *,
               delivery_delay=DEFAULT_DELIVERY_DELAY) -> Call:
    """:func:`trail_events` as one :class:`~forensics.sources.call.Call`."""
    keep = ("bucket", "prefix", "accounts", "regions", "organization_id")
    args = {"api": "s3:ListObjectsV2+GetObject", **{k: cloudtrail.get(k) for k in keep if cloudtrail.get(k)},
            **window.as_dict(), "delivery_delay": str(pd.Timedelta(delivery_delay))}
    return Call(None, args, lambda: trail_events(cloudtrail, window, aws=aws, delivery_delay=delivery_delay))
