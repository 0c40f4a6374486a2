import json
import signal
import subprocess
import sys

import pytest

from conftest import REPO, make_sign_mnist
from handsign.saved.checkpoint import load_model, read_metadata
from handsign.train.config import TrainConfig, make_config
from handsign.errors import HandsignError
from handsign.infer.evaluate import evaluate
from handsign.train.loop import train

QUIET = {"show_progress": False, "log": lambda *a: None}


def cfg(root, out, **kw):
    settings = {"epochs": 2, "data_dir": str(root), "out": str(out), "batch_size": 16, **kw}
    return make_config(kw.pop("recipe", "course-asl-cnn"), **settings)


def test_run_folder_has_everything_and_the_model_learns(tiny_run):
    for name in ("config.json", "metrics.csv", "metrics.json", "curves.png", "best.safetensors", "best.json",
                 "last.safetensors", "last.json"):
        assert (tiny_run / name).is_file(), name
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["diagnosis"]["verdict"] in (
        "overfitting", "underfitting", "unstable", "good-fit")
    assert metrics["best"]["test_acc"] > 0.5  # synthetic classes are easy; chance is 1/24
    header = (tiny_run / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,train_acc,valid_loss,valid_acc,lr,seconds,images_per_s"
    assert TrainConfig.from_dict(json.loads((tiny_run / "config.json").read_text())).epochs == 2


def test_loaded_checkpoint_reproduces_its_recorded_test_accuracy(tiny_run):
    recorded = read_metadata(tiny_run / "best.safetensors").metrics["test_acc"]
    assert evaluate(tiny_run, device="cpu")["accuracy"] == pytest.approx(recorded, abs=1e-9)


def test_same_seed_same_metrics_and_other_seed_differs(tmp_path):
    root = make_sign_mnist(tmp_path / "d")
    a = train(cfg(root, tmp_path / "a", epochs=1), **QUIET).history
    b = train(cfg(root, tmp_path / "b", epochs=1), **QUIET).history
    c = train(cfg(root, tmp_path / "c", epochs=1, seed=1), **QUIET).history
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h]
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_resume_ends_exactly_like_an_uninterrupted_run(tmp_path):
    root = make_sign_mnist(tmp_path / "d")
    straight = train(cfg(root, tmp_path / "s", epochs=3, augment="course"), **QUIET)
    train(cfg(root, tmp_path / "r", epochs=1, augment="course"), **QUIET)
    resumed = train(resume=tmp_path / "r", epochs=3, **QUIET)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h]
    assert strip(resumed.history) == strip(straight.history)
    assert resumed.metrics["best"]["test_acc"] == straight.metrics["best"]["test_acc"]


def test_ema_trains_the_same_weights_but_evaluates_and_saves_their_average(tmp_path):
    root = make_sign_mnist(tmp_path / "d")
    plain = train(cfg(root, tmp_path / "p", epochs=2), **QUIET)
    averaged = train(cfg(root, tmp_path / "a", epochs=2, ema=0.9), **QUIET)
    # the live weights follow the same path (same train loss); valid and test see the averaged copy
    assert [h["train_loss"] for h in averaged.history] == [h["train_loss"] for h in plain.history]
    assert [h["valid_loss"] for h in averaged.history] != [h["valid_loss"] for h in plain.history]
    last = averaged.metrics["last"]
    assert evaluate(averaged.last, split="valid", device="cpu")["loss"] == pytest.approx(last["valid_loss"], rel=1e-5)
    assert evaluate(averaged.last, device="cpu")["accuracy"] == pytest.approx(last["test_acc"], abs=1e-9)


def test_ema_resume_ends_exactly_like_an_uninterrupted_run(tmp_path):
    root = make_sign_mnist(tmp_path / "d")
    straight = train(cfg(root, tmp_path / "s", epochs=3, ema=0.8), **QUIET)
    train(cfg(root, tmp_path / "r", epochs=1, ema=0.8), **QUIET)
    resumed = train(resume=tmp_path / "r", epochs=3, **QUIET)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h]
    assert strip(resumed.history) == strip(straight.history)
    assert resumed.metrics["last"]["test_acc"] == straight.metrics["last"]["test_acc"]


def test_existing_out_folder_is_not_overwritten(tmp_path, tiny_run):
    with pytest.raises(HandsignError, match="folder exists and is not empty"):
        train(cfg(tmp_path, tiny_run), **QUIET)


def test_course_valid_from_test_is_announced(tmp_path):
    root = make_sign_mnist(tmp_path / "d")
    lines = []
    r = train(cfg(root, tmp_path / "v", epochs=1, valid_from_test=True), show_progress=False, log=lines.append)
    assert any("validating on the TEST file" in l for l in lines)
    assert r.metrics["valid_from_test"] is True


def test_sigint_saves_a_resumable_checkpoint_and_exits_130(tmp_path):
    root = make_sign_mnist(tmp_path / "d", n_train=480)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "handsign", "train", "--recipe", "course-asl-cnn", "--epochs", "200",
                             "--data-dir", str(root), "--out", str(out), "--quiet"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # wait until one epoch has finished (pytest-timeout bounds a hang)
        if line.startswith("epoch   1/200"):
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().count("\n") == 0 and "Resume with: handsign train --resume" in err
    epoch = read_metadata(out / "last.safetensors").train_state["epoch"]
    # the checkpoint holds exactly the epochs that finished: epoch 1, plus any that ended before the signal
    assert epoch == 1 + sum(line.startswith("epoch ") for line in rest.splitlines())
    load_model(out / "last.safetensors")
    resumed = train(resume=out, epochs=epoch + 1, **QUIET)
    assert len(resumed.history) == epoch + 1


@pytest.mark.realdata
def test_real_data_smoke_runs(tmp_path, real_data_dir):
    for recipe in ("course-mnist-mlp", "course-asl-cnn"):
        r = train(make_config(recipe, epochs=1, limit=2000, data_dir=str(real_data_dir), out=str(tmp_path / recipe)),
                  **QUIET)
        assert r.metrics["best"]["test_acc"] > 0.2, recipe  # chance: 0.1 / 0.04


def test_bf16_training_learns_and_saves_fp32_weights(tmp_path):
    root = make_sign_mnist(tmp_path / "d")
    run = train(cfg(root, tmp_path / "bf16", epochs=3, precision="bf16", channels_last=True, lr=3e-3), **QUIET)
    assert run.metrics["best"]["test_acc"] > 0.5  # synthetic classes are easy; chance is 1/24
    loaded = load_model(run.best)
    assert all(p.dtype.is_floating_point and p.dtype == loaded.model[0].model[0].weight.dtype
               for p in loaded.model.parameters())
    assert str(loaded.model[0].model[0].weight.dtype) == "torch.float32"
    with pytest.raises(HandsignError, match="--precision"):
        make_config(precision="fp8")


def test_auto_precision_says_what_it_chose(tmp_path):
    from handsign.train.machine import use_bf16

    root = make_sign_mnist(tmp_path / "d")
    lines = []
    train(cfg(root, tmp_path / "auto", epochs=1, precision="auto"), show_progress=False, log=lines.append)
    chosen = "bf16" if use_bf16("auto", __import__("torch").device("cpu")) else "fp32"
    assert any(line.startswith(f"precision: {chosen} (auto") for line in lines)
    assert use_bf16("bf16", None) and not use_bf16("fp32", None)
