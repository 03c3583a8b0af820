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


# ---- the page at 3 a.m. (issue 22) ------------------------------------------------------------------------
def test_readable_values_times_as_times_objects_as_key_value_lists():
    assert report_html.readable("2026-11-23T18:08:00Z") == "18:08 UTC"
    assert report_html.readable("2026-11-23T18:08:31.123+00:00") == "18:08 UTC"
    assert report_html.readable("not a 2026-11-23T18:08:00Z time") == "not a 2026-11-23T18:08:00Z time"
    assert report_html.readable({"count": 80, "first_seen": "2026-11-23T10:35:02Z"}) == "count: 80; first_seen: 10:35 UTC"
    assert report_html.readable([1, 2, 3]) == "1, 2, 3"
    assert report_html.readable(list(range(20))).endswith("… (+12 more)")
    assert report_html.readable(0.371324) == "0.3713" and report_html.readable(True) == "yes"
    assert len(report_html.readable("x" * 1000, 50)) == 50


def test_at_a_glance_onset_status_and_impact():
    ov = {"onset": "2026-11-23T10:05:00Z", "recovered": "2026-11-23T10:47:00Z", "duration_minutes": 42.0,
          "ongoing": False, "impact": {"requests": 10000, "failed_requests": 2500, "failed_share": 0.25}}
    g = report_html.at_a_glance({"overview": ov})
    assert (g["onset"], g["status"], g["impact"]) == ("10:05 UTC", "recovered at 10:47 UTC after 42 min",
                                                      "2,500 of 10,000 requests failed (25.0%)")
    g = report_html.at_a_glance({"overview": {**ov, "recovered": None, "ongoing": True, "duration_minutes": 150}})
    assert g["status"] == "ongoing at the end of the window (2 h 30 min so far)" and g["ongoing"]
    g = report_html.at_a_glance({})
    assert g["onset"] is None and g["status"] is None and g["impact"] is None and not g["known"]
    assert report_html.at_a_glance({"overview": {"status": "ok", "onset": None}})["known"]
    assert not report_html.at_a_glance({"overview": {"status": "ok", "onset": None, "unknown": ["onset"]}})["known"]


def test_the_index_header_holds_the_facts_and_folds_the_rest(small_record):
    from test_diagnosis import FINDINGS

    from forensics import diagnosis

    inc = Incident("INC-7", "<b>Wide</b> 500s", "P1",
                   IncidentWindow("2026-11-23T09:30:00Z", "2026-11-23T11:00:00Z"), {"name": "production"})
    page = report_html.write_index(small_record, inc, {**FINDINGS, "diagnosis": diagnosis.diagnose(FINDINGS)},
                                   [], [], "r").read_text()
    # no overview: the api-errors onset, and what only the overview knows is unknown, not "none"
    assert re.search(r'id="glance-onset"><dt>Onset</dt><dd title="2026-11-23T10:05:00Z">10:05 UTC</dd>', page)
    assert re.search(r'id="glance-status"><dt>Status</dt><dd class="">unknown</dd>', page)
    assert re.search(r'id="glance-impact"><dt>Impact</dt><dd>unknown</dd>', page)
    overview = {"status": "ok", "onset": "2026-11-23T10:05:00Z", "recovered": None, "ongoing": True,
                "duration_minutes": 55.0, "impact": {"requests": 69856, "failed_requests": 17137, "failed_share": 0.2453}}
    findings = {**FINDINGS, "overview": overview}
    findings["diagnosis"] = diagnosis.diagnose(findings)
    page = report_html.write_index(small_record, inc, findings, [], [], "r").read_text()
    header = page[page.index("<header>"):page.index("</header>")]
    assert "10:05 UTC" in header and "ongoing at the end of the window (55 min so far)" in header
    assert "17,137 of 69,856 requests failed (24.5%)" in header
    assert "deployment → database connection pool exhausted → API 5xx" in header
    primary = next(h for h in findings["diagnosis"]["hypotheses"] if h["role"] == "primary")
    assert primary["next_step"].split()[0] in header
    # the runbook cited by its section; its file name only as small print and tooltip
    assert '<span class="section" title="004_b9c89ee92470956a.txt' in header
    assert ">Incident 4: Database Connection Pool Exhausted" in header
    # escaping kept: the title is text
    assert "&lt;b&gt;Wide&lt;/b&gt;" in page and "<b>Wide</b>" not in page
    # holding hypotheses: a table, each row's details folded (no script)
    holding = page[page.index('<table class="holding">'):]
    holding = holding[:holding.index("</table>")]
    assert "<details><summary>" in holding and "<details open" not in page and "<script" not in page
    # values readable: evidence times as times, not ISO strings in code
    assert not re.search(r"<code>\d{4}-\d\d-\d\dT", page)


