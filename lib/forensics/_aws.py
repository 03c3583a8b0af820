"""boto3 clients for forensic work: one retry/timeout config, read-only by construction.

Every client made here carries a ``before-call`` hook that refuses any operation not in
:data:`READ_OPERATIONS` before a request leaves the process. The IAM policy in
``lib/forensics/iam/forensics-read-only.json`` is generated from the same table
(:func:`iam_policy`), so the code and the policy a user attaches cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlparse

from .errors import ReadOnlyViolation

#: service -> operations (botocore names) that forensic code may call. Nothing else leaves the process.
READ_OPERATIONS: dict[str, tuple[str, ...]] = {
    "cloudwatch": ("GetMetricData", "GetMetricStatistics", "ListMetrics", "DescribeAlarms",
                   "DescribeAlarmHistory"),
    "logs": ("FilterLogEvents", "DescribeLogGroups", "DescribeLogStreams", "GetLogEvents",
             "StartQuery", "GetQueryResults", "StopQuery"),
    "ecs": ("DescribeServices", "ListTasks", "DescribeTasks", "DescribeTaskDefinition", "DescribeClusters",
            "ListServices"),
    "elbv2": ("DescribeTargetHealth", "DescribeTargetGroups", "DescribeLoadBalancers"),
    "rds": ("DescribeDBInstances", "DescribeEvents"),
    "elasticache": ("DescribeReplicationGroups", "DescribeCacheClusters", "DescribeEvents"),
    "cloudtrail": ("LookupEvents",),
    "sts": ("GetCallerIdentity",),
}
#: IAM service prefixes where they differ from botocore's service names.
_IAM_PREFIX = {"elbv2": "elasticloadbalancing"}

#: Static credentials used only when the endpoint is on loopback (the sandbox) and none are configured.
SANDBOX_CREDENTIALS = {"aws_access_key_id": "forensics-sandbox", "aws_secret_access_key": "forensics-sandbox"}


def is_loopback_url(url: str | None) -> bool:
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_writes(service: str):
    allowed = set(READ_OPERATIONS.get(service, ()))

    def hook(model, **_):
        if model.name not in allowed:
            raise ReadOnlyViolation(
                f"{service}:{model.name} is not a read operation allowed to forensic code "
                f"(allowed: {', '.join(sorted(allowed)) or 'none'})")

    return hook


def session(aws: dict | None = None):
    """A boto3 Session from the environment's ``aws`` section and the standard credential chain."""
    import boto3

    aws = aws or {}
    kwargs = {"region_name": aws.get("region") or os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION")}
    if aws.get("profile"):
        kwargs["profile_name"] = aws["profile"]
    sess = boto3.Session(**kwargs)
    if sess.get_credentials() is None and is_loopback_url(endpoint_url(aws)):
        sess = boto3.Session(region_name=kwargs["region_name"], **SANDBOX_CREDENTIALS)
    return sess


def endpoint_url(aws: dict | None) -> str | None:
    aws = aws or {}
    return aws.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None


def client_config(connect_timeout: float = 5, read_timeout: float = 30, max_attempts: int = 6):
    """One config for every client: adaptive retries for throttling, bounded timeouts."""
    from botocore.config import Config

    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra="forensics-notebooks",
    )


def client(service: str, aws: dict | None = None, *, boto3_session=None, config=None):
    """A read-only boto3 client for ``service``."""
    if service not in READ_OPERATIONS:
        raise ReadOnlyViolation(f"no read operations are allowed for service {service!r}")
    sess = boto3_session or session(aws)
    c = sess.client(service, endpoint_url=endpoint_url(aws), config=config or client_config())
    # A client's event emitter is its own copy: an unqualified event name hooks every operation of
    # this client only, whatever botocore's event prefix for the service is.
    c.meta.events.register("before-parameter-build", _refuse_writes(service))
    return c


def iam_policy() -> dict:
    """The IAM policy that allows exactly :data:`READ_OPERATIONS`."""
    actions = sorted(f"{_IAM_PREFIX.get(svc, svc)}:{op}" for svc, ops in READ_OPERATIONS.items() for op in ops)
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ForensicsReadOnly", "Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
