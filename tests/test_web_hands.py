"""The page with the hand-landmark route, in headless Chromium: an uploaded real photo gets its hand's
skeleton drawn and the route named; live mode keeps predicting frames of a fake camera stream made from
a real Massey photo (Chromium's --use-file-for-fake-video-capture)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _serve_helpers import LiveServer
from test_web_browser import ARGS, CHROMIUM, sync_api

pytest.importorskip("mediapipe", reason="the hands extra (pip install 'handsign[hands]')")

LETTER, PERSON = "l", "hand2"


@pytest.fixture(scope="module")
def photo(real_data_dir) -> Path:
    files = sorted((real_data_dir / "asl_photos" / "massey" / LETTER).glob(f"{PERSON}_*"))
    if not files:
        pytest.skip("the Massey ASL photos are not in the data folder")
    return files[0]


def write_y4m(photo: Path, path: Path, frames: int = 10) -> Path:
    """A 640x480 Y4M video (Chromium's fake camera format): the photo on a plain wall, `frames` frames."""
    canvas = Image.new("RGB", (640, 480), (96, 104, 112))
    hand = Image.open(photo).convert("RGB")
    hand.thumbnail((400, 400))
    canvas.paste(hand, ((640 - hand.width) // 2, (480 - hand.height) // 2))
    rgb = np.asarray(canvas, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b  # BT.601 full range (C420jpeg)
    u = (b - y) * 0.564 + 128
    v = (r - y) * 0.713 + 128
    sub = lambda c: c.reshape(240, 2, 320, 2).mean((1, 3))  # 4:2:0
    planes = b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in (y, sub(u), sub(v)))
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            f.write(b"FRAME\n" + planes)
    return path


def test_photo_and_live_camera_read_a_real_hand(photo, tmp_path):
    from handsign.serve import create_app

    video = write_y4m(photo, tmp_path / "camera.y4m")
    app = create_app(["asl"], backend="torch")
    errors: list[str] = []
    args = ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   f"--use-file-for-fake-video-capture={video}"]
    with LiveServer(app) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 800})
            context.grant_permissions(["camera"], origin=server.url)
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            sync_api.expect(page.locator("#model")).to_be_enabled()

            # 1. upload: the letter, the route, and the skeleton over the photo
            page.set_input_files("#file", str(photo))
            sync_api.expect(page.locator("#status")).to_contain_text("via landmarks")
            assert page.inner_text("#label") == LETTER
            sync_api.expect(page.locator("#skeleton")).to_be_visible()
            green = page.evaluate("""() => { const c = document.getElementById('skeleton');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++; return n; }""")
            assert green > 500  # bones and joints were drawn
            page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)

            # 2. live: the camera keeps sending frames; the letter and top-3 follow them
            page.click("#camera-start")
            sync_api.expect(page.locator("#camera-live")).to_be_visible()
            page.click("#camera-live")
            sync_api.expect(page.locator("#camera-live")).to_have_attribute("aria-pressed", "true")
            sync_api.expect(page.locator("#live-rate")).to_contain_text("3 frames", timeout=30_000)
            sync_api.expect(page.locator("#status")).to_contain_text("via landmarks")
            assert page.inner_text("#label") == LETTER
            sync_api.expect(page.locator("#top li")).to_have_count(3)
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
            page.click("#camera-live")  # stop: no more frames are sent
            sync_api.expect(page.locator("#live-rate")).to_be_hidden()
        finally:
            browser.close()
    assert errors == [], errors
    if os.environ.get("HANDSIGN_SCREENSHOT"):
        for name in ("upload.png", "live.png"):
            shutil.copy(tmp_path / name, Path(os.environ["HANDSIGN_SCREENSHOT"]) / name)
