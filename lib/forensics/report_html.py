"""The pages a reader opens: ``index.html`` at the top of a record, and each notebook as HTML.

Every page is self-contained and offline: charts are embedded or are files of the record, and no
page loads or links anything outside it. nbconvert's lab template carries a module script that
imports mermaid from a CDN and a MathJax configuration; the notebooks need neither, so every
``<script>`` is dropped (evidence pages have no active content), and the CSS comments that cite
web pages go too.

Much of what a page shows was written by an attacker (:mod:`forensics.safe_text`). Every page also gets,
in :func:`offline`: a Content-Security-Policy (:data:`CSP`: no script, no request but the record's own
images, inline styles only) as its first ``<head>`` element, so markup that slipped through any escaping
still cannot run or call out; ``javascript:``/``vbscript:``/``data:`` (but images) URLs in ``href``/``src``
neutralised; and every control character shown as an escape (``\x1b``), so no terminal sequence is
carried by a page someone may ``cat`` or copy.

- ``html/<name>.html``         the executed notebook, code and outputs
- ``html/<name>.report.html``  the same without code cells (nbconvert ``exclude_input``), to attach to a
                               postmortem
- ``index.html``               the page at 3 a.m.: its header holds onset, ongoing or recovered (with the
                               duration), impact, the primary cause and its next step (above the fold at
                               1280×800); then the diagnosis (alternatives and concurrent incidents as a
                               compact table, details folded), what was verified when it was written, the
                               timeline, each notebook's status and headline findings, the figures (two per
                               row), the data files (size, rows)

The report view leaves out what a postmortem reader does not need: the session's ``mode`` banner line, the
findings dump of a notebook's last cell (``inc.findings``: it is findings.json), and the pandas index
column of a table whose index is only the row number; long messages wrap instead of being cut.
"""

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import json
import re
import threading
from pathlib import Path

from . import contracts, redact
from .safe_text import visible
from .diagnosis import evidence_values, short
from .evidence import sha256_file

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\shref=[\"']?(?:https?:)?//[^>]*>", re.I)
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
_UNSAFE_URL = re.compile(r"""(\s(?:href|src|action|formaction|xlink:href|srcset)\s*=\s*["']?)\s*"""
                         r"(?:javascript|vbscript|data(?!:image/(?:png|jpeg|gif|webp)[;,]))\s*:", re.I)
#: Every page of a record: nothing runs, nothing is fetched but the record's own images, inline styles.
CSP = "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'"
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Headline findings shown per notebook on the index (the rest are in findings.json and the notebook).
HEADLINES = 5
_SKIP = ("status", "unknown", "failed_sources", "error")


def offline(html: str) -> str:
    """The page with no script and no reference to anything outside it, its CSP first in ``<head>``,
    unsafe URLs neutralised and control characters visible."""
    html = _SCRIPT.sub("", html)
    html = _EXTERNAL_LINK.sub("", html)
    html = _UNSAFE_URL.sub(r"\1#unsafe-link:", html)
    html = _STYLE.sub(lambda m: m.group(1) + _CSS_COMMENT.sub("", m.group(2)) + m.group(3), html)
    if CSP_META not in html:
        head = _HEAD.search(html)
        html = html[:head.end()] + CSP_META + html[head.end():] if head else CSP_META + html
    return visible(html)


#: The findings dump that ends every notebook: findings.json holds it, the report view leaves it out.
FINDINGS_CELL = "inc.findings"
#: The session banner's line saying where the record is written (forensics.session.Session.banner).
_MODE_LINE = re.compile(r"^mode {2,}(?:recording to|replay of|interactive) .*\n?", re.M)
#: A pandas table's row-number index: ``<th>0</th>`` … in the body, an empty corner cell in the head.
_DATAFRAME = re.compile(r"<table\b[^>]*class=\"dataframe\"[^>]*>.*?</table>", re.S)
_ROW_TH = re.compile(r"(<tr[^>]*>\s*)<th>(\d+)</th>", re.S)
_CORNER_TH = re.compile(r"(<tr[^>]*>\s*)<th(?: [^>]*)?>\s*</th>", re.S)
#: the header row's first cell: the corner above the index, empty or holding the columns' name (a pivot's)
_FIRST_HEADER_TH = re.compile(r"(<thead>\s*<tr[^>]*>\s*)<th(?: [^>]*)?>[^<]*</th>", re.S)
#: A table cell this short (a pid, a count, a time, a status) is one value: it never wraps.
SHORT_CELL = 32
#: a cell of plain text (pandas escapes <, > and & in cell text, so "[^<]" is the whole text)
_TD = re.compile(r"<td>([^<]*)</td>")
#: Report pages: tables and outputs wrap long text rather than cut or overflow it. A long message wraps
#: anywhere if it must (``word-break: break-word`` lets its column shrink to fit the page); a short value does
#: not (``td.v``: "176/09" cut into "176/" and "09" reads as two values).
REPORT_CSS = ("<style>.jp-OutputArea-output pre { white-space: pre-wrap; word-break: break-word; }"
              " .jp-RenderedHTMLCommon table.dataframe { table-layout: auto; }"
              " .jp-RenderedHTMLCommon table.dataframe td { white-space: pre-wrap; word-break: break-word;"
              " text-align: left; max-width: 60em; }"
              " .jp-RenderedHTMLCommon table.dataframe td.v { white-space: nowrap; word-break: normal; }</style>")


