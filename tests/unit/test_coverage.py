"""Coverage: a notebook whose sources all failed, or that found no data where data must exist, is
"no evidence"; a capture derived from a failed one fails too, so its findings are null and unknown."""

import socket
import textwrap

import pandas as pd
import pytest

import forensics
from forensics import coverage

ENV = {"name": "e", "aws": {"region": "eu-west-1"}, "alb": {"load_balancer": "app/x/1"}, "logs": {"app": ["/a"]}}


def meta(name, rows=0, error=None, **kw):
    return {"name": name, "rows": rows, "error": error, **kw}


def test_capture_states():
    assert coverage.of_capture(meta("app_error_logs", 0)).state == coverage.ANSWERED  # zero errors is an answer
    assert coverage.of_capture(meta("app_error_logs", 0, "EndpointConnectionError: x")).state == coverage.FAILED
    empty = coverage.of_capture(meta("alb_metrics", 0))
    assert empty.state == coverage.NO_DATA and "no data where data must exist" in empty.why
    assert coverage.of_capture(meta("alb_metrics", 120)).state == coverage.ANSWERED
    assert coverage.of_capture(meta("alb_access_logs", 9, reading={"bad_lines": 2})).state == coverage.PARTIAL


def test_a_notebook_whose_sources_all_failed_has_no_evidence():
    status, why = coverage.notebook([meta("app_error_logs", 0, "AccessDenied"), meta("alb_metrics", 0, "Timeout")], ENV)
    assert status == coverage.NO_EVIDENCE and set(why) == {"app_error_logs", "alb_metrics"}


def test_failures_beside_empty_answers_are_no_evidence_but_one_row_is_evidence():
    caps = [meta("app_error_logs", 0, "Timeout"), meta("rds_replica_events", 0)]  # no replica: empty, no call
    env = {**ENV, "rds": {"instance": "db"}}
    assert coverage.notebook(caps, env)[0] == coverage.NO_EVIDENCE
    assert coverage.notebook([*caps, meta("rds_events", 3)], env)[0] == coverage.OK
    assert coverage.notebook([meta("app_error_logs", 0), meta("rds_events", 0)], env) == (coverage.OK, {})


def test_a_configured_load_balancer_with_no_requests_is_no_evidence():
    status, why = coverage.notebook([meta("alb_metrics", 0), meta("app_error_logs", 30)], ENV)
    assert status == coverage.NO_EVIDENCE and list(why) == ["alb_metrics"]


def test_one_source_failing_among_answers_is_ok_but_listed():
    status, why = coverage.notebook([meta("alb_metrics", 500), meta("app_error_logs", 0, "Throttling")], ENV)
    assert status == coverage.OK and why == {"app_error_logs": "Throttling"}


def test_a_source_the_environment_does_not_configure_does_not_count():
    env = {"name": "e", "aws": {"region": "eu-west-1"}, "logs": {"app": ["/a"]}}
    caps = [meta("alb_metrics", 0, "LookupError: the environment has no alb section"), meta("app_error_logs", 3)]
    assert coverage.notebook(caps, env) == (coverage.OK, {})
    assert coverage.failed_sources(caps, env) == {}
    assert coverage.failed_sources(caps, ENV) == {"alb_metrics": "LookupError: the environment has no alb section"}


@pytest.fixture()
def refused_incident(tmp_path):
    """An environment whose AWS endpoint refuses every connection (a stopped server's port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "env.yaml").write_text(textwrap.dedent(f"""\
        name: refused
        aws: {{region: eu-west-1, profile: null, endpoint_url: "http://127.0.0.1:{port}", max_attempts: 1,
              connect_timeout_s: 1}}
        alb:
          load_balancer: app/x/1
          access_logs: {{bucket: logs-bucket, prefix: scr-api}}
    """))
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=5)
    (tmp_path / "i.yaml").write_text(textwrap.dedent(f"""\
        incident: INC-R
        title: refused
        severity: P2
        environment: {tmp_path / 'env.yaml'}
        window: {{start: "{(end - pd.Timedelta(hours=1)).isoformat()}", end: "{end.isoformat()}"}}
    """))
    return tmp_path / "i.yaml"


def test_a_derived_capture_fails_when_its_input_failed(refused_incident):
    inc = forensics.open_incident(refused_incident, notebook="api-errors")
    endpoints = inc.pull("alb_endpoints")
    assert inc.captures["alb_access_logs"].error  # the listing did not answer
    err = inc.captures["alb_endpoints"].error
    assert err and "its input alb_access_logs failed" in err, err
    assert endpoints.attrs.get("capture_error") and len(endpoints) == 0
    # the finding over it is unknown, never "nothing is failing"
    assert inc.finding("failing_endpoints", [], needs=["alb_endpoints"]) is None
    assert inc.findings["failing_endpoints"] is None and "failing_endpoints" in inc.unknown
    status, why = coverage.notebook([inc.captures[n].to_json() for n in inc.captures], inc.env)
    assert status == coverage.NO_EVIDENCE and set(why) == {"alb_access_logs", "alb_endpoints"}
