"""Security's parameters: cloudtrail.baseline_days and rules_dir; `validate` refuses a window CloudWatch
metrics cannot serve only when a selected notebook reads CloudWatch metrics."""

from __future__ import annotations

import pytest

from forensics import runner
from forensics.errors import ParamsError
from forensics.params import load_environment

TRAIL_ONLY = "name: trail-only\naws: {region: us-east-1}\ncloudtrail: {bucket: my-trail, baseline_days: 30%s}\n"
WITH_ALB = "name: prod\naws: {region: us-east-1}\nalb: {load_balancer: app/x/1}\ncloudtrail: {bucket: my-trail}\n"
OLD = "{start: 2023-07-10T11:40:00Z, end: 2023-07-10T12:40:00Z}"


def _incident(tmp_path, env: str, notebooks: str) -> str:
    (tmp_path / "env.yaml").write_text(env)
    p = tmp_path / "incident.yaml"
    p.write_text(f"incident: INC-1\ntitle: t\nseverity: P1\nenvironment: env.yaml\nwindow: {OLD}\n"
                 f"notebooks: {notebooks}\n")
    return str(p)


def test_an_old_window_is_valid_for_the_trail_alone(tmp_path):
    incident, selected = runner.validate(_incident(tmp_path, TRAIL_ONLY % "", "[security]"))
    assert selected == ["security"] and incident.environment["cloudtrail"]["baseline_days"] == 30


def test_an_old_window_is_refused_when_a_notebook_reads_cloudwatch_metrics(tmp_path):
    with pytest.raises(ParamsError, match="older than CloudWatch metrics retention.*overview"):
        runner.validate(_incident(tmp_path, WITH_ALB, "[security, overview]"))
    # the same environment, the trail's notebook alone
    assert runner.validate(_incident(tmp_path, WITH_ALB, "[security]"))[1] == ["security"]


def test_rules_dir_is_resolved_against_the_environment_file(tmp_path):
    (tmp_path / "my-rules").mkdir()
    (tmp_path / "env.yaml").write_text(TRAIL_ONLY % ", rules_dir: my-rules")
    env = load_environment(str(tmp_path / "env.yaml"))
    assert env["cloudtrail"]["rules_dir"] == str((tmp_path / "my-rules").resolve())
    (tmp_path / "env.yaml").write_text(TRAIL_ONLY % ", rules_dir: nowhere")
    with pytest.raises(ParamsError, match="rules_dir"):
        load_environment(str(tmp_path / "env.yaml"))
