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

from . import defaults, rates
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
    "rds": ("DescribeDBInstances", "DescribeEvents", "DescribeDBSnapshots"),
    "elasticache": ("DescribeReplicationGroups", "DescribeCacheClusters", "DescribeEvents"),
    "cloudtrail": ("LookupEvents",),
    "sts": ("GetCallerIdentity",),
    # Evidence delivered to S3 (a trail's bucket, ALB access logs), and Athena over it where it is large.
    # Athena writes its result files to the workgroup's output location: a results bucket, never the data.
    "s3": ("ListObjectsV2", "GetObject"),
    "athena": ("StartQueryExecution", "GetQueryExecution", "GetQueryResults", "StopQueryExecution"),
    "glue": ("GetDatabase", "GetTable", "GetPartitions"),
    # Scheduled jobs: EventBridge rules with a schedule and EventBridge Scheduler schedules.
    "events": ("ListRules", "ListTargetsByRule"),
    "scheduler": ("ListSchedules", "GetSchedule"),
    # Backups (AWS Backup jobs) and certificates and domains (ACM, Route 53, CloudFront).
    "backup": ("ListBackupJobs",),
    "acm": ("ListCertificates", "DescribeCertificate"),
    "route53": ("ListHostedZones", "ListResourceRecordSets"),
    "cloudfront": ("GetDistribution",),
}
#: IAM service prefixes where they differ from botocore's service names.
_IAM_PREFIX = {"elbv2": "elasticloadbalancing"}
#: IAM actions where they differ from the operation's name.
_IAM_ACTION = {("s3", "ListObjectsV2"): "ListBucket"}

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


def client_config(connect_timeout: float = defaults.AWS_CONNECT_TIMEOUT_S,
                  read_timeout: float = defaults.AWS_READ_TIMEOUT_S,
                  max_attempts: int = defaults.AWS_MAX_ATTEMPTS - 1):
    """One config for every client: adaptive retries for throttling, bounded timeouts."""
    from botocore.config import Config

    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra="forensics-notebooks",
    )


def _limits(aws: dict | None) -> dict:
    """The environment's optional ``aws.max_attempts`` (every attempt, the first included) /
    ``connect_timeout_s`` / ``read_timeout_s``. botocore's ``max_attempts`` counts retries only."""
    aws = aws or {}
    out = {kw: aws[key] for key, kw in (("connect_timeout_s", "connect_timeout"), ("read_timeout_s", "read_timeout"))
           if aws.get(key) is not None}
    if aws.get("max_attempts") is not None:
        out["max_attempts"] = max(0, int(aws["max_attempts"]) - 1)
    return out


def _check_response(http_response=None, model=None, **_):
    """A 200 whose body is not what the protocol promises (an HTML page from a proxy, JSON or XML cut
    short) would parse as an empty answer: "no events" where the truth is "unknown". Refuse it.
    A streamed body (S3 GetObject) is left to its reader: reading it here would load it whole."""
    if http_response is None or not 200 <= http_response.status_code < 300:
        return
    if model is not None and getattr(model, "has_streaming_output", False):
        return
    try:
        body = http_response.content or b""
    except AttributeError:  # a stubbed response (botocore Stubber) has no raw body
        return
    ctype = http_response.headers.get("Content-Type") or "none"
    # Sniff the body, not the Content-Type (some endpoints label JSON text/html).
    head = body.lstrip()[:64].lower()
    problem = None
    if head.startswith((b"<!doctype", b"<html")):
        problem = "an HTML page"
    elif head.startswith((b"{", b"[")):
        import json

        try:
            json.loads(body)
        except ValueError:
            problem = "JSON that does not parse (truncated?)"
    elif head.startswith(b"<"):
        import xml.etree.ElementTree as ET

        try:
            ET.fromstring(body)
        except ET.ParseError:
            problem = "XML that does not parse (truncated?)"
    if problem:
        from botocore.parsers import ResponseParserError

        raise ResponseParserError(f"malformed response: HTTP {http_response.status_code} with {problem} "
                                  f"({len(body)} bytes, Content-Type {ctype})")


def client(service: str, aws: dict | None = None, *, boto3_session=None, config=None):
    """A read-only boto3 client for ``service``."""
    if service not in READ_OPERATIONS:
        raise ReadOnlyViolation(f"no read operations are allowed for service {service!r}")
    sess = boto3_session or session(aws)
    c = sess.client(service, endpoint_url=endpoint_url(aws), config=config or client_config(**_limits(aws)))
    # A client's event emitter is its own copy: an unqualified event name hooks every operation of
    # this client only, whatever botocore's event prefix for the service is.
    c.meta.events.register("before-parameter-build", _refuse_writes(service))
    c.meta.events.register("after-call", _check_response)
    # Each API held to its documented request rate, whatever the number of threads pulling.
    c.meta.events.register("before-send", rates.hook(service, (c.meta.endpoint_url, c.meta.region_name)))
    return c


def iam_policy() -> dict:
    """The IAM policy that allows exactly :data:`READ_OPERATIONS`."""
    actions = sorted(f"{_IAM_PREFIX.get(svc, svc)}:{_IAM_ACTION.get((svc, op), op)}"
                     for svc, ops in READ_OPERATIONS.items() for op in ops)
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ForensicsReadOnly", "Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
