"""The captures: every capture declared once and built as one call (run and recorded alike), every notebook's
captures and findings read from its cells, every `needs=` and runbook `finding:` checked, the plan
deduplicated and ordered by volatility, absent sections reported rather than crashing."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from forensics import captures, contracts, notebooks, pull, runbook
from forensics.capture import CaptureStore
from forensics.errors import ParamsError
from forensics.notebooks import catalogue
from forensics.params import Incident
from forensics.session import IncidentSession
from forensics.window import IncidentWindow

CATALOGUE = catalogue()


def _session(env: dict) -> IncidentSession:
    window = IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z")
    return IncidentSession(Incident("INC-1", "t", "P3", window, env), CaptureStore(None, notebook="t"), "t")


def _undeclared(info: notebooks.NotebookInfo) -> list[str]:
    """What a notebook pulls that is neither a declared capture nor a helper of forensics.pull."""
    return [n for n in info.pulls if n not in captures.CAPTURES and n not in pull.PULLS]


# ---- the notebooks, read from their cells ---------------------------------------------------------------
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_notebook_pulls_only_declared_captures_and_keeps_no_list_by_hand(name):
    info = CATALOGUE[name]
    assert info.captures, f"{name}: pulls no capture"
    assert not _undeclared(info), f"{name} pulls undeclared captures: {_undeclared(info)}"
    meta = json.loads(info.path.read_text())["metadata"]["forensics"]
    assert "captures" not in meta and "sources" not in meta, "the lists are read from the cells, not kept by hand"
    assert info.findings, f"{name}: writes no finding"


def test_the_lint_catches_a_pull_of_an_undeclared_capture(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": ["alb = pull.alb_metric(inc)\n", "x = inc.pull(\"pg_activty\")\n",
                                                    "inc.finding(\"onset\", 1, needs=[\"alb_metrics\"])\n"]}],
          "metadata": {"forensics": {"title": "t"}}}
    (tmp_path / "bad.ipynb").write_text(json.dumps(nb))
    info = catalogue(tmp_path)["bad"]
    assert _undeclared(info) == ["alb_metric", "pg_activty"] and info.findings == ("onset",)


def test_overview_reads_every_change_event_capture_through_its_helper():
    assert set(captures.CHANGE_EVENT_CAPTURES) | set(captures.JOB_EVENT_CAPTURES) <= set(CATALOGUE["overview"].captures)
    assert "all_change_events" in CATALOGUE["overview"].pulls


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_needs_names_a_declared_capture(name):
    tree = ast.parse(notebooks.code(CATALOGUE[name].path))
    needs = [elt.value for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == "needs"
             and isinstance(node.value, (ast.List, ast.Tuple)) for elt in node.value.elts
             if isinstance(elt, ast.Constant)]
    assert needs, f"{name}: no finding names what it needs"
    unknown = [n for n in needs if n not in captures.CAPTURES]
    assert not unknown, f"{name}: needs= names no declared capture: {unknown}"


def test_a_needs_name_that_no_capture_declares_is_an_error():
    inc = _session({"name": "t", "aws": {"region": "eu-west-1"}})
    with pytest.raises(KeyError, match="no capture named 'alb_metric'"):
        inc.finding("onset", 1, needs=["alb_metric"])


def test_unknown_capture_and_unknown_parameter_are_errors():
    with pytest.raises(AttributeError, match="no capture 'alb_metric'"):
        pull.alb_metric  # noqa: B018
    inc = _session({"name": "t", "aws": {"region": "eu-west-1"}})
    with pytest.raises(TypeError, match="takes no parameter 'wait'"):
        inc.pull("pg_statements_after", wait=3)


# ---- the runbooks' findings ----------------------------------------------------------------------------------
def test_every_builtin_runbook_finding_is_written_by_a_notebook():
    data = yaml.safe_load(runbook.BUILTIN.read_text())
    refs = [f for e in data["entries"] for ev in e["for"] + e.get("against", []) for f in runbook._findings(ev)]
    assert refs and [f for f in refs if notebooks.unknown_finding(f, CATALOGUE)] == []


@pytest.mark.parametrize("ref, why", [
    ("db-connections.pool_error", "notebook db-connections writes no finding 'pool_error'"),
    ("db-connection.pool_errors", "no notebook named 'db-connection'"),
])
def test_a_runbook_finding_no_notebook_writes_is_a_one_line_error(tmp_path, ref, why):
    data = yaml.safe_load(runbook.BUILTIN.read_text())
    data["entries"] = [data["entries"][0]]
    data["entries"][0]["for"][0]["finding"] = ref
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError) as err:
        runbook.load(path)
    text = str(err.value)
    assert text.startswith(str(path)) and why in text and f"entry {data['entries'][0]['id']}" in text
    assert "\n" not in text


def test_validate_exits_2_on_a_runbook_finding_typo(tmp_path):
    data = yaml.safe_load(runbook.BUILTIN.read_text())
    data["entries"] = [data["entries"][0]]
    data["entries"][0]["for"][0]["finding"] = "api-errors.onest"
    (tmp_path / "ours.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "env.yaml").write_text("name: production\naws: {region: eu-west-1}\nalb: {load_balancer: app/a/1}\n"
                                       "diagnosis: {runbook_file: ours.yaml}\n")
    (tmp_path / "i.yaml").write_text(f"incident: INC-1\ntitle: t\nseverity: P2\nenvironment: {tmp_path / 'env.yaml'}\n"
                                     "window: {start: 2026-11-23T10:00:00Z, end: 2026-11-23T12:00:00Z}\n")
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "validate", "i.yaml"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "ours.yaml" in line and "writes no finding 'onest'" in line


# ---- the declarations ----------------------------------------------------------------------------------------
def test_every_capture_is_complete():
    for cap in captures.CAPTURES.values():
        assert cap.source and cap.api and cap.columns and callable(cap.build), cap.name
        assert cap.volatility in (captures.LIVE, captures.COUNTERS, captures.METRICS, captures.LOGS,
                                  captures.TABLES), cap.name
        assert {n.split(".")[0] for n in cap.needs} <= {
            "aws", "alb", "ecs", "rds", "logs", "postgres", "elasticache", "queues", "ai", "audit", "cloudtrail",
            "athena", "schema", "jobs", "backups", "certificates", "integrations"}, cap.name
        assert cap.doc, f"{cap.name} has no description"
    for name in captures.CHANGE_EVENT_CAPTURES + captures.JOB_EVENT_CAPTURES:
        captures.get(name)
    assert not [c for c in captures.CAPTURES.values() if c.api.startswith("analysis:")], "analysis is no capture"


def test_declaring_a_name_twice_or_a_missing_query_fails():
    cap = captures.get("pg_activity")
    with pytest.raises(ValueError, match="declared twice"):
        captures.declare(cap)
    with pytest.raises(ValueError, match="no query named"):
        captures.postgres_query("pg_nope", "no_such_query")
    assert "pg_nope" not in captures.CAPTURES
    with pytest.raises(TypeError, match="build one Call instead"):  # the registry's pull/describe pair
        captures.declare(captures.Capture("old_style", "logs", "x", lambda inc: None, lambda inc: {}))
    assert "old_style" not in captures.CAPTURES


def test_a_capture_builds_one_call_whose_window_is_recorded():
    """ECS deployments are read over the window: the recorded arguments say so (they did not)."""
    env = {"name": "t", "aws": {"region": "eu-west-1"}, "ecs": {"cluster": "c", "services": ["s"]},
           "rds": {"instance": "db"}, "backups": {"retention_log_groups": ["/jobs"]}}
    inc = _session(env)
    call = captures.get("ecs_deployments").build(inc)
    assert call.args == {"cluster": "c", "services": ["s"], "field": "deployments", **inc.window.as_dict()}
    assert captures.get("backup_job_logs").build(inc).args["args"]["window"] == inc.backup_window.as_dict()
    assert captures.get("rds_backup_events").build(inc).args["start"] == inc.backup_window.as_dict()["start"]


def test_plan_deduplicates_orders_by_volatility_adds_what_captures_read_and_skips_absent_sections():
    env = {"name": "t", "aws": {"region": "x"}, "postgres": {"dsn": "x"}, "ecs": {"cluster": "c", "services": ["s"]},
           "alb": {"load_balancer": "app/x/1"}}
    names = ["alb_metrics", "pg_statements_after", "ecs_target_health", "pg_activity", "alb_metrics", "queue_depth"]
    plan, skipped = captures.plan(names, env)
    got = [c.name for c in plan]
    assert len(got) == len(set(got))
    assert got[:2] == ["pg_activity", "pg_statements"]  # live view first, then counters
    assert got.index("pg_statements") < got.index("pg_statements_after")
    assert "ecs_target_groups" in got and got.index("ecs_target_groups") < got.index("ecs_target_health")
    assert [c.volatility for c in plan] == sorted(c.volatility for c in plan)
    assert skipped == {"queue_depth": ["queues"]} and "queue_depth" not in got
    assert [c.name for c in captures.volatile(plan)] == ["pg_activity", "pg_statements"]


def test_a_notebook_whose_sources_are_all_absent_says_which_sections_it_needs():
    env = {"name": "t", "aws": {"region": "x"}}
    assert captures.sections_lacking(CATALOGUE["db-connections"].captures, env) == ["ecs", "logs", "postgres", "rds"]
    assert captures.sections_lacking(["backup_job_logs"], {**env, "backups": {"bucket": "b"}}) == [
        "backups.retention_log_groups"]
    assert captures.sections_lacking(["rds_metrics", "queue_depth"], {**env, "rds": {"instance": "db"}}) == []


def test_an_optional_capture_is_read_only_where_configured_and_never_makes_a_notebook_run(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": ["trail = inc.optional(\"cloudtrail_events\")\n",
                                                    "alb = pull.alb_metrics(inc)\n"]}],
          "metadata": {"forensics": {"title": "t"}}}
    (tmp_path / "opt.ipynb").write_text(json.dumps(nb))
    info = catalogue(tmp_path)["opt"]
    assert info.optional == ("cloudtrail_events",) and info.required == ("alb_metrics",)
    assert info.captures == ("alb_metrics", "cloudtrail_events")  # planned (and prefetched) with the rest
    trail_only = {"name": "t", "aws": {"region": "eu-west-1"}, "cloudtrail": {"bucket": "t"}}
    assert captures.sections_lacking(info.required, trail_only) == ["alb"]  # what the runner skips it for
    assert captures.sections_lacking(info.captures, trail_only) == []
    inc = _session({"name": "t", "aws": {"region": "eu-west-1"}})
    assert inc.optional("cloudtrail_events") is None and "cloudtrail_events" not in inc.captures
    assert inc.failed() == [] and inc.sources().empty  # not configured: not pulled, nothing failed
    api = CATALOGUE["api-errors"]
    assert "cloudtrail_events" in api.optional and "cloudtrail_events" not in api.required


def test_the_catalogues_plan_is_smaller_than_the_sum_of_its_notebooks():
    every = [c for nb in CATALOGUE.values() for c in nb.captures]
    env = {s: {"x": 1} for s in ("aws", "ecs", "rds", "logs", "postgres", "elasticache", "queues", "ai",
                                 "audit", "schema", "integrations")}
    env.update(alb={"access_logs": {"bucket": "b"}}, cloudtrail={"bucket": "t"}, jobs={"heartbeats": [{}]},
               backups={"bucket": "b", "retention_log_groups": ["g"]},
               certificates={"domains": ["a.example.com"], "cloudfront_distributions": ["E1"]})
    plan, skipped = captures.plan(every, env)
    assert not skipped and len(plan) == len(set(every) | {"pg_statements", "ecs_target_groups"}) < len(every)


def test_a_capture_whose_section_is_absent_fails_with_its_reason_and_keeps_its_columns():
    inc = _session({"name": "t", "aws": {"region": "eu-west-1"}})
    frame = pull.ecs_deployments(inc)
    assert frame.empty and list(frame.columns) == list(captures.get("ecs_deployments").columns)
    assert inc.captures["ecs_deployments"].error == "LookupError: the environment has no ecs section"
    assert inc.captures["ecs_deployments"].args == {"needs": "section ecs"}
    assert inc.finding("suspected_change", "x", needs=["ecs_deployments"]) is None
    assert inc.unknown == ["suspected_change"]


def test_a_sampling_plan_is_read_by_name_and_empty_when_the_sample_was_never_planned():
    inc = _session({"name": "t", "aws": {"region": "eu-west-1"}})
    plan = inc.sampling("app_error_sample")
    assert not plan and plan.onset_guess is None and plan.slices == [] and dict(plan) == {}
    assert inc.captures["app_error_sample"].error == "LookupError: the environment has no logs section"


def test_change_event_frames_share_one_contract_and_one_dtype():
    from forensics.analysis import timeline
    from forensics.sources import _empty, aws_events, backups, certificates, cloudtrail, cloudwatch, elasticache

    base = _empty(contracts.EVENT_COLUMNS).dtypes
    for schema in (aws_events.DEPLOYMENT_COLUMNS, aws_events.SERVICE_EVENT_COLUMNS, aws_events.RDS_EVENT_COLUMNS,
                   cloudtrail.COLUMNS, cloudwatch.ALARM_HISTORY_COLUMNS, elasticache.EVENT_COLUMNS,
                   backups.SNAPSHOT_COLUMNS, backups.JOB_COLUMNS, certificates.CERTIFICATE_COLUMNS):
        assert list(schema)[:5] == list(contracts.EVENT_COLUMNS)
        assert (_empty(schema).dtypes[:5] == base).all()
    assert (timeline.empty().dtypes == base).all()
    merged = timeline.merge(pd.DataFrame({"timestamp": ["2026-01-01T00:00Z"], "source": ["ecs"], "resource": ["s"],
                                          "kind": [contracts.DEPLOYMENT], "message": ["m"]}))
    assert (merged.dtypes == base).all()


def test_every_change_kind_is_produced_by_a_source_or_the_jobs_analysis():
    import pathlib

    import forensics

    root = pathlib.Path(forensics.__file__).parent
    src = "\n".join(p.read_text() for p in [*(root / "sources").glob("*.py"), root / "analysis" / "jobs.py"])
    names = {v: k for k, v in vars(contracts).items() if isinstance(v, str)}
    for kind in contracts.CHANGE_KINDS:
        assert f"contracts.{names[kind]}" in src, f"no source produces kind {kind!r}"
