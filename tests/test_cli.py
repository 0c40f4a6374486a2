import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from handsign.cli import main
from handsign.errors import HandsignError
from handsign.data.readers import load_dataset


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "evaluate", "predict", "recipes", "augment-preview"):
        assert cmd in out


@pytest.mark.parametrize("cmd", ["train", "evaluate", "predict", "recipes", "augment-preview"])
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0 and "usage: handsign" in capsys.readouterr().out


def test_recipes_are_listed_with_descriptions(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [l.split()[0] for l in lines]
    for r in ("course-mnist-mlp", "course-asl-mlp", "course-asl-cnn", "course-asl-cnn-aug"):
        assert r in names
    assert all(len(l.split(None, 1)) == 2 for l in lines)


@pytest.mark.parametrize("args, message", [
    (["train", "--recipe", "nope"], "unknown recipe 'nope'; choose from: course-mnist-mlp"),
    (["train", "--recipe", "course-asl-cnn", "--epochs", "-3"], "--epochs: must be a positive integer, got -3"),
    (["train", "--recipe", "course-asl-cnn", "--model", "resnet", "--data-dir", "{tiny}"], "unknown model 'resnet'"),
    (["train", "--recipe", "course-asl-cnn", "--data-dir", "{empty}"], "missing data: Sign Language MNIST"),
    (["evaluate", "{empty}/missing.safetensors"], "no such file"),
    (["predict", "--model", "{run}", "{empty}/nothing.png"], "nothing.png: no such file"),
    (["predict", "--model", "{run}", "{empty}"], "folder has no images"),
])
def test_user_mistakes_give_one_line_and_exit_2(args, message, tmp_path, tiny_data, tiny_run):
    (tmp_path / "empty").mkdir()
    args = [a.format(tiny=tiny_data, empty=tmp_path / "empty", run=tiny_run) for a in args]
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("handsign: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_train_then_evaluate_json(tmp_path, tiny_data):
    out = tmp_path / "run"
    r = run_cli("train", "--recipe", "course-asl-mlp", "--epochs", "1", "--data-dir", tiny_data, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "diagnosis:" in r.stdout and "batches" in r.stderr  # plain progress lines when not a terminal
    r = run_cli("evaluate", out, "--json", "--out", tmp_path / "eval")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["n"] == 96 and len(res["per_class"]) == 24  # (accuracy: the exact recorded value, below)
    assert sum(c["correct"] for c in res["per_class"].values()) == round(res["accuracy"] * res["n"])
    assert (tmp_path / "eval" / "confusion.png").is_file()
    recorded = json.loads((out / "best.json").read_text())["metrics"]["test_acc"]
    assert res["accuracy"] == pytest.approx(recorded)


def test_evaluate_valid_split(tiny_run, tiny_data):
    r = run_cli("evaluate", tiny_run, "--split", "valid", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    best = json.loads((tiny_run / "best.json").read_text())["metrics"]
    assert res["accuracy"] == pytest.approx(best["valid_acc"])


def test_predict_and_evaluate_agree_on_the_same_files(tmp_path, tiny_run):
    """Every test image, written as a PNG and read back by predict (torch and ONNX), gets the label that
    evaluate gave the same image: the same confusion matrix and the same most confident mistakes, for the
    trained tiny run and for an untrained model (which makes plenty of mistakes to compare)."""
    import shutil

    from deploy_helpers import make_checkpoint
    from handsign.infer.evaluate import evaluate
    from handsign.infer.export import export
    from handsign.infer.predict import Predictor

    cfg = json.loads((tiny_run / "config.json").read_text())
    test = load_dataset("sign_mnist", "test", cfg["data_dir"])
    paths = []
    for i, img in enumerate(test.images[:, 0].numpy()):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(paths[-1])
    trained = tmp_path / "trained" / "best.safetensors"
    trained.parent.mkdir()
    shutil.copy(tiny_run / "best.safetensors", trained)
    untrained = make_checkpoint(tmp_path / "untrained" / "best.safetensors", seed=3)
    mistakes = 0
    for ckpt in (trained, untrained):
        ev = evaluate(ckpt, data_dir=cfg["data_dir"], device="cpu")
        assert ev["n"] == len(paths) == 96
        mistakes += len(ev["worst_mistakes"])
        export(ckpt)
        for backend in ("torch", "onnx"):
            got = Predictor.load(ckpt, backend=backend).predict_files(paths, top_k=1)
            cm = np.zeros((24, 24), dtype=int)
            for y, r in zip(test.labels.tolist(), got):
                cm[y, ev["labels"].index(r["label"])] += 1
            assert cm.tolist() == ev["confusion_matrix"], (ckpt, backend)
            for m in ev["worst_mistakes"]:
                assert got[m["index"]]["label"] == m["predicted"], (ckpt, backend)
                assert got[m["index"]]["probability"] == pytest.approx(m["probability"], abs=1e-4), (ckpt, backend)
    assert mistakes >= 20  # the mistakes were there to compare


def test_predict_matches_the_model_on_the_same_pixels(tmp_path, tiny_run):
    from handsign.saved.checkpoint import load_model
    from handsign.infer.predict import Predictor

    cfg = json.loads((tiny_run / "config.json").read_text())
    test = load_dataset("sign_mnist", "test", cfg["data_dir"])
    paths = []
    for i in range(6):
        p = tmp_path / f"{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(p)
        paths.append(p)
    model = load_model(tiny_run).model
    with torch.inference_mode():
        expected = model(test.images[:6].float() / 255).softmax(1).numpy()
    got = Predictor.load(tiny_run, backend="torch").predict_files(paths, top_k=24)
    for row, r in zip(expected, got):
        probs = dict(r["top"])
        labels = list("abcdefghiklmnopqrstuvwxy")
        assert np.allclose([probs[l] for l in labels], row, atol=1e-5)


def test_predict_json_lines(tmp_path, tiny_run):
    img = Image.fromarray((np.random.default_rng(0).random((184, 186, 4)) * 255).astype(np.uint8), "RGBA")
    img.save(tmp_path / "photo.png")
    r = run_cli("predict", "--model", tiny_run, "--json", "--top-k", "3", tmp_path / "photo.png", tmp_path / "photo.png")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["label"] in "abcdefghiklmnopqrstuvwxy"
    assert rows[0]["top"][0] == [rows[0]["label"], rows[0]["probability"]] and len(rows[0]["top"]) == 3


def test_augment_preview_writes_a_png(tmp_path, tiny_data):
    r = run_cli("augment-preview", "--data-dir", tiny_data, "--n", "3", "--copies", "4", "--out", tmp_path / "g.png")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "g.png") as im:
        assert im.size[0] > 300


def test_train_flags_are_generated_from_the_config(capsys):
    """Every field of both families' configs but recipe/model_args is a flag with its comment as help and its
    choices; to_argv gives flags that parse back to the same config (bundle's command uses it)."""
    import dataclasses

    from handsign.cli import build_parser
    from handsign.commands import config_from_args
    from handsign.train.config import (CHOICES, FLAG_TYPES, NO_FLAG, HandsConfig, TrainConfig, field_help,
                                       flag_fields, make_config)

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    helps = field_help()
    for cls in (TrainConfig, HandsConfig):
        assert [f.name for f in flag_fields(cls)] == [f.name for f in dataclasses.fields(cls)
                                                      if f.name not in NO_FLAG and f.type in FLAG_TYPES]
    assert len(flag_fields(TrainConfig)) >= 24  # every setting of today's TrainConfig but recipe and model_args
    assert {"hidden", "rotate", "holdout", "photos"} <= {f.name for f in flag_fields()}  # the landmark model's
    for f in flag_fields():
        assert "--" + f.name.replace("_", "-") in text and " ".join(helps[f.name].split()) in text, f.name
    assert "{" + ",".join(CHOICES["optimizer"]) + "}" in text
    assert "--rotate ROTATE (landmark recipes) degrees" in text
    for cfg in (make_config("fast-asl", epochs=3, channels_last=False, lr=0.01, preprocess="photo"),
                make_config(dataset="folder", image_folder="a b", augment_per_batch=True, eval_batch_size=7),
                make_config("hands-asl", hidden=(64, 32, 16), rotate=5.0, lopo=False, holdout="hand2")):
        assert config_from_args(build_parser().parse_args(["train", *cfg.to_argv()])) == cfg


def test_multiprocess_training_has_a_python_api(monkeypatch, tmp_path):
    """--nproc writes the run folder's config.json first and every process reads it (`train --resume RUN`): the
    whole config makes the trip, model_args too (it has no flag)."""
    import json

    from handsign.train import distributed
    from handsign.train.config import config_from_dict, make_config

    calls = []
    monkeypatch.setattr(distributed, "launch", lambda nproc, argv: calls.append((nproc, argv)) or 0)
    cfg = make_config("fast-asl", epochs=2, model_args={"channels": [8, 16, 24], "hidden": 32}, out=str(tmp_path / "a"))
    assert distributed.train_multiprocess(cfg, nproc=3, show_progress=False) == 0
    assert calls[-1] == (3, ["train", "--resume", str(tmp_path / "a"), "--quiet"])
    assert config_from_dict(json.loads((tmp_path / "a" / "config.json").read_text())) == cfg
    assert main(["train", "--recipe", "fast-asl", "--epochs", "2", "--quiet", "--nproc", "3",
                 "--out", str(tmp_path / "b")]) == 0
    assert calls[-1] == (3, ["train", "--resume", str(tmp_path / "b"), "--quiet"])
    assert json.loads((tmp_path / "b" / "config.json").read_text())["epochs"] == 2
    distributed.train_multiprocess(resume="runs/x", epochs=4, nproc=2)
    assert calls[-1] == (2, ["train", "--resume", "runs/x", "--epochs", "4"])
    with pytest.raises(HandsignError, match="one process"):
        distributed.train_multiprocess(make_config("hands-asl", out=str(tmp_path / "c")), nproc=2)
    assert not (tmp_path / "c").exists()


