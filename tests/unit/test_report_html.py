"""Notebook HTML is offline (no script, no external reference) and its report view has no code;
index.html is built from a record's files and says what it verified."""

import json
import re

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from forensics import report_html
from forensics.params import Incident
from forensics.window import IncidentWindow

EXTERNAL = re.compile(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|import\s*\(|https?://""", re.I)


def executed_notebook(path):
    nb = new_notebook(cells=[
        new_markdown_cell("# Pool check\n\nWho holds the connections."),
        new_code_cell("SECRET_CODE_MARKER = 1\nprint('peak 40 of 40')", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text="peak 40 of 40\n")]),
    ])
    nbformat.write(nb, path)
    return path


def test_notebook_html_is_offline_and_the_report_view_has_no_code(tmp_path):
    (tmp_path / "html").mkdir()
    nb = executed_notebook(tmp_path / "db-connections.ipynb")
    rel = report_html.render_notebook(nb, tmp_path / "html", "db-connections")
    assert rel == "html/db-connections.html"
    full = (tmp_path / "html" / "db-connections.html").read_text()
    report = (tmp_path / "html" / "db-connections.report.html").read_text()
    for page in (full, report):
        assert "<script" not in page.lower(), "no active content, no mermaid loader"
        assert not EXTERNAL.search(page), EXTERNAL.search(page)
        assert "peak 40 of 40" in page and "Pool check" in page
    assert "SECRET_CODE_MARKER" in full and "SECRET_CODE_MARKER" not in report


def test_offline_drops_module_scripts_external_links_and_css_comments_but_keeps_text():
    page = ('<html><head><link rel="stylesheet" href="https://cdn.example/x.css">'
            '<style>/* see https://meyerweb.com */ body { color: red }</style>'
            '<script type="module">const m = (await import("https://cdnjs.cloudflare.com/mermaid.mjs"))</script>'
            '</head><body><p>a /* b */ c</p></body></html>')
    out = report_html.offline(page)
    assert "cdn" not in out and "meyerweb" not in out and "<script" not in out
    assert "body { color: red }" in out and "<p>a /* b */ c</p>" in out


@pytest.fixture
def small_record(tmp_path):
    record = tmp_path / "2026-11-23_INC-7" / "20261123T120000Z.partial"
    for d in ("notebooks", "html", "data", "figures"):
        (record / d).mkdir(parents=True)
    executed_notebook(record / "notebooks" / "db-connections.ipynb")
    report_html.render_notebook(record / "notebooks" / "db-connections.ipynb", record / "html", "db-connections")
    pd.DataFrame({"x": range(7)}).to_parquet(record / "data" / "pg_activity.parquet")
    (record / "figures" / "db-connections--connections.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return record


def test_index_shows_the_record_and_what_was_verified_when_written(small_record):
    from test_diagnosis import FINDINGS

    from forensics import diagnosis

    inc = Incident("INC-7", "Wide 500s after deploy", "P1",
                   IncidentWindow("2026-11-23T09:30:00Z", "2026-11-23T11:00:00Z"), {"name": "production"})
    findings = {**FINDINGS, "diagnosis": diagnosis.diagnose(FINDINGS)}
    notebooks = [{"name": "db-connections", "status": "ok", "duration_s": 3.2, "notebook": "notebooks/db-connections.ipynb",
                  "html": "html/db-connections.html"}]
    captures = [{"name": "pg_activity", "file": "data/pg_activity.parquet", "rows": 7, "source": "postgres",
                 "notebook": "runner"},
                {"name": "rds_metrics", "file": None, "rows": None, "source": "cloudwatch", "notebook": "db-connections",
                 "error": "SourceError: throttled"}]
    path = report_html.write_index(small_record, inc, findings, notebooks, captures, "2026-11-23_INC-7/20261123T120000Z")
    page = path.read_text()
    assert "INC-7: Wide 500s after deploy" in page and "2026-11-23T09:30:00Z" in page
    assert page.index('id="diagnosis"') < page.index('id="verify"') < page.index('id="timeline"')
    assert "deployment → database connection pool exhausted → API 5xx" in page
    assert "Incident 4: Database Connection Pool Exhausted" in page
    assert '<a href="html/db-connections.html"><code>db-connections.pool_errors</code></a>' in page
    assert "Consistent." in page and "1 data file(s)" in page and "2 executed notebook / HTML file(s)" in page
    assert '<a href="html/db-connections.report.html">report</a>' in page
    assert '<img src="figures/db-connections--connections.png"' in page
    assert re.search(r"data/pg_activity.parquet</a></td>\s*<td class=\"num\">[0-9.]+ (B|KiB)</td><td class=\"num\">7</td>",
                     page)
    assert "SourceError: throttled" in page
    assert not EXTERNAL.search(page)
    # a data file whose rows differ from its capture metadata is reported
    captures[0]["rows"] = 8
    page = report_html.write_index(small_record, inc, findings, notebooks, captures, "x").read_text()
    assert "Problems found." in page and "data/pg_activity.parquet: 7 rows, its capture says 8" in page
    assert json.dumps(findings)  # the findings stay plain JSON
