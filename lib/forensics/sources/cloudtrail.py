"""CloudTrail management events (``LookupEvents``) as change/timeline events:
``[timestamp, source, resource, kind, message]`` + who, from where, with what.

Detail columns: ``event_name, event_source, principal`` (the ARN), ``username, principal_type,
source_ip, user_agent, access_key_id, read_only, error_code, aws_region, event_id``. ``kind`` is the
event name, ``resource`` the first resource named by the event (else the calling service's host).

``access_key_id`` is the key the call was signed with: it is written to a record only through the
capture store, which redacts it (``[REDACTED:aws-access-key-id:<hash>]``: the same key gives the same
marker everywhere, so "the key used at 09:03 is the one used at 11:40" stays visible).

Limits of the API worth knowing during an incident: ``LookupEvents`` covers the last 90 days of
management events of one region (IAM and STS global events are in us-east-1), takes at most one lookup
attribute, serves 50 events per call and is throttled at 2 calls per second per account and region:
a busy day is thousands of calls, so :func:`lookup_events` stops at ``max_events`` and says so
(``attrs["truncated"]``). For more, query the trail's S3 copy with Athena.
"""

from __future__ import annotations

import json
import re

import pandas as pd

from .. import contracts, defaults
from ..window import IncidentWindow
from . import _aws_client, _aws_errors, _empty, _typed
from .call import Call

COLUMNS = {**contracts.EVENT_COLUMNS,
           "event_name": "str", "event_source": "str", "principal": "str", "username": "str",
           "principal_type": "str", "source_ip": "str", "user_agent": "str", "access_key_id": "str",
           "read_only": "boolean", "error_code": "str", "aws_region": "str", "event_id": "str"}
#: Columns of records read from the trail's S3 delivery files (:mod:`forensics.sources.cloudtrail_s3`),
#: after :data:`COLUMNS`: data events name their bucket and object, and how many bytes they sent out.
RECORD_COLUMNS = {**COLUMNS, "event_category": "str", "event_type": "str", "resources": "str", "bucket": "str",
                  "object_key": "str", "bytes_out": "Float64", "recipient_account_id": "str", "detail": "str"}
#: LookupEvents serves at most 50 events per call
PAGE = 50
DEFAULT_MAX_EVENTS = defaults.CLOUDTRAIL_MAX_EVENTS


def _row(event: dict) -> dict:
    try:
        record = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        record = {}
    ident = record.get("userIdentity") or {}
    issuer = (ident.get("sessionContext") or {}).get("sessionIssuer") or {}
    principal = ident.get("arn") or issuer.get("arn") or ident.get("invokedBy") or event.get("Username")
    service = (event.get("EventSource") or record.get("eventSource") or "").split(".")[0]
    name = event.get("EventName") or record.get("eventName")
    ip = record.get("sourceIPAddress")
    who = event.get("Username") or principal or "unknown principal"
    error = record.get("errorCode")
    resources = event.get("Resources") or []
    resource = next((r.get("ResourceName") for r in resources if r.get("ResourceName")), None)
    read_only = event.get("ReadOnly")
    return {
        "timestamp": pd.Timestamp(event["EventTime"], unit="s", tz="UTC") if isinstance(event.get("EventTime"),
                                                                                      (int, float))
        else event.get("EventTime"),
        "source": "cloudtrail", "resource": resource or event.get("EventSource"), "kind": name,
        "message": f"{who} called {service}:{name} from {ip or 'unknown IP'}" + (f" - failed: {error}" if error else ""),
        "event_name": name, "event_source": event.get("EventSource"), "principal": principal,
        "username": event.get("Username"), "principal_type": ident.get("type"), "source_ip": ip,
        "user_agent": record.get("userAgent"), "access_key_id": event.get("AccessKeyId") or ident.get("accessKeyId"),
        "read_only": None if read_only is None else str(read_only).lower() == "true", "error_code": error,
        "aws_region": record.get("awsRegion"), "event_id": event.get("EventId"),
        "detail": detail(record) if record else None,
    }


#: the largest ``detail`` kept whole; a larger record keeps its identity and names, not its parameters
DETAIL_MAX = 16384
_KEY_FIELDS = frozenset({"accesskeyid", "sessiontoken", "secretaccesskey"})
#: an access key id anywhere else in a record (a parameter, a message): the access_key_id column keeps it
_AKID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def _strip_keys(node):
    if isinstance(node, dict):
        return {k: _strip_keys(v) for k, v in node.items() if str(k).lower() not in _KEY_FIELDS}
    if isinstance(node, list):
        return [_strip_keys(v) for v in node]
    return node


