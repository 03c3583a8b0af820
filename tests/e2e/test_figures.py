"""Every figure a notebook saves is shown, readable, in its HTML: the record of the session's `forensics run`
over the sandbox (every notebook through papermill) is read back. Per notebook, the PNGs in figures/ and the
images in html/<name>.html (and the report view) are the same in number and size; no HTML carries a warning
box or a local path."""

import base64
import io
import re
from collections import defaultdict

import pytest
from PIL import Image

pytestmark = pytest.mark.sandbox

IMG = re.compile(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"')
#: a path on the machine that ran the notebook (a traceback's or a warning's file, a home folder)
LOCAL_PATH = re.compile(r"(?<![\w.-])/(?:home|root|tmp|work|usr|opt|var|private|Users)/[\w.-]+/")
WARNING = re.compile(r"\b\w*Warning\b[:(]|warnings\.warn")


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


@pytest.fixture(scope="module")
def saved(record):
    out = defaultdict(list)
    for png in sorted((record / "figures").glob("*.png")):
        out[png.name.split("--")[0]].append(_size(png.read_bytes()))
    return out


def _shown(html: str) -> list[tuple[int, int]]:
    return [_size(base64.b64decode(re.sub(r"\s", "", m))) for m in IMG.findall(html)]


def test_every_saved_figure_is_shown_in_its_notebook(record, saved):
    assert sum(len(v) for v in saved.values()) >= 30, dict(saved)
    missing = {}
    for name, sizes in saved.items():
        for view in (f"{name}.html", f"{name}.report.html"):
            path = record / "html" / view
            assert path.exists(), view
            shown = _shown(path.read_text(encoding="utf-8"))
            # the same figure rendered twice (saved, displayed) may differ by a pixel or two of bbox rounding
            same = len(shown) == len(sizes) and all(
                abs(a[0] - b[0]) <= 3 and abs(a[1] - b[1]) <= 3 for a, b in zip(sorted(shown), sorted(sizes)))
            if not same:
                missing[view] = (sorted(sizes), sorted(shown))
    assert not missing, f"(saved, shown) per view: {missing}"


def test_the_figure_a_notebook_shows_is_the_one_its_record_keeps(record):
    """``inc.figure`` renders a chart once: the PNG in figures/ is byte for byte the image in the executed
    notebook (what the HTML views show), not a second rendering that could differ."""
    import json

    differ = []
    for png in sorted((record / "figures").glob("*.png")):
        nb = json.loads((record / "notebooks" / f"{png.name.split('--')[0]}.ipynb").read_text(encoding="utf-8"))
        shown = {base64.b64decode(o["data"]["image/png"]) for c in nb["cells"] for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {})}
        if png.read_bytes() not in shown:
            differ.append(png.name)
    assert not differ, differ


def test_no_html_has_a_warning_box_or_a_local_path(record):
    problems = []
    for path in sorted((record / "html").glob("*.html")):
        text = IMG.sub("", path.read_text(encoding="utf-8"))
        if 'data-mime-type="application/vnd.jupyter.stderr"' in text:
            problems.append(f"{path.name}: stderr output")
        for rx, what in ((WARNING, "warning"), (LOCAL_PATH, "local path")):
            m = rx.search(text)
            if m:
                problems.append(f"{path.name}: {what}: ...{text[max(0, m.start() - 80):m.end() + 40]}...")
    assert not problems, "\n".join(problems)


def test_identifiers_show_as_integers(record):
    """A queryid is pasted into pg_stat_statements: 8.579878e+18 cannot be."""
    sci = re.compile(r"\b\d\.\d+e\+1[5-9]\b")
    shown = {p.name: sci.search(p.read_text(encoding="utf-8")) for p in (record / "html").glob("*.html")}
    assert not {k: m.group(0) for k, m in shown.items() if m}
