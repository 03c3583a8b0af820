"""Behaviour signals on small hand-made CloudTrail records (forensics.detection.behaviour, actors, stories)."""

from __future__ import annotations

import pandas as pd
import pytest

from forensics.detection import actors, behaviour, stories
from forensics.sources import _typed
from forensics.sources.cloudtrail import RECORD_COLUMNS, record_row

T = pd.Timestamp("2026-11-23T10:00:00Z")
ACC = "111122223333"
ALICE = f"arn:aws:iam::{ACC}:user/alice"
CLI = "aws-cli/2.13.1 Python/3.11.4 Linux/6.1 exe/x86_64"


def rec(minute: float, name: str, *, arn=ALICE, ip="192.0.2.10", ua=CLI, source="iam.amazonaws.com",
        read_only=True, error=None, ptype="IAMUser", extra=None, i=[0]) -> dict:  # noqa: B006 - id counter
    i[0] += 1
    r = {"eventTime": (T + pd.Timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ"), "eventName": name,
         "eventSource": source, "sourceIPAddress": ip, "userAgent": ua, "readOnly": read_only,
         "eventID": f"e{i[0]}", "awsRegion": "eu-west-1",
         "userIdentity": {"type": ptype, "arn": arn, "accessKeyId": "AKIAIOSFODNN7EXAMPLE"}}
    if error:
        r["errorCode"] = error
    r.update(extra or {})
    return r


def frame(records) -> pd.DataFrame:
    df = _typed(pd.DataFrame([record_row(r) for r in records]), RECORD_COLUMNS)
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def ann(records):
    return actors.annotate(frame(records))


def test_actor_folding_principal_session_agent_network():
    assert actors.principal_of(f"arn:aws:sts::{ACC}:assumed-role/web/i-0abc1234def567890") == \
        f"arn:aws:iam::{ACC}:role/web"
    assert actors.session_of(f"arn:aws:sts::{ACC}:assumed-role/web/i-0abc1234def567890") == "i-0abc1234def567890"
    assert actors.agent_family("aws-cli/2.13.1 Python/3.11.4 Linux/6.1") == \
        actors.agent_family("[aws-cli/2.15.0 Python/3.12.0 Linux/6.5]")
    assert actors.agent_family("tool_6a7ec681-49a5-4403-99a2-d3c1229e8063") == \
        actors.agent_family("tool_39f95f43-cd2f-4beb-b69e-be60b6fe1f57")
    assert actors.agent_family("Boto3/1.26 Python/3.10") != actors.agent_family("aws-cli/2.13 Python/3.10")
    assert actors.network_of("198.51.100.7") == "198.51.100.0/24"
    assert actors.network_of("AWS Internal") == "AWS Internal"


def test_the_record_detail_keeps_no_access_key_id():
    row = record_row(rec(0, "CreateAccessKey", read_only=False,
                         extra={"responseElements": {"accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE"}}}))
    assert "AKIA" not in row["detail"] and '"CreateAccessKey"' in row["detail"]


def test_first_seen_api_only_for_a_known_principal_with_a_baseline():
    base = ann([rec(-2000, "ListUsers"), rec(-1900, "GetUser")])
    win = ann([rec(1, "ListUsers"), rec(2, "ListAccessKeys"), rec(3, "ListUsers", arn=f"arn:aws:iam::{ACC}:user/bob")])
    s = behaviour.first_seen_api(win, base)
    assert win.loc[s["row"], "event_name"].tolist() == ["ListAccessKeys"]
    assert behaviour.first_seen_api(win, None).empty  # no baseline: unknown, not flagged


def test_mutations_by_an_actor_new_to_the_account():
    base = ann([rec(-3000, "CreateUser", read_only=False)])
    win = ann([rec(1, "CreateUser", read_only=False),                                  # known actor
               rec(2, "PutBucketPolicy", read_only=False, ip="203.0.113.9"),           # alice, new address
               rec(3, "ListBuckets", ip="203.0.113.9"),                                # read-only: not a mutation
               rec(4, "AttachUserPolicy", read_only=False, arn=f"arn:aws:iam::{ACC}:user/mallory", ip="203.0.113.9")])
    s = behaviour.new_actor_mutation(win, base)
    assert sorted(win.loc[s["row"], "event_name"]) == ["AttachUserPolicy", "PutBucketPolicy"]
    assert any("new to the account" in d for d in s["detail"])


def test_denied_bursts_need_many_denials_or_many_apis_and_not_routine():
    win = ann([rec(1 + k / 10, "GetPasswordData", error="Client.UnauthorizedOperation", source="ec2.amazonaws.com")
               for k in range(6)]
              + [rec(20, "GetCostForecast", error="AccessDenied")]                    # one denial: not a burst
              + [rec(30 + k / 10, n, error="AccessDeniedException") for k, n in
                 enumerate(["ListSecrets", "GetSecretValue", "ListKeys"])]              # 3 APIs denied
              + [rec(40, "DescribeTrails", error="ThrottlingException")])             # throttling is not denial
    s = behaviour.denied_burst(win)
    names = set(win.loc[s["row"], "event_name"])
    assert names == {"GetPasswordData", "ListSecrets", "GetSecretValue", "ListKeys"}
    routine = ann([rec(-3000 + k / 10, "GetPasswordData", error="Client.UnauthorizedOperation",
                       source="ec2.amazonaws.com") for k in range(8)])
    assert "GetPasswordData" not in set(win.loc[behaviour.denied_burst(win, routine)["row"], "event_name"])