def detail(record: dict) -> str:
    """The record as JSON for rule matching (Sigma fields such as ``requestParameters.*``), without
    access key ids and session tokens, at most :data:`DETAIL_MAX` characters (bulky parameters dropped)."""
    clean = _strip_keys(record if isinstance(record, dict) else {})
    text = json.dumps(clean, sort_keys=True, default=str)
    if len(text) > DETAIL_MAX:
        for bulky in ("responseElements", "requestParameters", "additionalEventData", "resources"):
            if bulky in clean:
                clean[bulky] = {"truncated": True}
                text = json.dumps(clean, sort_keys=True, default=str)
                if len(text) <= DETAIL_MAX:
                    break
        text = text if len(text) <= DETAIL_MAX else json.dumps({"truncated": True})
    return _AKID.sub("[REDACTED:aws-access-key-id]", text)


def record_row(record: dict) -> dict:
    """One CloudTrail record (as delivered to S3: ``{"Records": [...]}``) as a :data:`RECORD_COLUMNS` row."""
    ident = record.get("userIdentity") or {}
    issuer = (ident.get("sessionContext") or {}).get("sessionIssuer") or {}
    principal = ident.get("arn") or issuer.get("arn") or ident.get("invokedBy")
    username = ident.get("userName") or issuer.get("userName")
    source = record.get("eventSource")
    name = record.get("eventName")
    ip = record.get("sourceIPAddress")
    error = record.get("errorCode")
    arns = [r.get("ARN") for r in record.get("resources") or [] if isinstance(r, dict) and r.get("ARN")]
    params = record.get("requestParameters") if isinstance(record.get("requestParameters"), dict) else {}
    extra = record.get("additionalEventData") if isinstance(record.get("additionalEventData"), dict) else {}
    who = username or principal or "unknown principal"
    read_only = record.get("readOnly")
    bytes_out = extra.get("bytesTransferredOut")
    return {
        "timestamp": record.get("eventTime"), "source": "cloudtrail", "resource": arns[0] if arns else source,
        "kind": name,
        "message": f"{who} called {(source or '').split('.')[0]}:{name} from {ip or 'unknown IP'}"
                   + (f" - failed: {error}" if error else ""),
        "event_name": name, "event_source": source, "principal": principal, "username": username,
        "principal_type": ident.get("type"), "source_ip": ip, "user_agent": record.get("userAgent"),
        "access_key_id": ident.get("accessKeyId"),
        "read_only": None if read_only is None else str(read_only).lower() == "true", "error_code": error,
        "aws_region": record.get("awsRegion"), "event_id": record.get("eventID"),
        "event_category": record.get("eventCategory") or ("Management" if record.get("managementEvent") else None),
        "event_type": record.get("eventType"), "resources": json.dumps(arns) if arns else None,
        "bucket": params.get("bucketName"), "object_key": params.get("key"),
        "bytes_out": float(bytes_out) if isinstance(bytes_out, (int, float)) else None,
        "recipient_account_id": record.get("recipientAccountId"), "detail": detail(record),
    }


def lookup_events(window: IncidentWindow, *, aws: dict | None = None, attribute: tuple[str, str] | None = None,
                  max_events: int = DEFAULT_MAX_EVENTS, client=None, config=None) -> pd.DataFrame:
    """Every management event in ``window`` (optionally matching one lookup ``attribute``, e.g.
    ``("Username", "ci-deploy")``), oldest first; paginated; stops at ``max_events``."""
    ct = _aws_client("cloudtrail", aws, client, config)
    kwargs: dict = {"StartTime": window.start.to_pydatetime(), "EndTime": window.end.to_pydatetime(),
                    "MaxResults": PAGE}
    if attribute:
        kwargs["LookupAttributes"] = [{"AttributeKey": attribute[0], "AttributeValue": attribute[1]}]
    rows: list[dict] = []
    truncated = False
    token = None
    while True:
        with _aws_errors("cloudtrail", "LookupEvents"):
            resp = ct.lookup_events(**kwargs, **({"NextToken": token} if token else {}))
        rows += [_row(e) for e in resp.get("Events") or []]
        token = resp.get("NextToken")
        if not token:
            break
        if len(rows) >= max_events:
            truncated = True
            break
    if not rows:
        return _empty(COLUMNS)
    df = _typed(pd.DataFrame(rows), COLUMNS)
    # EndTime is inclusive in the API; the window is [start, end)
    df = df[(df["timestamp"] >= window.start) & (df["timestamp"] < window.end)]
    df = df.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)
    df.attrs["truncated"] = truncated
    return df


def lookup_call(window: IncidentWindow, *, aws: dict | None = None, attribute: tuple[str, str] | None = None,
                max_events: int = DEFAULT_MAX_EVENTS) -> Call:
    """:func:`lookup_events` as one :class:`~forensics.sources.call.Call`."""
    out = {"api": "cloudtrail:LookupEvents", **window.as_dict(), "max_events": max_events}
    if attribute:
        out["LookupAttributes"] = [{"AttributeKey": attribute[0], "AttributeValue": attribute[1]}]
    return Call(None, out, lambda: lookup_events(window, aws=aws, attribute=attribute, max_events=max_events))
