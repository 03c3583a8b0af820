"""A replay serves the very bytes the original pulled (issue 23).

The flake: `test_replay_manifest_names_the_original_and_used_no_source` saw `data/alb_access_logs.parquet`
with another SHA-256 in the replay than in the original. The replay copies each capture byte for byte
(`capture._write`); the only writer after that is the runner's final redaction pass, which treated the copies
as new files: it masked in them every value the replay's runner knew and rewrote any that changed through
pandas (`to_parquet`: other bytes). What the runner knows differs between the two runs:

- the original's runner pulled the captures itself, so it knows the secrets behind their markers and
  recovers nothing;
- the replay's runner starts knowing nothing, so it recovers the value of every marker in the record by
  hashing every candidate token of every file and keeping those whose keyed hash equals a marker's digest.
  A marker's digest is 8 hex characters (32 bits): an innocent token whose hash happens to equal one is
  taken for the secret and masked everywhere. The ALB access logs hold most of a record's distinct tokens
  (24,460 of 37,043 in the trust test's record: trace ids built from the time, so other tokens every run),
  so a chance match lands there first, and only in some runs (about tokens x markers / 2^32 per replay).

Both halves are made deterministic below (a colliding pair found by a birthday search), and a notebook
output carrying one marker more than the original's does the same. The pass now reads a replay's copies
(their values are still recovered and masked in the replay's notebooks and HTML) and never rewrites them.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd

from forensics import redact
from forensics.redaction import engine, shape
from forensics.redaction.known import Scrubber
from forensics.redaction.record import scrub_record_files

VALUE = "Tq7vRk2mWx9LpZ4n"  # unlabelled in the capture: no rule finds it there


def _record(root, marked_in_notebook: bool):
    (root / "data").mkdir(parents=True)
    pd.DataFrame({"user_agent": [f"client/{VALUE}", "curl/8.5"], "n": [1, 2]}).to_parquet(
        root / "data" / "alb_access_logs.parquet")
    text = f"token {redact.marker('bearer-token', VALUE)}" if marked_in_notebook else "nothing here"
    (root / "nb.ipynb").write_text(json.dumps({"cells": [{"outputs": [{"text": text + "\n"}]}]}))
    return root / "data" / "alb_access_logs.parquet"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_final_pass_rewrote_a_copied_capture_when_the_replays_notebook_carried_a_marker(tmp_path):
    """The cause, made deterministic: the same capture bytes, a notebook output that differs in one
    marker, and the pass over the copy re-encodes the capture."""
    original = _record(tmp_path / "original", marked_in_notebook=False)
    assert scrub_record_files(tmp_path / "original", Scrubber()) == []
    replay = tmp_path / "replay"
    _record(replay, marked_in_notebook=True)
    shutil.copyfile(original, replay / "data" / "alb_access_logs.parquet")  # as capture._write copies it
    written = scrub_record_files(replay, Scrubber())
    assert replay / "data" / "alb_access_logs.parquet" in written
    assert _sha(replay / "data" / "alb_access_logs.parquet") != _sha(original)


def test_a_replays_copies_are_read_but_never_rewritten(tmp_path):
    original = _record(tmp_path / "original", marked_in_notebook=False)
    replay = tmp_path / "replay"
    copy = _record(replay, marked_in_notebook=True)
    shutil.copyfile(original, copy)
    (replay / "page.html").write_text(f"<pre>agent client/{VALUE}</pre>")
    written = scrub_record_files(replay, Scrubber(), keep=[copy])
    assert copy not in written and _sha(copy) == _sha(original)
    # what the copy holds is still recovered from the marker and masked in the replay's own outputs
    assert replay / "page.html" in written
    assert VALUE not in (replay / "page.html").read_text()
    assert redact.marker("bearer-token", VALUE) in (replay / "page.html").read_text()


def _colliding_tokens() -> tuple[str, str]:
    """Two tokens worth registering whose markers have the same 8-hex digest (a birthday search)."""
    seen: dict[str, str] = {}
    for i in range(2_000_000):
        token = f"Root1x{hashlib.sha256(str(i).encode()).hexdigest()[:10]}Q"  # random-looking (engine.plausible)
        d = engine.digest(token)
        if d in seen and shape.worth_registering(token) and shape.worth_registering(seen[d]):
            return seen[d], token
        seen[d] = token
    raise AssertionError("no collision in 2,000,000 tokens")


def test_a_token_that_shares_a_markers_digest_is_taken_for_its_secret_only_where_nothing_is_known(tmp_path):
    secret, innocent = _colliding_tokens()
    assert engine.digest(secret) == engine.digest(innocent) and secret != innocent

    def record(root):
        (root / "data").mkdir(parents=True)
        pd.DataFrame({"message": [f"login password={redact.marker('dsn-password', secret)}"]}).to_parquet(
            root / "data" / "app_error_logs.parquet")
        pd.DataFrame({"trace_id": [f"Root={innocent}", "Root=1-abc"], "n": [1, 2]}).to_parquet(
            root / "data" / "alb_access_logs.parquet")
        return root / "data" / "alb_access_logs.parquet"

    # the original's runner pulled the capture and found the secret itself: nothing to recover, alb untouched
    original = record(tmp_path / "original")
    knows = Scrubber()
    knows.register(secret, "dsn-password")
    assert scrub_record_files(tmp_path / "original", knows) == []
    # the replay's runner knows nothing: recovering the marker's value takes the innocent token for it
    replay = tmp_path / "replay"
    copy = record(replay)
    shutil.copyfile(original, copy)
    assert copy in scrub_record_files(replay, Scrubber())
    assert _sha(copy) != _sha(original)
    assert innocent not in pd.read_parquet(copy)["trace_id"].iloc[0]
    # the fix: a replay's copies are read, never rewritten
    again = tmp_path / "again"
    copy = record(again)
    shutil.copyfile(original, copy)
    assert copy not in scrub_record_files(again, Scrubber(), keep=[copy]) and _sha(copy) == _sha(original)
