"""Sigma rules over the trail frame (forensics.detection.sigma): the shipped SigmaHQ rules load, and the
evaluator follows Sigma's semantics where a SQL backend breaks on real records."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from forensics.detection import sigma
from forensics.sources import _typed
from forensics.sources.cloudtrail import RECORD_COLUMNS, record_row

T = pd.Timestamp("2026-11-23T10:00:00Z")


def rec(minute: float, name: str, *, ip="192.0.2.10", ua="aws-cli/2.13.1", source="iam.amazonaws.com",
        read_only=True, extra=None) -> dict:
    r = {"eventTime": (T + pd.Timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ"), "eventName": name,
         "eventSource": source, "sourceIPAddress": ip, "userAgent": ua, "readOnly": read_only,
         "eventID": f"e{minute}", "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"}}
    r.update(extra or {})
    return r


def frame(records) -> pd.DataFrame:
    return _typed(pd.DataFrame([record_row(r) for r in records]), RECORD_COLUMNS).reset_index(drop=True)


def rule(tmp_path: Path, body: str, name="r.yml") -> sigma.RuleSet:
    (tmp_path / name).write_text(textwrap.dedent(body))
    return sigma.load_rules(tmp_path, source="own")


HEAD = """\
title: T
id: 11111111-2222-3333-4444-555555555555
status: test
level: high
tags: [attack.persistence, attack.t1098]
logsource: {product: aws, service: cloudtrail}
"""


def test_the_shipped_sigmahq_rules_all_load_with_their_licence():
    rs = sigma.load_rules()
    assert len(rs.rules) == 57 and rs.skipped == []
    assert (sigma.SIGMAHQ_DIR / "LICENSE.md").read_text().count("Detection Rule License") >= 1
    assert "commit" in (sigma.SIGMAHQ_DIR / "UPSTREAM.md").read_text()
    assert all(r.level in sigma.LEVELS for r in rs.rules)


def test_console_login_without_mfa_matches_aws_casing():
    """SigmaHQ writes MFAUsed: 'NO'; AWS writes "No". Sigma values are case-insensitive."""
    login = rec(1, "ConsoleLogin", source="signin.amazonaws.com", read_only=False,
                extra={"additionalEventData": {"MFAUsed": "No"}, "responseElements": {"ConsoleLogin": "Success"}})
    with_mfa = rec(2, "ConsoleLogin", source="signin.amazonaws.com", read_only=False,
                   extra={"additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}})
    hits, skipped = sigma.evaluate(frame([login, with_mfa]), sigma.load_rules())
    titles = hits.loc[hits["row"] == 0, "title"].tolist()
    assert "AWS Successful Console Login Without MFA" in titles
    assert "AWS Successful Console Login Without MFA" not in hits.loc[hits["row"] == 1, "title"].tolist()
    hit = hits[hits["title"] == "AWS Successful Console Login Without MFA"].iloc[0]
    assert hit["level"] == "medium" and "attack.t1078.004" in hit["tags"] and not skipped


def test_a_field_missing_from_a_record_is_no_match_not_an_error(tmp_path):
    rs = rule(tmp_path, HEAD + """\
detection:
    sel: {eventName: PutBucketPolicy, requestParameters.policy.Statement.Effect: Allow}
    missing: {requestParameters.nothing|exists: false}
    condition: sel or (missing and eventName: ListUsers)
""".replace("(missing and eventName: ListUsers)", "missing"))
    recs = [rec(1, "PutBucketPolicy", read_only=False), rec(2, "ListUsers")]
    hits, skipped = sigma.evaluate(frame(recs), rs)
    assert not skipped and sorted(hits["row"]) == [0, 1]  # only through `missing` (|exists: false)
    rs2 = rule(tmp_path, HEAD + """\
detection:
    sel: {eventName: PutBucketPolicy, requestParameters.policy.Statement.Effect: Allow}
    condition: sel
""", name="r.yml")
    assert sigma.evaluate(frame(recs), rs2)[0].empty


def test_percent_and_underscore_are_literals_and_wildcards_are_sigmas(tmp_path):
    rs = rule(tmp_path, HEAD + """\
detection:
    sel: {userAgent|contains: '100%_done', eventName: 'Get*'}
    condition: sel
""")
    recs = [rec(1, "GetUser", ua="tool 100%_done"), rec(2, "GetUser", ua="tool 100Xydone"),
            rec(3, "ListUsers", ua="tool 100%_done"), rec(4, "getuser", ua="TOOL 100%_DONE")]
    hits, _ = sigma.evaluate(frame(recs), rs)
    assert sorted(hits["row"]) == [0, 3]


def test_cased_regex_cidr_and_lists(tmp_path):
    rs = rule(tmp_path, HEAD + """\
detection:
    cased: {eventName|cased: ListUsers}
    rx: {userAgent|re: '^aws-cli/2\\.'}
    net: {sourceIPAddress|cidr: 203.0.113.0/24}
    lst: {requestParameters.names: beta}
    condition: cased or rx or net or lst
""")
    recs = [rec(1, "listusers", ua="x"), rec(2, "ListUsers", ua="x"), rec(3, "A", ua="aws-cli/2.1"),
            rec(4, "A", ua="x", ip="203.0.113.9"),
            rec(5, "A", ua="x", extra={"requestParameters": {"names": ["alpha", "BETA"]}})]
    hits, _ = sigma.evaluate(frame(recs), rs)
    assert sorted(hits["row"]) == [1, 2, 3, 4]


def test_own_rules_folder_from_the_environment(tmp_path):
    own = tmp_path / "rules"
    own.mkdir()
    (own / "mine.yml").write_text(HEAD + "detection:\n    sel: {eventName: CreateTrustAnchor}\n    condition: sel\n")
    (own / "broken.yml").write_text("title: [unclosed\n")
    rs = sigma.rules_for({"rules_dir": "rules"}, env_dir=tmp_path)
    assert len(rs.rules) == 58 and [r for r in rs.rules if r.source == "own:rules"][0].title == "T"
    assert len(rs.skipped) == 1 and "broken.yml" in rs.skipped[0]["path"]
    hits, _ = sigma.evaluate(frame([rec(1, "CreateTrustAnchor", read_only=False)]), rs)
    assert hits["source"].tolist() == ["own:rules"]
    with pytest.raises(ValueError, match="does not exist"):
        sigma.rules_for({"rules_dir": "nowhere"}, env_dir=tmp_path)


def test_a_record_longer_than_the_detail_bound_keeps_its_identity():
    big = rec(1, "PutBucketPolicy", read_only=False, extra={"requestParameters": {"policy": "x" * 40000}})
    row = record_row(big)
    assert len(row["detail"]) <= 16384 and '"PutBucketPolicy"' in row["detail"]


def test_the_detail_never_holds_an_access_key_id_whatever_its_field():
    r = rec(1, "UpdateAccessKey", read_only=False,
            extra={"requestParameters": {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "note": "ASIAIOSFODNN7EXAMPLE"},
                   "responseElements": {"credentials": {"sessionToken": "tok", "accessKeyId": "ASIAIOSFODNN7EXAMPL2"}}})
    text = record_row(r)["detail"]
    assert "AKIA" not in text and "ASIAIOSFODNN7" not in text and "tok" not in text
