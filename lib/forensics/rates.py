"""Holding each AWS API to its documented request rate (``aws_rates.yaml``), per endpoint and Region.

Every client made by :func:`forensics._aws.client` takes a token from the operation's bucket before
each HTTP attempt (botocore's ``before-send``), so the capture plan's threads, however many, never
send LookupEvents faster than CloudTrail allows. The buckets live in the process: the notebooks'
own processes each have theirs (their pulls are the exception, the plan is the rule).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

RATES_FILE = Path(__file__).resolve().parent / "aws_rates.yaml"


@dataclass(frozen=True)
class Rate:
    api: str
    rate: float
    burst: float
    source: str


@functools.cache
def documented() -> dict[str, Rate]:
    """API (``service:Operation``) -> its documented rate."""
    doc = yaml.safe_load(RATES_FILE.read_text()) or {}
    return {api: Rate(api, float(v["rate"]), float(v.get("burst", v["rate"])), str(v["source"]))
            for api, v in doc.items()}


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock=time.monotonic, sleep=time.sleep):
        self.rate, self.burst = rate, burst
        self._tokens, self._clock, self._sleep = burst, clock, sleep
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, waiting for it if needed; the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


_buckets: dict[tuple, TokenBucket] = {}
_buckets_lock = threading.Lock()


def _new_locks_after_fork() -> None:
    """A forked child (the notebook's prefetch process) keeps the buckets' state, with locks of its own: one
    held by another thread at the fork would never be released in the child."""
    global _buckets_lock
    _buckets_lock = threading.Lock()
    for b in _buckets.values():
        b._lock = threading.Lock()


os.register_at_fork(after_in_child=_new_locks_after_fork)


def bucket(api: str, scope: tuple = ()) -> TokenBucket | None:
    """The bucket of ``api`` for ``scope`` (endpoint, Region), or None for an API with no documented rate."""
    rate = documented().get(api)
    if rate is None:
        return None
    key = (api, *scope)
    with _buckets_lock:
        b = _buckets.get(key)
        if b is None:
            b = _buckets[key] = TokenBucket(rate.rate, rate.burst)
        return b


def hook(service: str, scope: tuple):
    """A botocore ``before-send`` handler that holds ``service``'s operations to their rates."""
    prefix = {"elbv2": "elasticloadbalancing"}.get(service, service)

    def before_send(event_name: str = "", **_):
        b = bucket(f"{prefix}:{event_name.rsplit('.', 1)[-1]}", scope)  # before-send.<service>.<Operation>
        if b is not None:
            b.take()

    return before_send
