"""Logs Insights unavailable (the policy lacks logs:StartQuery; AWS answers AccessDeniedException): the
per-minute and exact-count captures fail and say why, the bounded sample is read with FilterLogEvents over the
same slices, and the ranking rests on it and says so - the failure still first. A closed port: every log
capture fails with a one-line reason, nothing is ranked."""

from __future__ import annotations

import pandas as pd
import pytest

import forensics
from forensics import params
from forensics.analysis import log_change
from forensics_sandbox.scenarios import volume
from forensics.window import IncidentWindow
from tests.loopback_proxy import LoopbackProxy
from tests.trust.fault_server import closed_port

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def planted(moto_server):
    """The volume scenario's events at 2 % of its rates (about 20,000) in moto's default account."""
    plan = volume.Plan(pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=5), factor=0.02)
    logs = moto_server.client("logs")
    group = f"{volume.LOG_GROUP}-fallback"
    logs.create_log_group(logGroupName=group)
    for stream in volume.STREAMS:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    for stream, events in plan.batches():
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    yield plan, group
    logs.delete_log_group(logGroupName=group)


def _session(tmp_path, endpoint, plan, group):
    t = plan.t
    env = {"name": "fallback", "aws": {"region": "eu-west-1", "endpoint_url": endpoint}, "logs": {"app": [group]}}
    inc_file = tmp_path / "incident.yaml"
    env_file = tmp_path / "env.yaml"
    env_file.write_text(params.dump(env))
    inc_file.write_text(params.dump({"incident": "FALLBACK", "title": "t", "severity": "P2",
                                     "environment": str(env_file),
                                     "window": {"start": t["window_start"].isoformat(), "end": t["end"].isoformat()}}))
    return forensics.open_incident(inc_file, notebook="fallback")


def test_without_insights_the_sample_is_read_with_filter_log_events(tmp_path, moto_server, planted):
    plan, group = planted
    proxy = LoopbackProxy(moto_server.endpoint_url, deny={"StartQuery"}).start()
    try:
        inc = _session(tmp_path, proxy.endpoint_url, plan, group)
        rate = inc.pull("app_error_per_minute")
        sample = inc.pull("app_error_sample")
        counts = inc.pull("app_error_signature_counts")
    finally:
        proxy.stop()
    assert "StartQuery" in proxy.denied
    sources = inc.sources().set_index("capture")
    assert sources.loc["app_error_per_minute", "status"] == "FAILED"
    assert "AccessDenied" in sources.loc["app_error_per_minute", "error"]
    assert sources.loc["app_error_signature_counts", "status"] == "FAILED"
    # the sample answered, by the fallback: the sources table says so
    assert sources.loc["app_error_sample", "status"] == "partial" and len(sample) > 100
    assert "Logs Insights unavailable, bounded sample instead" in sources.loc["app_error_sample", "error"]
    assert (sample["via"] == "filter_log_events").all()
    sampling = inc.captures["app_error_sample"].args["sampling"]
    assert sampling["onset_guess_from"] == "window start"  # no per-minute counts to guess from
    ranked, basis = log_change.changed_at_onset(counts, sample, sampling, plan.t["onset"], inc.context_window)
    assert basis.startswith("bounded sample") and "FilterLogEvents" in basis and "AccessDenied" in basis
    assert "QueuePool limit of size" in ranked["signature"].iloc[0] and ranked["change"].iloc[0] == "new"
    assert rate.empty
    inc.finding("error_signature_counts", basis, needs=["app_error_signature_counts"])
    assert "error_signature_counts" in inc.unknown


def test_a_closed_port_fails_every_log_capture_with_one_line(tmp_path, planted):
    plan, group = planted
    inc = _session(tmp_path, f"http://127.0.0.1:{closed_port()}", plan, group)
    for name in ("app_error_per_minute", "app_error_sample", "app_error_signature_counts"):
        frame = inc.pull(name)
        assert frame.empty and "\n" not in inc.captures[name].error
    ranked, basis = log_change.changed_at_onset(inc.pull("app_error_signature_counts"), inc.pull("app_error_sample"),
                                                {}, plan.t["onset"], IncidentWindow(plan.t["start"], plan.t["end"]))
    assert ranked.empty and basis.startswith("nothing to rank")
