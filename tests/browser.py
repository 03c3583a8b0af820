"""Headless Chromium for the browser tests: Debian's chromium (installed by `make test` when run as root),
driven by Playwright, which downloads no browser. One place for the launch flags and the skip reasons."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_context(profile: Path, viewport: dict | None = None, offline: bool = False):
    """Yield a persistent browser context on a fresh ``profile`` folder (a fixture does ``yield from`` it);
    ``offline``: every request that is not a ``file://`` URL is aborted. Skips when Chromium or Playwright
    is absent, saying why."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make test installs it with apt-get when run as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport=viewport or {"width": 1280, "height": 900})
        if offline:
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
        try:
            yield context
        finally:
            context.close()
