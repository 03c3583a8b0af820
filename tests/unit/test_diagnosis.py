"""Runbook entries as data: every entry cites a real runbook section; evidence is weighed, timing is
checked (a cause must precede its effect), missing findings are unknown; a user's file adds entries."""

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from forensics import diagnosis
from forensics.errors import ParamsError
from forensics.params import load_environment

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"

#: A pool exhaustion after a deploy, with a Redis failover half an hour later.
FINDINGS = {
    "api-errors": {"status": "ok", "onset": "2026-11-23T10:05:00Z",
                   "suspected_change": {"time": "2026-11-23T10:00:00Z", "kind": "deployment", "resource": "c/api",
                                        "message": "api:42 PRIMARY"},
                   "top_error_signatures": ["GET <*> failed: sqlalchemy.exc.TimeoutError: QueuePool limit reached"]},
    "db-connections": {"status": "ok", "peak_connections": 40.0, "max_connections": 40, "idle_in_transaction": 8,
                       "pool_errors": 900, "saturated_at": "2026-11-23T10:04:00Z", "top_holder": "api",
                       "blockers": []},
    "cache-redis": {"status": "ok", "failover_events": [{"time": "2026-11-23T10:35:00Z", "message": "Failover"}],
                    "app_errors": {"count": 80, "first_seen": "2026-11-23T10:35:02Z"}},
}


def by_id(diag):
    return {h["id"]: h for h in diag["hypotheses"]}


def test_every_builtin_entry_cites_a_section_of_a_seed_runbook():
    if not SEEDS.is_dir():
        pytest.skip("shared/seeds is not beside this checkout")
    rb = diagnosis.load()
    assert len(rb.entries) >= 15
    for entry in rb.entries:
        for src in [entry["source"], *entry.get("also", [])]:
            text = (SEEDS / src["runbook"]).read_text()
            heading = src["section"].split(" (")[0]
            for part in heading.split(": "):
                assert part in text, (entry["id"], src)


def test_pool_exhaustion_after_deploy_is_primary_and_redis_is_concurrent_not_its_cause():
    diag = diagnosis.diagnose(FINDINGS)
    hyps = by_id(diag)
    assert diag["primary"] == "pool-exhaustion-after-deploy"
    top = hyps["pool-exhaustion-after-deploy"]
    assert top["rank"] == 1 and top["holds"] and top["timing"]["holds"] is True
    assert [s["step"] for s in top["timing"]["steps"]] == ["deployment", "connections at 90 % of max_connections",
                                                           "5xx onset"]
    pool = next(e for e in top["evidence_for"] if e["finding"] == "db-connections.pool_errors")
    assert (pool["value"], pool["notebook"], pool["html"]) == (900, "db-connections", "html/db-connections.html")
    assert top["source"] == {"runbook": "004_b9c89ee92470956a.txt",
                             "section": "Incident 4: Database Connection Pool Exhausted", "file": "entries.yaml"}
    assert "top holder api" in top["next_step"] and "c/api" in top["next_step"]
    assert "redis-failover" in diag["concurrent"] and hyps["redis-failover"]["role"] == "concurrent"
    as_cause = hyps["redis-transport-closed-5xx"]
    assert not as_cause["holds"] and "a cause must precede its effect" in as_cause["verdict"]
    assert hyps["pool-exhaustion-load"]["role"] == "alternative"


def test_redis_before_the_5xx_makes_it_a_cause_again():
    findings = {**FINDINGS, "cache-redis": {"failover_events": [{"time": "2026-11-23T10:01:00Z"}],
                                            "app_errors": {"count": 80, "first_seen": "2026-11-23T10:02:00Z"}}}
    hyp = by_id(diagnosis.diagnose(findings))["redis-transport-closed-5xx"]
    assert hyp["holds"] and hyp["timing"]["holds"] is True


def test_a_deploy_after_the_onset_refutes_the_chain():
    findings = {**FINDINGS, "db-connections": {**FINDINGS["db-connections"], "saturated_at": "2026-11-23T09:50:00Z"}}
    hyp = by_id(diagnosis.diagnose(findings))["pool-exhaustion-after-deploy"]
    assert not hyp["holds"] and hyp["verdict"].startswith("refuted: deployment")


def test_missing_findings_are_unknown_not_evidence():
    findings = {"api-errors": FINDINGS["api-errors"]}  # db-connections did not run
    diag = diagnosis.diagnose(findings)
    hyp = by_id(diag)["pool-exhaustion-after-deploy"]
    assert not hyp["holds"] and hyp["verdict"].startswith("not supported")
    assert "db-connections.pool_errors" in [e["finding"] for e in hyp["unknown"]]
    assert not any(e["finding"].startswith("db-connections") for e in hyp["evidence_against"])
    assert diag["primary"] != "pool-exhaustion-after-deploy"


