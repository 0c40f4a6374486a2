"""Shared by the browser tests with a camera (test_web_hands.py, test_web_spell.py): handsign's app on a free port
and headless chromium whose fake camera plays a clip. Importing it skips (or, with CI=true, fails) as
test_web_browser.py does when playwright or chromium is missing."""

from __future__ import annotations

import contextlib
from pathlib import Path

from _serve_helpers import LiveServer
from test_web_browser import ARGS, CHROMIUM, sync_api


@contextlib.contextmanager
def camera_context(app, clip: Path, **context_options):
    """(server, browser context): `app` served by LiveServer; chromium's fake camera plays `clip` (a .y4m), with
    camera permission granted for the server's origin. context_options: browser.new_context's (viewport). The
    browser is closed on the way out."""
    args = ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   f"--use-file-for-fake-video-capture={clip}"]
    with LiveServer(app) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context(**context_options)
            context.grant_permissions(["camera"], origin=server.url)
            yield server, context
        finally:
            browser.close()