def mark_short_values(table: str) -> str:
    """Each plain-text cell of ``table`` no longer than SHORT_CELL characters (as shown, entities counted as
    one) marked ``class="v"``: the report's CSS keeps it on one line."""
    def mark(m: re.Match) -> str:
        shown = html_lib.unescape(m.group(1))
        return f'<td class="v">{m.group(1)}</td>' if len(shown) <= SHORT_CELL else m.group(0)

    return _TD.sub(mark, table)


def drop_row_number_index(table: str) -> str:
    """A pandas HTML table without its index column when that index is only the row number 0..n-1 (a
    RangeIndex: it says nothing); a meaningful index (a time, a name) is kept."""
    rows = [int(m.group(2)) for m in _ROW_TH.finditer(table)]
    if not rows or rows != list(range(rows[0], rows[0] + len(rows))) or "<th>" not in table:
        return table
    header_rows = table.count("<tr") - len(rows)
    if header_rows == 1:  # the corner goes with the index, even when it names the columns ("kind")
        return _FIRST_HEADER_TH.sub(r"\1", _ROW_TH.sub(r"\1", table), count=1)
    if header_rows != len(_CORNER_TH.findall(table)):
        return table  # a header row that is not a plain corner: a multi-level table, left as it is
    return _CORNER_TH.sub(r"\1", _ROW_TH.sub(r"\1", table))


def report_view(nb):
    """The notebook as the report page shows it: no findings dump, no mode line, no row-number index, short
    values kept whole."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.strip() == FINDINGS_CELL:
            cell.outputs = []
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = _MODE_LINE.sub("", out.get("text", ""))
            data = out.get("data") or {}
            if "text/plain" in data and isinstance(data["text/plain"], str):
                data["text/plain"] = _MODE_LINE.sub("", data["text/plain"])
            if "text/html" in data:
                html = data["text/html"] if isinstance(data["text/html"], str) else "".join(data["text/html"])
                data["text/html"] = _DATAFRAME.sub(lambda m: mark_short_values(drop_row_number_index(m.group(0))), html)
    return nb


_RENDERING = threading.Lock()  # an exporter registers per-notebook filters while it renders: one at a time


@functools.cache
def _exporter(exclude_input: bool):
    """nbconvert's HTML exporter (lab template), one per process and view: a new exporter compiles its Jinja
    templates again (~0.2 s of CPU a page)."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", embed_images=True, exclude_input=exclude_input,
                        exclude_input_prompt=exclude_input, exclude_output_prompt=exclude_input)


