"""The overview's span/timeline and the postmortem draft that follows the team's template."""

import numpy as np
import pandas as pd

from forensics import postmortem
from forensics.analysis import overview
from forensics.params import Incident
from forensics.window import IncidentWindow

IDX = pd.date_range("2026-11-23T09:00:00Z", periods=120, freq="1min")
WINDOW = IncidentWindow("2026-11-23T09:30:00Z", "2026-11-23T11:00:00Z")


def traffic(recover_at=None):
    rng = np.random.default_rng(1)
    rate = pd.Series(0.001 + rng.normal(0, 0.0003, len(IDX)), index=IDX).clip(0)
    rate[IDX >= pd.Timestamp("2026-11-23T10:05:00Z")] = 0.25 + rng.normal(0, 0.02, (IDX >= pd.Timestamp("2026-11-23T10:05:00Z")).sum())
    if recover_at:
        rate[IDX >= pd.Timestamp(recover_at)] = 0.001
    return pd.DataFrame({"error_rate": rate, "requests": 1000.0, "errors_5xx": rate * 1000})


def test_span_of_an_ongoing_incident():
    span = overview.incident_span(traffic(), WINDOW)
    assert abs(span["onset"] - pd.Timestamp("2026-11-23T10:05:00Z")) <= pd.Timedelta("1min")
    assert span["recovered"] is None and span["ongoing"] is True
    assert span["duration_minutes"] == 55.0


def test_span_of_a_recovered_incident():
    span = overview.incident_span(traffic(recover_at="2026-11-23T10:35:00Z"), WINDOW)
    assert span["recovered"] == pd.Timestamp("2026-11-23T10:35:00Z")
    assert span["ongoing"] is False and span["duration_minutes"] == 30.0


def test_timeline_keeps_changes_and_marks_onset():
    events = pd.DataFrame({"timestamp": pd.to_datetime(["2026-11-23T10:00:00Z", "2026-11-23T10:01:00Z",
                                                        "2026-11-23T06:00:00Z"], utc=True),
                           "source": "ecs", "resource": "c/s", "kind": ["deployment", "service-event", "deployment"],
                           "message": ["api:42 PRIMARY", "started 2 tasks", "api:41 long ago"]})
    tl = overview.build_timeline(events, span={"onset": pd.Timestamp("2026-11-23T10:05:00Z"), "signal": "error_rate"},
                                 window=WINDOW)
    assert tl["kind"].tolist() == ["deployment", "onset"]
    rec = overview.timeline_records(tl)
    assert rec[0]["time"] == "2026-11-23T10:00:00Z" and rec[1]["kind"] == "onset"


def test_postmortem_follows_the_template_and_marks_blanks():
    inc = Incident("INC-7", "Wide 500s after deploy", "P1", WINDOW, {"name": "production"})
    findings = {
        "overview": {"status": "ok", "onset": "2026-11-23T10:05:00Z", "recovered": None, "duration_minutes": 55.0,
                     "ongoing": True, "failed_requests": 12000, "impact": {"requests": 60000, "failed_requests": 12000},
                     "timeline": [{"time": "2026-11-23T10:00:00Z", "source": "ecs", "resource": "c/s",
                                   "kind": "deployment", "message": "api:42 PRIMARY"}]},
        "api-errors": {"status": "ok", "onset": "2026-11-23T10:05:00Z", "error_rate_peak": 0.3,
                       "suspected_change": {"time": "2026-11-23T10:00:00Z", "kind": "deployment", "resource": "c/s",
                                            "message": "api:42"},
                       "top_error_signatures": ['INFO: <*> "GET <*> HTTP/<*>" 500', "TimeoutError: QueuePool limit"]},
        "db-connections": {"status": "failed", "unknown": ["peak_connections"]},
    }
    nbs = [{"name": "overview", "status": "ok"}, {"name": "db-connections", "status": "failed", "error": "boom"}]
    md = postmortem.render(inc, findings, nbs, ["data/alb_metrics.parquet"], record_name="x/y")
    for heading in ("# Incident Postmortem: Wide 500s after deploy", "## What Happened", "## Timeline",
                    "## Root Cause", "## Impact", "## What Went Well", "## What Went Wrong", "## Action Items"):
        assert heading in md
    assert "**Severity**: P1" in md and "**Duration**: 55 minutes (still ongoing" in md
    assert "- 10:00 - ecs: deployment: api:42 PRIMARY" in md
    assert "Requests affected: 12,000 of 60,000" in md
    # db-connections failed: the pool hypothesis has no evidence, and nothing else holds
    assert "No runbook entry is supported by the evidence in this record." in md
    assert "[db-connections](html/db-connections.html) (failed)" in md and "error: boom" in md
    assert "db-connections: peak_connections" in md
    assert md.count(postmortem.BLANK) >= 5


def test_bursts_of_one_kind_are_one_timeline_line():
    t = pd.to_datetime(["2026-11-23T10:10:00Z", "2026-11-23T10:11:00Z", "2026-11-23T10:12:30Z",
                        "2026-11-23T10:40:00Z"], utc=True)
    events = pd.DataFrame({"timestamp": t, "source": "cloudtrail", "resource": "secretsmanager",
                           "kind": "GetSecretValue", "message": "GetSecretValue by svc-legacy"})
    tl = overview.build_timeline(events, window=WINDOW)
    assert tl["message"].tolist() == ["GetSecretValue by svc-legacy (x3 until 10:12)", "GetSecretValue by svc-legacy"]


def test_root_cause_is_one_paragraph_per_hypothesis_that_holds_with_evidence_links_and_the_runbook():
    from test_diagnosis import FINDINGS

    inc = Incident("INC-7", "Wide 500s after deploy", "P1", WINDOW, {"name": "production"})
    findings = {**FINDINGS, "overview": {"status": "ok", "onset": "2026-11-23T10:05:00Z", "timeline": [
        {"time": "2026-11-23T10:06:00Z", "source": "cloudwatch", "resource": "api-5xx-rate", "kind": "alarm",
         "message": "Alarm updated from OK to ALARM"},
        {"time": "2026-11-23T10:06:20Z", "source": "cloudwatch", "resource": "db-connections", "kind": "alarm",
         "message": "Alarm updated from OK to ALARM"}]}}
    md = postmortem.render(inc, findings, [], [])
    root = md.split("## Root Cause", 1)[1].split("## Impact", 1)[0]
    paragraphs = [p for p in root.split("\n\n") if p.startswith("**")]
    assert paragraphs[0].startswith("**API requests failing (ALB 5xx): deployment → database connection pool "
                                    "exhausted → API 5xx** (primary)")
    assert "[db-connections.pool_errors = `900`](html/db-connections.html)" in paragraphs[0]
    assert 'runbook `004_b9c89ee92470956a.txt`, section "Incident 4: Database Connection Pool Exhausted"' in paragraphs[0]
    assert any("(concurrent, independent of the primary)" in p and "failover" in p for p in paragraphs)
    assert "Ruled out by the evidence:" in root and "a cause must precede its effect" in root
    happened = md.split("## What Happened", 1)[1].split("## Timeline", 1)[0]
    assert "The evidence supports deployment → database connection pool exhausted → API 5xx" in happened
    assert "Independent of it, in the same window: Redis errors in the application" in happened
    assert "- 10:06 - cloudwatch: alarm api-5xx-rate: Alarm updated from OK to ALARM" in md
    assert "- 10:06 - cloudwatch: alarm db-connections: Alarm updated from OK to ALARM" in md
