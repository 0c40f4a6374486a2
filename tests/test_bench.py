"""Fast recipes are valid, and the benchmark suite runs end to end on tiny synthetic data."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from handsign.train.config import RECIPES, make_config
from handsign.models import create_model
from handsign.images.augment import augment_batch, get_augment

FAST = sorted(r for r in RECIPES if r.startswith("fast-"))


def test_fast_recipes_exist():
    assert {"fast-asl", "fast-mnist"} <= set(FAST)


@pytest.mark.parametrize("recipe", FAST)
def test_fast_recipe_is_a_valid_config_whose_model_and_augmentation_run(recipe):
    cfg = make_config(recipe)
    classes = 10 if cfg.dataset == "mnist" else 24
    model = create_model(cfg.model, classes, **cfg.model_args)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = augment_batch(torch.rand(4, 1, 28, 28), get_augment(cfg.augment), torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert model.eval()(x).shape == (4, classes)


def test_translate_moves_the_picture():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 12:16, 12:16] = 1
    spec = get_augment("digits")
    centres = set()
    for seed in range(8):
        y = augment_batch(x, spec, torch.Generator().manual_seed(seed))[0, 0]
        centres.add(round(float((y.sum(0) * torch.arange(28)).sum() / y.sum())))
    assert len(centres) >= 3  # shifted by whole pixels, differently per draw


def _bench(tmp_path, *args):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--synthetic", "--threads", "1",
                        "--out", str(out), *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(out.read_text()), out.with_suffix(".md").read_text(), r.stdout


def test_bench_train_and_infer_smoke(tmp_path):
    doc, md, stdout = _bench(tmp_path, "--only", "train", "infer", "--steps", "2")
    assert doc["machine"]["matmul_gflops"] > 0 and doc["loadavg"]["start"] is not None
    course = doc["train"]["course loop (DataLoader, batch 32, course transforms)"]
    assert course["images"] == 2 * 32 and course["images_per_s"] > 0
    assert any(k.startswith("handsign loop (fast-asl") for k in doc["train"])
    for backend in ("torch", "onnx"):
        assert doc["infer"][backend]["single_image"]["p50_ms"] > 0
    assert "| train | course loop" in md and md.strip() in stdout


@pytest.mark.slow
def test_bench_predict_and_serve_smoke(tmp_path):
    doc, md, _ = _bench(tmp_path, "--only", "predict", "serve", "--requests", "20", "--concurrency", "2")
    assert doc["predict"]["onnx"]["median_s"] > 0
    assert doc["serve"]["onnx"]["statuses"] == {"200": 20} and doc["serve"]["onnx"]["requests_per_s"] > 0
    assert "POST /predict (onnx)" in md


def test_select_fast_smoke_writes_every_epoch_and_the_split_it_chose_on(real_data_dir, tmp_path):
    out = tmp_path / "select.json"
    r = subprocess.run([sys.executable, "benchmarks/select_fast.py", "--data-dir", str(real_data_dir), "--only",
                        "n12-13", "mnist-base", "--seeds", "0", "--limit", "1200", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = {x["name"]: x for x in json.loads(out.read_text())["runs"]}
    assert runs["n12-13"]["valid_split"] == "groups" and len(runs["n12-13"]["valid_acc_per_epoch_pct"]) == 13
    assert runs["mnist-base"]["valid_split"] == "random" and len(runs["mnist-base"]["valid_acc_per_epoch_pct"]) == 5
    printed = [line for line in r.stdout.splitlines() if line.startswith(("n12-13", "mnist-base"))]
    assert len(printed) == 2 and not any("test" in line for line in printed)  # valid only: choose before test
    for x in runs.values():  # the misread valid images it records are the ones behind its last valid accuracy
        wrong = x["valid_wrong"]
        assert len(set(wrong)) == len(wrong) and all(0 <= i < x["valid_images"] for i in wrong)
        assert round(100 * (1 - len(wrong) / x["valid_images"]), 2) == x["valid_acc_per_epoch_pct"][-1]
    photos = runs["n12-13"]["valid_wrong_group"]  # grouped split: the source photo of each misread image
    assert len(photos) == len(runs["n12-13"]["valid_wrong"]) and runs["mnist-base"]["valid_wrong_group"] is None
    assert f"groups split, {len(set(photos))} source photos misread)" in printed[0]


def test_select_fast_counts_the_valid_errors_candidates_share(real_data_dir, tmp_path):
    out = tmp_path / "select.json"
    r = subprocess.run([sys.executable, "benchmarks/select_fast.py", "--data-dir", str(real_data_dir), "--only",
                        "mnist-base", "mnist-mild", "mnist-cnn2", "--seeds", "0", "--limit", "600", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    sets = [set(x["valid_wrong"]) for x in json.loads(out.read_text())["runs"]]
    assert len(sets) == 3
    line = (f"fast-mnist split 0: {len(set.intersection(*sets))} valid images misread by all 3 candidates, "
            f"{len(set.union(*sets))} by any")
    assert line in r.stdout


def test_valid_split_measures_how_far_held_out_images_are(real_data_dir, tmp_path):
    out = tmp_path / "split.json"
    r = subprocess.run([sys.executable, "benchmarks/valid_split.py", "--data-dir", str(real_data_dir),
                        "--thresholds", "0.99", "--seeds", "0", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {x["split"]: x for x in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"test file", "random 10 %", "groups at 0.99"}
    assert rows["random 10 %"]["q10"] > 0.99  # a random split holds out near-copies of training images
    assert rows["groups at 0.99"]["q90"] <= 0.99  # a grouped one never does: they would be one group
    assert 0.5 < rows["test file"]["q50"] < 0.95 and "| groups at 0.99 | " in r.stdout


def test_conv_floor_finds_the_convolutions_time_and_the_epochs_it_leaves_in_the_clock(tmp_path):
    out = tmp_path / "floor.json"
    r = subprocess.run([sys.executable, "benchmarks/conv_floor.py", "--reference-steps", "3", "--steps", "2",
                        "--repeats", "1", "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert [row["net"].split()[0] for row in doc["rows"]] == ["fast-mnist", "cnn2"]
    for row in doc["rows"]:  # the profiler found convolutions in the step (seconds vs seconds: no test, noisy)
        assert row["conv_s"] > 0 and row["step_s"] > 0
        assert row["epochs_in_clock_conv_only"] == pytest.approx(doc["reference"]["seconds"] / row["conv_s_per_epoch"])
        assert row["conv_gflop_per_s"] == pytest.approx(row["conv_gflop_per_step"] / row["conv_s"])
        assert f"| {row['net']} |" in r.stdout
    # cnn2's two convolutions at 28x28 and at 14x14: about 2.7x the recipe's convolution arithmetic
    recipe, cnn2 = (row["conv_gflop_per_step"] for row in doc["rows"])
    assert recipe == pytest.approx(3 * 256 * 2 * (16 * 9 * 784 + 16 * 32 * 9 * 196 + 32 * 64 * 9 * 49) / 1e9)
    assert 2.5 < cnn2 / recipe < 3


def test_gpu_check_packs_the_data_to_carry_and_runs_both_checks_on_cpu(real_data_dir, tmp_path):
    """benchmarks/gpu_check.py, as a GPU session would use it, on the CPU and tiny: pack here, run 'there'."""
    pack = tmp_path / "pack"
    r = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "pack", "--data-dir", str(real_data_dir),
                        "--to", str(pack), "--level", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    size = sum(f.stat().st_size for f in pack.rglob("*") if f.is_file())
    assert size < 56 * 2 ** 20  # the device tool carries 64 MiB, the checkout included
    assert not list(tmp_path.glob(".devdata-*"))  # no half-made pack left beside it

    bad = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "run", "--packed", str(tmp_path),
                          "--out", str(tmp_path / "x"), "--device", "cpu"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "is not a pack" in bad.stderr and "Traceback" not in bad.stderr

    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "run", "--packed", str(pack), "--out", str(out),
                        "--device", "cpu", "--limit", "256", "--epochs", "1", "--seeds", "0"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((out / "gpu-check.json").read_text())
    ddp = doc["ddp_check"]
    assert ddp["same_weights"] and ddp["same_test_acc"] and ddp["plain"]["seconds"] > 0
    fast = doc["fast"]
    assert fast["smoke"] and fast["machine"]["device"] == "cpu"
    for recipe in ("fast-asl", "fast-mnist"):
        assert fast["references"][recipe]["seconds"] > 0
        (seed,) = fast["recipes"][recipe]["seeds"]
        assert len(seed["epoch_seconds"]) == 1 and seed["images_per_s"] > 0
    assert "SMOKE RUN" in (out / "fast-gpu.md").read_text()
