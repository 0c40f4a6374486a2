"""The page in a real browser: headless Debian chromium driven by Playwright against a live uvicorn.

Needs `apt-get install chromium` and `pip install playwright` (never `playwright install`: it downloads
browsers). When either is absent it skips, saying which, or fails in CI (CI=true).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

from _serve_helpers import ASL_LABELS, LiveServer, make_models
from conftest import import_or_skip_or_fail, keep_screenshots, skip_or_fail
from handsign.serve import create_app

CHROMIUM = os.environ.get("HANDSIGN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = import_or_skip_or_fail("playwright.sync_api", "playwright is not installed (pip install playwright)")
if not Path(CHROMIUM).is_file():
    skip_or_fail(f"chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def hand_photo(path: Path) -> Path:
    """A made-up 'photo': a pale blob on a dark background, 320x240 JPEG."""
    img = Image.new("RGB", (320, 240), (40, 50, 60))
    ImageDraw.Draw(img).ellipse((110, 50, 210, 200), fill=(220, 180, 150))
    img.save(path, "JPEG")
    return path


def test_upload_and_draw_in_browser(tmp_path):
    models = make_models(tmp_path)
    # the small test ASL model, and the bundled `mnist` by name (it must read the drawn 7)
    app = create_app([str(models["asl"]), "mnist"], backend="torch")
    console_errors: list[str] = []
    with LiveServer(app) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            page.goto(server.url + "/")
            sync_api.expect(page.locator("#model")).to_be_enabled()
            assert page.locator("#model option").all_inner_texts() == ["asl — 24 ASL letters", "mnist — 10 digits"]

            # 1. upload a photo to the ASL model (the default): a letter, in upper case, and a top-3 appear
            page.set_input_files("#file", str(hand_photo(tmp_path / "hand.jpg")))
            sync_api.expect(page.locator("#top li")).to_have_count(3)
            letter = page.inner_text("#label")
            # a letter, or "not sure" below the confidence floor (the small test model is often unsure);
            # the top-3 always shows letters, upper case (a lower-case l looks like a bar)
            assert (letter.isupper() and letter.lower() in ASL_LABELS) or letter == "not sure", letter
            assert all(li.split()[0].isupper() and li.split()[0].lower() in ASL_LABELS
                       for li in page.locator("#top li").all_inner_texts())
            sync_api.expect(page.locator("#preview")).to_be_visible()
            page.screenshot(path=str(tmp_path / "photo.png"), full_page=True)

            # 2. the Draw tab, the ASL model still chosen: the drawing goes to the digit model, and the hint
            # says so; draw a '7' with the mouse and submit
            page.click("#tab-draw")
            assert page.input_value("#model") == "asl"
            sync_api.expect(page.locator("#draw-hint")).to_contain_text("read by the digit model mnist")
            pad = page.locator("#pad")
            sync_api.expect(pad).to_be_visible()
            box = pad.bounding_box()
            x0, y0, w = box["x"], box["y"], box["width"]
            for stroke in ([(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)],):
                page.mouse.move(x0 + stroke[0][0] * w, y0 + stroke[0][1] * w)
                page.mouse.down()
                for fx, fy in stroke[1:]:
                    page.mouse.move(x0 + fx * w, y0 + fy * w, steps=12)
                page.mouse.up()
            # the pad really holds ink now (dark pixels on white)
            dark = page.evaluate("""() => { const c = document.getElementById('pad');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }""")
            assert dark > 1000
            page.click("#predict-drawing")
            sync_api.expect(page.locator("#status")).to_contain_text("mnist:")
            digit = page.inner_text("#label")
            assert digit == "7", (digit, page.locator("#top li").all_inner_texts())  # (92.8 % when checked)
            assert page.locator("#error").is_hidden()
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            page.click("#pad-clear")
            assert page.evaluate("""() => { const c = document.getElementById('pad');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                return d.every((v) => v === 255); }""")

            # 3. a bad file after a good one: the server's one-line error, and neither the answer nor the picture
            # of the photo before left beside it
            page.click("#tab-photo")
            page.set_input_files("#file", str(hand_photo(tmp_path / "hand.jpg")))
            sync_api.expect(page.locator("#top li")).to_have_count(3)
            sync_api.expect(page.locator("#preview")).to_be_visible()
            (tmp_path / "bad.png").write_bytes(b"not an image")
            page.set_input_files("#file", str(tmp_path / "bad.png"))
            sync_api.expect(page.locator("#error")).to_contain_text("not a readable image")
            sync_api.expect(page.locator("#label")).to_have_text("–")
            sync_api.expect(page.locator("#top li")).to_have_count(0)
            sync_api.expect(page.locator("#preview")).to_be_hidden()
            assert page.inner_text("#status") == ""
        finally:
            browser.close()
    # the failed upload logs one console error for its 400 response; nothing else may
    unexpected = [e for e in console_errors if "400 (Bad Request)" not in e]
    assert unexpected == [], unexpected
    shot = Image.open(tmp_path / "page.png")
    assert shot.width >= 900
    keep_screenshots(tmp_path, "photo.png", "page.png")
    print(f"screenshot: {tmp_path / 'page.png'}; photo -> {letter!r}, drawing -> {digit!r}")


def test_api_docs_work_offline_in_browser(tmp_path):
    """/docs draws Swagger UI from assets this server serves (fastapi-offline): with every request to any
    other host blocked, as on a machine with no network, the page still lists the endpoints."""
    models = make_models(tmp_path)
    app = create_app([str(models["asl"])], backend="torch")
    requests, blocked, errors = [], [], []
    with LiveServer(app) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server.url)
                       else (blocked.append(route.request.url), route.abort()))
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/docs")
            sync_api.expect(page.locator(".opblock-summary-path", has_text="/predict").first).to_be_visible()
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            browser.close()
    assert blocked == [] and errors == [], (blocked, errors)
    assert any(u.endswith("swagger-ui-bundle.js") for u in requests) and server.url + "/openapi.json" in requests
    assert {"/predict", "/models", "/v2/models/{name}/infer"} <= {p.replace("\u200b", "") for p in paths}
    with Image.open(tmp_path / "docs.png") as shot:
        assert shot.height > 900  # the whole operation list, not a blank page
