"""Pure functions on DataFrames: they take captured frames and return frames, never touch a source.

- :mod:`.onset`       when did a metric depart from its baseline (episodes, first onset, 5xx rate)
- :mod:`.signatures`  log messages grouped by template (masking + Brain-style frequency grouping)
- :mod:`.statements`  pg_stat_statements deltas over a window, with reset/eviction flags
- :mod:`.timeline`    one sorted timeline across sources; the change just before an onset
- :mod:`.capacity`    connection pool arithmetic, holders by app/state, blocking tree
- :mod:`.alb`         ALB access logs: endpoints, targets, latency, clients and user agents
- :mod:`.pglog`       PostgreSQL's own log classified (connection exhaustion, deadlocks, timeouts...)
- :mod:`.security`    CloudTrail: principals, new addresses, sensitive calls, data access and bursts
- :mod:`.jobs`        scheduled jobs: silent jobs, late runs, failed invocations, disabled schedules
- :mod:`.auth`        authentication failures: 401/403 by minute, client and user agent; auth error signatures

:func:`records` turns a result frame into the plain list a finding holds.

Submodules are imported explicitly (``from forensics.analysis import onset``) so that importing one
does not pay for the others.
"""


def records(frame, limit: int | None = None) -> list[dict]:
    """A frame as a list of plain dicts for findings (the first ``limit`` rows)."""
    if frame is None or not len(frame):
        return []
    return (frame.head(limit) if limit else frame).to_dict(orient="records")
