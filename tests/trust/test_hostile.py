"""A hostile world: attacker-written text in every output, bad and huge input.

Each class of the probe (issue 18) with several payloads:

1. markup and links from evidence never become markup or links (Markdown, HTML, nbconvert's renderer);
2. code spans survive backticks;
3. control characters are shown escaped in HTML, Markdown and on the terminal;
4. every page carries the CSP;
5. parameter files: aliases, duplicate keys, non-UTF-8, oversized: one line, exit 2, quickly;
6. a decompression bomb in an evidence bucket is one unreadable object, named by its key, memory bounded;
7. object keys in error entries are never redacted for their field's name (secrets still are, by content).

The browser half (no dialog, no request with a hostile record) is tests/e2e/test_hostile_record_in_browser.py.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time
import tracemalloc
import zlib
from html.parser import HTMLParser

import pandas as pd
import pytest

from forensics import postmortem, redact, report_html, safe_text
from forensics.errors import ParamsError
from forensics.params import Incident, load_environment, load_incident
from forensics.window import IncidentWindow

WINDOW = IncidentWindow("2026-11-23T09:30:00Z", "2026-11-23T11:00:00Z")

#: markup and links an attacker can put in a CloudTrail field, a user agent, a log line, a title
MARKUP = [
    "<img src=x onerror=alert(10)>",
    "[x](javascript:alert(10))",
    "[x](JaVaScRiPt:alert(10))",
    "[x]( javascript:alert(10) )",
    "[x](java\tscript:alert(10))",
    "[x](&#106;avascript:alert(10))",
    "![i](javascript:alert(10))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxMCk8L3NjcmlwdD4=)",
    "[x](vbscript:msgbox(10))",
    "<javascript:alert(10)>",
    "[x][r]\n\n[r]: javascript:alert(10)",
    "<a href='javascript:alert(10)'>x</a>",
    "<svg/onload=alert(10)>",
    "<script>alert(10)</script>",
    "<iframe src=//evil.example/></iframe>",
    "<style>@import url(//evil.example/x.css)</style>",
    "</code><img src=x onerror=alert(10)>",
    "*bold* _em_ <b>b</b> | a | b |",
]
#: terminal and display control sequences
CONTROL = ["\x1b]0;owned\x07", "\x1b[31mred\x1b[0m", "\x9b31m", "a\x00b", "\u202eevil\u202c", "over\rwrite",
           "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "\x07\x08\x7f"]
_SAFE_TAGS = {"p", "h1", "h2", "h3", "ul", "ol", "li", "a", "code", "pre", "strong", "em", "blockquote", "br",
              "hr", "table", "thead", "tbody", "tr", "th", "td", "del", "input"}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_inert(html: str, allowed=_SAFE_TAGS) -> None:
    """No tag but the renderer's own, no event handler, no link other than http(s)/relative/anchor."""
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag in allowed, (tag, attrs, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            if name in ("href", "src") and value:
                v = re.sub(r"[\x00-\x20]", "", value).lower()
                assert not re.match(r"^[a-z][a-z0-9+.-]*:", v) or v.startswith(("http:", "https:", "mailto:")), value
                assert not v.startswith("//"), value


def hostile_findings(payload: str) -> dict:
    """Findings as the notebooks record them, every attacker-reachable field holding ``payload``."""
    return {
        "overview": {"status": "ok", "onset": "2026-11-23T10:05:00Z", "timeline": [
            {"time": "2026-11-23T10:00:00Z", "source": "cloudtrail", "resource": payload, "kind": "ConsoleLogin",
             "message": f"{payload} called signin:ConsoleLogin from {payload}"},
            {"time": "2026-11-23T10:01:00Z", "source": "cloudwatch", "resource": payload, "kind": "alarm",
             "message": payload}]},
        "api-errors": {"status": "ok", "onset": "2026-11-23T10:05:00Z",
                       "suspected_change": {"time": "2026-11-23T10:00:00Z", "kind": payload, "resource": payload}},
        "db-connections": {"status": "ok", "slow_statements": [f"SELECT 1 -- {payload} ` {payload}"],
                           "slow_statements_ranking": payload},
        "data-integrity": {"status": "ok", "first_broken_event": {"tenant": payload}},
    }


def render_postmortem(payload: str) -> str:
    inc = Incident("INC-H", payload, "P1", WINDOW, {"name": payload})
    nbs = [{"name": "overview", "status": "failed", "error": payload}]
    return postmortem.render(inc, hostile_findings(payload), nbs, ["data/x.parquet"])


# ---- 1. markup and links ----------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", MARKUP)
def test_evidence_in_the_postmortem_is_text_in_every_renderer(payload):
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    md = render_postmortem(payload)
    # our renderer (the overview notebook's output) and nbconvert's own, which keeps raw HTML live
    for html in (safe_text.markdown_html(md), markdown2html_mistune(md)):
        assert_inert(html)
    # the payload is still readable, as text
    visible = re.sub(r"<[^>]+>", "", safe_text.markdown_html(md))
    assert "alert(10)" in visible or "evil.example" in visible or "bold" in visible or "msgbox" in visible \
        or "PHNj" in visible


@pytest.mark.parametrize("payload", MARKUP)
def test_markdown_from_anywhere_renders_without_live_html_or_unsafe_links(payload):
    """safe_text.markdown is the one path for Markdown built from evidence, whatever escaping it had."""
    assert_inert(safe_text.markdown_html(payload))
    assert_inert(safe_text.markdown(f"# {payload}\n\n- {payload}\n\n> {payload}")._repr_html_())


@pytest.mark.parametrize("url,kept", [("https://example.org/x", True), ("http://10.0.0.1/", True),
                                      ("html/overview.html#t", True), ("#section", True), ("mailto:a@b.c", True),
                                      ("javascript:alert(1)", False), (" JAVASCRIPT:alert(1)", False),
                                      ("java\nscript:alert(1)", False), ("data:text/html,x", False),
                                      ("vbscript:x", False), ("file:///etc/passwd", False),
                                      ("//evil.example/x", False), ("\\\\evil\\share", False)])
def test_only_http_and_record_links_survive(url, kept):
    assert (safe_text.safe_url(url) == url) is kept


def test_a_markdown_output_in_the_overview_notebook_goes_through_safe_text():
    """The overview shows the postmortem draft; nbconvert renders a Markdown output with raw HTML live,
    so the notebook must never build an IPython Markdown output from evidence."""
    from forensics import resources

    nb = json.loads((resources.notebook_dir() / "overview.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "Markdown(" not in code.replace("safe_text.markdown(", "")
    assert "safe_text.markdown(postmortem.render(" in code


# ---- 2. code spans survive backticks ----------------------------------------------------------------------
@pytest.mark.parametrize("query", [
    "SELECT 1 -- `<img src=x onerror=alert(10)>`",
    "SELECT '``' /* ``` */ FROM t WHERE a = `b` -- <b>",
    "`starts and ends`",
    "SELECT 1 -- `` ` ``` ```` <script>alert(10)</script>",
    " padded ",
])
def test_a_query_text_stays_one_code_span(query):
    line = next(ln for ln in postmortem._root_cause({}, {"db-connections": {"status": "ok", "slow_statements": [query],
                                                                             "slow_statements_ranking": "r"}})
                if "Slow statement" in ln)
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    for html in (safe_text.markdown_html(line), markdown2html_mistune(line)):
        assert_inert(html)
        codes = re.findall(r"<code>(.*?)</code>", html, re.S)
        assert len(codes) == 1, html
        import html as h

        assert h.unescape(codes[0]) == query, (codes[0], query)


# ---- 3. control characters ------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", CONTROL)
def test_control_characters_are_shown_escaped_everywhere(payload):
    raw = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
    md = render_postmortem(payload)
    page = report_html.offline(f"<html><head></head><body><pre>{payload}</pre></body></html>")
    for out in (md, safe_text.markdown_html(md), page, safe_text.terminal(f"incident {payload}")):
        assert not raw.search(out), repr(out)
    assert "\\x" in safe_text.visible(payload) or "\\u" in safe_text.visible(payload)
    assert safe_text.visible("line\n\ttab\r\n") == "line\n\ttab\n"


def test_the_terminal_never_receives_an_escape(tmp_path):
    """`forensics validate` prints the environment's name: an OSC title change in it is shown, not run."""
    env = tmp_path / "env.yaml"
    env.write_text('name: "prod\\e]0;owned\\a\\e[2J"\naws: {region: eu-west-1}\n')
    inc = tmp_path / "inc.yaml"
    now = pd.Timestamp.now(tz="UTC").floor("h")
    inc.write_text(f"incident: INC-T\ntitle: t\nseverity: P3\nenvironment: {env}\n"
                   f"window: {{start: '{(now - pd.Timedelta('2h')).isoformat()}', end: '{(now - pd.Timedelta('1h')).isoformat()}'}}\n")
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "validate", str(inc), "--skip-preflight"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b" not in proc.stdout and b"\x07" not in proc.stdout
    assert b"prod\\x1b]0;owned\\x07\\x1b[2J" in proc.stdout


# ---- 4. every page carries the CSP --------------------------------------------------------------------
@pytest.mark.parametrize("page", [
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>x</title></head><body>x</body></html>",
    "<html><HEAD lang=en><title>x</title></HEAD><body><a href='javascript:alert(10)'>x</a></body></html>",
    "<body>no head at all <img src=x onerror=alert(10)></body>",
])
def test_every_page_gets_the_csp_and_no_unsafe_url(page):
    out = report_html.offline(page)
    assert out.count(report_html.CSP_META) == 1
    assert "default-src 'none'" in out and "img-src data: 'self'" in out and "style-src 'unsafe-inline'" in out
    assert "javascript:" not in out.lower()
    head = re.search(r"<head\b[^>]*>", out, re.I)
    if head:
        assert out[head.end():].startswith(report_html.CSP_META)


def test_the_index_template_holds_the_csp():
    text = (report_html.TEMPLATES / "index.html.j2").read_text()
    assert text.count(report_html.CSP_META) == 1


# ---- 5. parameter files ---------------------------------------------------------------------------------
LAUGHS = ("a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n"
          + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
                    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8)))


def _incident_text(env: str, extra: str = "") -> str:
    now = pd.Timestamp.now(tz="UTC").floor("h")
    return (f"incident: INC-Y\ntitle: y\nseverity: P3\nenvironment: {env}\n"
            f"window: {{start: '{(now - pd.Timedelta('2h')).isoformat()}', end: '{(now - pd.Timedelta('1h')).isoformat()}'}}\n"
            + extra)


@pytest.mark.parametrize("name,text,match", [
    ("laughs-notebooks", "NOTEBOOKS", "alias"),
    ("anchor-merge", "base: &b {x: 1}\nother:\n  <<: *b\n", "alias"),
    ("dup-window", "WINDOW_TWICE", "duplicate key 'window'"),
    ("dup-incident", "incident: INC-1\nincident: INC-2\n", "duplicate key 'incident'"),
    ("dup-nested", "window: {start: '2026-01-01T00:00:00Z', start: '2026-01-02T00:00:00Z'}\n", "duplicate key 'start'"),
    ("python-tag", "incident: !!python/object/apply:os.system ['true']\n", "malformed YAML"),
    ("tab-indent", "incident: x\n\ttitle: y\n", "malformed YAML"),
])
def test_bad_incident_files_are_one_line(tmp_path, name, text, match):
    env = tmp_path / "env.yaml"
    env.write_text("name: e\naws: {region: eu-west-1}\n")
    if text == "NOTEBOOKS":
        text = LAUGHS + _incident_text(str(env), "notebooks: *i\n")
    elif text == "WINDOW_TWICE":
        text = _incident_text(str(env)) + "window: {start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z'}\n"
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    t0 = time.perf_counter()
    with pytest.raises(ParamsError, match=match) as err:
        load_incident(path)
    assert time.perf_counter() - t0 < 2
    assert "\n" not in str(err.value) and err.value.exit_code == 2


@pytest.mark.parametrize("name,text,match", [
    ("laughs-enums", LAUGHS.replace("\n", "\n  ").join(["schema:\n  enums:\n    x: *i\n  ", ""]), "alias"),
    ("dup-aws", "name: e\naws: {region: eu-west-1}\naws: {region: us-east-1}\n", "duplicate key 'aws'"),
    ("dup-deep", "name: e\naws: {region: eu-west-1}\npostgres: {dsn: a, dsn: b}\n", "duplicate key 'dsn'"),
])
def test_bad_environment_files_are_one_line(tmp_path, name, text, match):
    path = tmp_path / f"{name}.yaml"
    path.write_text(("name: e\naws: {region: eu-west-1}\n" if name.startswith("laughs") else "") + text)
    t0 = time.perf_counter()
    with pytest.raises(ParamsError, match=match):
        load_environment(str(path))
    assert time.perf_counter() - t0 < 2


@pytest.mark.parametrize("raw,match", [
    (b"incident: INC-\xff\xfe\n", "not UTF-8 text \\(byte 0xff at offset 14\\)"),
    ("incident: x\n".encode("utf-16"), "not UTF-8 text"),
    (b"incident: caf\xe9\n", "not UTF-8"),
    (b"a: " + b"x" * (2 * 1024 * 1024), "larger than 1024 KiB"),
])
def test_undecodable_or_huge_files_are_one_line_exit_2(tmp_path, raw, match):
    path = tmp_path / "inc.yaml"
    path.write_bytes(raw)
    with pytest.raises(ParamsError, match=match):
        load_incident(path)
    if not raw.startswith(b"incident: INC-\xff"):
        return  # the CLI once (a subprocess is slow): the same ParamsError, printed by the same path
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_directory_is_not_a_parameter_file(tmp_path):
    with pytest.raises(ParamsError, match="directory"):
        load_incident(tmp_path)


def test_records_write_params_without_aliases():
    """A value used twice is written twice: replaying a record reads its params.yaml with the same loader."""
    from forensics import params

    shared = ["a", "b"]
    text = params.dump({"x": shared, "y": shared})
    assert "&" not in text and "*" not in text
    assert params._Loader(text).get_single_data() == {"x": shared, "y": shared}


# ---- 6. decompression bombs ----------------------------------------------------------------------------
def _bomb(decompressed: int) -> bytes:
    """A gzip of ``decompressed`` zero bytes (about 1/1000 of it compressed), built in chunks."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    parts = [comp.compress(chunk) for _ in range(decompressed >> 20)]
    return b"".join(parts) + comp.flush()


@pytest.fixture(scope="module")
def bomb_buckets(moto_server):
    from forensics.sources import s3_objects as so

    s3 = moto_server.client("s3")
    trail, logs = "hostile-trail", "hostile-alb"
    for b in (trail, logs):
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    bomb = _bomb(so.MAX_OBJECT_BYTES + (64 << 20))
    acct, region = "123456789012", moto_server.region
    base = f"AWSLogs/{acct}/CloudTrail/{region}/2026/11/23"
    good = {"Records": [{"eventTime": "2026-11-23T09:41:00Z", "eventName": "ConsoleLogin",
                         "eventSource": "signin.amazonaws.com", "eventID": "e-1",
                         "userIdentity": {"type": "IAMUser", "userName": "<img src=x onerror=alert(10)>"},
                         "sourceIPAddress": "[x](javascript:alert(10))"}]}
    keys = {"bomb": f"{base}/{acct}_CloudTrail_{region}_20261123T0940Z_Zq8xK2mWp7LrT4vN.json.gz",
            "good": f"{base}/{acct}_CloudTrail_{region}_20261123T0945Z_aB3dE5fG7hJ9kL1m.json.gz"}
    s3.put_object(Bucket=trail, Key=keys["bomb"], Body=bomb)
    s3.put_object(Bucket=trail, Key=keys["good"], Body=gzip.compress(json.dumps(good).encode()))
    alb_base = f"AWSLogs/{acct}/elasticloadbalancing/{region}/2026/11/23"
    alb_key = f"{alb_base}/{acct}_elasticloadbalancing_{region}_app.web.0a1b2c3d4e5f6a7b_20261123T0940Z_10.0.1.23_x9Kq2Lm7.log.gz"
    s3.put_object(Bucket=logs, Key=alb_key, Body=bomb)
    return {"trail": trail, "logs": logs, "keys": keys, "alb_key": alb_key, "bomb_bytes": len(bomb)}


def test_a_decompression_bomb_in_the_trail_is_one_unreadable_object(aws_env, bomb_buckets):
    from forensics.sources import cloudtrail_s3
    from forensics.sources import s3_objects as so

    window = IncidentWindow("2026-11-23T09:35:00Z", "2026-11-23T09:55:00Z")
    tracemalloc.start()
    try:
        df = cloudtrail_s3.trail_events({"bucket": bomb_buckets["trail"]}, window, aws_env)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * so.MAX_OBJECT_BYTES, peak  # never the whole expansion (192 MiB here)
    assert df["username"].tolist() == ["<img src=x onerror=alert(10)>"]  # the other object is read
    (err,) = df.attrs["errors"]
    assert err["key"] == bomb_buckets["keys"]["bomb"] and "expands beyond 128 MiB" in err["error"]
    # the manifest and findings carry it through redaction: the key stays whole, findable
    assert json.loads(redact.text(json.dumps(df.attrs["errors"]))) == df.attrs["errors"]


def test_a_decompression_bomb_in_the_access_logs_is_one_unreadable_object(aws_env, bomb_buckets):
    from forensics.sources import alb_logs

    window = IncidentWindow("2026-11-23T09:35:00Z", "2026-11-23T09:55:00Z")
    df = alb_logs.access_logs({"access_logs": {"bucket": bomb_buckets["logs"]}}, window, aws_env)
    errors = df.attrs["errors"]
    assert [e["key"] for e in errors] == [bomb_buckets["alb_key"]] and "expands beyond" in errors[0]["error"]
    assert json.loads(redact.text(json.dumps(errors))) == errors


# ---- 7. identifiers are not secrets by their field's name --------------------------------------------------
@pytest.mark.parametrize("key", [
    "AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/23/123456789012_CloudTrail_eu-west-1_20261123T0905Z_aBcD1234EfGhXy9.json.gz",
    "AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/2026/11/23/x_20261123T0905Z_Q9w8E7r6T5y4.json.gz",
    "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2026/11/23/1_elasticloadbalancing_eu-west-1_app.w.0a1b2c3d_20261123T0905Z_10.0.1.2_4kq9zv1x.log.gz",
    "pg_dump/2026/11/23/scr-prod-Zx8kQ2mN7pL4.sql.gz",
])
def test_object_keys_in_error_entries_are_kept(key):
    entry = {"errors": [{"key": key, "error": "not gzip"}]}
    assert json.loads(redact.text(json.dumps(entry))) == entry
    assert redact.text(f"key={key}") == f"key={key}"


@pytest.mark.parametrize("value,kind", [
    ("Zx8kQ2mN7pL4vR9tW3yB6cF1", "secret-pair"),
    ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzKEYq1", "secret-pair"),
    ("exports/ghp_R8kq2LmZ7xVt4NwP9sYb3HcJ6dFg1QaE5uKo.csv", "github-token"),
])
def test_secrets_under_key_are_still_redacted_by_content(value, kind):
    out = redact.text(json.dumps({"key": value}))
    assert f"[REDACTED:{kind}:" in out


# ---- 8. figures: evidence labels are text, never mathtext -----------------------------------------------
@pytest.mark.parametrize("label", ["$\\frac{$", "cost $5 and $6", "$$", "\x1b]0;owned\x07 deploy", "a\\$b$"])
def test_hostile_labels_never_break_a_figure(label):
    import io

    from forensics import charts

    idx = pd.date_range("2026-11-23T09:30:00Z", periods=30, freq="1min")
    events = pd.DataFrame({"timestamp": [idx[10]], "source": ["cloudtrail"], "resource": [label],
                           "kind": ["deployment"], "message": [label]})
    for fig in (charts.timeseries(pd.Series(range(30), index=idx, name="x"), events=events, title="t"),
                charts.bar(pd.Series([3, 2], index=[label, f"{label} 2"]), title="b")):
        buf = io.BytesIO()
        fig.savefig(buf, format="png")  # mathtext would raise here
        assert buf.getvalue()[:4] == b"\x89PNG"
        texts = [t.get_text() for ax in fig.axes for t in ax.texts + ax.get_yticklabels()]
        assert not any("\x1b" in t for t in texts)