def notebook_with_findings_dump_and_banner(path):
    frame = pd.DataFrame({"message": ["x" * 80, "y"], "n": [1, 2]})
    timed = pd.DataFrame({"n": [1]}, index=pd.DatetimeIndex(["2026-11-23T10:05:00"], name="time"))
    nb = new_notebook(cells=[
        new_code_cell("inc", execution_count=1, outputs=[new_output(
            "execute_result", data={"text/plain": "INC-7 [P1] x\nwindow   a\nenv      sandbox (us-east-1)\n"
                                                  "mode     recording to ."}, execution_count=1)]),
        new_code_cell("frame", execution_count=2, outputs=[new_output(
            "execute_result", data={"text/html": frame.to_html(), "text/plain": "f"}, execution_count=2)]),
        new_code_cell("timed", execution_count=3, outputs=[new_output(
            "execute_result", data={"text/html": timed.to_html(), "text/plain": "t"}, execution_count=3)]),
        new_code_cell("inc.findings", execution_count=4, outputs=[new_output(
            "execute_result", data={"text/plain": "{'FINDINGS_DUMP_MARKER': 1}"}, execution_count=4)]),
    ])
    nbformat.write(nb, path)
    return path


def test_the_report_view_leaves_out_the_dump_the_mode_line_and_a_row_number_index(tmp_path):
    (tmp_path / "html").mkdir()
    nb = notebook_with_findings_dump_and_banner(tmp_path / "n.ipynb")
    report_html.render_notebook(nb, tmp_path / "html", "n")
    full = (tmp_path / "html" / "n.html").read_text()
    report = (tmp_path / "html" / "n.report.html").read_text()
    assert "FINDINGS_DUMP_MARKER" in full and "FINDINGS_DUMP_MARKER" not in report
    assert "recording to" in full and "recording to" not in report and "env      sandbox" in report
    assert "<th>0</th>" in full and "<th>0</th>" not in report and "<th>1</th>" not in report
    assert "x" * 80 in report and '<td class="v">1</td>' in report
    # a meaningful index (a time) is kept
    assert "2026-11-23 10:05:00" in report and ">time</th>" in report
    assert "white-space: pre-wrap" in report and report.index("Content-Security-Policy") < report.index("pre-wrap")
    assert "<script" not in report.lower() and not EXTERNAL.search(report)


def test_drop_row_number_index_keeps_a_table_whose_index_is_not_0_to_n():
    named = pd.DataFrame({"n": [1, 2]}, index=[5, 9]).to_html()
    assert report_html.drop_row_number_index(named) == named
    plain = pd.DataFrame({"n": [1, 2]}).to_html()
    out = report_html.drop_row_number_index(plain)
    assert "<th>" in out and "<th>0</th>" not in out and out.count("<th>") == 1  # only the column "n"


def test_drop_row_number_index_when_the_columns_have_a_name():
    """A pivot's frame (columns named "kind"), its last rows shown: the index 45..54 and the corner that names
    the columns both go; every column stays under its own header (the CI run of a whole-catalogue record)."""
    frame = pd.DataFrame({"minute": range(60), "refused": range(60)})
    frame.columns.name = "kind"
    out = report_html.drop_row_number_index(frame.tail(10).to_html())
    assert "<th>45</th>" not in out and ">kind</th>" not in out
    assert out.count("<th>") == 2 and "<th>minute</th>" in out and "<th>refused</th>" in out
    assert out.count("<td>") == 20


def test_short_values_are_kept_on_one_line_and_long_messages_wrap():
    """A pid like "176/09" cut in two reads as two values: short cells are marked to stay whole; a long message
    is left to wrap."""
    frame = pd.DataFrame({"pid": ["176/09", "<b>"], "message": ["x " * 40, "a message of more than thirty-two characters"]})
    out = report_html.mark_short_values(report_html.drop_row_number_index(frame.to_html()))
    assert '<td class="v">176/09</td>' in out and '<td class="v">&lt;b&gt;</td>' in out
    assert out.count('class="v"') == 2  # not the two messages
    assert report_html.SHORT_CELL == len("2026-12-07 03:12:44.123456+00:00")
