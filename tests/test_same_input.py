"""Preprocessing is defined once: a model trained on an image folder with each preprocessing preset stores
the spec it trained with, and `evaluate` and `predict` give the same answers on the same files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from handsign.images import preprocess as pp
from handsign.saved.checkpoint import load_model, read_metadata
from handsign.train.config import PREPROCESS_PRESETS, make_config
from handsign.data.readers import load_dataset
from handsign.infer.evaluate import evaluate, predict_tensors
from handsign.infer.predict import predict
from handsign.train.loop import prepare_data, train

CLASSES = ("a", "b", "c")


def photo(cls: int, k: int, rng: np.random.Generator) -> Image.Image:
    """An 80x60 colour 'photo': a skin-coloured hand-like blob (shape and place by class) on a lit wall."""
    ys, xs = np.mgrid[0:60, 0:80]
    wall = np.stack([90 + xs * 0.8, 100 + ys * 0.5, 140 - xs * 0.3], -1) * rng.uniform(0.7, 1.3)
    img = Image.fromarray(np.clip(wall + rng.normal(0, 6, wall.shape), 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    x0, y0 = 10 + 20 * cls + int(rng.integers(0, 8)), 8 + int(rng.integers(0, 10))
    w, h = (18, 40) if cls == 0 else (34, 22) if cls == 1 else (26, 30)
    skin = tuple(int(v) for v in np.array([224, 172, 120]) * rng.uniform(0.8, 1.1))
    (d.ellipse if cls != 2 else d.rectangle)([x0, y0, x0 + w, y0 + h], fill=skin)
    return img


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 5)):
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for k in range(n):
                photo(c, k, rng).save(root / split / name / f"{k:02d}.png")
    return root


@pytest.mark.parametrize("preset", PREPROCESS_PRESETS)
def test_each_preset_trains_stores_and_reads_the_same_input(folder, preset, tmp_path):
    cfg = make_config(dataset="folder", image_folder=str(folder), model="mlp", model_args={"hidden": [16]},
                      epochs=2, batch_size=8, preprocess=preset, out=str(tmp_path / "run"), device="cpu", threads=1)
    run = train(cfg, log=lambda *a: None, show_progress=False).run_dir
    spec = read_metadata(run / "best.safetensors").preprocess
    assert spec == pp.default_spec("folder", preset)  # the checkpoint stores the spec it trained with

    # what training fed the model is what predict computes from the files with the stored spec
    splits = prepare_data(cfg)
    trained = sorted(bytes(x.numpy()) for x in torch.cat([splits.train.images, splits.valid.images]))
    files = sorted((folder / "train").glob("*/*.png"))
    read = [pp.preprocess_levels(pp.decode_image(f), spec) for f in files]
    assert trained == sorted(bytes(x) for x in read)
    if preset:  # the photo spec really changes these pictures (else this test would prove nothing)
        plain = [pp.preprocess_levels(pp.decode_image(f), pp.default_spec("folder")) for f in files]
        assert any(not np.array_equal(a, b) for a, b in zip(read, plain))

    # evaluate and predict: the same answer for every test file
    tests = sorted((folder / "test").glob("*/*.png"))
    answers = predict(tests, model=run, top_k=1, backend="torch", min_confidence=0)
    test = load_dataset("folder", "test", image_folder=str(folder), spec=spec)
    logits = predict_tensors(load_model(run).model, test.images)
    assert [r["label"] for r in answers] == [CLASSES[i] for i in logits.argmax(1).tolist()]
    ev = evaluate(run, split="test", device="cpu")
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    for f, r in zip(tests, answers):
        cm[CLASSES.index(f.parent.name), CLASSES.index(r["label"])] += 1
    assert ev["confusion_matrix"] == cm.tolist()
    for m in ev["worst_mistakes"]:
        assert answers[m["index"]]["label"] == m["predicted"]
        assert answers[m["index"]]["probability"] == pytest.approx(m["probability"], abs=1e-3)