def render_notebook(nb_path: Path, html_dir: Path, name: str) -> str:
    """``html/<name>.html`` and ``html/<name>.report.html`` from an executed notebook; returns the first's
    path relative to the record."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    for suffix, exclude in (("", False), (".report", True)):
        with _RENDERING:
            body, _ = _exporter(exclude).from_notebook_node(report_view(nb) if exclude else nb)
        if exclude:
            body = re.sub(r"</head>", REPORT_CSS + "</head>", body, count=1, flags=re.I)
        (html_dir / f"{name}{suffix}.html").write_text(redact.text(offline(body)), encoding="utf-8")
    return f"{html_dir.name}/{name}.html"


# ---- index.html ---------------------------------------------------------------------------------------
def check_written(record: Path, notebooks: list[dict], captures: list[dict], digest=None) -> dict:
    """What can be verified while the record is still being written: every capture's data file is there
    with the rows its metadata states, every notebook's executed .ipynb and HTML are there and read back;
    each of those files hashed (``digest(rel)``: evidence.Record.digest, which hashes a file once for the
    index and the manifest). The manifest, written after the index, then seals them all. A notebook that was
    skipped (its sources not configured) has no file to check: it is not a problem."""
    digest = digest or (lambda rel: sha256_file(record / rel))
    import nbformat
    import pyarrow.parquet as pq

    problems, hashed = [], []
    for c in captures:
        if not c.get("file"):
            continue
        path = record / c["file"]
        if not path.is_file():
            problems.append(f"missing: {c['file']}")
            continue
        rows = pq.ParquetFile(path).metadata.num_rows
        if c.get("rows") is not None and rows != c["rows"]:
            problems.append(f"{c['file']}: {rows} rows, its capture says {c['rows']}")
        hashed.append((c["file"], digest(c["file"])))
    for nb in notebooks:
        if nb.get("status") == contracts.SKIPPED:
            continue
        for rel in (nb.get("notebook"), nb.get("html")):
            if not rel:
                continue
            path = record / rel
            if not path.is_file():
                problems.append(f"missing: {rel}")
                continue
            if rel.endswith(".ipynb"):
                try:
                    nbformat.read(path, as_version=4)
                except Exception as exc:  # noqa: BLE001 - any unreadable notebook is a problem to show
                    problems.append(f"{rel}: unreadable ({type(exc).__name__})")
            hashed.append((rel, digest(rel)))
    digest = hashlib.sha256("".join(f"{p}\0{h}\n" for p, h in sorted(hashed)).encode()).hexdigest()
    return {"ok": not problems, "problems": problems, "files": len(hashed), "digest": f"sha256:{digest}",
            "data_files": sum(1 for p, _ in hashed if p.startswith(contracts.DATA_DIR + "/")),
            "notebook_files": sum(1 for p, _ in hashed if not p.startswith(contracts.DATA_DIR + "/"))}


def _chain(record: Path) -> dict:
    """The incident's earlier records: does the newest verify, and does the chain hold."""
    from . import evidence

    prev = evidence.previous_record(record.parent, record.name.removesuffix(contracts.PARTIAL_SUFFIX))
    if prev is None:
        return {"previous": None}
    result = evidence.verify(prev)
    return {"previous": prev.name, "previous_ok": result.ok, "previous_problems": result.problems[:5],
            "chain_problems": evidence.verify_chain(record.parent)[:5]}


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _headlines(entry: dict) -> list[tuple[str, str]]:
    keys = [k for k in entry if k not in _SKIP and entry[k] not in (None, [], {})]
    return [(k, readable(entry[k], 140)) for k in keys[:HEADLINES]]


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]00:?00)?$")


def readable(value, limit: int = 160) -> str:
    """A finding's value as a reader takes it in: a UTC time as ``18:08 UTC``, an object as a short
    ``key: value`` list, a list as its items, a number without float noise; bounded to ``limit``.
    Text only: the template escapes it (Jinja autoescape) like every other value."""
    def one(v, depth=0) -> str:
        if isinstance(v, str):
            m = _ISO_TIME.match(v.strip())
            return f"{m.group(1)} UTC" if m else v
        if isinstance(v, bool) or v is None:
            return {True: "yes", False: "no", None: "—"}[v]
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, dict):
            if depth >= 2:
                return short(v, 60)
            return "; ".join(f"{k}: {one(x, depth + 1)}" for k, x in v.items())
        if isinstance(v, (list, tuple)):
            if depth >= 2:
                return short(v, 60)
            items = [one(x, depth + 1) for x in v[:8]]
            more = f" … (+{len(v) - 8} more)" if len(v) > 8 else ""
            return (" | " if any(isinstance(x, dict) for x in v) else ", ").join(items) + more
        return str(v)

    return short(one(value), limit)


def _minutes(m) -> str:
    if m is None:
        return ""
    m = float(m)
    return f"{m:g} min" if m < 120 else f"{int(m // 60)} h {int(m % 60)} min"


def at_a_glance(findings: dict) -> dict:
    """The header's facts from the overview notebook (api-errors as fallback): onset, status (ongoing or
    recovered, with the duration) and impact, each as a short text; ``None`` where nothing was found."""
    ov = findings.get("overview") or {}
    api = findings.get("api-errors") or {}
    onset = ov.get("onset") or api.get("onset")
    duration = _minutes(ov.get("duration_minutes"))
    if not onset:
        status = None
    elif ov.get("recovered"):
        status = f"recovered at {readable(ov['recovered'])}" + (f" after {duration}" if duration else "")
    elif ov.get("ongoing"):
        status = "ongoing at the end of the window" + (f" ({duration} so far)" if duration else "")
    else:
        status = None
    impact = ov.get("impact") or api.get("impact") or {}
    failed = ov.get("failed_requests", impact.get("failed_requests"))
    if failed is not None and impact.get("requests"):
        share = impact.get("failed_share")
        share = share if isinstance(share, (int, float)) else failed / impact["requests"]
        impact_text = f"{failed:,} of {impact['requests']:,} requests failed ({share * 100:.1f}%)"
    elif failed is not None:
        impact_text = f"{failed:,} requests failed"
    else:
        impact_text = None
    # "none detected" only when the overview ran and read its series; otherwise it is not known
    known = ov.get("status") == "ok" and not set(ov.get("unknown") or []) & {"onset", "impact", "ongoing"}
    return {"onset": readable(onset) if onset else None, "onset_iso": str(onset) if onset else None,
            "status": status, "ongoing": bool(ov.get("ongoing")) if onset else None, "impact": impact_text,
            "known": known}


