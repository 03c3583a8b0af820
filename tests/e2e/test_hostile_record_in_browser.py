"""A record written over hostile evidence, opened in a real browser (issue 18).

The security scenario's sandbox, plus CloudTrail records an attacker controls, delivered to the trail's
bucket in the window: ``userIdentity.userName``, ``sourceIPAddress`` and ``userAgent`` hold script,
``javascript:`` links and terminal escapes; the incident's title holds the same. `forensics run` writes
the record (overview, security); every page of it is loaded in headless Chromium (Debian's, driven by
Playwright): no dialog opens, nothing outside the record is requested, the payloads are on the page as
text, and no file of the record carries a raw control character.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.browser import chromium_context

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]


PAYLOADS = ["<img src=x onerror=alert(10)>", "[x](javascript:alert(10))",
            "<svg/onload=alert(11)>", "<a href=javascript:alert(12)>y</a>"]
OSC = "\x1b]0;owned\x07"
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")


def _hostile_events(window_start: pd.Timestamp) -> list[dict]:
    from forensics_sandbox.scenarios import security

    out = []
    for i, payload in enumerate(PAYLOADS * 2):
        ts = window_start + pd.Timedelta(minutes=5 + i)
        out.append({
            "eventVersion": "1.09", "eventTime": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey" if i % 2 else "ConsoleLogin",
            "awsRegion": "eu-west-1", "sourceIPAddress": payload if i % 2 else f"{payload}{OSC}",
            "userAgent": f"{OSC}{payload}",
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{security.ACCOUNT}:user/{payload}",
                             "accountId": security.ACCOUNT, "userName": f"{payload}{OSC}"},
            "requestParameters": {"userName": payload}, "eventID": f"00000000-0000-4000-8000-{i:012d}",
            "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
            "recipientAccountId": security.ACCOUNT, "eventCategory": "Management"})
    return out


@pytest.fixture(scope="module")
def hostile_record(tmp_path_factory):
    from forensics_sandbox.s3_evidence import put_trail
    from forensics_sandbox.sandbox import Sandbox
    from forensics_sandbox.scenarios import security

    work = Path(tempfile.mkdtemp(prefix="forensics-hostile-sandbox-"))
    sb = Sandbox(work, scenario="security").start()
    try:
        tmp = tmp_path_factory.mktemp("hostile")
        env, inc = tmp / "env.yaml", tmp / "incident.yaml"
        sb.write_params(env, inc)
        incident = yaml.safe_load(inc.read_text())
        incident["title"] = f"Leak {PAYLOADS[0]} {PAYLOADS[1]} {OSC}"
        inc.write_text(yaml.safe_dump(incident, allow_unicode=False))
        start = pd.Timestamp(incident["window"]["start"])
        bucket = sb.environment["cloudtrail"]["bucket"]
        put_trail(sb.client("s3"), bucket, security.TRAIL_PREFIX, security.ACCOUNT, "eu-west-1",
                  _hostile_events(start), seed=99)
        out = tmp / "evidence"
        proc = subprocess.run([sys.executable, "-m", "forensics.cli", "run", str(inc), "--out", str(out),
                               "--only", "overview", "--only", "security", "--jobs", "2"],
                              capture_output=True, timeout=900)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert b"\x1b]0;" not in proc.stderr and b"\x07" not in proc.stderr  # the terminal too
        record = Path(proc.stdout.decode().strip().splitlines()[-1])
        yield record
    finally:
        sb.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    yield from chromium_context(tmp_path_factory.mktemp("chromium-hostile"))


def _pages(record: Path) -> list[Path]:
    return [record / "index.html", *sorted((record / "html").glob("*.html"))]


def test_the_record_holds_the_hostile_evidence(hostile_record):
    """Not a vacuous pass: the payloads reached the pages that the browser test then loads."""
    pages = {p.name: p.read_text() for p in _pages(hostile_record)}
    assert {"index.html", "overview.html", "overview.report.html", "security.html", "security.report.html"} <= set(pages)
    overview = pages["overview.report.html"]
    assert "onerror=alert(10)" in overview and "javascript:alert(10)" in overview  # as text
    assert "Postmortem draft" in overview
    assert any("alert(10)" in pages[n] for n in ("security.html", "security.report.html"))


def test_no_file_of_the_record_carries_a_raw_control_character(hostile_record):
    for path in [*_pages(hostile_record), hostile_record / "postmortem.md"]:
        data = path.read_bytes()
        assert not RAW_CONTROL.search(data), (path.name, RAW_CONTROL.search(data))
    assert "\\x1b]0;owned\\x07" in (hostile_record / "html" / "overview.report.html").read_text()


def test_every_page_carries_the_csp(hostile_record):
    from forensics.report_html import CSP_META

    for path in _pages(hostile_record):
        head = path.read_text().split("</head>", 1)[0]
        assert CSP_META in head, path.name


def test_no_page_runs_script_or_calls_out(context, hostile_record):
    inside = hostile_record.resolve().as_uri() + "/"
    for path in _pages(hostile_record):
        dialogs, outside, errors = [], [], []
        page = context.new_page()

        def route(r, outside=outside):
            if not r.request.url.startswith(inside):
                outside.append(r.request.url)
                return r.abort()
            return r.continue_()

        page.route("**/*", route)
        page.on("dialog", lambda d, dialogs=dialogs: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        try:
            page.goto(path.resolve().as_uri(), wait_until="load")
            # click every link whose href is not a file of the record, as a curious reader would
            hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))")
            assert not [h for h in hrefs if re.match(r"\s*(javascript|vbscript|data):", h, re.I)], (path.name, hrefs)
            script = page.evaluate("document.querySelectorAll('script, iframe, object, embed, svg[onload], "
                                   "img[onerror]').length")
            page.wait_for_timeout(200)
        finally:
            page.close()
        assert not dialogs, (path.name, dialogs)
        assert not outside, (path.name, outside)
        assert script == 0, path.name
        assert not errors, (path.name, errors)
