"""ElastiCache: a served ``DescribeEvents`` (moto: not implemented).

Events planted by :func:`add_elasticache_event`, filtered by source, type and time, oldest first,
paged by ``Marker``.
"""

from __future__ import annotations

import datetime as dt

from .paging import paginate
from .patching import serve
from .times import aware, utc


def install_events() -> None:
    from moto.core.responses import ActionResult
    from moto.elasticache.responses import ElastiCacheResponse

    def describe_events(self):
        return ActionResult(elasticache_events_page(
            list(getattr(self.elasticache_backend, "forensics_events", [])),
            source_identifier=self._get_param("SourceIdentifier"), source_type=self._get_param("SourceType"),
            start_time=self._get_param("StartTime"), end_time=self._get_param("EndTime"),
            duration=self._get_int_param("Duration"), max_records=self._get_int_param("MaxRecords"),
            marker=self._get_param("Marker")))

    serve(ElastiCacheResponse, "describe_events", describe_events)


def elasticache_events_page(events: list[dict], *, source_identifier=None, source_type=None, start_time=None,
                            end_time=None, duration=None, max_records=None, marker=None) -> dict:
    """One ``DescribeEvents`` page of ``events`` (dicts in the API's shape), as ElastiCache serves it:
    oldest first, ``Duration`` minutes back from ``EndTime`` (or now) when no ``StartTime``, at most
    ``MaxRecords`` (20..100, default 100) per page, ``Marker`` naming the next page."""
    start, end = utc(start_time), utc(end_time)
    if duration is not None and start is None:
        end = end or dt.datetime.now(dt.timezone.utc)
        start = end - dt.timedelta(minutes=int(duration))
    selected = [e for e in events
                if (source_identifier is None or e["SourceIdentifier"] == source_identifier)
                and (source_type is None or e["SourceType"] == source_type)
                and (start is None or utc(e["Date"]) >= start) and (end is None or utc(e["Date"]) <= end)]
    selected.sort(key=lambda e: utc(e["Date"]))
    size = min(max(int(max_records or 100), 20), 100)
    return paginate(selected, "Events", size, marker, token_name="Marker")


def add_elasticache_event(elasticache_backend, source_identifier: str, source_type: str, message: str,
                          date) -> None:
    """An event ``DescribeEvents`` returns (``source_type``: replication-group, cache-cluster...)."""
    planted = elasticache_backend.__dict__.setdefault("forensics_events", [])
    planted.append({"SourceIdentifier": source_identifier, "SourceType": source_type, "Message": message,
                    "Date": aware(date)})
