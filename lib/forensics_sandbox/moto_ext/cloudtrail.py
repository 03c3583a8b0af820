"""CloudTrail: a served ``LookupEvents`` (moto: not implemented).

Records fed by :func:`add_cloudtrail_events` (dicts as CloudTrail delivers them to S3): time range,
one lookup attribute, newest first, paged by ``NextToken``.
"""

from __future__ import annotations

import json

from .paging import paginate
from .patching import serve
from .times import epoch_utc, utc

#: LookupEvents attribute keys (each matches the event field of the same name)
_ATTRIBUTES = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
               "AccessKeyId")


def install_lookup() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse

    def lookup_events(self):
        return json.dumps(cloudtrail_lookup_page(
            list(getattr(self.cloudtrail_backend, "forensics_events", [])),
            lookup_attributes=self._get_param("LookupAttributes"), start_time=self._get_param("StartTime"),
            end_time=self._get_param("EndTime"), max_results=self._get_param("MaxResults"),
            next_token=self._get_param("NextToken")))

    serve(CloudTrailResponse, "lookup_events", lookup_events)


def cloudtrail_event(record: dict) -> dict:
    """A CloudTrail record (as delivered to S3) -> one ``LookupEvents`` event, as CloudTrail serves it."""
    ident = record.get("userIdentity") or {}
    issuer = ((ident.get("sessionContext") or {}).get("sessionIssuer") or {})
    arn = ident.get("arn") or ""
    username = ident.get("userName") or (arn.rsplit("/", 1)[-1] if ident.get("type") == "AssumedRole" else None) \
        or issuer.get("userName") or ident.get("invokedBy")
    resources = [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")} for r in record.get("resources") or []]
    out = {"EventId": record["eventID"], "EventName": record["eventName"],
           "ReadOnly": str(bool(record.get("readOnly"))).lower(), "EventTime": utc(record["eventTime"]).timestamp(),
           "EventSource": record.get("eventSource"), "Resources": resources,
           "CloudTrailEvent": json.dumps(record, sort_keys=True)}
    if ident.get("accessKeyId"):
        out["AccessKeyId"] = ident["accessKeyId"]
    if username:
        out["Username"] = username
    return out


def cloudtrail_lookup_page(records: list[dict], *, lookup_attributes=None, start_time=None, end_time=None,
                           max_results=None, next_token=None) -> dict:
    """One ``LookupEvents`` page over ``records`` (CloudTrail records), as CloudTrail serves it: newest
    first, ``StartTime`` <= EventTime <= ``EndTime``, at most one lookup attribute, ``MaxResults`` 1..50
    (default 50), ``NextToken`` naming the next page."""
    from moto.core.exceptions import JsonRESTError

    attrs = list(lookup_attributes or [])
    if len(attrs) > 1:
        raise JsonRESTError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    size = int(max_results or 50)
    if not 1 <= size <= 50:
        raise JsonRESTError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
    start, end = epoch_utc(start_time), epoch_utc(end_time)
    if start is not None and end is not None and start > end:
        raise JsonRESTError("InvalidTimeRangeException", "StartTime must be before EndTime.")
    events = [cloudtrail_event(r) for r in records]
    if attrs:
        key, value = attrs[0].get("AttributeKey"), attrs[0].get("AttributeValue")
        if key not in _ATTRIBUTES:
            raise JsonRESTError("InvalidLookupAttributesException", f"Invalid attribute key {key!r}.")
        if key in ("ResourceType", "ResourceName"):
            events = [e for e in events if any(r.get(key) == value for r in e["Resources"])]
        else:
            events = [e for e in events if str(e.get(key)) == str(value)]
    events = [e for e in events if (start is None or e["EventTime"] >= start.timestamp())
              and (end is None or e["EventTime"] <= end.timestamp())]
    events.sort(key=lambda e: (e["EventTime"], e["EventId"]), reverse=True)
    return paginate(events, "Events", size, next_token)


def add_cloudtrail_events(cloudtrail_backend, records: list[dict]) -> None:
    """Feed CloudTrail records (dicts as delivered to S3) to ``LookupEvents`` of this account/region."""
    cloudtrail_backend.__dict__.setdefault("forensics_events", []).extend(records)