def test_role_session_outside_its_usual_network():
    role = f"arn:aws:sts::{ACC}:assumed-role/web-instance/i-0abc1234def567890"
    agent = "aws-sdk-go/1.41 amazon-ssm-agent/3.2"
    base = ann([rec(-3000, "UpdateInstanceInformation", arn=role, ptype="AssumedRole", ip="3.225.16.109", ua=agent)])
    win = ann([rec(1, "UpdateInstanceInformation", arn=role, ptype="AssumedRole", ip="3.225.16.109", ua=agent),
               rec(2, "GetCallerIdentity", arn=role, ptype="AssumedRole", ip="198.51.100.20", ua=CLI),
               rec(3, "Decrypt", arn=role, ptype="AssumedRole", ip="AWS Internal", ua="AWS Internal")])
    s = behaviour.role_outside_network(win, base)
    assert win.loc[s["row"], "source_ip"].tolist() == ["198.51.100.20"]
    # no baseline for the role: a session that moves to a second network after its first
    s = behaviour.role_outside_network(win, None)
    assert win.loc[s["row"], "source_ip"].tolist() == ["198.51.100.20"]


def test_enumeration_many_apis_over_many_services_quickly():
    sweep = [rec(1 + k / 20, f"List{k}", source=f"svc{k % 4}.amazonaws.com") for k in range(22)]
    narrow = [rec(100 + k / 20, f"GetBucket{k}", source="s3.amazonaws.com", ip="192.0.2.11") for k in range(25)]
    slow = [rec(200 + 15 * k, f"Describe{k}", source=f"svc{k % 4}.amazonaws.com", ip="192.0.2.12") for k in range(22)]
    win = ann(sweep + narrow + slow)
    s = behaviour.enumeration(win)
    assert set(win.loc[s["row"], "source_ip"]) == {"192.0.2.10"} and len(s) == 22


def test_sensitive_list_is_one_signal():
    win = ann([rec(1, "StopLogging", read_only=False), rec(2, "ListUsers")])
    s = behaviour.sensitive_call(win, {"StopLogging"})
    assert win.loc[s["row"], "event_name"].tolist() == ["StopLogging"]


def test_stories_rank_by_evidence_not_calls_and_keep_every_call():
    role_arn = f"arn:aws:iam::{ACC}:role/admin"
    session = f"arn:aws:sts::{ACC}:assumed-role/admin/s1"
    base_records = frame([rec(-3000 + k, "DescribeInstances", source="ec2.amazonaws.com", ip="192.0.2.50",
                              arn=f"arn:aws:iam::{ACC}:user/ci") for k in range(5)] + [rec(-2000, "ListUsers")])
    busy = [rec(k / 10, "DescribeInstances", source="ec2.amazonaws.com", ip="192.0.2.50",
                arn=f"arn:aws:iam::{ACC}:user/ci") for k in range(300)]
    attacker = [rec(5, "AssumeRole", ip="203.0.113.5", source="sts.amazonaws.com", read_only=False,
                    extra={"requestParameters": {"roleArn": role_arn},
                           "responseElements": {"assumedRoleUser": {"arn": session}}}),
                rec(6, "PutBucketLifecycle", arn=session, ptype="AssumedRole", ip="203.0.113.5",
                    source="s3.amazonaws.com", read_only=False)]
    det = stories.detect(frame(busy + attacker), base_records, sensitive={"PutBucketLifecycle"})
    top = det.suspicious.iloc[0]
    assert top["story"].startswith(ALICE + " | 203.0.113.5")        # the quiet actor, not the 300-call one
    story = det.story(top["story"])
    # the role session it created is part of its story, in order
    assert story["event_name"].tolist() == ["AssumeRole", "PutBucketLifecycle"]
    assert set(det.flagged["event_name"]) >= {"AssumeRole", "PutBucketLifecycle"}
    assert any("PutBucketLifecycle" in d for d in det.decisive(top["story"]))
    assert not det.actors[det.actors["story"].str.contains("user/ci")]["suspicious"].any()


def test_an_empty_window_is_empty_not_an_error():
    det = stories.detect(frame([]).iloc[0:0], None)
    assert det.actors.empty and det.flagged.empty


@pytest.mark.parametrize("only", [("sensitive_call",), ()])
def test_only_selects_signals(only):
    win = ann([rec(1, "StopLogging", read_only=False)])
    assert set(behaviour.signals(win, None, sensitive={"StopLogging"}, only=only)["signal"]) == set(only)


def test_an_actor_new_to_the_account_ranks_above_a_known_one_with_more_evidence():
    known = f"arn:aws:iam::{ACC}:user/ops"
    base = frame([rec(-3000, "ListUsers", arn=known)])
    win = frame([rec(1 + k, n, arn=known, read_only=False, ip="192.0.2.99")
                 for k, n in enumerate(["StopLogging", "DeleteTrail", "PutBucketPolicy", "CreateUser",
                                        "AttachUserPolicy"])]
                + [rec(30, "CreateAccessKey", arn=f"arn:aws:iam::{ACC}:user/leaked", ip="203.0.113.7", read_only=False),
                   rec(31, "PutUserPolicy", arn=f"arn:aws:iam::{ACC}:user/leaked", ip="203.0.113.7", read_only=False)])
    det = stories.detect(win, base, sensitive={"StopLogging", "DeleteTrail", "CreateAccessKey"})
    sus = det.suspicious
    assert sus.iloc[0]["story"].startswith(f"arn:aws:iam::{ACC}:user/leaked") and sus.iloc[0]["new_to_account"]
    assert sus.iloc[1]["score"] > sus.iloc[0]["score"] and not sus.iloc[1]["new_to_account"]
    assert stories.detect(win, None).actors["new_to_account"].isna().all()  # no baseline: unknown
