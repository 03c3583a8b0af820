"""Queue depth (Celery/SQS-like backlogs published to CloudWatch) and worker task failures in logs.

- :func:`depth_queries` — one ``Maximum`` query per queue of a custom metric (e.g. namespace
  ``SCR/Celery``, metric ``QueueDepth``, dimension ``Queue``); ids ``q_<queue>``, label = queue name.
- :data:`TASK_FAILURE_PATTERN` / :data:`TASK_FAILURE_REGEX` — the CloudWatch filter (and its client-side
  regex, see :mod:`forensics.sources.logs`) selecting failed and retried task lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import _as_list
from .cloudwatch import MetricQuery

TASK_FAILURE_PATTERN = "?ERROR ?Error ?Exception ?Traceback ?CRITICAL ?retry ?Retry"
TASK_FAILURE_REGEX = r"ERROR|Error|Exception|Traceback|CRITICAL|[Rr]etry"


def query_id(queue: str) -> str:
    return "q_" + (re.sub(r"[^a-zA-Z0-9]+", "_", queue).strip("_").lower() or "x")


def depth_queries(namespace: str, metric: str, dimension: str, names: Iterable[str],
                  stat: str = "Maximum") -> list[MetricQuery]:
    out, seen = [], set()
    for name in _as_list(list(names), "queue names"):
        qid = query_id(name)
        if qid in seen:
            raise ValueError(f"queue names {name!r} and another map to the same query id {qid!r}")
        seen.add(qid)
        out.append(MetricQuery(qid, namespace, metric, {dimension: name}, stat, name))
    return out
