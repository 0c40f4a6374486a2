"""What the browser benchmarks share: headless Debian chromium through playwright (never `playwright install`),
`handsign serve`'s app on a free port, and the machine's state for the JSON record."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # _serve_helpers.LiveServer, fake_camera

CHROMIUM = os.environ.get("HANDSIGN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@contextlib.contextmanager
def page_on_server(models=("asl",), args=(), viewport=(1000, 800)):
    """(server url, playwright page) with handsign's app serving `models`; camera permission granted."""
    from playwright.sync_api import expect, sync_playwright

    from _serve_helpers import LiveServer
    from handsign.serve import create_app

    app = create_app(list(models), backend="onnx")
    with LiveServer(app) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + list(args))
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.grant_permissions(["camera"], origin=server.url)
            page = context.new_page()
            page.goto(server.url + "/")
            expect(page.locator("#model")).to_be_enabled()  # (the page's CSP forbids wait_for_function's eval)
            yield server.url, page
        finally:
            browser.close()


def machine() -> dict:
    import subprocess

    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "load_average": os.getloadavg(),
            "platform": platform.platform(), "chromium": version}


def wait_until(page, expression: str, timeout_s: float = 60.0, every_s: float = 0.1):
    """Poll a JavaScript expression through page.evaluate until it is truthy (wait_for_function would eval it in
    the page, which its Content-Security-Policy forbids); returns its value."""
    import time

    end = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"not true after {timeout_s} s: {expression}")
        time.sleep(every_s)
