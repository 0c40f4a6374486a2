"""Photos: the photo preprocessing (hand crop, brightness match), spec versions, the photo augmentation,
the synthetic photo-like set, and the "not sure" confidence floor in predict, its JSON and the CLI."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_sign_mnist
from deploy_helpers import base_image, make_checkpoint
from handsign.images import preprocess as pp
from handsign.cli import main
from handsign.train.config import make_config
from handsign.course.photo_eval import photo_like_set, stage_photo
from handsign.images.crop import find_foreground
from handsign.infer.predict import Predictor, predict
from handsign.images.augment import augment_batch, get_augment

PLAIN = pp.default_spec("sign_mnist")
PHOTO = pp.default_spec("sign_mnist", "photo")


def _jpeg(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _hand_on_wall(top=110, left=30, side=60, wall=(200, 190, 170)) -> np.ndarray:
    """(200, 200, 3) uint8: a textured skin-coloured square on a plain wall with a soft light ramp."""
    rng = np.random.default_rng(0)
    img = np.empty((200, 200, 3), np.float32)
    img[:] = wall
    img *= np.linspace(0.9, 1.1, 200)[None, :, None]
    patch = rng.uniform(60, 140, (side, side, 1)) * np.array([1.0, 0.7, 0.5])
    img[top:top + side, left:left + side] = patch
    return np.clip(img, 0, 255).astype(np.uint8)


def test_old_specs_still_valid_and_new_fields_checked():
    assert pp.check_spec(dict(PLAIN)) == PLAIN and PLAIN["version"] == 1
    assert pp.check_spec(dict(PHOTO))["crop"] == "foreground"
    with pytest.raises(ValueError, match="need spec version 2"):
        pp.check_spec({**PLAIN, "crop": "foreground"})
    for field, value in (("crop", "face"), ("margin", 2), ("margin", True), ("match", {"mean": 1}),
                         ("match", {"mean": 100, "std": 0}), ("version", 3)):
        with pytest.raises(ValueError, match=field if field != "version" else "version"):
            pp.check_spec({**PHOTO, field: value})
    assert pp.with_preset(PHOTO, "plain") == PLAIN and pp.with_preset(PLAIN, "photo") == PHOTO


def test_28x28_gray_passes_through_the_photo_spec_unchanged():
    a = base_image(3)
    assert np.array_equal(pp.load_image(_jpeg(a), PHOTO), pp.load_image(_jpeg(a), PLAIN))
    assert np.array_equal(pp.load_image(_jpeg(a), PHOTO)[0], a / np.float32(255))


def test_foreground_box_finds_the_hand_and_ignores_the_wall():
    img = _hand_on_wall()
    top, left, bottom, right = find_foreground(img.astype(np.float32))
    assert abs(top - 110) <= 6 and abs(left - 30) <= 6 and abs(bottom - 170) <= 6 and abs(right - 90) <= 6
    plain_wall = np.full((200, 200, 3), 180, np.uint8)
    assert find_foreground(plain_wall.astype(np.float32)) is None  # nothing to find: no crop


def test_photo_spec_zooms_on_the_hand_and_matches_brightness():
    img = _hand_on_wall()
    x_photo, x_plain = pp.load_image(_jpeg(img), PHOTO)[0], pp.load_image(_jpeg(img), PLAIN)[0]
    # the hand fills most of the photo input, a small corner of the plain one
    dark_photo, dark_plain = (x_photo < 0.55).mean(), (x_plain < 0.55).mean()
    assert dark_photo > 0.4 and dark_plain < 0.15
    assert abs(x_photo.mean() * 255 - 160) < 6 and abs(x_photo.std() * 255 - 40) < 6
    dim = pp.load_image(_jpeg(img // 3), PHOTO)[0]  # the same scene, badly under-exposed
    assert np.abs(dim - x_photo).mean() < 0.06


def test_photo_augmentation_is_seeded_in_range_and_fills_background():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 8:20, 8:20] = 1.0
    spec = get_augment("photo")
    y1 = augment_batch(x, spec, torch.Generator().manual_seed(1))
    y2 = augment_batch(x, spec, torch.Generator().manual_seed(1))
    assert torch.equal(y1, y2) and y1.shape == x.shape and 0 <= y1.min() and y1.max() <= 1
    assert not torch.allclose(y1[0], y1[1])
    assert y1[:, :, :3, :3].mean() > 0.05  # a black corner got a background, not zeros
    assert make_config("robust-asl").augment == "photo" and make_config("robust-asl").preprocess == "photo"


def test_photo_like_set_is_deterministic_and_decodable():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (48, 28, 28), dtype=np.uint8)
    labels = np.arange(48) % 24
    a, ya = photo_like_set(images, labels, 1, seed=5)
    b, yb = photo_like_set(images, labels, 1, seed=5)
    c, _ = photo_like_set(images, labels, 1, seed=6)
    assert a == b and list(ya) == list(yb) and a != c and len(a) == 24
    img = pp.decode_image(a[0])
    assert img.size == (200, 200) and img.mode == "RGB"
    assert pp.load_image(stage_photo(images[0], rng), PHOTO).shape == (1, 28, 28)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("robust") / "tiny.safetensors")


def test_confidence_floor_in_api_and_json(ckpt, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_jpeg(base_image(0)))
    r_low = predict([path], model=ckpt, backend="torch", min_confidence=0.0)[0]
    assert r_low["confident"] is True and r_low["verdict"] == r_low["label"]
    r_high = predict([path], model=ckpt, backend="torch", min_confidence=1.0)[0]
    assert r_high["confident"] is False and r_high["verdict"] == "not sure"
    assert r_high["label"] == r_low["label"] and len(r_high["top"]) == 3  # label is still the top-1
    p = Predictor.load(ckpt, "torch")
    assert p.min_confidence == 0.5  # default when the model does not set its own
    own = make_checkpoint(tmp_path / "own.safetensors", min_confidence=0.9)
    assert Predictor.load(own, "torch").min_confidence == 0.9


def test_cli_min_confidence(ckpt, tmp_path, capsys):
    path = tmp_path / "a.png"
    path.write_bytes(_jpeg(base_image(0)))
    assert main(["predict", "--model", str(ckpt), "--backend", "torch", "--min-confidence", "1", str(path)]) == 0
    assert ": not sure (best guess" in capsys.readouterr().out
    assert main(["predict", "--model", str(ckpt), "--backend", "torch", "--json", "--min-confidence", "0",
                 str(path)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"path", "label", "probability", "top", "confident", "verdict"} <= set(r) and r["confident"]
    assert main(["predict", "--model", str(ckpt), "--min-confidence", "1.5", str(path)]) == 2
    assert "--min-confidence" in capsys.readouterr().err


def test_photo_eval_cli(tmp_path, capsys):
    root = make_sign_mnist(tmp_path / "data", n_train=24, n_test=48)
    ckpt = make_checkpoint(tmp_path / "m.safetensors")
    assert main(["photo-eval", str(ckpt), "--n-per-class", "1", "--data-dir", str(root), "--json",
                 "--save-images", str(tmp_path / "jpg")]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 24 and [row["preprocess"] for row in r["rows"]] == ["plain", "photo"]
    from handsign.images import preprocess as pp
    from handsign.infer.evaluate import evaluate
    from handsign.infer.predict import Predictor

    # the exact values: test accuracy is evaluate's; photo accuracy is predict's on the pictures it saved
    ev = evaluate(ckpt, data_dir=root, device="cpu")  # (its accuracy is a float32 mean: same count of 48)
    assert [round(row["test_accuracy"] * 48) for row in r["rows"]] == [round(ev["accuracy"] * 48)] * 2
    jpgs = sorted((tmp_path / "jpg").glob("*.jpg"))
    truth = [p.stem.split("-")[1] for p in jpgs]
    predictor = Predictor.load(ckpt, "torch")
    for row in r["rows"]:
        predictor.spec = pp.with_preset(predictor.spec, row["preprocess"])
        got = [x["label"] for x in predictor.predict_files(jpgs, top_k=1)]
        assert row["accuracy"] == np.mean(np.asarray(got) == np.asarray(truth)), row
