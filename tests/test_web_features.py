"""The page's in-browser route, outside a browser: its features (handsign/web/features.js) and landmark model
(landmark_model.js) give what Python gives on the shared fixture of real landmarks (tests/fixtures/hands/), and the
server hands out what that route needs: the model's weights, the hand model built from the mediapipe wheel, and
MediaPipe Tasks Vision's files with the right content types."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's handsign

from _twin_helpers import node_test  # noqa: E402
from conftest import skip_or_fail  # noqa: E402
from handsign.hands.features import hand_features, hand_speed  # noqa: E402
from handsign.hands.landmarks import Hand  # noqa: E402
from handsign.infer.predict import Predictor  # noqa: E402
from handsign.serve import create_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's "use httpx2" deprecation notice
    from fastapi.testclient import TestClient

FIXTURE = json.loads((REPO / "tests" / "fixtures" / "hands" / "features.json").read_text())
VENDOR = REPO / "handsign" / "web" / "vendor" / "node_modules" / "@mediapipe" / "tasks-vision"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(["asl", "mnist"], backend="onnx"))


def _hands(fx=FIXTURE):
    return (np.array([h["points"] for h in fx["hands"]]), np.array([h["left"] for h in fx["hands"]]))


def test_python_features_and_speeds_are_the_fixture():
    points, left = _hands()
    want = np.array([h["features"] for h in FIXTURE["hands"]], dtype=np.float32)
    assert np.array_equal(hand_features(points, left), want)
    speeds = [hand_speed(points[i], points[i + 1], FIXTURE["dt_ms"]) for i in range(len(points) - 1)]
    assert speeds == pytest.approx(FIXTURE["speeds"], rel=1e-12)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_bundled_model_gives_the_fixture_probabilities(backend):
    model = Predictor.load("asl", backend=backend)
    points, left = _hands()
    p = model.hands.probs([Hand(q.astype(np.float32), "Left" if lf else "Right", 1.0) for q, lf in zip(points, left)])
    assert np.abs(p - np.array([h["probs"] for h in FIXTURE["hands"]])).max() < 1e-5
    # the Massey photos read right (the model was trained on them); the 24 real ones and the mirrored "a"
    assert [model.labels[i] for i in p.argmax(1)[:25]] == [h["label"] for h in FIXTURE["hands"][:25]]


def test_js_features_and_model_match_python(client, tmp_path):
    """features.js and landmark_model.js (with the weights GET /models/asl/weights serves) against the fixture."""
    weights = tmp_path / "asl.safetensors"
    weights.write_bytes(client.get("/models/asl/weights").content)
    r = node_test("tests/js/features.test.mjs", "the page's JavaScript (handsign/web/features.js)",
                  env={**os.environ, "HANDSIGN_WEIGHTS": str(weights)})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    assert "# skipped 0" in r.stdout and "# fail 0" in r.stdout


def test_models_say_which_run_in_the_browser(client):
    models = {m["name"]: m for m in client.get("/models").json()}
    assert models["asl"]["browser"] == "/models/asl/weights" and models["asl"]["browser_note"] is None
    assert models["mnist"]["browser"] is None and "pixel model" in models["mnist"]["browser_note"]
    r = client.get("/models/mnist/weights")
    assert r.status_code == 404 and "runs only on the server" in r.json()["error"]
    r = client.get("/models/nope/weights")
    assert r.status_code == 404 and "served models: asl, mnist" in r.json()["error"]


def test_weights_are_the_checkpoints(client):
    from safetensors.numpy import load, load_file

    r = client.get("/models/asl/weights")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    got = load(r.content)
    ckpt = load_file(str(REPO / "handsign" / "bundled" / "asl.safetensors"))
    names = {"mean": "mean", "std": "std", "layers.0.weight": "net.0.weight", "layers.0.bias": "net.0.bias",
             "layers.1.weight": "net.3.weight", "layers.1.bias": "net.3.bias", "layers.2.weight": "net.6.weight",
             "layers.2.bias": "net.6.bias"}
    assert set(got) == set(names)
    for k, v in names.items():
        assert got[k].dtype == np.float32 and np.array_equal(got[k], ckpt[v]), k


def test_an_onnx_without_its_own_checkpoint_runs_only_on_the_server(tmp_path):
    """The page must never run other weights than the server: an .onnx alone, or beside a checkpoint it was
    not exported from, gets no browser weights (and says why)."""
    bundled = REPO / "handsign" / "bundled"
    for name in ("asl.onnx", "asl-pixels.onnx", "asl-pixels.safetensors", "asl-pixels.json"):
        shutil.copy(bundled / name, tmp_path / name)
    app = create_app([f"alone={tmp_path / 'asl.onnx'}"], backend="onnx")
    entry = TestClient(app).get("/models").json()[0]
    assert entry["browser"] is None and "without its checkpoint" in entry["browser_note"]
    shutil.copy(bundled / "mnist.safetensors", tmp_path / "asl.safetensors")  # other weights under its name
    app = create_app([f"stale={tmp_path / 'asl.onnx'}"], backend="onnx")
    entry = TestClient(app).get("/models").json()[0]
    assert entry["browser"] is None and "was not exported from asl.safetensors" in entry["browser_note"]


def test_page_may_compile_webassembly_and_nothing_else(client):
    csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in csp and "'unsafe-eval'" not in csp


def test_hand_landmarker_task_is_built_from_the_wheel(client):
    import importlib.util

    if importlib.util.find_spec("mediapipe") is None:
        skip_or_fail("mediapipe is not installed (pip install 'handsign[hands]')")
    r = client.get("/vendor/hand_landmarker.task")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    modules = Path(next(iter(importlib.util.find_spec("mediapipe").submodule_search_locations))) / "modules"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.namelist() == ["hand_detector.tflite", "hand_landmarks_detector.tflite"]
        assert z.read("hand_detector.tflite") == (modules / "palm_detection" / "palm_detection_full.tflite").read_bytes()
        assert z.read("hand_landmarks_detector.tflite") == (modules / "hand_landmark" / "hand_landmark_full.tflite").read_bytes()
    assert client.get("/vendor/hand_landmarker.task").content == r.content  # the same bytes each time


def test_tasks_api_names_the_other_hand_than_solutions(client, real_data_dir):
    """The served .task runs in MediaPipe's Tasks API (Python's, the same C++ as the browser's WebAssembly) and
    finds the hand of a real photo where the Python route does, naming it the other way round: the reason
    hands.js swaps the Tasks API's handedness (docs/spell.md)."""
    from mediapipe import Image as MpImage, ImageFormat
    from mediapipe.tasks.python import BaseOptions, vision
    from PIL import Image

    from handsign.hands.landmarks import detect

    photo = sorted((real_data_dir / "asl_photos" / "massey" / "l").glob("hand2_*"))[0]
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    framed = np.full((rgb.shape[0] * 3 // 2, rgb.shape[1] * 3 // 2, 3), 96, np.uint8)  # some wall around the hand
    framed[100:100 + rgb.shape[0], 100:100 + rgb.shape[1]] = rgb
    options = vision.HandLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=client.get(
        "/vendor/hand_landmarker.task").content), num_hands=2, running_mode=vision.RunningMode.IMAGE)
    with vision.HandLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(MpImage(image_format=ImageFormat.SRGB, data=framed))
    python = detect(framed)
    assert len(result.hand_landmarks) == 1 and python is not None
    tasks = np.array([[q.x * framed.shape[1], q.y * framed.shape[0]] for q in result.hand_landmarks[0]])
    # the same hand, roughly: points within 3 % of the picture's side (the median of the 21; the wrist, where the
    # photo is cut, differs most: benchmarks/browser_agreement.py measures it on 335 photos)
    assert np.median(np.abs(tasks - python.points[:, :2]).max(1)) < 0.03 * max(framed.shape[:2])
    assert python.handedness == "Left" and result.handedness[0][0].category_name == "Right"


