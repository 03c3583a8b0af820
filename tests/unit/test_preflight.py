"""Preflight's own rules, without a server: the window against the clock, the one-line error, which
sections a selection of notebooks reads, and an identity that cannot be had (no profile) stopping the rest."""

import pandas as pd
import pytest

from forensics import preflight
from forensics.errors import ForensicsError
from forensics.params import Incident
from forensics.window import IncidentWindow

NOW = pd.Timestamp("2026-12-07T10:00:00Z")


def window(start, end):
    return IncidentWindow(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"))


def test_a_past_window_is_fine():
    assert preflight.check_window(window("2026-12-07T07:00", "2026-12-07T08:00"), NOW) == ([], [])


def test_a_window_ending_now_is_an_ongoing_incident_and_says_so():
    problems, notes = preflight.check_window(window("2026-12-07T09:00", "2026-12-07T10:01"), NOW)
    assert problems == [] and "ongoing incident" in notes[0]


def test_a_window_ending_in_the_future_fails_and_says_end_may_be_now():
    problems, _ = preflight.check_window(window("2026-12-07T09:00", "2026-12-07T11:00"), NOW)
    assert "window end 2026-12-07T11:00:00+00:00 is in the future" in problems[0]
    assert "may end at now: write end: 2026-12-07T10:00:00Z" in problems[0]


def test_a_window_starting_in_the_future_fails():
    problems, _ = preflight.check_window(window("2026-12-08T09:00", "2026-12-08T11:00"), NOW)
    assert "window start" in problems[0] and "in the future" in problems[0]


def test_the_error_is_one_line_exit_2_and_crosses_processes():
    import pickle

    err = preflight.PreflightError(["log group /a does not exist in eu-west-2", "DB instance db1 does not exist"])
    assert isinstance(err, ForensicsError) and err.exit_code == 2
    assert "\n" not in str(err) and str(err).startswith("preflight: log group /a")
    assert "and 1 more" in str(err)
    assert pickle.loads(pickle.dumps(err)).problems == err.problems


def test_sections_read_follow_the_selected_notebooks():
    assert preflight.sections_read(None) == set()
    api = preflight.sections_read(["api-errors"])
    assert "logs" in api and "alb" in api
    assert "certificates" not in api


def _incident(aws, **sections):
    return Incident(incident="I", title="t", severity="P2", window=window("2026-01-01T00:00", "2026-01-01T01:00"),
                    environment={"name": "e", "aws": aws, **sections}, notebooks=None, source_path="i.yaml")


def test_a_missing_profile_is_one_problem_and_nothing_else_is_tried(monkeypatch, tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text("[profile other]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(cfg))
    report = preflight.check(_incident({"region": "eu-west-1", "profile": "nope"}, logs={"app": ["/a"]}))
    assert len(report.problems) == 1 and "profile 'nope'" in report.problems[0]
    assert "ProfileNotFound" in report.problems[0] and report.checked == []
    with pytest.raises(preflight.PreflightError, match="ProfileNotFound"):
        preflight.run(_incident({"region": "eu-west-1", "profile": "nope"}))


def test_every_call_preflight_makes_is_an_allowed_read(monkeypatch):
    """The probes call only operations of the read-only allow-list (the IAM policy is generated from it)."""
    import inspect
    import re

    from forensics import _aws

    src = inspect.getsource(preflight)
    allowed = {op for ops in _aws.READ_OPERATIONS.values() for op in ops}
    called = set(re.findall(r"\.(describe_\w+|list_\w+|get_\w+)\(", src)) - {"get_paginator"}
    to_op = {c: "".join(w.title() for w in c.split("_")).replace("V2", "V2") for c in called}
    to_op = {c: o.replace("Db", "DB").replace("ObjectsV2", "ObjectsV2") for c, o in to_op.items()}
    assert to_op and set(to_op.values()) <= allowed, set(to_op.values()) - allowed
