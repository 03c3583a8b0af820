"""AWS is read-only by construction: one table of allowed operations, enforced and published as IAM."""

import json
from pathlib import Path

import pytest

from forensics import _aws
from forensics.errors import ReadOnlyViolation

POLICY = Path(_aws.__file__).parent / "iam" / "forensics-read-only.json"


def test_committed_iam_policy_matches_the_code():
    assert json.loads(POLICY.read_text()) == _aws.iam_policy(), (
        "regenerate lib/forensics/iam/forensics-read-only.json from forensics._aws.iam_policy()")


def test_policy_has_only_read_actions():
    actions = _aws.iam_policy()["Statement"][0]["Action"]
    verbs = ("Describe", "Get", "List", "Filter", "Lookup", "StartQuery", "StopQuery")
    assert all(a.split(":")[1].startswith(verbs) for a in actions), actions
    assert "elasticloadbalancing:DescribeTargetHealth" in actions


@pytest.mark.sandbox
def test_a_write_call_is_refused_before_it_leaves_the_process(moto_server, aws_env):
    logs = moto_server.client("logs")
    logs.create_log_group(logGroupName="/ro-test")
    client = _aws.client("logs", aws_env)
    with pytest.raises(ReadOnlyViolation, match="logs:DeleteLogGroup is not a read operation"):
        client.delete_log_group(logGroupName="/ro-test")
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert "/ro-test" in groups  # still there: the request never reached the server
    assert client.describe_log_groups()["logGroups"]


def test_unknown_service_is_refused():
    with pytest.raises(ReadOnlyViolation, match="no read operations are allowed for service 'iam'"):
        _aws.client("iam", {"region": "eu-west-1"})


def test_s3_reads_map_to_their_iam_actions():
    actions = _aws.iam_policy()["Statement"][0]["Action"]
    assert "s3:ListBucket" in actions and "s3:GetObject" in actions  # ListObjectsV2 is authorised by ListBucket
    assert "s3:ListObjectsV2" not in actions and not any(a.startswith("s3:Put") for a in actions)


def test_loopback_detection():
    assert _aws.is_loopback_url("http://127.0.0.1:5000")
    assert _aws.is_loopback_url("http://localhost:1")
    assert not _aws.is_loopback_url("https://monitoring.eu-west-1.amazonaws.com")
    assert not _aws.is_loopback_url(None)


def test_a_client_is_made_once_per_service_and_aws_section(monkeypatch):
    """Making a client costs ~0.1 s of CPU; a notebook asks for twenty. The same service and section get the
    same (thread-safe) client; another section, other AWS_* variables or an explicit config get a new one."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"}
    first = _aws.client("logs", aws)
    assert _aws.client("logs", dict(aws)) is first
    assert _aws.client("cloudwatch", aws) is not first
    assert _aws.client("logs", {**aws, "region": "us-east-1"}) is not first
    assert _aws.client("logs", aws, config=_aws.client_config()) is not first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "another")
    assert _aws.client("logs", aws) is not first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    assert _aws.client("logs", aws) is first
    with pytest.raises(ReadOnlyViolation):  # a shared client still refuses writes
        first.delete_log_group(logGroupName="x")


def test_a_session_without_credentials_is_not_kept(monkeypatch, tmp_path):
    """A user who logs in after a call failed for want of credentials is seen by the next call."""
    for var in _aws._SESSION_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws = {"region": "eu-west-1"}
    assert _aws.shared_session(aws).get_credentials() is None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "now")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "logged-in")
    assert _aws.shared_session(aws).get_credentials().access_key == "now"


def test_a_shared_client_has_connections_for_every_thread_that_may_use_it(monkeypatch):
    """One client serves every plan thread, each reading S3 delivery files several at a time: with botocore's
    default pool of 10, urllib3 would discard connections (and warn) whenever more were in use."""
    from forensics import defaults
    from forensics.sources import s3_objects

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = _aws.client("s3", {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"})
    assert s3.meta.config.max_pool_connections >= defaults.PLAN_THREADS * s3_objects.READ_THREADS
