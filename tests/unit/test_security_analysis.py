"""security: principals, new source IPs (against a baseline and known ranges), sensitive calls, bursts."""

from __future__ import annotations

import pandas as pd

from forensics.analysis import security

T = pd.Timestamp("2026-11-23T10:00:00Z")


def _ev(minute, principal, ip, name, error=None, i=[0]):  # noqa: B006 - a counter for unique ids
    i[0] += 1
    return {"timestamp": T + pd.Timedelta(seconds=60 * minute + i[0] % 50), "principal": principal, "source_ip": ip,
            "event_name": name, "error_code": error, "event_id": f"e{i[0]}"}


def _frames():
    baseline = pd.DataFrame([_ev(-300, "arn:aws:iam::1:user/alice", "192.0.2.10", "ListUsers"),
                             _ev(-200, "arn:aws:iam::1:user/ci", "10.1.2.3", "GetSecretValue")])
    events = pd.DataFrame(
        [_ev(1, "arn:aws:iam::1:user/alice", "192.0.2.10", "DescribeInstances"),
         _ev(2, "arn:aws:iam::1:user/ci", "10.1.9.9", "GetSecretValue"),  # new IP, but in a known range
         _ev(3, "secretsmanager.amazonaws.com", "secretsmanager.amazonaws.com", "Decrypt"),
         _ev(4, "arn:aws:iam::1:user/leaked", "203.0.113.77", "CreateAccessKey")]
        + [_ev(5, "arn:aws:iam::1:user/leaked", "203.0.113.77", "GetSecretValue") for _ in range(12)]
        + [_ev(6, "arn:aws:iam::1:user/alice", "192.0.2.10", "StopLogging", error="AccessDenied")])
    return events, baseline


def test_principals_new_first():
    events, baseline = _frames()
    who = security.principals(events, baseline)
    assert who.iloc[0]["principal"] == "arn:aws:iam::1:user/leaked" and who.iloc[0]["new"]
    assert who.iloc[0]["sensitive_calls"] == 13 and who.iloc[0]["source_ips"] == ["203.0.113.77"]
    alice = who[who["principal"].str.endswith("alice")].iloc[0]
    assert not alice["new"] and alice["errors"] == 1


def test_new_source_ips_skip_known_ranges_and_service_names():
    events, baseline = _frames()
    assert security.new_source_ips(events, baseline)["source_ip"].tolist() == ["10.1.9.9", "203.0.113.77"]
    new = security.new_source_ips(events, baseline, known=["10.0.0.0/8"])
    assert new["source_ip"].tolist() == ["203.0.113.77"]
    assert new.iloc[0]["sensitive_calls"] == 13 and new.iloc[0]["principals"] == ["arn:aws:iam::1:user/leaked"]
    # without a baseline everything addressable is new; service names never are
    assert "secretsmanager.amazonaws.com" not in security.new_source_ips(events, None)["source_ip"].tolist()


def test_sensitive_calls_new_actors_first_and_bursts():
    events, baseline = _frames()
    calls = security.sensitive_calls(events, baseline, known=["10.0.0.0/8"])
    top = calls.iloc[0]
    assert (top["event_name"], top["calls"], top["new_principal"], top["new_ip"]) == ("GetSecretValue", 12, True, True)
    assert calls.iloc[1]["event_name"] == "CreateAccessKey"
    stop = calls[calls["event_name"] == "StopLogging"].iloc[0]
    assert stop["failed"] == 1 and not stop["new_principal"]
    b = security.bursts(events)
    assert b.iloc[0]["calls"] == 12 and b.iloc[0]["event_name"] == "GetSecretValue"
    marks = security.key_moments(events, baseline, known=["10.0.0.0/8"])
    assert marks[0][1] == "CreateAccessKey by user/leaked"
    rec = security.as_records(calls, limit=1, short=True)
    assert rec[0]["principal"] == "user/leaked"


def test_empty_frames_and_bad_known_range():
    empty = pd.DataFrame(columns=["timestamp", "principal", "source_ip", "event_name", "error_code", "event_id"])
    assert security.principals(empty).empty and security.new_source_ips(empty).empty
    assert security.sensitive_calls(empty).empty and security.bursts(empty).empty
    events, _ = _frames()
    import pytest

    with pytest.raises(ValueError, match="known_ips"):
        security.new_source_ips(events, None, known=["not-a-range"])


