"""bundle: a trained checkpoint -> NAME.safetensors/.json/.onnx/.md, usable as `--model NAME`."""

import json

import pytest

from deploy_helpers import ASL, make_checkpoint, write_images
from handsign.bundle import train_command
from handsign.cli import main
from handsign.train.config import make_config
from handsign.infer.predict import Predictor


def test_bundle_writes_four_files_that_predict(tmp_path, monkeypatch, capsys):
    cfg = make_config("course-asl-cnn", epochs=3, seed=7, augment_per_batch=True, out="runs/x")
    ckpt = make_checkpoint(tmp_path / "run" / "best.safetensors", recipe="course-asl-cnn", config=cfg.to_dict(),
                           metrics={"epoch": 3, "train_acc": 0.9, "valid_acc": 0.8, "test_acc": 0.7531},
                           data={"dataset": "sign_mnist", "n_train": 100, "n_valid": 10, "n_test": 20})
    out = tmp_path / "bundled"
    assert main(["bundle", str(tmp_path / "run"), "asl", "--out", str(out)]) == 0
    written = capsys.readouterr().out
    names = ["asl.safetensors", "asl.json", "asl.onnx", "asl.md"]
    assert all((out / n).is_file() and f"wrote {out / n}" in written for n in names)

    meta = json.loads((out / "asl.json").read_text())
    command = ("handsign train --recipe course-asl-cnn --epochs 3 --augment-per-batch --seed 7 --out runs/x")
    assert meta["name"] == "asl" and meta["bundle"]["command"] == command
    assert meta["metrics"]["test_acc"] == 0.7531 and meta["labels"] == ASL
    card = (out / "asl.md").read_text()
    for text in (command, "75.31%", "course-asl-cnn", "Limitations", '"fit": "pad"', "100 train"):
        assert text in card

    import handsign.saved.checkpoint as hp
    monkeypatch.setattr(hp, "BUNDLED_DIR", out)
    images = write_images(tmp_path / "img", 2)
    p = Predictor.load("asl")
    assert p.backend == "onnx" and p.name == "asl"
    assert [r["label"] for r in p.predict_files(images)] == \
        [r["label"] for r in Predictor.load(ckpt, backend="torch").predict_files(images)]


def test_train_command_is_rebuilt_from_the_config():
    cfg = make_config("course-mnist-mlp", lr=0.01, data_dir="../data")
    assert train_command(cfg.to_dict()) == \
        "handsign train --recipe course-mnist-mlp --lr 0.01 --data-dir ../data"
    assert train_command({}, imported_from="model.pth").startswith("handsign import-course-model")


@pytest.mark.parametrize("name", ["ASL", "../x", ""])
def test_bad_names_are_refused(name, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "m.safetensors")
    assert main(["bundle", str(ckpt), name, "--out", str(tmp_path / "b")]) == 2
    assert "NAME" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_bundled_asl_card_is_current_and_lists_j_and_z():
    """The bundled asl.md is what the card writer makes of asl.json today (no stale card), and it lists J and
    Z, which spelling adds to a model with the I, Y and D shapes; a model without them gets no such section."""
    import re

    from handsign.bundle.hands import model_card
    from handsign.saved.checkpoint import BUNDLED_DIR
    from handsign.saved.meta import ModelMeta

    meta = ModelMeta.from_json((BUNDLED_DIR / "asl.json").read_text(), BUNDLED_DIR / "asl.json")
    card = (BUNDLED_DIR / "asl.md").read_text()
    m = re.search(r"opset (\d+); max \|logit difference\| vs torch ([0-9.e+-]+)\)", card)
    onnx = {"opset": int(m[1]), "max_abs_diff": float(m[2])}
    assert model_card(meta, onnx, BUNDLED_DIR / "asl.safetensors") == card
    assert "## Spelling: 26 letters with J and Z" in card and "synthetic clips" in card
    no_d = meta.replace(labels=[x for x in meta.labels if x != "d"])
    assert "J and Z" not in model_card(no_d, onnx, BUNDLED_DIR / "asl.safetensors")
