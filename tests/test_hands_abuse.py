"""The photo route under abuse: odd photos get a clear answer through POST /predict (landmarks, or
pixels with the reason), never a 5xx; a kill -9 while landmarks are being cached leaves the cache usable."""

import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("mediapipe", reason="the hands extra (pip install 'handsign[hands]')")

from fastapi.testclient import TestClient  # noqa: E402

from handsign.hands import cache  # noqa: E402
from handsign.hands.photos import load_folder  # noqa: E402
from handsign.serve import create_app  # noqa: E402
from test_hands import massey, tiny_photos  # noqa: E402,F401  (fixtures)


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(["asl"], backend="onnx"))


def jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def post(client, data: bytes, name="photo.jpg"):
    return client.post("/predict?model=asl", files={"file": (name, data, "image/jpeg")})


def photo(massey, letter="b", person="hand2") -> Image.Image:
    return Image.open(sorted((massey / letter).glob(f"{person}_*"))[0]).convert("RGB")


def test_no_hand_is_answered_by_pixels_with_the_reason(client):
    r = post(client, jpeg(Image.new("RGB", (320, 240), (200, 190, 170))))
    assert r.status_code == 200
    body = r.json()
    assert body["via"] == "pixels" and body["reason"] == "no hand found" and "landmarks" not in body


def test_two_hands_read_the_larger_one(client, massey):
    big, small = photo(massey, "b"), photo(massey, "y").resize((200, 200))
    scene = Image.new("RGB", (700, 420), (0, 0, 0))
    scene.paste(big, (10, 10))
    scene.paste(small, (480, 110))
    r = post(client, jpeg(scene, quality=92))
    assert r.status_code == 200
    body = r.json()
    assert body["via"] == "landmarks" and body["hands"] == 2 and body["label"] == "b"
    xs = [x for x, _ in body["landmarks"]]
    assert max(xs) < 420  # the points are the big hand's, in the scene's pixels


def test_cmyk_and_huge_photos_find_the_hand_in_the_photos_pixels(client, massey):
    hand = photo(massey, "l")
    r = post(client, jpeg(hand.convert("CMYK")))
    assert r.status_code == 200 and r.json()["via"] == "landmarks" and r.json()["label"] == "l"
    big = hand.resize((4000, 4000), Image.Resampling.BILINEAR)  # 16 megapixels
    body = post(client, jpeg(big, quality=80)).json()
    assert body["via"] == "landmarks" and body["label"] == "l"
    pts = np.array(body["landmarks"])
    assert pts.max() > 1000 and pts.min() > -200 and pts.max() < 4200  # points in the big photo's pixels


@pytest.mark.parametrize("case", ["tiny", "gray", "cut", "drawn", "over-limit"])
def test_odd_photos_get_a_clear_answer(client, massey, case):
    hand = photo(massey, "v")
    if case == "tiny":
        data = jpeg(hand.resize((9, 7)))
    elif case == "gray":  # a gray photo is read like Sign-MNIST's gray frames: by pixels
        data = jpeg(hand.convert("L"))
    elif case == "cut":  # a hand cut by the frame
        data = jpeg(hand.crop((0, 0, hand.width, hand.height // 2)))
    elif case == "drawn":  # a line drawing of a hand on paper
        pic = Image.new("RGB", (400, 400), "white")
        d = ImageDraw.Draw(pic)
        d.ellipse((120, 200, 280, 360), outline="black", width=6)
        for x in (140, 180, 220, 260):
            d.line((x, 220, x - 10, 60), fill="black", width=6)
        data = jpeg(pic)
    else:  # over the pixel limit: refused before decoding
        data = jpeg(Image.new("RGB", (8000, 5100), (90, 90, 90)), quality=20)
    r = post(client, data)
    if case == "over-limit":
        assert r.status_code == 400 and "over the limit" in r.json()["error"]
        return
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] in "abcdefghiklmnopqrstuvwxy" and body["via"] in ("landmarks", "pixels")
    if case in ("tiny", "gray"):
        assert body["via"] == "pixels"
    if case == "gray":
        assert body["reason"] == "a gray picture, like Sign-MNIST's frames"


def test_kill_minus_9_while_caching_leaves_a_usable_cache(tiny_photos, tmp_path, monkeypatch):
    """A process extracting landmarks is killed once some entries are written; the next run reuses
    them, recomputes the rest and gives the same landmarks as a run on an empty cache."""
    env = {**os.environ, "HANDSIGN_CACHE": str(tmp_path / "cache")}
    code = f"from handsign.hands.photos import load_folder; load_folder({str(tiny_photos)!r}, progress=False)"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    root = tmp_path / "cache" / "landmarks"
    try:
        while proc.poll() is None and len(list(root.glob("*/*.json"))) < 5:
            time.sleep(0.005)  # poll the entries themselves: the kill lands after the 5th, whatever the speed
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the extraction ended before it was killed"
    written = len(list(root.glob("*/*.json")))
    assert 5 <= written < 24
    monkeypatch.setenv("HANDSIGN_CACHE", env["HANDSIGN_CACHE"])
    resumed = load_folder(tiny_photos, progress=False)
    assert len(list(root.glob("*/*.json"))) == 24
    monkeypatch.setenv("HANDSIGN_CACHE", str(tmp_path / "fresh"))
    fresh = load_folder(tiny_photos, progress=False)
    for a, b in zip(resumed.hands, fresh.hands):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a.points, b.points, atol=0.01)
    assert cache.root() == tmp_path / "fresh" / "landmarks"


def test_bundled_asl_reads_a_photo_without_torch(massey):
    """The deploy path: MediaPipe + ONNX Runtime, torch blocked from importing."""
    import json as _json

    from deploy_helpers import NO_TORCH, REPO

    # mediapipe's own wheel needs matplotlib (its drawing utilities): only torch is blocked here
    code = NO_TORCH.replace("('torch', 'torchvision', 'matplotlib')", "('torch', 'torchvision')")
    assert code != NO_TORCH
    path = sorted((massey / "w").glob("hand4_*"))[0]
    r = subprocess.run([sys.executable, "-c", code, "predict", "--backend", "onnx", "--json", str(path)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    row = _json.loads(r.stdout)
    assert row["via"] == "landmarks" and row["label"] == "w" and len(row["landmarks"]) == 21
    assert r.stderr == ""  # MediaPipe's start-up chatter stays off the terminal
