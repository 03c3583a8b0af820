"""Redaction, pattern by pattern, over a corpus of generated fake secrets (tests/trust/secrets_corpus.py):
every secret is replaced by a keyed-hash marker, the same secret always gives the same marker, and
identifiers that merely look random (ARNs, ALB names, hashes, UUIDs, queryids) survive."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from forensics import redact
from forensics.errors import ParamsError
from forensics.params import load_incident

from . import leak_corpus
from .secrets_corpus import NOT_SECRETS, corpus

CORPUS = corpus(seed=1)
REPO = Path(__file__).resolve().parents[2]


def fragments(secret: str) -> list[str]:
    """The parts of a secret that must not survive (each line of a multi-line key)."""
    return [f for f in secret.split("\n") if len(f) >= 8]


def test_the_corpus_covers_at_least_30_kinds_of_secret():
    assert len(CORPUS) >= 30
    assert len({s.kind for s in CORPUS}) >= 24


@pytest.mark.parametrize("entry", CORPUS, ids=[f"{i:02d}-{s.kind}" for i, s in enumerate(CORPUS)])
def test_each_secret_is_replaced_by_its_marker(entry):
    if entry.kind == "aws-access-key-id":  # an identifier unless a secret is beside it (docs/redaction.md)
        assert redact.text(entry.line) == entry.line
        return
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
    s = next(e for e in CORPUS if e.kind != "aws-access-key-id")  # a key id alone is kept
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
    for s in [e for e in CORPUS if e.kind != "aws-access-key-id"][::3]:  # a key id alone is not a secret
        inc.write_text(f"incident: INC-1\ntitle: {json.dumps(s.line)}\nseverity: P1\nenvironment: {env}\n"
                       "window: {start: '2026-11-23T09:00:00Z', end: '2026-11-23T10:00:00Z'}\n")
        with pytest.raises(ParamsError, match="looks like a secret"):
            load_incident(inc, check_retention=False)


# ---- the leak corpus (DEV split; the HOLDOUT split is reported by tests/bench/test_bench_redact.py) ----
DEV = [leak for seed in (1, 2, 3) for leak in leak_corpus.corpus(seed, "dev")]


@pytest.fixture(autouse=True)
def _fresh_registry():
    redact.forget()
    yield
    redact.forget()


@pytest.mark.parametrize("leak", [x for x in DEV if x.secret], ids=lambda x: f"{x.family}-{x.kind}")
def test_dev_corpus_secret_is_removed(leak):
    out = redact.text(leak.line)
    for frag in leak.secret.split("\n"):
        assert len(frag) < 6 or frag not in out, out
    assert "[REDACTED:" in out


@pytest.mark.parametrize("leak", [x for x in DEV if not x.secret], ids=lambda x: f"{x.family}-twin")
def test_dev_corpus_twin_is_unchanged(leak):
    assert redact.text(leak.line) == leak.line


def test_both_splits_cover_many_families_and_forms():
    fams = {leak.family for leak in leak_corpus.corpus(1)}
    assert {leak_corpus.split_of(f) for f in fams} == {"dev", "holdout"}
    assert len(leak_corpus.corpus(1)) >= 200 and len([x for x in leak_corpus.corpus(1) if not x.secret]) >= 80


# ---- the held-out incident: secrets after a bare key= ------------------------------------------------
def test_aws_secret_and_db_password_after_bare_key_are_redacted_everywhere_in_a_frame():
    sk = "wK3p9Vb2QxL7mN4rT8yZ1aC5dF6gH0jJ2kL4nP/s"
    pw = "Hq7vR2mxK9!pZt4W"
    df = pd.DataFrame({"message": [
        f"s3 sync failed key={sk} bucket=exports",           # unlabelled but AWS-shaped
        f"psycopg.OperationalError key={pw} host=db.internal",
        f"retrying with token={sk}",
        f"connect postgresql://app:{pw}@db.internal:5432/app",
        f"debug dump: {pw} {sk}",                             # no label at all: masked once known
    ]})
    out = redact.frame(df)
    dumped = "\n".join(out["message"])
    assert sk not in dumped and pw not in dumped, dumped
    last = out["message"].iloc[4]
    assert last == f"debug dump: {redact.marker('secret-pair', pw)} {redact.marker('aws-secret-key', sk)}"


def test_a_secret_found_in_one_capture_is_masked_in_later_ones_of_the_process():
    pw = "Zr8!kq2LmW5xT9vB"
    redact.frame(pd.DataFrame({"message": [f"DB_PASSWORD={pw}"]}))
    later = redact.frame(pd.DataFrame({"q": [f"SELECT 1 -- {pw}"], "n": [1]}))
    assert pw not in later["q"].iloc[0] and "[REDACTED:secret-pair:" in later["q"].iloc[0]
    assert redact.text(f"echo {pw}") == f"echo {redact.marker('secret-pair', pw)}"


def test_register_masks_anywhere_but_word_like_values_are_refused():
    assert redact.register("Tk9#vL2qXw7p", "db-password")
    assert redact.text("x=Tk9#vL2qXw7p;y") == f"x={redact.marker('db-password', 'Tk9#vL2qXw7p')};y"
    assert not redact.register("postgres") and not redact.register("app")
    assert redact.text("user postgres on app") == "user postgres on app"


def test_known_values_are_never_masked_inside_a_marker():
    m = redact.marker("secret-pair", "Tk9#vL2qXw7p")
    digest = m[-9:-1]
    assert redact.register(f"secret-pair:{digest}")  # a substring of the marker itself
    assert redact.text(m) == m
    assert redact.text(f"x secret-pair:{digest} y") != f"x secret-pair:{digest} y"


# ---- unlabelled AWS-shaped tokens (rule and what it must not eat) ------------------------------------
@pytest.mark.parametrize("keep", [
    "commit 11c1996a6e4b0a2f33c1b7c2d8d9e0f1a2b3c4d5 merged",                      # sha1 / git
    "550e8400-e29b-41d4-a716-446655440000",                                       # UUID
    "arn:aws:iam::123456789012:role/forensics-read-only",
    "suppressedDisclosedRelationshipDomainCounts",                                  # long camelCase word
    "payload=" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=",
    "GET /v2/54fadb412c4e40cdbaed9335e4c35a9e/servers/detail HTTP/1.1",
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",               # AWS's documented example
])
def test_identifiers_and_payloads_are_not_mistaken_for_aws_secret_keys(keep):
    assert redact.text(keep) == keep


def test_an_unlabelled_aws_secret_key_and_session_token_are_redacted():
    sk = "Je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"[:-10] + "q8Rz3Lk1Wd"
    tok = "IQoJb3JpZ2luX2VjEJr//////////wEaCWV1LXdlc3QtMSJHMEUCIQD" + "a1B2c3D4e5F6g7H8" * 6
    out = redact.text(f"creds {sk} and {tok}")
    assert sk not in out and tok[:40] not in out and "[REDACTED:aws-session-token:" in out


# ---- speed machinery: the prefilter never misses what the rules would change -------------------------
def _sample_lines():
    lines = [x.line for x in leak_corpus.corpus(4)] + [s.line for s in CORPUS] + NOT_SECRETS
    real = REPO.parent / "shared" / "data" / "real"
    for f in sorted(real.glob("postgres_logs/*/*.log"))[:3] + sorted(real.glob("cloudwatch_logs/*/*.csv"))[:3]:
        lines += f.read_text(errors="replace").splitlines()[:2000]
    return lines


def test_prefilter_is_a_superset_of_what_the_rules_change():
    from forensics.redaction.engine import detect, flag

    lines = _sample_lines()
    flagged = flag(lines).tolist()
    missed = [s for s, f in zip(lines, flagged) if not f and detect(s) != s]
    assert not missed, missed[:3]
    assert sum(flagged) < len(lines)


def test_frame_gives_the_same_result_as_text_line_by_line():
    lines = [x.line for x in leak_corpus.corpus(5)]
    by_frame = redact.frame(pd.DataFrame({"m": lines}))["m"].tolist()
    redact.forget()
    by_text = [redact.text(s) for s in lines]
    # the frame may mask more (values found in later rows); never less
    for f, t, s in zip(by_frame, by_text, lines):
        assert f == t or (f != s and len(f) <= len(t) + 200), (s, f, t)
    assert sum(f == t for f, t in zip(by_frame, by_text)) >= 0.9 * len(lines)


# ---- the final pass over a record ----------------------------------------------------------------------
def test_scrub_record_files_masks_a_secret_redacted_in_another_process(tmp_path):
    pw = "Vb7!qRt2LmX9wKz4"
    # capture A (another kernel) redacted it where it was labelled: only its marker is in the record
    (tmp_path / "data").mkdir()
    pd.DataFrame({"message": [f"login password={redact.marker('dsn-password', pw)}", "ok"],
                  "tags": [["a"], []]}).to_parquet(tmp_path / "data" / "a.parquet")
    # capture B and a notebook saw it unlabelled
    pd.DataFrame({"message": [f"worker crashed with arg {pw}", "fine"]}).to_parquet(tmp_path / "data" / "b.parquet")
    image = "iVBORw0KGgo" + "A" * 60
    nb = {"cells": [{"outputs": [{"text": f"traceback ... {pw}\n", "data": {"image/png": image}}]}]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb))
    (tmp_path / "page.html").write_text(f"<pre>{pw}</pre><img src='data:image/png;base64,{image}'>")
    redact.forget()  # this process never saw the value
    written = redact.scrub_record_files(tmp_path)
    assert {p.name for p in written} == {"b.parquet", "nb.ipynb", "page.html"}
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert pw.encode() not in p.read_bytes(), p
    mark = redact.marker("dsn-password", pw)
    assert pd.read_parquet(tmp_path / "data" / "b.parquet")["message"].iloc[0] == f"worker crashed with arg {mark}"
    out_nb = json.loads((tmp_path / "nb.ipynb").read_text())
    assert out_nb["cells"][0]["outputs"][0]["data"]["image/png"] == image
    assert mark in (tmp_path / "page.html").read_text() and image in (tmp_path / "page.html").read_text()
    assert redact.scrub_record_files(tmp_path) == [], "a second pass changes nothing"


def test_frames_read_back_from_parquet_with_list_cells_are_scrubbed(tmp_path):
    pw = "Gx4!mQ9tLw2zRv7B"
    pd.DataFrame({"tags": [["a", f"password={pw}"], [], ["b"]], "n": [1, 2, 3]}).to_parquet(tmp_path / "t.parquet")
    df = pd.read_parquet(tmp_path / "t.parquet")  # list cells come back as numpy arrays
    out = redact.frame(df)
    assert pw not in str(out["tags"].tolist()) and list(out["tags"].iloc[2]) == ["b"]


def test_a_dsn_keeps_everything_but_its_password():
    line = "dsn: host=127.0.0.1 port=5432 dbname=app user=forensics"
    assert redact.text(line) == line
    assert redact.text(line + " password=Qw8!zLx2Vb7m") == line + f" password={redact.marker('dsn-password', 'Qw8!zLx2Vb7m')}"


def test_a_labelled_40_character_token_keeps_its_label():
    tok = "7pWnOna8sEXflmWwdRpdo9KMleEnmhPxjExF6YGV"
    assert redact.text(f"Authorization: Bearer {tok}") == f"Authorization: Bearer {redact.marker('bearer-token', tok)}"


def test_only_aws_documented_example_key_id_is_kept():
    assert redact.text("id AKIAIOSFODNN7EXAMPLE") == "id AKIAIOSFODNN7EXAMPLE"
    assert redact.text("AKIA2E3XK7QW9RZ5TY4U").startswith("[REDACTED:aws-access-key-id:")  # alone: hashed
    assert redact.text("AKIAEXAMPLEKEY000001").startswith("[REDACTED:aws-access-key-id:")
    assert redact.text("AKIAXXXXXXXXXXXXXXXX") == "AKIAXXXXXXXXXXXXXXXX"  # a placeholder in the vendor's shape


@pytest.mark.parametrize("text", [
    '{"signature": "<*> ERROR [scr_api.db] [req=<*>] request <*> failed after <*>: QueuePool limit of size <*>"}',
    "signature: computed sha256 does not match header sha256",
    '"key": "orders by customer and day"',
])
def test_a_weak_field_name_before_words_or_a_log_template_is_not_a_secret(text):
    """Findings hold signature templates under a "signature" key; masking one would mask every copy of the
    failure's signature in the record (known-secret masking), hiding the diagnosis."""
    assert redact.text(text) == text