def _hhmm(value: str | None) -> str:
    return value[11:16] if isinstance(value, str) and len(value) >= 16 else "--:--"


def _not_configured(error: str | None) -> bool:
    """A capture or notebook whose source the environment does not configure (session.pull's LookupError)."""
    return bool(error) and "the environment has no " in error


def index_context(record: Path, incident, findings: dict, notebooks: list[dict], captures: list[dict],
                  record_name: str, digest=None) -> dict:
    """Everything index.html shows, as plain data (the template only lays it out)."""
    diag = findings.get("diagnosis") or {}
    nb_rows = []
    for nb in notebooks:
        name = nb["name"]
        entry = findings.get(name, {})
        report = f"{contracts.HTML_DIR}/{name}{contracts.REPORT_SUFFIX}.html"
        failed = entry.get("failed_sources") or {}
        nb_rows.append({
            "name": name, "status": nb.get("status"), "duration_s": nb.get("duration_s"), "error": nb.get("error"),
            "html": nb.get("html") if nb.get("html") and (record / nb["html"]).is_file() else None,
            "report": report if (record / report).is_file() else None,
            "notebook": nb.get("notebook") if nb.get("notebook") and (record / nb["notebook"]).is_file() else None,
            "headlines": _headlines(entry), "unknown": entry.get("unknown") or [],
            "not_configured": nb.get("status") == contracts.SKIPPED,
            # unknown findings because a source is not configured (not a failure), or because one failed
            "unknown_unconfigured": bool(failed) and all(_not_configured(e) for e in failed.values()),
        })
    figures = sorted(p.relative_to(record).as_posix() for p in (record / contracts.FIGURES_DIR).glob("*.png")) \
        if (record / contracts.FIGURES_DIR).is_dir() else []
    data = []
    for c in sorted(captures, key=lambda c: c["name"]):
        path = record / c["file"] if c.get("file") else None
        data.append({"name": c["name"], "file": c.get("file") if path and path.is_file() else None,
                     "size": _size(path.stat().st_size) if path and path.is_file() else "",
                     "rows": c.get("rows"), "source": c.get("source"), "notebook": c.get("notebook"),
                     "error": c.get("error"), "not_configured": _not_configured(c.get("error"))})
    timeline = [{"time": _hhmm(e.get("time")), "iso": e.get("time"), "source": e.get("source"),
                 "kind": e.get("kind"), "resource": e.get("resource"), "message": e.get("message")}
                for e in (findings.get("overview") or {}).get("timeline") or []]
    hyps = diag.get("hypotheses") or []
    others = [contracts.POSTMORTEM_FILE, contracts.FINDINGS_FILE, contracts.PARAMS_FILE, contracts.MANIFEST_FILE]
    links = {"postmortem": contracts.POSTMORTEM_FILE, "findings": contracts.FINDINGS_FILE,
             "manifest": contracts.MANIFEST_FILE}
    return {
        "incident": incident, "window": incident.window, "record_name": record_name,
        "environment": incident.environment.get("name"),
        "check": check_written(record, notebooks, captures, digest), "chain": _chain(record), "links": links,
        "diagnosis": diag,
        "primary": next((h for h in hyps if h["role"] == "primary"), None),
        "holding": [h for h in hyps if h["holds"] and h["role"] != "primary"],
        "ruled_out": [h for h in hyps if not h["holds"] and h["verdict"].startswith("refuted")],
        "not_supported": [h for h in hyps if not h["holds"] and not h["verdict"].startswith("refuted")],
        "timeline": timeline, "notebooks": nb_rows, "figures": figures, "data": data, "files": others,
        "short": short, "glance": at_a_glance(findings),
    }


def index_html(record: Path, incident, findings: dict, notebooks: list[dict], captures: list[dict],
               record_name: str, digest=None) -> str:
    """The text of ``index.html`` (evidence.Record writes it, before the manifest, so it is in the manifest)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["short"] = short
    env.filters["readable"] = readable
    env.filters["values"] = evidence_values
    env.filters["json"] = lambda v: json.dumps(v, default=str, ensure_ascii=False)
    ctx = index_context(record, incident, findings, notebooks, captures, record_name, digest)
    html = env.get_template("index.html.j2").render(**ctx)
    return redact.text(offline(html))


def write_index(record: Path, incident, findings: dict, notebooks: list[dict], captures: list[dict],
                record_name: str) -> Path:
    """``index.html`` at the top of ``record``."""
    path = record / contracts.INDEX_FILE
    path.write_text(index_html(record, incident, findings, notebooks, captures, record_name), encoding="utf-8")
    return path
