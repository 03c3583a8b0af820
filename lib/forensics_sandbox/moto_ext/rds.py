"""RDS: ``DescribeEvents`` honours its time window, and instances and events get a past.

moto ignores ``StartTime`` / ``EndTime`` / ``Duration``; here they filter, and events come oldest
first, as AWS returns them. :func:`add_rds_event` plants an event, :func:`backdate_rds_instance` moves
an instance's creation (and the events moto stamped then) into the past.
"""

from __future__ import annotations

import datetime as dt

from .patching import patch_once
from .times import aware, utc


def install_event_window() -> None:
    from moto.rds.models import RDSBackend

    def make(original):
        def describe_events(self, source_identifier=None, source_type=None, start_time=None, end_time=None,
                            duration=None, event_categories=None, **kwargs):
            events = original(self, source_identifier=source_identifier, source_type=source_type, **kwargs)
            start, end = utc(start_time), utc(end_time)
            if duration is not None and start is None:
                end = end or dt.datetime.now(dt.timezone.utc)
                start = end - dt.timedelta(minutes=int(duration))
            elif duration is not None and end is None:
                end = start + dt.timedelta(minutes=int(duration))
            if start is not None:
                events = [e for e in events if utc(e.date) >= start]
            if end is not None:
                events = [e for e in events if utc(e.date) <= end]
            if event_categories:
                wanted = set(event_categories)
                events = [e for e in events if wanted & set(e.event_categories)]
            return sorted(events, key=lambda e: utc(e.date))

        return describe_events

    patch_once(RDSBackend, "describe_events", make)


class _RdsEvent:
    """Duck-typed like moto.rds.models.Event (what the serializer reads)."""

    def __init__(self, source_identifier, source_type, source_arn, message, categories, date):
        self.source_identifier = source_identifier
        self.source_type = source_type
        self.source_arn = source_arn
        self.message = message
        self.event_categories = list(categories)
        self.date = aware(date)


def add_rds_event(rds_backend, instance_id: str, message: str, categories, date) -> None:
    db = rds_backend.databases[instance_id]
    rds_backend.events.append(_RdsEvent(instance_id, "db-instance", db.arn, message, categories, date))


def backdate_rds_instance(rds_backend, instance_id: str, created) -> None:
    """The instance and the events moto stamped at creation move to ``created``."""
    db = rds_backend.databases[instance_id]
    when = aware(created)
    db.created = when
    db.instance_create_time = when
    for i, e in enumerate(e for e in rds_backend.events if e.source_identifier == instance_id):
        e.date = when + dt.timedelta(seconds=i)
