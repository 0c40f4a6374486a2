"""The page with the hand-landmark route, in headless Chromium: an uploaded real photo gets its hand's
skeleton drawn and the route named; where the browser cannot read frames itself (here: MediaPipe's files
blocked), live spelling falls back to the server, says so, and keeps sending frames of a fake camera stream
made from a real Massey photo (Chromium's --use-file-for-fake-video-capture) to POST /predict.
tests/test_web_spell.py has the in-browser route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _browser_helpers import camera_context
from conftest import keep_screenshots
from fake_camera import still_clip
from test_web_browser import sync_api

pytest.importorskip("mediapipe", reason="the hands extra (pip install 'handsign[hands]')")

LETTER, PERSON = "l", "hand2"
FPS_ABOVE_0 = re.compile(r"^(?!0\.0 )\d+\.\d frames/s$")  # (the page's CSP forbids wait_for_function's eval)


@pytest.fixture(scope="module")
def photo(real_data_dir) -> Path:
    files = sorted((real_data_dir / "asl_photos" / "massey" / LETTER).glob(f"{PERSON}_*"))
    if not files:
        pytest.skip("the Massey ASL photos are not in the data folder")
    return files[0]


def test_photo_and_live_camera_read_a_real_hand(photo, tmp_path):
    from handsign.serve import create_app

    video = still_clip(photo, tmp_path / "camera.y4m")
    app = create_app(["asl"], backend="torch")
    errors: list[str] = []
    predicts: list[str] = []
    with camera_context(app, video, viewport={"width": 1000, "height": 800}) as (server, context):
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        sync_api.expect(page.locator("#model")).to_be_enabled()

        # 1. upload: the letter (in upper case), the route, and the skeleton over the photo
        page.set_input_files("#file", str(photo))
        sync_api.expect(page.locator("#status")).to_contain_text("via landmarks")
        assert page.inner_text("#label") == LETTER.upper()
        sync_api.expect(page.locator("#skeleton")).to_be_visible()
        green = page.evaluate("""() => { const c = document.getElementById('skeleton');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++; return n; }""")
        assert green > 500  # bones and joints were drawn
        page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)

        # 2. live, with MediaPipe's files unreachable: the server route, said so; frames go to /predict
        page.route("**/vendor/**", lambda route: route.abort())
        page.on("request", lambda r: r.url.startswith(server.url + "/predict") and predicts.append(r.url))
        page.click("#live")
        sync_api.expect(page.locator("#live")).to_have_attribute("aria-pressed", "true")
        sync_api.expect(page.locator("#route")).to_have_attribute("data-route", "server", timeout=30_000)
        sync_api.expect(page.locator("#route")).to_contain_text("frames go to the server")
        sync_api.expect(page.locator("#route")).to_contain_text("J and Z are read only in the browser")
        sync_api.expect(page.locator("#label")).to_have_text(LETTER.upper(), timeout=30_000)
        sync_api.expect(page.locator("#fps")).to_have_text(FPS_ABOVE_0, timeout=30_000)
        sync_api.expect(page.locator("#top li")).to_have_count(3)
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        page.click("#live")  # stop: the letter still held is spelled, and no more frames are sent
        sync_api.expect(page.locator("#route")).to_be_hidden()
        # (an answer slower than the decoder's 350 ms word gap, on a loaded machine, can make it "L L")
        sync_api.expect(page.locator("#spelled")).to_have_text(re.compile(rf"^{LETTER.upper()}( {LETTER.upper()})*$"))
        sent = len(predicts)
        page.wait_for_timeout(600)
        assert sent >= 3 and len(predicts) == sent, (sent, len(predicts))
    # the blocked MediaPipe files are console errors of their own; nothing else may be
    assert [e for e in errors if "/vendor/" not in e and "ERR_FAILED" not in e] == [], errors
    keep_screenshots(tmp_path, "upload.png", "live.png")