# ---- rules, behaviour and stories through analysis.security ---------------------------------------------------
def _trail_frame(n_setup: int = 40):
    """A window with a busy set-up actor and a quiet attacker whose single decisive calls come late."""
    import json

    from forensics.sources import _typed
    from forensics.sources.cloudtrail import RECORD_COLUMNS, record_row

    def r(minute, name, arn, ip, ua, read_only=True, error=None, extra=None, k=[0]):  # noqa: B006
        k[0] += 1
        d = {"eventTime": (T + pd.Timedelta(seconds=int(60 * minute))).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "eventName": name, "eventSource": "iam.amazonaws.com", "sourceIPAddress": ip, "userAgent": ua,
             "readOnly": read_only, "eventID": f"x{k[0]}", "userIdentity": {"type": "IAMUser", "arn": arn}}
        if error:
            d["errorCode"] = error
        d.update(extra or {})
        return record_row(d)

    ci = "arn:aws:iam::1:user/ci"
    rows = [r(i / 10, "GetParameter", ci, "10.0.0.5", "Terraform/1.5") for i in range(n_setup)]
    rows += [r(50 + i, n, "arn:aws:iam::1:user/leaked", "203.0.113.77", "curl/8", read_only=False)
             for i, n in enumerate(["PutBucketLifecycle", "LeaveOrganization", "DeleteFlowLogs", "CreateLoginProfile",
                                    "UpdateAssumeRolePolicy", "CreateAccessKey"])]
    rows += [r(60 + i / 100, "DescribeInstanceAttribute", "arn:aws:iam::1:user/leaked", "203.0.113.77", "curl/8",
               error="Client.UnauthorizedOperation") for i in range(15)]
    assert json.loads(rows[0]["detail"])["eventName"] == "GetParameter"
    return _typed(pd.DataFrame(rows), RECORD_COLUMNS)


def test_detection_findings_keep_every_flagged_call_and_rank_the_quiet_attacker_first():
    import json

    det = security.detect(_trail_frame(), None, {})
    actors = security.suspicious_actors(det)
    assert actors[0]["story"].startswith("arn:aws:iam::1:user/leaked | 203.0.113.77")
    stories_ = security.actor_stories(det)
    names = [c["event_name"] for c in stories_[0]["calls"]]
    assert names == ["PutBucketLifecycle", "LeaveOrganization", "DeleteFlowLogs", "CreateLoginProfile",
                     "UpdateAssumeRolePolicy", "CreateAccessKey", "DescribeInstanceAttribute"]
    assert stories_[0]["calls"][-1]["errors"] == {"Client.UnauthorizedOperation": 15}
    assert stories_[0]["decisive"]
    flagged = security.flagged_calls(det)
    assert sum(1 for f in flagged if f["event_name"] == "DescribeInstanceAttribute") == 15  # never cut
    json.dumps({"a": actors, "s": stories_, "f": flagged, "r": security.rule_hits(det)})  # JSON-ready


def test_security_timeline_reaches_the_overview_and_the_postmortem_without_an_alb():
    from forensics.analysis import overview
    from forensics.params import Incident
    from forensics.postmortem import render
    from forensics.window import IncidentWindow

    frame = _trail_frame()
    events = overview.security_events(frame, {})
    assert (events["kind"] == "security").all() and events["message"].str.contains("PutBucketLifecycle").any()
    window = IncidentWindow(T - pd.Timedelta(minutes=5), T + pd.Timedelta(hours=2))
    tl = overview.build_timeline(events, window=window)
    assert tl["message"].str.contains("LeaveOrganization").any()
    records = overview.timeline_records(tl)
    inc = Incident(incident="INC-1", title="t", severity="P1", window=window, environment={"name": "e"},
                   notebooks=None, source_path="x")
    md = render(inc, {"overview": {}, "security": {"security_timeline": records}}, [], [])
    assert "LeaveOrganization" in md.split("## Timeline")[1].split("## Root Cause")[0]


def test_the_postmortem_takes_the_security_notebooks_lines_over_the_overviews():
    from forensics.params import Incident
    from forensics.postmortem import render
    from forensics.window import IncidentWindow

    window = IncidentWindow(T, T + pd.Timedelta(hours=1))
    inc = Incident(incident="INC-1", title="t", severity="P1", window=window, environment={"name": "e"},
                   notebooks=None, source_path="x")
    cold = {"time": "2026-11-23T10:05:00Z", "source": "cloudtrail", "resource": "user/x", "kind": "security",
            "message": "user/x called CreateAccessKey - rule"}
    deploy = {"time": "2026-11-23T10:01:00Z", "source": "ecs", "resource": "api", "kind": "deployment",
              "message": "deployed"}
    warm = {**cold, "message": "user/x called CreateAccessKey - rule, new_actor_mutation"}
    md = render(inc, {"overview": {"timeline": [deploy, cold]}, "security": {"security_timeline": [warm]}}, [], [])
    section = md.split("## Timeline")[1].split("## Root Cause")[0]
    assert section.count("CreateAccessKey") == 1 and "new_actor_mutation" in section and "deployed" in section
