"""boto3 clients for forensic work: one retry/timeout config, read-only by construction.

Every client made here carries a ``before-call`` hook that refuses any operation not in
:data:`READ_OPERATIONS` before a request leaves the process. The IAM policy in
``lib/forensics/iam/forensics-read-only.json`` is generated from the same table
(:func:`iam_policy`), so the code and the policy a user attaches cannot drift apart.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import threading
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


#: The environment variables a boto3 Session reads when it is made: a cached session or client is reused only
#: while they are unchanged (a user who switches AWS_PROFILE in the kernel gets a new one).
_SESSION_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_CA_BUNDLE")
_CACHE_LOCK = threading.Lock()
_SESSIONS: dict[str, object] = {}
_CLIENTS: dict[tuple[str, str], object] = {}


def _forget_after_fork() -> None:
    """A forked child (the notebook's prefetch process) makes its own: a client's open connections and a lock
    held by another thread at the fork belong to the parent."""
    global _CACHE_LOCK
    _CACHE_LOCK = threading.Lock()
    _SESSIONS.clear()
    _CLIENTS.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _cache_key(aws: dict | None) -> str:
    """This process, the ``aws`` section and the AWS_* variables, hashed (no secret is kept as a key)."""
    raw = json.dumps([os.getpid(), aws or {}, [os.environ.get(v) for v in _SESSION_ENV]], sort_keys=True,
                     default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def shared_session(aws: dict | None = None):
    """One boto3 Session per process and ``aws`` section, reused: making one loads botocore's endpoint and
    service data (~0.1 s of CPU each time), and a notebook makes twenty clients. A session that found no
    credentials is not kept, so a login after a failure is seen by the next call."""
    with _CACHE_LOCK:
        return _session_locked(_cache_key(aws), aws)


def _session_locked(key: str, aws: dict | None):
    sess = _SESSIONS.get(key)
    if sess is None:
        sess = session(aws)
        if sess.get_credentials() is not None:
            _SESSIONS[key] = sess
    return sess


def session(aws: dict | None = None):
    """A new boto3 Session from the environment's ``aws`` section and the standard credential chain."""
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
        max_pool_connections=defaults.AWS_MAX_POOL_CONNECTIONS,
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
    """A read-only boto3 client for ``service``.

    Without ``boto3_session`` or ``config`` the client is shared: one per process, service and ``aws``
    section (boto3 clients are thread-safe; making one is not, and costs ~0.1 s of CPU). Its connections
    stay open between captures. With either, a new client is made from the session given or the shared one.
    """
    if service not in READ_OPERATIONS:
        raise ReadOnlyViolation(f"no read operations are allowed for service {service!r}")
    if boto3_session is not None:
        return _new_client(service, aws, boto3_session, config)
    key = _cache_key(aws)
    with _CACHE_LOCK:  # a Session is not thread-safe
        sess = _session_locked(key, aws)
        if config is not None:
            return _new_client(service, aws, sess, config)
        c = _CLIENTS.get((service, key))
        if c is None:
            c = _new_client(service, aws, sess, None)
            if key in _SESSIONS:  # kept only with its session (one that found credentials)
                _CLIENTS[(service, key)] = c
        return c


def _new_client(service: str, aws: dict | None, sess, config):
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
