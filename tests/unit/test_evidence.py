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


# ---- evidence.Record: creation under the incident's lock, the finish, each file hashed once -----------
def _strict_loads(text):
    def refuse(name):
        raise ValueError(f"bare {name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_findings_json_is_strict_json():
    text = evidence.strict_json({"a": {"ratio": float("inf"), "low": float("-inf"), "nan": float("nan"),
                                       "ok": 1.5, "list": [float("inf"), 2]}})
    assert _strict_loads(text) == {"a": {"ratio": "Infinity", "low": "-Infinity", "nan": None, "ok": 1.5,
                                         "list": ["Infinity", 2]}}
    # finite findings come out exactly as before (json.dumps, indent 2)
    plain = {"b": {"status": "ok", "x": [1, 2.5, None, "é"]}}
    assert evidence.strict_json(plain) == json.dumps(plain, indent=2, sort_keys=False) + "\n"


def test_a_second_record_of_the_incident_refuses_or_waits_while_the_first_holds_it(tmp_path):
    from forensics.errors import RecordBusy

    first = evidence.Record.create(tmp_path, INCIDENT)
    assert first.path.name.endswith(".partial") and (first.path / "notebooks").is_dir()
    try:
        evidence.Record.create(tmp_path, INCIDENT, wait=False)
        raise AssertionError("the second record was created while the first held the incident")
    except RecordBusy as exc:
        assert exc.exit_code == 2 and str(os.getpid()) in str(exc)
    assert [p.name for p in first.incident_dir.iterdir() if p.is_dir()] == [first.path.name]
    first.close()
    second = evidence.Record.create(tmp_path, INCIDENT, wait=False)
    second.close()


def test_finish_writes_seals_and_chains_the_record_hashing_each_file_once(tmp_path, monkeypatch):
    import collections

    from forensics import contracts

    earlier = make_record(tmp_path, "20261123T090000Z")
    record = evidence.Record.create(tmp_path, INCIDENT)
    partial, real, reads = record.path, evidence.sha256_file, collections.Counter()

    def counting(path):  # a spy: counts the reads of the new record's files, hashes for real
        if str(path).startswith(str(partial)):
            reads[os.path.relpath(path, partial)] += 1
        return real(path)

    monkeypatch.setattr(evidence, "sha256_file", counting)
    record.write_params(INCIDENT)
    (record.path / contracts.FINDINGS_SCRATCH_DIR).mkdir()
    (record.path / contracts.FINDINGS_SCRATCH_DIR / "api-errors.json").write_text(
        json.dumps({"findings": {"ratio": float("inf"), "onset": None}, "unknown": ["onset"],
                    "failed_sources": {"ecs_deployments": "LookupError: the environment has no ecs section"}}))
    nb = record.path / "notebooks" / "api-errors.ipynb"
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (record.path / "html" / "api-errors.html").write_text("<html>api-errors</html>")
    (record.path / "figures").mkdir()
    (record.path / "figures" / "api-errors--rate.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    notebooks = [{"name": "api-errors", "status": "ok", "duration_s": 1.0, "error": None,
                  "notebook": "notebooks/api-errors.ipynb", "html": "html/api-errors.html"},
                 {"name": "ecs-deploy", "status": "skipped", "duration_s": 0.0, "notebook": None, "html": None,
                  "error": "needs a section the environment lacks: ecs"}]
    findings, manifest = record.finish(INCIDENT, notebooks, started_at="2026-11-23T10:00:00.000000Z")
    final = tmp_path / "2026-11-23_INC-1" / record.captured_at
    assert record.path == final and record.sealed and not list(final.parent.glob("*.partial"))
    assert evidence.verify(final).ok, evidence.verify(final).problems
    assert evidence.verify_chain(final.parent) == []
    assert manifest["previous_record"] == earlier.name
    body = _strict_loads((final / "findings.json").read_text())
    assert body["api-errors"]["ratio"] == "Infinity" and body["ecs-deploy"]["status"] == "skipped"
    assert findings["ecs-deploy"]["reason"].startswith("needs a section")
    # each file of the new record read to be hashed at most once (the ones this class writes: never)
    assert reads and max(reads.values()) == 1, reads
    assert not {"findings.json", "postmortem.md", "index.html", "params.yaml"} & set(reads)
    # the index: the skipped notebook is "not configured", not a problem, not red
    page = (final / "index.html").read_text()
    assert "Consistent." in page and "problem(s)" not in page
    assert "not configured" in page and "unknown (source not configured): onset" in page
    assert '<span class="bad">skipped</span>' not in page and "FAILED" not in page
    # and nobody writes into a sealed record
    assert not os.access(final, os.W_OK) or os.geteuid() == 0
    assert stat.S_IMODE(final.stat().st_mode) == 0o555
