"""The default thread count (runtime.choose_threads): free cores, and one thread for a small step."""

from __future__ import annotations

import pytest
import torch

from handsign.train import machine as runtime
from handsign.models import create_model


def test_step_flop_counts_linear_and_conv_layers():
    x = torch.zeros(1, 1, 28, 28)
    # MLP 784-512-512-24: 2 x (784*512 + 512*512 + 512*24) per image forward, x3 for the backward, x32 images
    assert runtime.step_flop(create_model("mlp", 24), 32, x) == 3 * 2 * (784 * 512 + 512 * 512 + 512 * 24) * 32
    cnn = runtime.step_flop(create_model("cnn", 24), 128, x)
    assert 3.0e9 < cnn < 4.0e9  # the course CNN: ~3.4 GFLOP per batch-128 step


@pytest.mark.parametrize("free, flop, expected", [
    ((2, 2, 0.0), 3.4e9, 2),   # idle 2-core machine, the CNN: both cores
    ((2, 1, 1.0), 3.4e9, 1),   # one core busy with someone else's work: one thread, no fight for it
    ((2, 2, 0.0), 0.13e9, 1),  # the MLP at batch 32: too little work per step to share
    ((8, 5, 3.0), 3.4e9, 5),
    ((2, 2, 0.0), None, 2),    # uncountable model: the free cores decide
])
def test_choose_threads(monkeypatch, free, flop, expected):
    monkeypatch.setattr(runtime, "free_cores", lambda: free)
    n, why = runtime.choose_threads(flop)
    assert n == expected and f"{free[0]} cores allowed" in why


def test_busy_cores_subtracts_our_own_cpu_time(monkeypatch):
    samples = iter([(100.0, 400.0), (250.0, 600.0)])  # 150 of 200 jiffies busy over the window: 1.5 of 2 cores
    monkeypatch.setattr(runtime, "_cpu_times", lambda cpus: next(samples))
    clock = iter([10.0, 10.125])  # this process used 0.125 s of CPU in the 0.25 s window: half a core
    monkeypatch.setattr(runtime.time, "process_time", lambda: next(clock))
    monkeypatch.setattr(runtime.time, "sleep", lambda s: None)
    assert runtime.busy_cores({0, 1}, window=0.25) == pytest.approx(1.0)


def test_default_threads_are_logged_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    """--threads 0 picks a count at the start (logged); a resumed run uses the count recorded in
    last.safetensors, so its float sums, and metrics, are those of an uninterrupted run."""
    from conftest import make_sign_mnist
    from handsign.train import loop as train_mod
    from handsign.train import pixels
    from handsign.saved.checkpoint import read_metadata
    from handsign.train.config import make_config

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    data, run = make_sign_mnist(tmp_path / "data", n_train=240, n_test=48), tmp_path / "run"
    try:
        monkeypatch.setattr(pixels, "choose_threads", lambda flop: (1, "test: 1 free"))
        lines = []
        train_mod.train(make_config("course-asl-mlp", epochs=1, data_dir=str(data), out=str(run)),
                        log=lines.append, show_progress=False)
        assert "threads: 1 (test: 1 free; --threads N overrides)" in lines
        assert read_metadata(run / "last.safetensors").train_state["threads"] == 1
        monkeypatch.setattr(pixels, "choose_threads", lambda flop: (2, "test: 2 free"))
        lines = []
        train_mod.train(resume=run, epochs=2, log=lines.append, show_progress=False)
        assert "threads: 1 (as the run being resumed; --threads N overrides)" in lines
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
