"""The hand-landmark route on real photos: MediaPipe, the landmark cache, training, ONNX, routing."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

mp = pytest.importorskip("mediapipe", reason="the hands extra (pip install 'handsign[hands]')")

from handsign.errors import ImageError  # noqa: E402
from handsign.hands import cache, landmarks  # noqa: E402
from handsign.hands.photos import hand_of_bytes, load_folder  # noqa: E402
from handsign.hands.landmarks import detect  # noqa: E402
from handsign.infer.predict import Predictor  # noqa: E402

LETTERS = ("a", "b", "l", "y")  # four shapes far apart
PEOPLE = ("hand1", "hand2", "hand3")


@pytest.fixture(scope="session")
def massey(real_data_dir):
    root = real_data_dir / "asl_photos" / "massey"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    return root


@pytest.fixture(scope="session")
def tiny_photos(massey, tmp_path_factory):
    """ROOT/<letter>/ with 2 photos per letter and person: 4 letters x 3 people = 24 real photos."""
    root = tmp_path_factory.mktemp("photos")
    for letter in LETTERS:
        (root / letter).mkdir()
        for person in PEOPLE:
            for f in sorted((massey / letter).glob(f"{person}_*"))[:2]:
                shutil.copy(f, root / letter / f.name)
    return root


@pytest.fixture(scope="session")
def hands_run(tiny_photos, tmp_path_factory):
    from handsign.train import train
    from handsign.train.config import make_config

    out = tmp_path_factory.mktemp("hands_run")
    train(make_config("hands-asl", photos=str(tiny_photos), epochs=40, out=str(out)), log=lambda *a: None,
          show_progress=False)
    return out


def test_detect_finds_a_hand_inside_a_real_photo(massey):
    path = sorted((massey / "l").glob("hand2_*"))[0]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    hand = detect(rgb)
    assert hand is not None and hand.points.shape == (21, 3) and hand.handedness in ("Left", "Right")
    h, w = rgb.shape[:2]
    xy = hand.points[:, :2]
    assert (xy > -0.05 * w).all() and (xy[:, 0] < 1.05 * w).all() and (xy[:, 1] < 1.05 * h).all()
    # a tight crop around the hand is still found (the detector pads the border)
    x0, y0 = np.floor(xy.min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(xy.max(0)).astype(int)
    assert detect(np.ascontiguousarray(rgb[y0:y1, x0:x1])) is not None


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 7, 3), (193, 17, 3), (480, 640, 3)])
def test_pad_photo_surrounds_the_picture_with_its_border_median(shape):
    """The padding detect uses (and whose pixels the landmarks, the cache and the trained models depend on):
    the picture unchanged in the middle, every side `fraction` of the longer side of the border's median colour."""
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, shape).astype(np.uint8)
    for fraction in (0.25, 0.5, 0.75):
        padded, pad = landmarks.pad_photo(rgb, fraction)
        h, w = shape[:2]
        assert pad == round(fraction * max(h, w)) and padded.shape == (h + 2 * pad, w + 2 * pad, 3)
        assert padded.dtype == np.uint8 and np.array_equal(padded[pad:pad + h, pad:pad + w], rgb)
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        colour = np.median(border, axis=0).astype(np.uint8)
        frame = np.ones(padded.shape[:2], bool)
        frame[pad:pad + h, pad:pad + w] = False
        assert (padded[frame] == colour).all()


@pytest.mark.parametrize("kind", ["gray", "noise", "tiny"])
def test_no_hand_in_pictures_without_one(kind):
    rng = np.random.default_rng(0)
    rgb = {"gray": np.full((300, 400, 3), 128, np.uint8),
           "noise": rng.integers(0, 256, (240, 240, 3)).astype(np.uint8),
           "tiny": np.full((3, 2, 3), 200, np.uint8)}[kind]
    assert detect(rgb) is None


def test_landmark_cache_is_keyed_by_content_and_survives_a_damaged_entry(massey):
    data = sorted((massey / "b").glob("hand3_*"))[0].read_bytes()
    key = cache.key_for(data)
    assert cache.get(key) is cache.MISSING
    first = hand_of_bytes(data)
    entry = cache.root() / key[:2] / f"{key}.json"
    assert json.loads(entry.read_text())["hand"]["points"] == first.to_json()["points"]
    # the same bytes are read from the cache: make the entry say something else and it is what we get
    doctored = json.loads(entry.read_text())
    doctored["hand"]["handedness"] = "Left" if first.handedness == "Right" else "Right"
    entry.write_text(json.dumps(doctored))
    assert hand_of_bytes(data).handedness == doctored["hand"]["handedness"]
    # other bytes (the same picture re-encoded) are another key: never a stale answer
    assert cache.key_for(data + b"\0") != key
    # a half-written entry (as a kill mid-write with a non-atomic writer would leave) is recomputed
    entry.write_text('{"detector": "x", "hand": {"poi')
    assert hand_of_bytes(data).handedness == first.handedness
    assert json.loads(entry.read_text())["hand"]["handedness"] == first.handedness


def test_detection_report_counts_per_letter_and_person(tiny_photos):
    hs = load_folder(tiny_photos, progress=False)
    report = hs.detection_report()
    assert report["overall"]["photos"] == 24
    assert set(report["per_person"]) == set(PEOPLE) and set(report["per_label"]) == set(LETTERS)
    assert all(v["photos"] == 8 for v in report["per_person"].values())
    assert report["overall"]["found"] == sum(v["found"] for v in report["per_label"].values())


