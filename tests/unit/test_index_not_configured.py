"""index.html of a record whose environment configures only some sections (issue 17 item 8): skipped
notebooks and unconfigured captures say "not configured", are not problems, and are never shown as failures;
"Checked when written" counts only real problems, as `forensics verify` would."""

import pandas as pd

from forensics import report_html
from forensics.params import Incident
from forensics.window import IncidentWindow

NO_ECS = "LookupError: the environment has no ecs section"


def test_skipped_notebooks_and_unconfigured_captures_are_not_configured_not_failed(tmp_path):
    record = tmp_path / "2026-11-23_INC-8" / "20261123T120000Z.partial"
    (record / "data").mkdir(parents=True)
    pd.DataFrame({"x": range(3)}).to_parquet(record / "data" / "alb_metrics.parquet")
    inc = Incident("INC-8", "Partial environment", "P2",
                   IncidentWindow("2026-11-23T09:30:00Z", "2026-11-23T11:00:00Z"), {"name": "small"})
    notebooks = [{"name": name, "status": "skipped", "duration_s": 0.0, "notebook": None, "html": None,
                  "error": "needs a section the environment lacks: ecs"} for name in ("ecs-deploy", "backups")]
    findings = {"ecs-deploy": {"status": "skipped", "unknown": []}, "backups": {"status": "skipped", "unknown": []},
                "diagnosis": {"hypotheses": [], "runbooks": []}}
    captures = [{"name": "alb_metrics", "file": "data/alb_metrics.parquet", "rows": 3, "source": "cloudwatch",
                 "notebook": "runner"},
                {"name": "ecs_deployments", "file": None, "rows": None, "source": "ecs", "notebook": "runner",
                 "error": NO_ECS}]
    page = report_html.index_html(record, inc, findings, notebooks, captures, "2026-11-23_INC-8/20261123T120000Z")
    assert "Consistent." in page and "problem(s)" not in page and "Problems found." not in page
    assert page.count('<span class="muted">not configured</span>') == 3  # two notebooks, one capture
    assert NO_ECS not in page and "LookupError" not in page
    assert '<span class="bad">skipped</span>' not in page
    # a real problem is still one: a data file whose rows differ from its capture
    captures[0]["rows"] = 4
    page = report_html.index_html(record, inc, findings, notebooks, captures, "x")
    assert "1 problem(s)" in page and "data/alb_metrics.parquet: 3 rows, its capture says 4" in page
