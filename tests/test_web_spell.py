"""Live spelling read in the browser, in headless chromium: the fake camera plays a word fingerspelled from one Massey
person's photos (each letter held 0.5 s, 0.15 s crossfades, a hand-free pause before and after; made at run time by
tests/fake_camera.py), #live runs MediaPipe in WebAssembly, the features, the model and the decoder in the page, and
the word appears in #spelled, with no request to POST /predict.

The bundled `asl` model was trained on all 5 Massey people, this person included: the test shows that the route
works end to end, not how well it reads people it never saw (docs/hands.md has leave-one-person-out). The word's
letters are ones the page reads right on this person's photos (benchmarks/browser_agreement.py). Needs chromium,
playwright, the npm files (make install) and mediapipe (for the .task); with CI=true a missing one fails.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from _browser_helpers import camera_context
from conftest import keep_screenshots, skip_or_fail
from fake_camera import spelling_clip
from test_web_browser import sync_api

WORD, PERSON = "wild", "hand2"  # w, i, l, d: shapes far apart, read right on 5 of 5 of hand2's photos
VENDOR = Path(__file__).resolve().parents[1] / "handsign" / "web" / "vendor" / "node_modules" / "@mediapipe"
# MediaPipe's WebAssembly logs its start-up through console.error; any other console error fails the test
MEDIAPIPE_CHATTER = re.compile(r"^(INFO|W\d{4}|I\d{4}|WARNING)[: ]|Created TensorFlow Lite|GL Driver Message")


# the camera's current frame through hands.js in IMAGE mode: how the page names the hand in it
HAND_IN_FRAME = """async () => {
  const hands = await import("/static/hands.js");
  const video = document.getElementById("video");
  const c = document.createElement("canvas");
  c.width = video.videoWidth;
  c.height = video.videoHeight;
  c.getContext("2d").drawImage(video, 0, 0);
  window.imageLandmarker = window.imageLandmarker || await hands.createLandmarker("IMAGE");
  const hand = hands.largestHand(window.imageLandmarker.detect(c), c.width, c.height);
  return hand && {handedness: hand.handedness, left: hand.left};
}"""


@pytest.fixture(scope="module")
def photos(real_data_dir) -> list[Path]:
    root = real_data_dir / "asl_photos" / "massey"
    if not root.is_dir():
        skip_or_fail(f"{root} not found: the Massey photos")
    if importlib.util.find_spec("mediapipe") is None:
        skip_or_fail("mediapipe is not installed: the page's hand model is made from its wheel (pip install 'handsign[hands]')")
    if not (VENDOR / "tasks-vision" / "vision_bundle.mjs").is_file():
        skip_or_fail("@mediapipe/tasks-vision is not installed (make install, or npm ci --prefix handsign/web/vendor)")
    return [sorted((root / c).glob(f"{PERSON}_*"))[0] for c in WORD]


def test_live_spelling_in_the_browser_sends_no_frame(photos, tmp_path):
    from handsign.serve import create_app

    clip, seconds = spelling_clip(photos, tmp_path / "word.y4m")
    app = create_app(["asl", "mnist"], backend="onnx")
    requests: list[str] = []
    errors: list[str] = []
    with camera_context(app, clip, viewport={"width": 1000, "height": 820}) as (server, context):
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: m.type == "error" and not MEDIAPIPE_CHATTER.search(m.text)
                and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        sync_api.expect(page.locator("#model")).to_be_enabled()
        assert page.locator("#spell-box").is_hidden()
        # the menu says the bundled asl reads j and z when spelling live (photos: its 24 static letters)
        assert page.locator("#model option").all_inner_texts() == ["asl — 24 ASL letters + J, Z live",
                                                                   "mnist — 10 digits"]
        page.evaluate("document.addEventListener('handsign-frame', (e) => { window.labelsRead = e.detail.labels; })")

        page.click("#live")
        sync_api.expect(page.locator("#live")).to_have_attribute("aria-pressed", "true")
        sync_api.expect(page.locator("#route")).to_have_attribute("data-route", "browser", timeout=60_000)
        sync_api.expect(page.locator("#route")).to_contain_text("no frame leaves this device")
        # the clip loops (about 3.5 s a pass): the word, as a word of its own, within a few passes
        sync_api.expect(page.locator("#spelled")).to_have_text(re.compile(rf"(^| ){WORD.upper()}( |$)"),
                                                               timeout=40_000)
        sync_api.expect(page.locator("#fps")).to_have_text(re.compile(r"^(?!0\.0 )\d+\.\d frames/s$"))
        assert page.evaluate("window.labelsRead") == 26  # the motion reader is on: 24 letters + j and z
        # the next pass's first letter: the current letter large, upper case, its confidence, the hand's skeleton
        sync_api.expect(page.locator("#label")).to_have_text(re.compile(r"^[A-Z]$"), timeout=15_000)
        sync_api.expect(page.locator("#confidence")).to_have_text(re.compile(r"^\d+%$"))
        sync_api.expect(page.locator("#skeleton")).to_be_visible()
        page.screenshot(path=str(tmp_path / "spelling.png"), full_page=True)
        spelled = page.inner_text("#spelled")
        # hands.js's handedness and left follow mediapipe.solutions' naming, the one the features (and the model's
        # training) use: a Massey right hand is "Left", left true, though the Tasks API says "Right" (hands.js swaps
        # it). Not what `handsign predict` reports: its JSON "handedness" is the real hand, "Right" for this one
        # (handsign.hands.landmarks.real_hand).
        for _ in range(10):  # a frame with a hand in it (not the pause, not a crossfade)
            hand = page.evaluate(HAND_IN_FRAME)
            if hand:
                break
        assert hand == {"handedness": "Left", "left": True}, hand

        page.click("#live")  # stop: the camera stays on, the text stays
        sync_api.expect(page.locator("#live")).to_have_attribute("aria-pressed", "false")
        assert page.inner_text("#spelled").startswith(spelled)
        page.click("#clear")
        sync_api.expect(page.locator("#spelled")).to_have_text("")
    sent = [u for u in requests if u.startswith(server.url + "/predict")]
    assert sent == [], f"frames went to the server: {sent[:3]}"
    # what the page did fetch: its own files, the model list, the weights and MediaPipe's files, all from handsign
    assert {server.url + p for p in ("/models", "/models/asl/weights", "/vendor/hand_landmarker.task",
                                     "/vendor/tasks-vision/vision_bundle.mjs")} <= set(requests)
    assert all(u.startswith(server.url) for u in requests), [u for u in requests if not u.startswith(server.url)]
    assert errors == [], errors
    keep_screenshots(tmp_path, "spelling.png")
    print(f"spelled {spelled!r} from a {seconds:.1f} s clip; screenshot {tmp_path / 'spelling.png'}")


def test_live_says_why_when_it_cannot_read_in_the_browser(photos, tmp_path):
    """No WebAssembly: the server route, and the page says so. A camera that cannot be opened: one line, no live."""
    from fake_camera import still_clip
    from handsign.serve import create_app

    clip = still_clip(photos[2], tmp_path / "l.y4m")
    with camera_context(create_app(["asl"], backend="onnx"), clip) as (server, context):
        page = context.new_page()
        page.add_init_script("delete globalThis.WebAssembly")
        page.goto(server.url + "/")
        sync_api.expect(page.locator("#model")).to_be_enabled()
        page.click("#live")
        sync_api.expect(page.locator("#route")).to_have_attribute("data-route", "server", timeout=30_000)
        sync_api.expect(page.locator("#route")).to_contain_text("this browser has no WebAssembly")
        page.click("#live")

        page = context.new_page()
        page.add_init_script("navigator.mediaDevices.getUserMedia = () => "
                             "Promise.reject(new DOMException('Requested device not found', 'NotFoundError'))")
        page.goto(server.url + "/")
        sync_api.expect(page.locator("#model")).to_be_enabled()
        page.click("#live")
        sync_api.expect(page.locator("#error")).to_have_text("Camera unavailable: Requested device not found")
        sync_api.expect(page.locator("#live")).to_have_attribute("aria-pressed", "false")
        sync_api.expect(page.locator("#route")).to_be_hidden()
