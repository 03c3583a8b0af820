"""Redaction, pattern by pattern, over a corpus of generated fake secrets (tests/trust/secrets_corpus.py):
every secret is replaced by a keyed-hash marker, the same secret always gives the same marker, and
identifiers that merely look random (ARNs, ALB names, hashes, UUIDs, queryids) survive."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from forensics import redact
from forensics.errors import ParamsError
from forensics.params import load_incident

from .secrets_corpus import NOT_SECRETS, corpus

CORPUS = corpus(seed=1)


def fragments(secret: str) -> list[str]:
    """The parts of a secret that must not survive (each line of a multi-line key)."""
    return [f for f in secret.split("\n") if len(f) >= 8]


def test_the_corpus_covers_at_least_30_kinds_of_secret():
    assert len(CORPUS) >= 30
    assert len({s.kind for s in CORPUS}) >= 24


@pytest.mark.parametrize("entry", CORPUS, ids=[f"{i:02d}-{s.kind}" for i, s in enumerate(CORPUS)])
def test_each_secret_is_replaced_by_its_marker(entry):
    out = redact.text(entry.line)
    for frag in fragments(entry.secret):
        assert frag not in out, out
    assert redact.marker(entry.kind, entry.secret) in out, out
    assert redact.found(entry.line), "a parameter carrying it would be refused"
    assert redact.text(out) == out, "redaction is idempotent: a marker is never redacted again"


def test_same_secret_same_marker_wherever_it_appears():
    pw = next(s.secret for s in CORPUS if s.kind == "sql-password")
    lines = [f"ALTER ROLE app PASSWORD '{pw}'", f"password={pw}", f'{{"password": "{pw}"}}',
             f"postgresql://app:{pw}@db:5432/app", f"secret: {pw}"]
    hexes = {redact.text(line).split("]")[0].rsplit(":", 1)[-1] for line in lines}
    assert len(hexes) == 1, [redact.text(x) for x in lines]
    assert hexes == {redact.marker("x", pw)[-9:-1]}


def test_different_secrets_different_markers():
    markers = {redact.marker(s.kind, s.secret) for s in CORPUS}
    assert len(markers) == len({(s.kind, s.secret) for s in CORPUS})


def test_quotes_and_surrounding_text_are_kept():
    assert redact.text("x ALTER ROLE a PASSWORD 'abc123xyz' VALID UNTIL 'infinity'").endswith(
        "' VALID UNTIL 'infinity'")
    out = redact.text('{"api_key": "k3y-v4lue-0123456789", "model": "gpt-4o"}')
    assert json.loads(out)["model"] == "gpt-4o" and json.loads(out)["api_key"].startswith("[REDACTED:")


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_identifiers_that_are_not_secrets_survive(text):
    assert redact.text(text) == text
    assert redact.found(text) == []


def test_frames_lists_and_nested_objects_are_redacted():
    s = CORPUS[0]
    df = pd.DataFrame({"message": [s.line, "plain"], "tags": [[s.line], []], "n": [1, 2],
                       "arn": [NOT_SECRETS[2], None]})
    out = redact.frame(df)
    assert s.secret not in out["message"].iloc[0] and out["message"].iloc[1] == "plain"
    assert s.secret not in out["tags"].iloc[0][0]
    assert out["arn"].iloc[0] == NOT_SECRETS[2] and out["n"].tolist() == [1, 2]
    assert redact.obj({"a": [{"b": s.line}]})["a"][0]["b"] == redact.text(s.line)


def test_a_secret_looking_parameter_is_refused(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("name: t\naws: {region: eu-west-1}\nalb: {load_balancer: app/a/1}\n"
                   "ecs: {cluster: c, services: [s]}\nrds: {instance: db}\nlogs: {app: [/ecs/a]}\n")
    inc = tmp_path / "inc.yaml"
    for s in CORPUS[::3]:
        inc.write_text(f"incident: INC-1\ntitle: {json.dumps(s.line)}\nseverity: P1\nenvironment: {env}\n"
                       "window: {start: '2026-11-23T09:00:00Z', end: '2026-11-23T10:00:00Z'}\n")
        with pytest.raises(ParamsError, match="looks like a secret"):
            load_incident(inc, check_retention=False)
