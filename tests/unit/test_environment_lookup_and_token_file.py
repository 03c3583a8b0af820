"""An incident kept anywhere finds its environment by name beside it first (its folder, then the
``environments/`` beside its folder), then in params/environments; the audit token can come from a file
(``audit.token_file``, what the background sandbox writes) when the variable is unset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from forensics.errors import ParamsError, SourceError
from forensics.params import load_incident
from forensics.sources.audit import token_from_env

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((REPO / "params" / "environments" / "example-production.yaml").read_text())
INCIDENT = ("incident: INC-7\ntitle: t\nseverity: P2\nenvironment: {env}\n"
            "window: {{start: 2026-11-23T10:00:00Z, end: 2026-11-23T12:00:00Z}}\n")


def _env(path: Path, region: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**EXAMPLE, "aws": {**EXAMPLE["aws"], "region": region}}))


def _incident(path: Path, env: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(INCIDENT.format(env=env))
    return path


def test_a_name_is_found_beside_the_incident_file_whatever_the_current_folder(tmp_path, monkeypatch):
    kept = tmp_path / "kept-elsewhere"
    _env(kept / "prod-beside.yaml", "us-east-2")
    inc = _incident(kept / "inc.yaml", "prod-beside")
    monkeypatch.chdir(tmp_path)
    assert load_incident(inc, check_retention=False).environment["aws"]["region"] == "us-east-2"


def test_a_name_is_found_in_the_environments_folder_of_the_incident_s_params(tmp_path, monkeypatch):
    params = tmp_path / "team" / "params"
    _env(params / "environments" / "prod-team.yaml", "ap-south-1")
    inc = _incident(params / "incidents" / "inc.yaml", "prod-team")
    monkeypatch.chdir(tmp_path)
    assert load_incident(inc, check_retention=False).environment["aws"]["region"] == "ap-south-1"


def test_beside_wins_over_the_workspace_s_environment_of_the_same_name(tmp_path):
    # example-production exists in params/environments (region eu-west-1); the one beside is another
    _env(tmp_path / "example-production.yaml", "sa-east-1")
    inc = _incident(tmp_path / "inc.yaml", "example-production")
    assert load_incident(inc, check_retention=False).environment["aws"]["region"] == "sa-east-1"
    # nothing beside: the workspace's (or the packaged example), as before
    other = _incident(tmp_path / "other" / "inc.yaml", "example-production")
    assert load_incident(other, check_retention=False).environment["aws"]["region"] == "eu-west-1"


def test_an_unknown_name_is_still_one_line_naming_it(tmp_path):
    inc = _incident(tmp_path / "inc.yaml", "nowhere-at-all")
    with pytest.raises(ParamsError, match="no environment named 'nowhere-at-all'"):
        load_incident(inc, check_retention=False)


def test_the_token_comes_from_the_variable_first_then_from_the_file(tmp_path, monkeypatch):
    token_file = tmp_path / "audit.token"
    token_file.write_text("from-the-file\n")
    os.chmod(token_file, 0o600)
    monkeypatch.delenv("X_AUDIT_TOKEN", raising=False)
    assert token_from_env("X_AUDIT_TOKEN", str(token_file)) == "from-the-file"
    monkeypatch.setenv("X_AUDIT_TOKEN", "from-the-variable")
    assert token_from_env("X_AUDIT_TOKEN", str(token_file)) == "from-the-variable"


def test_a_missing_or_empty_token_file_is_one_line_without_the_token(tmp_path, monkeypatch):
    monkeypatch.delenv("X_AUDIT_TOKEN", raising=False)
    with pytest.raises(SourceError, match="cannot be read") as err:
        token_from_env("X_AUDIT_TOKEN", str(tmp_path / "gone.token"))
    assert "\n" not in str(err.value)
    (tmp_path / "empty.token").write_text("")
    with pytest.raises(SourceError, match="is empty"):
        token_from_env("X_AUDIT_TOKEN", str(tmp_path / "empty.token"))
    with pytest.raises(SourceError, match="not set or empty"):
        token_from_env("X_AUDIT_TOKEN")


def test_the_environment_schema_takes_a_token_file(tmp_path):
    env = {**EXAMPLE, "audit": {"base_url": "http://127.0.0.1:9", "token_env": "X_AUDIT_TOKEN",
                                "token_file": str(tmp_path / "audit.token"), "tenants": ["acme"]}}
    (tmp_path / "with-token-file.yaml").write_text(yaml.safe_dump(env))
    inc = _incident(tmp_path / "inc.yaml", "with-token-file")
    assert load_incident(inc, check_retention=False).environment["audit"]["token_file"].endswith("audit.token")
