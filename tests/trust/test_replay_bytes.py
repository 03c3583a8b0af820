"""A replay serves the very bytes the original pulled (issue 23).

The flake: `test_replay_manifest_names_the_original_and_used_no_source` saw `data/alb_access_logs.parquet`
with another SHA-256 in the replay than in the original. The replay copies each capture byte for byte
(`capture._write`), but the runner's final redaction pass then treated the copies as new files: it ran
detection over them again and masked in them every value the replay's processes knew, rewriting any that
changed through pandas (`to_parquet`: another encoding, other bytes). What the replay's processes know is
not what the original's knew: it depends on what each notebook's kernel redacted in its own outputs and on
which process pulled a capture first, so a value left unlabelled in a capture (an ALB log field) was masked
in the replay's copy only when some output of that run carried its marker. The pass now reads a replay's
copies (their values are still masked in the notebooks and HTML) and never rewrites them.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd

from forensics import redact
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
