"""The capture registry: every capture declared once, every notebook's captures and `needs=` declared,
the plan deduplicated and ordered by volatility, absent sections reported rather than crashing."""

from __future__ import annotations

import ast
import json
import re

import pandas as pd
import pytest

from forensics import contracts, pull, registry
from forensics.capture import CaptureStore
from forensics.notebooks import catalogue
from forensics.params import Incident
from forensics.session import IncidentSession
from forensics.window import IncidentWindow

CATALOGUE = catalogue()


def _code(path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _pulled(code: str) -> set[str]:
    names = set()
    for name in re.findall(r"\bpull\.([a-z_][a-z0-9_]*)\(", code):
        names |= set(registry.CHANGE_EVENT_CAPTURES) if name == "all_change_events" else {name}
    return names


def _session(env: dict) -> IncidentSession:
    window = IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z")
    return IncidentSession(Incident("INC-1", "t", "P3", window, env), CaptureStore(None, notebook="t"), "t")


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_notebook_declares_exactly_the_captures_it_pulls(name):
    info = CATALOGUE[name]
    assert info.captures, f"{name}: no forensics.captures in its metadata"
    assert set(info.captures) == _pulled(_code(info.path)), "metadata and the cells disagree"
    for capture in info.captures:
        registry.get(capture)


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_needs_names_a_declared_capture(name):
    tree = ast.parse(_code(CATALOGUE[name].path))
    needs = [elt.value for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == "needs"
             and isinstance(node.value, (ast.List, ast.Tuple)) for elt in node.value.elts
             if isinstance(elt, ast.Constant)]
    assert needs, f"{name}: no finding names what it needs"
    unknown = [n for n in needs if n not in registry.CAPTURES]
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


def test_every_capture_is_complete():
    for cap in registry.CAPTURES.values():
        assert cap.source and cap.api and cap.columns, cap.name
        assert cap.volatility in (registry.LIVE, registry.COUNTERS, registry.METRICS, registry.LOGS,
                                  registry.TABLES), cap.name
        assert {n.split(".")[0] for n in cap.needs} <= {
            "aws", "alb", "ecs", "rds", "logs", "postgres", "elasticache", "queues", "ai", "audit", "cloudtrail",
            "athena", "schema", "jobs", "backups", "certificates"}, cap.name
        assert cap.doc, f"{cap.name} has no description"
    assert registry.CHANGE_EVENT_CAPTURES and all(n in registry.CAPTURES for n in registry.CHANGE_EVENT_CAPTURES)


def test_declaring_a_name_twice_or_a_missing_query_fails():
    cap = registry.get("pg_activity")
    with pytest.raises(ValueError, match="declared twice"):
        registry.declare(cap)
    with pytest.raises(ValueError, match="no query named"):
        registry.postgres_query("pg_nope", "no_such_query")
    assert "pg_nope" not in registry.CAPTURES


def test_plan_deduplicates_orders_by_volatility_adds_what_captures_read_and_skips_absent_sections():
    env = {"name": "t", "aws": {"region": "x"}, "postgres": {"dsn": "x"}, "ecs": {"cluster": "c", "services": ["s"]},
           "alb": {"load_balancer": "app/x/1"}}
    names = ["alb_metrics", "pg_statements_after", "ecs_target_health", "pg_activity", "alb_metrics", "queue_depth"]
    plan, skipped = registry.plan(names, env)
    got = [c.name for c in plan]
    assert len(got) == len(set(got))
    assert got[:2] == ["pg_activity", "pg_statements"]  # live view first, then counters
    assert got.index("pg_statements") < got.index("pg_statements_after")
    assert "ecs_target_groups" in got and got.index("ecs_target_groups") < got.index("ecs_target_health")
    assert [c.volatility for c in plan] == sorted(c.volatility for c in plan)
    assert skipped == {"queue_depth": ["queues"]} and "queue_depth" not in got


def test_the_catalogues_plan_is_smaller_than_the_sum_of_its_notebooks():
    every = [c for nb in CATALOGUE.values() for c in nb.captures]
    env = {s: {"x": 1} for s in ("aws", "ecs", "rds", "logs", "postgres", "elasticache", "queues", "ai",
                                 "audit", "schema")}
    env.update(alb={"access_logs": {"bucket": "b"}}, cloudtrail={"bucket": "t"}, jobs={"heartbeats": [{}]},
               backups={"bucket": "b", "retention_log_groups": ["g"]},
               certificates={"domains": ["a.example.com"], "cloudfront_distributions": ["E1"]})
    plan, skipped = registry.plan(every, env)
    assert not skipped and len(plan) == len(set(every) | {"pg_statements", "ecs_target_groups"}) < len(every)


def test_a_capture_whose_section_is_absent_fails_with_its_reason_and_keeps_its_columns():
    inc = _session({"name": "t", "aws": {"region": "eu-west-1"}})
    frame = pull.ecs_deployments(inc)
    assert frame.empty and list(frame.columns) == list(registry.get("ecs_deployments").columns)
    assert inc.captures["ecs_deployments"].error == "LookupError: the environment has no ecs section"
    assert inc.finding("suspected_change", "x", needs=["ecs_deployments"]) is None
    assert inc.unknown == ["suspected_change"]


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


def test_every_change_kind_is_produced_by_a_source():
    import pathlib

    import forensics

    src = "\n".join(p.read_text() for p in (pathlib.Path(forensics.__file__).parent / "sources").glob("*.py"))
    names = {v: k for k, v in vars(contracts).items() if isinstance(v, str)}
    for kind in contracts.CHANGE_KINDS:
        assert f"contracts.{names[kind]}" in src, f"no source produces kind {kind!r}"
