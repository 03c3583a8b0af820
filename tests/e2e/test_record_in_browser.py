"""The record in a real browser: headless Chromium (Debian's, installed by `make test`) opens index.html
and the notebooks' HTML from disk, as a reader would, offline. Each page renders (a screenshot that is
not blank, its headings), logs no console error and requests nothing outside the record; every link of
index.html resolves to a file of the record (the HTML ones are opened too)."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests.browser import chromium_context

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]



@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    yield from chromium_context(tmp_path_factory.mktemp("chromium-profile"))


class Visit:
    """One page load: what it requested, what it logged, its screenshot."""

    def __init__(self, context, record: Path, path: Path):
        self.requests, self.errors, self.outside = [], [], []
        page = context.new_page()
        inside = record.resolve().as_uri() + "/"

        def route(r):
            url = r.request.url
            self.requests.append(url)
            if not url.startswith(inside):
                self.outside.append(url)
                return r.abort()  # nothing leaves the machine, whatever a page asks for
            return r.continue_()

        page.route("**/*", route)
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}") if r.url.startswith(inside)
                else None)
        page.goto(path.resolve().as_uri(), wait_until="load")
        self.page = page
        self.title = page.title()
        self.h1 = [h.inner_text().strip() for h in page.query_selector_all("h1")]
        self.h2 = [h.inner_text().strip() for h in page.query_selector_all("h2")]
        self.screenshot = page.screenshot()

    def close(self):
        self.page.close()


def assert_rendered(visit: Visit):
    from PIL import Image

    hist = Image.open(io.BytesIO(visit.screenshot)).convert("L").histogram()  # 256 grey levels
    dark = sum(hist[:200]) / sum(hist)
    assert 0.01 < dark < 0.9, f"screenshot looks blank ({dark:.3%} dark pixels)"
    assert sum(1 for n in hist if n) > 20, "screenshot has almost no shades: not a rendered page"
    assert visit.h1, "no heading"
    assert not visit.errors, visit.errors
    assert not visit.outside, f"requests outside the record: {visit.outside}"


def test_index_renders_with_the_diagnosis_on_top(browser_context, record, sandbox):
    visit = Visit(browser_context, record, record / "index.html")
    try:
        assert_rendered(visit)
        assert sandbox.incident["incident"] in visit.h1[0]
        assert visit.h2[:2] == ["Diagnosis", "Verification when this page was written"], visit.h2
        assert {"Timeline (UTC)", "Notebooks", "Figures", "Data files"} <= set(visit.h2)
        primary = visit.page.query_selector(".card.primary .chain").inner_text()
        assert primary == "deployment → database connection pool exhausted → API 5xx"
        # every figure thumbnail loaded from the record
        broken = visit.page.evaluate("Array.from(document.images).filter(i => !i.complete || !i.naturalWidth)"
                                     ".map(i => i.src)")
        assert not broken and len(list((record / "figures").glob("*.png"))) == visit.page.evaluate(
            "document.images.length")
        assert any(u.endswith(".png") for u in visit.requests)
    finally:
        visit.close()


@pytest.mark.parametrize("page", ["db-connections.html", "db-connections.report.html"])
def test_a_notebooks_html_renders_offline(browser_context, record, page):
    visit = Visit(browser_context, record, record / "html" / page)
    try:
        assert_rendered(visit)
        assert visit.h1[0].startswith("DB connections")
        assert "Connections against the limit" in visit.h2
        has_code = visit.page.evaluate("document.querySelectorAll('.jp-CodeMirrorEditor').length") > 0
        assert has_code == (not page.endswith(".report.html"))
    finally:
        visit.close()


def test_every_link_of_the_index_resolves_inside_the_record(browser_context, record):
    visit = Visit(browser_context, record, record / "index.html")
    try:
        links = visit.page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        ids = set(visit.page.evaluate("Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
    finally:
        visit.close()
    root = record.resolve()
    assert len(links) > 30
    html_targets = set()
    for url in links:
        parsed = urlparse(url)
        assert parsed.scheme == "file", url
        target = Path(unquote(parsed.path))
        if parsed.fragment and target == root / "index.html":
            assert parsed.fragment in ids, url
            continue
        assert target.is_file() and root in target.resolve().parents, url
        if target.suffix == ".html":
            html_targets.add(target)
    assert html_targets >= {root / "html" / "api-errors.html", root / "html" / "api-errors.report.html"}
    for target in sorted(html_targets):
        visit = Visit(browser_context, record, target)
        try:
            assert visit.h1 and not visit.errors and not visit.outside, (target.name, visit.errors, visit.outside)
        finally:
            visit.close()
