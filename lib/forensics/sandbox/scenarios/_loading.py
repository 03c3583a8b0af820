"""Loading what a scenario planted into the sandbox's moto server: log groups and events in batches."""

from __future__ import annotations

#: PutLogEvents takes at most 10,000 events per call; 5,000 keeps requests small.
LOG_BATCH = 5000


def ensure_log_group(logs, name: str, retention: int = 30) -> None:
    """Create a log group (with a retention policy, as real ones have) unless another scenario did."""
    try:
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass


def put_logs(logs, group: str, streams: dict[str, list[tuple[int, str]]]) -> int:
    """Write ``{stream: [(epoch ms, message), ...]}`` into ``group``; returns the number of events."""
    ensure_log_group(logs, group)
    n = 0
    for stream, events in streams.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        for i in range(0, len(events), LOG_BATCH):
            chunk = events[i:i + LOG_BATCH]
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": ts, "message": msg} for ts, msg in chunk])
            n += len(chunk)
    return n