def test_every_column_layout_gives_the_same_result_as_text():
    """Arrow strings, object strings, categoricals, mixed object cells, columns that repeat (scanned once
    per distinct value), above and below the size where the RE2 prefilter is used."""
    lines = [x.line for x in leak_corpus.corpus(6)]
    for n in (40, 6000):
        rows = (lines * (n // len(lines) + 1))[:n]
        df = pd.DataFrame({"arrow": rows, "obj": pd.Series(rows, dtype=object),
                           "cat": pd.Series(rows, dtype="category"),
                           "mixed": pd.Series([[r] if i % 7 == 0 else r for i, r in enumerate(rows)], dtype=object),
                           "n": range(n)})
        redact.forget()
        out = redact.frame(df)
        redact.forget()
        want = [redact.text(r) for r in rows]
        for col in ("arrow", "obj", "cat"):
            got = out[col].astype(object).tolist()
            assert sum(g != r for g, r in zip(got, rows)) >= sum(w != r for w, r in zip(want, rows)), col
            assert all(not leak.secret or all(f not in g for f in leak.secret.split("\n") if len(f) >= 6)
                       for g, leak in zip(got, (leak_corpus.corpus(6) * (n // len(lines) + 1))[:n])), col
        assert out["arrow"].dtype == df["arrow"].dtype and out["obj"].dtype == object
        assert isinstance(out["cat"].dtype, pd.CategoricalDtype)
        assert out["n"].tolist() == list(range(n)) and out["mixed"].iloc[0] == [out["obj"].iloc[0]]
        assert out["arrow"].tolist() == out["obj"].tolist() == out["cat"].astype(object).tolist()


# ---- the final pass skips detection where it already ran ------------------------------------------------
def _capture_like(tmp_path: Path, scrubber) -> list[Path]:
    """Parquet files as the capture store writes them: redacted by another process's scrubber first
    (``redact.frame``), dict cells turned into JSON text, list cells kept."""
    from forensics.capture import _to_parquet

    leaks = leak_corpus.corpus(7)
    lines = [x.line for x in leaks]
    pw, key = "Vb7!qRt2LmX9wKz4", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq3nPr9Xa1"
    frames = {
        "logs": pd.DataFrame({"message": lines, "n": range(len(lines))}),
        "cells": pd.DataFrame({"params": [{"masterUserPassword": pw, "engine": "postgres"},
                                          {"aws_secret_access_key": key}, None],
                               "tags": [["a", f"password={pw}"], [], ["b"]]}),
        "plain": pd.DataFrame({"message": [f"retrying with {pw}", f"worker arg {key}", "ok"]}),
    }
    (tmp_path / "data").mkdir()
    out = []
    for name, df in frames.items():
        path = tmp_path / "data" / f"{name}.parquet"
        _to_parquet(scrubber.frame(df), path)
        out.append(path)
    return out


def test_the_final_pass_gives_the_same_record_when_captures_are_not_detected_again(tmp_path):
    """Skipping detection in the captures (already detected when written) must change nothing: the final
    pass over them, told they are detected, writes byte for byte what the full pass writes."""
    from forensics.redaction.known import Scrubber
    from forensics.redaction.record import scrub_record_files

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    paths = _capture_like(a, Scrubber())
    nb = {"cells": [{"outputs": [{"text": "login failed for Vb7!qRt2LmX9wKz4 at step 2\n"}]}]}
    (a / "nb.ipynb").write_text(json.dumps(nb))
    (a / "findings.json").write_text(json.dumps({"note": "key wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq3nPr9Xa1 rotated"}))
    import shutil

    shutil.copytree(a, b)
    written_a = scrub_record_files(a, Scrubber(), detected=paths)
    written_b = scrub_record_files(b, Scrubber())
    assert {p.relative_to(a) for p in written_a} == {p.relative_to(b) for p in written_b}
    assert {p.name for p in written_a} >= {"nb.ipynb", "findings.json"}
    for p in sorted(a.rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (b / p.relative_to(a)).read_bytes(), p.name
            assert b"Vb7!qRt2LmX9wKz4" not in p.read_bytes(), p.name
            assert b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq3nPr9Xa1" not in p.read_bytes(), p.name


def test_a_detected_file_is_still_masked_for_a_value_found_elsewhere(tmp_path):
    """``detected`` skips detection only: a value redacted in another file is masked in it all the same,
    and a file not in ``detected`` is detected."""
    from forensics.redaction.known import Scrubber
    from forensics.redaction.record import scrub_record_files

    pw = "Gx4!mQ9tLw2zRv7B"
    (tmp_path / "data").mkdir()
    pd.DataFrame({"message": [f"retry with arg {pw}", "fine"]}).to_parquet(tmp_path / "data" / "a.parquet")
    pd.DataFrame({"message": [f"password={pw}"]}).to_parquet(tmp_path / "data" / "b.parquet")
    written = scrub_record_files(tmp_path, Scrubber(), detected=[tmp_path / "data" / "a.parquet"])
    assert {p.name for p in written} == {"a.parquet", "b.parquet"}
    mark = redact.marker("dsn-password", pw)
    assert pd.read_parquet(tmp_path / "data" / "a.parquet")["message"].tolist() == [f"retry with arg {mark}", "fine"]


def test_a_secret_under_a_secret_name_in_a_dict_cell_is_detected():
    """A dict cell (CloudTrail requestParameters) holds name and value apart: the field rule judges the
    pair as it would judge ``"name": "value"`` in JSON, so detection at capture time is not weaker than
    detection of the JSON text the cell becomes in the parquet file."""
    key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq3nPr9Xa1"
    out = redact.obj({"x": {"aws_secret_access_key": key, "key": "users/1", "engine": "postgres"}})
    assert key not in json.dumps(out) and out["x"]["key"] == "users/1" and out["x"]["engine"] == "postgres"
    df = redact.frame(pd.DataFrame({"p": [{"masterUserPassword": "Zx9kLm2Qwq8!", "port": 5432}, None]}))
    assert "Zx9kLm2Qwq8!" not in str(df["p"].tolist()) and df["p"].iloc[0]["port"] == 5432


@pytest.mark.parametrize("text", [
    "a\u00a0bcdefghijk1 mnopq2rstu\vvwxyzab3cdefg\u2003Zz9yyyyyyy",
    "x=abcdefgh12:ijklmnop@host/path?key=Zq8!wer7tyu#frag&t=Kk8wer7tyuio",
    "...:=/Abcdefgh1234/.:", "ünïcødé_tøken_ää1A", "<td>Bearer9Qx!pL2mVb7</td><img src='data:image/png;base64,"
    + "iVBORw0KGgo" + "A/b+" * 40 + "'>",
])
def test_candidate_tokens_in_arrow_are_the_tokens_recover_judges(text):
    """The vectorised tokens of the final pass hold every token ``recover`` would register (outside embedded
    figures, which are never masked)."""
    import pyarrow as pa

    from forensics.redaction import shape
    from forensics.redaction.known import _raw_tokens
    from forensics.redaction.record import candidate_tokens

    want = {t for t in _raw_tokens(text) if shape.worth_registering(t) and "iVBORw0KGgo" not in t and "A/b+" not in t}
    got = candidate_tokens([pa.array([text])])
    assert want <= got and want, (want - got)
    assert not any("iVBORw0KGgo" in t for t in got)


@pytest.mark.parametrize("text", [
    "Evidence: the 401/403 rate departed from its baseline ([auth-failures.onset = `2026-11-26T03:04:00Z`](html/a.html))",
    'token_issued = "2026-11-26T03:04:00.123+00:00"',
    "auth_time: 2026-11-26 03:04",
])
def test_a_timestamp_after_a_secret_looking_name_is_not_a_secret(text):
    """An ISO 8601 time is never a credential. Once taken for one, known-secret masking hid the same time
    everywhere in the record (the auth-failures onset, in the postmortem's diagnosis line, and from there
    in every notebook and findings.json), whenever that minute happened to be the onset."""
    assert redact.text(text) == text
    assert redact.obj({"sessionToken": "2026-11-26T03:04:00Z"}) == {"sessionToken": "2026-11-26T03:04:00Z"}


def test_what_ahead_read_while_the_notebooks_ran_gives_the_same_record(tmp_path):
    """Captures read ahead (``Ahead``) give the same final pass as reading them at the end; a file changed
    after it was read ahead is read again, so its new content is what counts."""
    import shutil

    from forensics.redaction.known import Scrubber
    from forensics.redaction.record import Ahead, scrub_record_files

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    paths = _capture_like(a, Scrubber())
    (a / "nb.ipynb").write_text(json.dumps({"cells": [{"outputs": [{"text": "failed at step 2\n"}]}]}))
    from forensics.capture import _to_parquet

    # another kernel's capture: it never saw the password labelled, so its copy is unmasked
    other = a / "data" / "other.parquet"
    _to_parquet(Scrubber().frame(pd.DataFrame({"message": ["worker arg Vb7!qRt2LmX9wKz4", "ok"]})), other)
    paths.append(other)
    shutil.copytree(a, b)
    ahead = Ahead()
    ahead.add(sorted((a / "data").glob("*.parquet")))
    later = pd.DataFrame({"message": ["rewritten after it was read ahead", "x"]})
    for root in (a, b):
        later.to_parquet(root / "data" / "logs.parquet")
    assert ahead.entry(a / "data" / "logs.parquet") is None and ahead.entry(a / "data" / "plain.parquet") is not None
    detected_b = [b / p.relative_to(a) for p in paths]
    written_a = scrub_record_files(a, Scrubber(), detected=paths, ahead=ahead)
    written_b = scrub_record_files(b, Scrubber(), detected=detected_b)
    assert {p.relative_to(a) for p in written_a} == {p.relative_to(b) for p in written_b}
    for p in sorted(a.rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (b / p.relative_to(a)).read_bytes(), p.name
    # the unlabelled copy is only in other.parquet, read ahead: recovered from its tokens read then
    digest = redact.marker("dsn-password", "Vb7!qRt2LmX9wKz4")[-9:-1]
    first = pd.read_parquet(other)["message"].iloc[0]
    assert first.startswith("worker arg [REDACTED:") and first.endswith(f":{digest}]"), first


# ---- precision (issue 21): secret-shaped lines with no secret, and the context rules ----
from . import negatives_corpus  # noqa: E402

NEG_DEV = [neg for seed in (1, 2) for neg in negatives_corpus.corpus(seed, "dev")]


def test_negatives_corpus_has_every_class_in_both_splits():
    fams = set(negatives_corpus.families(1))
    assert len(fams) >= 12
    assert {n.family for n in negatives_corpus.corpus(1, "dev")} == fams
    assert len({n.family for n in negatives_corpus.corpus(1, "holdout")}) >= len(fams) - 1  # object-keys: dev only


@pytest.mark.parametrize("neg", NEG_DEV, ids=[f"{n.family}-{i}" for i, n in enumerate(NEG_DEV)])
def test_dev_negative_is_unchanged(neg):
    redact.forget()
    assert redact.text(neg.line) == neg.line


@pytest.mark.parametrize("text", [
    "aws_access_key_id = AKIAXXXXXXXXXXXXXXXX", "AKIA0000000000000000",
    "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "sk_live_000000000000000000000000",
    "token: 1234567890abcdef", "client_secret=abcdefghijklmnop", "api_key=abababababababab",
])
def test_placeholders_and_low_entropy_values_in_a_vendor_shape_or_a_secret_field_are_kept(text):
    assert redact.text(text) == text


@pytest.mark.parametrize("text", [
    "CreateAccessKey: bert-jan called iam:CreateAccessKey",
    "- 09:03 - cloudtrail: CreateAccessKey: bert-jan called iam:CreateAccessKey",
    "GetSecretValue: svc-export read prod/db", "ChangePassword: alice.smith called iam:ChangePassword",
    '{"eventName": "CreateAccessKey", "userName": "bert-jan"}',
    "token_owner: deploy-bot", "secret_owner: j.doe",
])
def test_principal_names_next_to_secret_words_are_kept(text):
    assert redact.text(text) == text


def test_an_access_key_id_is_kept_alone_in_text_and_masked_beside_its_secret():
    akid, sk = "AKIA2E3XK7QW9RZ5TY4U", "k7Qw9Rz5Ty4Ue2E3xK7qW9rZ5tY4uE2e3Xk7QwAb"
    for text in (f"accessKeyId={akid}", f'"userName": "bert-jan", "accessKeyId": "{akid}"',
                 f"key {akid} of bert-jan used from 198.51.100.7"):
        assert redact.text(text) == text
    out = redact.text(f"credentials: {akid}:{sk}")
    assert akid not in out and sk not in out
    out = redact.text(f'{{"accessKeyId": "{akid}", "secretAccessKey": "{sk}"}}')
    assert akid not in out and sk not in out
    # far from the secret in one long record: kept
    far = f'{{"accessKeyId": "{akid}", "x": "{"y" * 300}", "secretAccessKey": "{sk}"}}'
    assert akid in redact.text(far) and sk not in redact.text(far)
    # never registered: a later mention of the same id stays readable
    assert redact.text(f"{akid} used again") == f"{akid} used again"


@pytest.mark.parametrize("text", [
    '"secret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"',
    "token_arn=arn:aws:iam::123456789012:role/export-job-role", "auth: sg-0a1b2c3d4e5f67890",
    "key=i-0a1b2c3d4e5f67890", '"key": "exports/2026/11/09/orders-2ed8.csv"', "key=uploads/user-9869/avatar_ee0c.png",
    '"Key": "logs/AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/23/x.json.gz"',
    "access_token: not-provided", '"token": "invalid_grant"', "token_expires=2026-11-23T18:09:01Z",
])
def test_identifiers_after_secret_names_are_judged_by_content(text):
    assert redact.text(text) == text


@pytest.mark.parametrize("text", [
    '"fingerprint": "P1wU0UcW+8ByF6aTpFbwOmP3TgpTL1HK2JTk600+"',
    "digest JIvpuAjHUNLnn82s6I3X8b/8sDQtTG6JKAy23Ko/ verified",
    "key_fingerprint: a3:27:70:7c:28:22:00:9b:ff:43:a2:55:44:a9:39:46",
    "blob=abc_UKB3S93u2Fo4bdFyVEPWUDOUEl-GVSihAEr4LlNxYz12Tq9w8e7r6t5y4u3i-tail",
    '"requestParameters": {"clientRequestToken": "52ACC30B-B6C6-45FC-B128-9F1A2B3C4D5E", "clientToken": "x8Kq2mP9vL4rT7wZ"}',
    '{"masterUserPassword": "HIDDEN_DUE_TO_SECURITY_REASONS"}',
    '["arn:aws:secretsmanager:us-east-1:1:secret:team/credentials-4", "B36292B7-145C-41BE-81A3-7C"]',
])
def test_hashes_fingerprints_idempotency_tokens_and_json_lists_are_kept(text):
    assert redact.text(text) == text


@pytest.mark.parametrize("text, secret", [
    ("retrying with key=k7Qw9Rz5Ty4Ue2E3xK7qW9rZ5tY4uE2e3Xk7QwAb", "k7Qw9Rz5Ty4Ue2E3xK7qW9rZ5tY4uE2e3Xk7QwAb"),
    ("aws secret k7Qw9Rz5Ty4Ue2E3xK7qW9rZ5tY4uE2e3Xk7QwAb", "k7Qw9Rz5Ty4Ue2E3xK7qW9rZ5tY4uE2e3Xk7QwAb"),
    ('{"api_key": "f3b9c1d2-8e7a-4b6c-9d0e-1a2b3c4d5e6f"}', "f3b9c1d2-8e7a-4b6c-9d0e-1a2b3c4d5e6f"),  # Heroku-style
    ('put("api_token", "Zx8kQ2mP9vL4rT7wAb12")', "Zx8kQ2mP9vL4rT7wAb12"),
    ("Set-Cookie: session=Zx8kQ2mP9vL4rT7wAb12", "Zx8kQ2mP9vL4rT7wAb12"),
    ('client_secret: "qzmxnwbcvalskdjfhgpt"', "qzmxnwbcvalskdjfhgpt"),  # a random lowercase run, not a word
])
def test_context_rules_still_take_secrets(text, secret):
    assert secret not in redact.text(text)


def test_recovery_does_not_mask_a_chance_digest_match_of_another_shape(tmp_path):
    """The final pass hashes a record's tokens against its markers' 32-bit digests: a token whose digest
    matches by chance is masked only if it has the shape of the marker's kind."""
    from forensics.redaction import engine

    scrubber = redact.Scrubber()
    ident = "exports/2026/11/23/orders.csv"
    d = engine.digest(ident)
    assert scrubber.register_digests({ident}, {d}, {d: "secret-pair"}) == 0
    gh = "ghp_k7Qw9Rz5Ty4Ue2E3xK7qW9rZ5tY4uE2e3Xk7Q"
    assert scrubber.register_digests({gh}, {engine.digest(gh)}, {engine.digest(gh): "aws-secret-key"}) == 0
    assert scrubber.register_digests({gh}, {engine.digest(gh)}, {engine.digest(gh): "github-token"}) == 1


def test_a_key_id_far_from_a_marker_already_in_the_text_is_kept():
    """The final pass detects again in texts that already hold markers: a key id is masked only near one."""
    akid = "AKIA2E3XK7QW9RZ5TY4U"
    near = f'{{"sessionToken": "{redact.marker("aws-session-token", "x" * 40)}", "accessKeyId": "{akid}"}}'
    assert akid not in redact.text(near)
    far = f'{redact.marker("secret-pair", "y" * 12)} {"z " * 200} key {akid} used'
    assert akid in redact.text(far)
