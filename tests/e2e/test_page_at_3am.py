"""The page at 3 a.m. (issue 22): index.html in headless Chromium (Debian's, driven by Playwright) at
1280×800, as an on-call engineer first sees it. The header's facts (onset, status, impact, primary cause,
next step) are inside the first viewport; alternatives and concurrent incidents are a table with their
details folded; figures are shown large enough to read; each notebook's report page holds every figure
the notebook saved, without the findings dump, the session's mode line or a row-number index column.

The record is the session's `forensics run` of the whole catalogue over the sandbox, shared with the other
end-to-end tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.browser import chromium_context

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

VIEWPORT = {"width": 1280, "height": 800}
NOTEBOOKS = ("overview", "api-errors", "db-connections")


@pytest.fixture(scope="module")
def small_record(record) -> Path:
    """The session's whole-catalogue record (tests/e2e/conftest.py): the page with every notebook's
    alternatives and concurrent incidents, the densest header there is."""
    return record


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    yield from chromium_context(tmp_path_factory.mktemp("chromium-profile-3am"), VIEWPORT, offline=True)


@pytest.fixture
def index(browser, small_record):
    page = browser.new_page()
    page.goto((small_record / "index.html").resolve().as_uri(), wait_until="load")
    yield page
    page.close()


HEADER = {"onset": "#glance-onset", "status": "#glance-status", "impact": "#glance-impact",
          "primary cause": "#glance-cause", "next step": "#glance-next"}


def test_the_header_facts_are_in_the_first_viewport(index, small_record):
    assert index.evaluate("window.scrollY") == 0
    for what, selector in HEADER.items():
        el = index.query_selector(selector)
        assert el is not None, f"no {what} in the header"
        box = el.bounding_box()
        assert box and box["height"] > 0 and box["y"] >= 0, f"{what} is not shown"
        assert box["y"] + box["height"] <= VIEWPORT["height"], f"{what} is below the fold: {box}"
        assert box["x"] + box["width"] <= VIEWPORT["width"], f"{what} is off the side: {box}"
    text = {what: index.inner_text(sel) for what, sel in HEADER.items()}
    findings = json.loads((small_record / "findings.json").read_text())
    ov = findings["overview"]
    assert ov["onset"], "the sandbox's scenario has an onset"
    assert re.fullmatch(r"ONSET\s+\d\d:\d\d UTC", text["onset"].strip(), re.I), text["onset"]
    assert ov["onset"][11:16] in text["onset"]
    if ov["ongoing"]:
        assert "ongoing" in text["status"]
    else:
        assert f"recovered at {ov['recovered'][11:16]} UTC" in text["status"]
    assert f"{ov['duration_minutes']:g} min" in text["status"]
    assert f"{ov['impact']['failed_requests']:,} of {ov['impact']['requests']:,} requests failed" in text["impact"]
    primary = next(h for h in findings["diagnosis"]["hypotheses"] if h["role"] == "primary")
    assert " → ".join(primary["chain"]) in text["primary cause"]
    assert primary["next_step"][:60] in text["next step"]
    # the runbook is cited by its section; the file name is small print
    assert primary["source"]["section"] in text["next step"]


def test_alternatives_and_concurrent_incidents_are_a_folded_table(index, small_record):
    findings = json.loads((small_record / "findings.json").read_text())
    holding = [h for h in findings["diagnosis"]["hypotheses"] if h["holds"] and h["role"] != "primary"]
    assert holding, "the pool-exhaustion scenario has an alternative or concurrent explanation"
    rows = index.query_selector_all("table.holding tr:has(details)")
    assert len(rows) == len(holding)
    assert index.evaluate("Array.from(document.querySelectorAll('table.holding details')).every(d => !d.open)")
    # folded: a row is one line or two, not a card of evidence
    assert max(r.bounding_box()["height"] for r in rows) < 80
    assert index.evaluate("document.scripts.length") == 0
    # no runbook is cited by its file name alone: every citation shows its section
    sections = index.evaluate("Array.from(document.querySelectorAll('.section')).map(e => e.textContent)")
    assert sections and all(s.strip() and not s.strip().endswith(".txt") for s in sections)


def test_values_are_readable_not_raw_json(index):
    values = index.evaluate("Array.from(document.querySelectorAll('ul.evidence code')).map(e => e.textContent)")
    assert values
    assert not [v for v in values if v.lstrip().startswith(("{", "[")) or re.search(r"\d{4}-\d\d-\d\dT", v)], values


def test_figures_are_large_enough_to_read(index, small_record):
    figures = sorted(p.name for p in (small_record / "figures").glob("*.png"))
    assert figures
    widths = index.evaluate("Array.from(document.querySelectorAll('#figures ~ .figures img'))"
                            ".map(i => [i.complete && i.naturalWidth > 0, i.getBoundingClientRect().width])")
    assert len(widths) == len(figures)
    assert all(ok for ok, _ in widths), "a figure did not load"
    # two per row at 1280 px at least: no thumbnails
    assert min(w for _, w in widths) >= 500, widths


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_report_page_holds_every_figure_of_its_notebook(browser, small_record, name):
    saved = sorted((small_record / "figures").glob(f"{name}--*.png"))
    assert saved, f"{name} saved no figure"
    page = browser.new_page()
    try:
        page.goto((small_record / "html" / f"{name}.report.html").resolve().as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        assert len(images) == len(saved) and all(images), (images, [p.name for p in saved])
        text = page.inner_text("body")
        assert not re.search(r"^mode\s+recording to", text, re.M), "the session's mode line"
        # the findings dump (the notebook's last cell) is findings.json's, not the report's
        # (overview ends with the postmortem draft instead, which the report keeps)
        cells = json.loads((small_record / "notebooks" / f"{name}.ipynb").read_text())["cells"]
        dumps = ["".join("".join(o.get("data", {}).get("text/plain", "")) for o in c["outputs"])
                 for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip() == "inc.findings"]
        assert dumps or name == "overview", f"{name} ends with its findings dump"
        for dump in dumps:
            assert dump.startswith("{"), "the executed notebook shows its findings"
            assert dump.splitlines()[0] not in text
        # no row-number index column, whole messages (pandas cuts at 50 characters with "...")
        assert page.evaluate("document.querySelectorAll('table.dataframe tbody th').length") == 0 or \
            page.evaluate("Array.from(document.querySelectorAll('table.dataframe tbody th'))"
                          ".every(th => !/^\\d+$/.test(th.textContent.trim()))")
        cells = page.evaluate("Array.from(document.querySelectorAll('table.dataframe td')).map(td => td.textContent)")
        assert not [c for c in cells if c.endswith("...")], "a table cell was cut"
        # a short value (a pid, a count, a time) stays on one line: "176/09" cut after "176/" reads as two values
        split = page.evaluate("Array.from(document.querySelectorAll('table.dataframe td.v')).filter(td => {"
                              " const r = document.createRange(); r.selectNodeContents(td);"
                              " return r.getClientRects().length > 1; }).map(td => td.textContent)")
        assert not split, f"short values wrapped mid-value: {split[:5]}"
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= VIEWPORT["width"] + 2, f"the page overflows sideways ({wide} px): messages do not wrap"
    finally:
        page.close()