def test_tasks_vision_files_are_served_with_their_content_types(client):
    if not (VENDOR / "vision_bundle.mjs").is_file():
        skip_or_fail("@mediapipe/tasks-vision is not installed (make install, or npm ci --prefix handsign/web/vendor)")
    lock = json.loads((REPO / "handsign" / "web" / "vendor" / "package-lock.json").read_text())
    installed = json.loads((VENDOR / "package.json").read_text())["version"]
    assert installed == lock["packages"]["node_modules/@mediapipe/tasks-vision"]["version"] == "0.10.21"
    for path, ctype in (("vision_bundle.mjs", "text/javascript"), ("wasm/vision_wasm_internal.js", "text/javascript"),
                        ("wasm/vision_wasm_internal.wasm", "application/wasm"),
                        ("wasm/vision_wasm_nosimd_internal.wasm", "application/wasm")):
        r = client.get(f"/vendor/tasks-vision/{path}")
        assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == ctype, path
        assert r.content == (VENDOR / path).read_bytes()
    for other in ("package.json", "vision_bundle.cjs", "../tasks-vision/package.json", "wasm/../../../app.py"):
        assert client.get(f"/vendor/tasks-vision/{other}").status_code == 404, other


def test_the_motion_readers_weights_are_served_for_j_and_z_in_the_browser(client):
    """live.js reads J and Z with motion.js, whose weights are the bundled motion model, served as it is."""
    from handsign.spell.motion import BUNDLED_MODEL

    r = client.get("/vendor/motion.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.content == BUNDLED_MODEL.read_bytes()
