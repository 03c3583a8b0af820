"""The manifest and verify: every edit, deletion, addition and rename is detected."""

import json
import os
import shutil
import stat

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics import evidence
from forensics.params import Incident
from forensics.window import IncidentWindow

INCIDENT = Incident(incident="INC-1", title="t", severity="P1",
                    window=IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z"),
                    environment={"name": "sandbox"})


def make_record(root, captured_at="20261123T100000Z"):
    rec = root / "2026-11-23_INC-1" / captured_at
    (rec / "data").mkdir(parents=True)
    (rec / "html").mkdir()
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(rec / "data" / "alb_metrics.parquet")
    (rec / "html" / "api-errors.html").write_text("<html>ok</html>")
    (rec / "findings.json").write_text(json.dumps({"api-errors": {"status": "ok"}}))
    (rec / "params.yaml").write_text("incident: INC-1\n")
    parts = evidence.ManifestParts(incident=INCIDENT, captured_at=captured_at, notebooks=[], captures=[],
                                   collector=evidence.collector(), started_at="s", finished_at="f")
    evidence.write_manifest(rec, parts)
    return rec


def test_intact_record_verifies(tmp_path):
    rec = make_record(tmp_path)
    result = evidence.verify(rec)
    assert result.ok, result.problems
    assert result.files_checked == 4
    m = json.loads((rec / "manifest.json").read_text())
    assert {f["path"] for f in m["files"]} == {"data/alb_metrics.parquet", "html/api-errors.html",
                                               "findings.json", "params.yaml"}
    assert m["digest"] == evidence.manifest_digest(m)


def test_one_byte_changed_in_parquet_is_named(tmp_path):
    rec = make_record(tmp_path)
    p = rec / "data" / "alb_metrics.parquet"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    assert evidence.verify(rec).problems == ["changed: data/alb_metrics.parquet"]


def test_deleted_added_renamed_and_manifest_edits(tmp_path):
    rec = make_record(tmp_path)
    (rec / "findings.json").unlink()
    (rec / "html" / "extra.html").write_text("x")
    (rec / "params.yaml").rename(rec / "params.yml")
    problems = evidence.verify(rec).problems
    assert "missing: findings.json" in problems
    assert "extra: html/extra.html" in problems
    assert "missing: params.yaml" in problems and "extra: params.yml" in problems


def test_manifest_edited_to_hide_a_change_is_detected(tmp_path):
    rec = make_record(tmp_path)
    (rec / "findings.json").write_text('{"api-errors": {"status": "ok", "onset": null}}')
    m = json.loads((rec / "manifest.json").read_text())
    for f in m["files"]:
        if f["path"] == "findings.json":
            f["sha256"] = evidence.sha256_file(rec / "findings.json")
            f["size"] = (rec / "findings.json").stat().st_size
    (rec / "manifest.json").write_text(json.dumps(m))
    assert evidence.verify(rec).problems == ["changed: manifest.json (its content does not match its digest)"]


def test_whitespace_edit_of_the_manifest_is_detected(tmp_path):
    rec = make_record(tmp_path)
    m = rec / "manifest.json"
    m.write_bytes(m.read_bytes().rstrip(b"\n"))
    assert evidence.verify(rec).problems == ["changed: manifest.json (not byte for byte as written)"]


def test_missing_manifest(tmp_path):
    rec = make_record(tmp_path)
    (rec / "manifest.json").unlink()
    problems = evidence.verify(rec).problems
    assert problems[0] == "missing: manifest.json"


def test_records_of_one_incident_form_a_hash_chain(tmp_path):
    r1 = make_record(tmp_path, "20261123T100000Z")
    r2 = make_record(tmp_path, "20261123T110000Z")
    m1 = json.loads((r1 / "manifest.json").read_text())
    m2 = json.loads((r2 / "manifest.json").read_text())
    assert m1["previous_record_digest"] is None
    assert m2["previous_record"] == r1.name and m2["previous_record_digest"] == m1["digest"]
    assert evidence.verify_chain(r1.parent) == []
    # Replace the first record wholesale by a re-made one: its digest changes, the chain breaks.
    shutil.rmtree(r1)
    make_record(tmp_path, "20261123T100000Z")
    (r1 / "params.yaml").chmod(0o644)
    (r1 / "params.yaml").write_text("incident: INC-1  # re-made\n")
    m = json.loads((r1 / "manifest.json").read_text())
    m["files"] = [f | ({"sha256": evidence.sha256_file(r1 / f["path"]), "size": (r1 / f["path"]).stat().st_size})
                  for f in m["files"]]
    m["digest"] = evidence.manifest_digest(m)
    (r1 / "manifest.json").write_bytes(evidence.render_manifest(m))
    assert evidence.verify(r1).ok
    assert any("chain broken" in p for p in evidence.verify_chain(r1.parent))


def test_seal_makes_the_record_read_only(tmp_path):
    rec = make_record(tmp_path)
    evidence.seal(rec)
    mode = (rec / "findings.json").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not (rec / "data").stat().st_mode & stat.S_IWUSR


TAMPER = st.sampled_from(["flip", "truncate", "append", "delete", "add", "rename", "manifest-field",
                          "manifest-file-entry", "empty"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=TAMPER, which=st.integers(min_value=0, max_value=10_000), byte=st.integers(0, 255))
def test_random_tampering_is_always_detected(tmp_path_factory, kind, which, byte):
    rec = make_record(tmp_path_factory.mktemp("rec"))
    files = evidence.list_files(rec) + ["manifest.json"]
    target = rec / files[which % len(files)]
    if kind == "flip":
        data = bytearray(target.read_bytes())
        i = which % len(data)
        data[i] = (data[i] + 1 + byte % 255) % 256
        target.write_bytes(bytes(data))
    elif kind == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    elif kind == "append":
        with open(target, "ab") as f:
            f.write(bytes([byte]))
    elif kind == "delete":
        target.unlink()
    elif kind == "add":
        (rec / "data" / f"new-{which}.parquet").write_bytes(bytes([byte]))
    elif kind == "rename":
        os.rename(target, target.with_name("renamed-" + target.name))
    elif kind == "manifest-field":
        m = json.loads((rec / "manifest.json").read_text())
        m["window"]["start"] = "2026-11-23T08:00:00Z"
        (rec / "manifest.json").write_text(json.dumps(m))
    elif kind == "manifest-file-entry":
        m = json.loads((rec / "manifest.json").read_text())
        m["files"] = m["files"][1:]
        (rec / "manifest.json").write_text(json.dumps(m))
    elif kind == "empty":
        target.write_bytes(b"")
    assert not evidence.verify(rec).ok