def test_nothing_holds_on_a_quiet_record():
    diag = diagnosis.diagnose({"overview": {"status": "ok", "onset": None}})
    assert diag["primary"] is None and diag["concurrent"] == []
    assert all(h["role"] == "not holding" for h in diag["hypotheses"])


USER = textwrap.dedent("""\
    symptoms:
      - {id: cert-expiry, label: certificate about to expire}
    entries:
      - id: cert-renewal-stuck
        explains: cert-expiry
        cause: ACM renewal is stuck waiting for DNS validation.
        chain: [validation record missing, renewal pending, certificate expires]
        for:
          - says: a lot of pool errors (stand-in finding for the test)
            finding: db-connections.pool_errors
            holds: '"db-connections".pool_errors > `100`'
            required: true
        next_step: Re-add the validation CNAME.
        source: {runbook: our-runbook.md, section: "Certificate expiry"}
      - id: redis-failover
        explains: redis-errors
        cause: Our own wording of the failover.
        for:
          - says: Redis errors
            finding: cache-redis.app_errors.count
            holds: '"cache-redis".app_errors.count > `0`'
        next_step: Page the cache owner.
        source: {runbook: our-runbook.md, section: "Redis"}
""")


def test_a_user_file_adds_entries_and_replaces_a_builtin_by_id(tmp_path):
    path = tmp_path / "ours.yaml"
    path.write_text(USER)
    rb = diagnosis.load(path)
    diag = diagnosis.diagnose(FINDINGS, rb)
    hyps = by_id(diag)
    assert hyps["cert-renewal-stuck"]["holds"] and hyps["cert-renewal-stuck"]["source"]["file"] == "ours.yaml"
    assert hyps["redis-failover"]["next_step"] == "Page the cache owner."
    assert diag["runbooks"] == ["entries.yaml", "ours.yaml"]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["entries"][0].pop("source"), "entries[0]: 'source' is a required property"),
    (lambda d: d["entries"][0]["for"][0].update(holds="pool_errors >"), "entry cert-renewal-stuck: bad expression"),
    (lambda d: d["entries"][0].update(explains="nothing"), "explains unknown symptom 'nothing'"),
    (lambda d: d["entries"][0]["for"][0].update(weight="heavy"), "entries[0].for[0].weight: 'heavy' is not of type"),
])
def test_a_bad_user_file_is_one_line_naming_the_file_and_field(tmp_path, edit, message):
    data = yaml.safe_load(USER)
    edit(data)
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError) as err:
        diagnosis.load(path)
    text = str(err.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_the_environment_names_the_user_file_relative_to_itself(tmp_path):
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "ours.yaml").write_text(USER)
    env = tmp_path / "env.yaml"
    base = ("name: production\naws: {region: eu-west-1}\nalb: {load_balancer: app/a/1}\n"
            "ecs: {cluster: c, services: [s]}\nrds: {instance: db}\nlogs: {app: [/ecs/api]}\n")
    env.write_text(base + "diagnosis: {runbook_file: runbooks/ours.yaml}\n")
    loaded = load_environment(env)
    assert loaded["diagnosis"]["runbook_file"] == str(tmp_path / "runbooks" / "ours.yaml")
    diag = diagnosis.for_record(FINDINGS, loaded)
    assert "cert-renewal-stuck" in by_id(diag)
    env.write_text(base + "diagnosis: {runbook_file: runbooks/missing.yaml}\n")
    with pytest.raises(ParamsError, match=r"missing\.yaml: no such runbook file"):
        load_environment(env)


def test_a_runbook_file_gone_at_replay_is_reported_in_the_diagnosis():
    diag = diagnosis.for_record(FINDINGS, {"diagnosis": {"runbook_file": "/nonexistent/ours.yaml"}})
    assert re.search(r"ours\.yaml: no such runbook file", diag["error"]) and diag["hypotheses"] == []


def test_jmespath_helpers():
    f = diagnosis._Functions()
    assert f._func_ratio(36, 40) == 0.9 and f._func_ratio(1, 0) is None
    stops = {"OutOfMemoryError [exit 137]": 4, "Essential container in task exited [exit 1]": 2}
    assert f._func_tally(stops, "OutOfMemory") == 4 and f._func_tally(None, "x") is None
    assert f._func_share(stops, "exit 1]") == pytest.approx(1 / 3)
    assert f._func_minutes("2026-11-23T10:00:00Z", "2026-11-23T10:05:30Z") == 5.5
