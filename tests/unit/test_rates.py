"""Per-API request rates: documented with their source, enforced per endpoint and Region on every client."""

from __future__ import annotations

import threading

import pytest

from forensics import _aws, rates


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.slept.append(s)
        self.now += s


def test_every_documented_rate_has_a_source_and_names_a_read_operation():
    rows = rates.documented()
    assert rows["cloudtrail:LookupEvents"].rate == 2 and rows["logs:FilterLogEvents"].rate == 5
    allowed = {f"{_aws._IAM_PREFIX.get(s, s)}:{op}" for s, ops in _aws.READ_OPERATIONS.items() for op in ops}
    for api, r in rows.items():
        assert r.source and r.rate > 0 and r.burst >= 1, api
        assert api in allowed, f"{api} is rate-limited but not an allowed read operation"


def test_bucket_lets_a_burst_through_then_holds_to_the_rate():
    clock = FakeClock()
    b = rates.TokenBucket(rate=2, burst=2, clock=clock, sleep=clock.sleep)
    waits = [b.take() for _ in range(6)]
    assert waits[:2] == [0.0, 0.0]
    assert sum(waits) == pytest.approx(2.0)  # four more requests at 2/s
    assert clock.now == pytest.approx(2.0)


def test_bucket_refills_while_idle_but_never_beyond_its_burst():
    clock = FakeClock()
    b = rates.TokenBucket(rate=5, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        b.take()
    clock.now += 100  # a long pause
    assert [b.take() for _ in range(5)] == [0.0] * 5
    assert b.take() == pytest.approx(0.2)


def test_threads_share_one_bucket_per_api_and_scope():
    clock = FakeClock()
    lock = threading.Lock()

    def sleep(s):
        with lock:
            clock.sleep(s)

    b = rates.TokenBucket(rate=2, burst=2, clock=clock, sleep=sleep)
    threads = [threading.Thread(target=b.take) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(clock.slept) >= 3.99  # 8 requests beyond the burst, at 2/s, whichever thread waits
    assert rates.bucket("cloudtrail:LookupEvents", ("a", "r")) is rates.bucket("cloudtrail:LookupEvents", ("a", "r"))
    assert rates.bucket("cloudtrail:LookupEvents", ("b", "r")) is not rates.bucket("cloudtrail:LookupEvents", ("a", "r"))
    assert rates.bucket("sts:GetCallerIdentity", ("a", "r")) is None


@pytest.mark.sandbox
def test_a_client_takes_a_token_per_request(moto_server):
    """Real boto3 client against the moto server: each DescribeLogGroups request takes one token of the
    bucket of its endpoint and Region (a frozen clock: no refill), and waits once the burst is spent."""
    aws = {"region": "eu-west-3", "endpoint_url": moto_server.endpoint_url}
    client = _aws.client("logs", aws)
    clock = FakeClock()
    key = ("logs:DescribeLogGroups", client.meta.endpoint_url, client.meta.region_name)
    rates._buckets[key] = rates.TokenBucket(rate=2, burst=2, clock=clock, sleep=clock.sleep)
    try:
        for _ in range(4):
            client.describe_log_groups(limit=1)
    finally:
        del rates._buckets[key]
    assert clock.slept == [pytest.approx(0.5), pytest.approx(0.5)]  # two beyond the burst, at 2/s