def test_trained_landmark_model_reads_its_letters_and_reports_each_person(hands_run, tiny_photos):
    metrics = json.loads((hands_run / "metrics.json").read_text())
    lopo = metrics["leave_one_person_out"]
    assert set(lopo["per_person"]) == set(PEOPLE)
    assert lopo["mean_accuracy"] == pytest.approx(np.mean([p["accuracy"] for p in lopo["per_person"].values()]),
                                                  abs=1e-4)
    meta = json.loads((hands_run / "best.json").read_text())
    assert meta["input"] == "landmarks" and meta["labels"] == list(LETTERS)
    predictor = Predictor.load(hands_run, backend="torch")
    files = sorted(tiny_photos.glob("*/*.jpeg"))
    results = predictor.predict_files(files)
    assert all(r["via"] == "landmarks" and len(r["landmarks"]) == 21 for r in results)
    right = [r["label"] == f.parent.name for r, f in zip(results, files)]
    assert sum(right) >= 22, f"{sum(right)} of 24 training photos read right"


def test_landmark_model_exports_to_onnx_with_the_same_answers(hands_run, tiny_photos, tmp_path):
    from handsign.infer.export import export

    run = tmp_path / "run"
    shutil.copytree(hands_run, run)
    r = export(run / "best.safetensors")
    assert r["input"] == "features [N,102]" and r["max_abs_diff"] < 1e-3
    files = sorted(tiny_photos.glob("*/*.jpeg"))[:6]
    by_torch = Predictor.load(run, backend="torch").predict_files(files)
    by_onnx = Predictor.load(run, backend="onnx").predict_files(files)
    assert [r["label"] for r in by_onnx] == [r["label"] for r in by_torch]
    np.testing.assert_allclose([r["probability"] for r in by_onnx], [r["probability"] for r in by_torch], atol=1e-4)


def test_landmark_only_model_says_no_hand_found(hands_run, tmp_path):
    blank = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (180, 170, 160)).save(blank)
    with pytest.raises(ImageError, match="no hand found"):
        Predictor.load(hands_run, backend="torch").predict_files([blank])
    r = run_cli("predict", "--model", hands_run, blank)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("handsign: error:")
    assert "no hand found" in r.stderr and "Traceback" not in r.stderr


def test_cli_trains_a_hands_recipe_and_refuses_image_flags(tiny_photos, tmp_path):
    r = run_cli("train", "--recipe", "hands-asl", "--photos", tiny_photos, "--epochs", "2", "--holdout", "hand3",
                "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert "held-out person hand3" in r.stdout and (tmp_path / "run" / "best.safetensors").is_file()
    bad = run_cli("train", "--recipe", "hands-asl", "--augment", "course", "--photos", tiny_photos)
    assert bad.returncode == 2 and "--augment" in bad.stderr and "Traceback" not in bad.stderr
    wrong = run_cli("train", "--recipe", "course-asl-cnn", "--photos", tiny_photos)
    assert wrong.returncode == 2 and "--photos: not a setting of recipe course-asl-cnn" in wrong.stderr


def test_without_mediapipe_photos_go_by_pixels_with_one_note(monkeypatch, capsys, massey):
    import handsign.infer.hand_route as route

    monkeypatch.setattr(landmarks, "available", lambda: False)
    monkeypatch.setattr(route, "_warned", False)
    predictor = Predictor.load("asl", backend="torch")
    files = sorted((massey / "a").glob("hand1_*"))[:2]
    results = predictor.predict_files(files)
    assert [r["via"] for r in results] == ["pixels", "pixels"]
    err = capsys.readouterr().err
    assert err.count("handsign[hands]") == 1 and len(err.strip().splitlines()) == 1


def test_a_model_trained_with_other_detector_settings_is_refused(hands_run, tmp_path):
    """The detector is part of the preprocessing: landmarks found another way are not what the model learned."""
    from handsign.saved.checkpoint import load_model, save_checkpoint
    from handsign.errors import CheckpointError

    loaded = load_model(hands_run)
    meta = loaded.meta.replace(preprocess={**loaded.meta.preprocess, "detector": "mediapipe-hands-v0:other"})
    save_checkpoint(tmp_path / "other.safetensors", loaded.model, meta)
    with pytest.raises(CheckpointError, match="detector settings"):
        Predictor.load(tmp_path / "other.safetensors", backend="torch")
    assert Predictor.load(hands_run, backend="torch").hands is not None  # its own settings: loads


def test_the_landmark_model_trains_through_the_one_loop_and_resumes_exactly(tiny_photos, tmp_path):
    """hands-asl is a recipe like any other: the run folder of every recipe, keep-best, the diagnosis, and a
    resumed run that ends with exactly the metrics of an uninterrupted one."""
    from handsign.train import train
    from handsign.train.config import make_config

    quiet = {"log": lambda *a: None, "show_progress": False}
    settings = {"photos": str(tiny_photos), "schedule": "constant", "lopo": False}
    straight = train(make_config("hands-asl", epochs=6, out=str(tmp_path / "s"), **settings), **quiet)
    train(make_config("hands-asl", epochs=3, out=str(tmp_path / "r"), **settings), **quiet)
    resumed = train(resume=tmp_path / "r", epochs=6, **quiet)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h]
    assert len(resumed.history) == 6 and strip(resumed.history) == strip(straight.history)
    for name in ("config.json", "metrics.csv", "metrics.json", "curves.png", "best.safetensors", "last.safetensors"):
        assert (tmp_path / "r" / name).is_file(), name
    assert resumed.diagnosis["verdict"] and resumed.metrics["best_epoch"] == straight.metrics["best_epoch"]
    assert json.loads((tmp_path / "r" / "best.json").read_text())["input"] == "landmarks"
