"""Distributed training (DDP): sharding logic in-process, and real 2-process gloo runs on CPU.

The runs use a generated image folder (4 classes of 28x28 stripes), so they need no data set; each
torchrun start costs a few seconds of Python and torch imports per process.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from handsign.train import distributed
from handsign.saved.checkpoint import load_model, read_metadata

REPO = Path(__file__).resolve().parents[1]
DIGEST = re.compile(r"weights identical on all (\d+) ranks \(parameters sha256 ([0-9a-f]{64})\)")


@pytest.mark.parametrize("n", [1, 5, 10, 11])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shard_matches_torch_distributed_sampler(monkeypatch, n, world):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    shards = []
    for r in range(world):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=False)
        shards.append(distributed.shard(perm))
        assert shards[-1].tolist() == [perm[i].item() for i in sampler]
        assert len(shards[-1]) == distributed.shard_size(n)
    assert set(torch.cat(shards).tolist()) == set(perm.tolist())  # every sample, on some rank


def test_single_process_helpers_are_no_ops():
    assert not distributed.active() and distributed.world_size() == 1 and distributed.is_main()
    perm = torch.arange(7)
    assert distributed.shard(perm) is perm
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model
    assert distributed.agreed_signal(15, 3, 10) == 15


def _image_folder(root: Path) -> Path:
    """root/{train,test}/c<k>/*.png: 28x28 noise with a bright horizontal stripe whose row is the class.
    (Rows, not columns: the course augmentation's mirror image would turn a column stripe of class 0 into
    one a pixel from class 3's, and whether 2 epochs learn that pixel depends on the dropout draws.)"""
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 40), ("test", 8)):
        for c in range(4):
            d = root / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(per_class):
                a = rng.integers(0, 60, (28, 28)).astype(np.uint8)
                a[6 * c + 2:6 * c + 7, :] += 150
                Image.fromarray(a).save(d / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _image_folder(tmp_path_factory.mktemp("ddp-data"))


def _train_args(folder: Path, out: Path, epochs: int) -> list[str]:
    return ["train", "--dataset", "folder", "--image-folder", str(folder), "--model", "cnn", "--epochs", str(epochs),
            "--batch-size", "8", "--augment", "course", "--device", "cpu", "--threads", "1", "--quiet",
            "--out", str(out)]


def _run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def _digest(output: str, world: int) -> str:
    found = DIGEST.findall(output)
    assert [w for w, _ in found] == [str(world)], output  # logged once, by rank 0
    return found[0][1]


@pytest.mark.slow
def test_two_processes_train_resume_and_checkpoint(folder, tmp_path):
    # torchrun directly: 2 epochs in one go
    out = tmp_path / "direct"
    log = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "handsign", *_train_args(folder, out, epochs=2)])
    digest = _digest(log, world=2)
    assert log.count("epoch   2/2") == 1  # only rank 0 logs

    # the result is an ordinary checkpoint, and it holds the weights every rank ended with
    loaded = load_model(out / "last.safetensors")
    assert distributed.weights_digest(loaded.model) == digest
    history = read_metadata(out / "last.safetensors").train_state["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    # 160 images, 10 % valid -> 144 train: 72 per rank, 9 steps of 8; metrics are global.
    # The stripes are easy: after 2 epochs the model reads every one of the 32 test images
    from handsign.infer.predict import Predictor

    tests = sorted((folder / "test").glob("c*/*.png"))
    got = Predictor.load(out, backend="torch").predict_files(tests, top_k=2)
    assert [r["label"] for r in got] == [p.parent.name for p in tests]

    # handsign train --nproc: 1 epoch, then --resume to 2 -> the same weights as the run above
    out2 = tmp_path / "resumed"
    _digest(_run([sys.executable, "-m", "handsign", *_train_args(folder, out2, epochs=1), "--nproc", "2"]), world=2)
    log = _run([sys.executable, "-m", "handsign", "train", "--resume", str(out2), "--epochs", "2", "--quiet",
                "--nproc", "2"])
    assert _digest(log, world=2) == digest
    # and the same global metrics, epoch by epoch (timings aside)
    untimed = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in h]
    assert untimed(read_metadata(out2 / "last.safetensors").train_state["history"]) == untimed(history)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_env(monkeypatch) -> None:
    """The env:// variables torchrun --nproc-per-node 1 sets: train() in this process joins a world of 1."""
    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(k, v)


def _train_in_process(folder: Path, out: Path, epochs: int = 1):
    from handsign.cli import build_parser
    from handsign.commands import config_from_args
    from handsign.train.loop import train

    cfg = config_from_args(build_parser().parse_args(_train_args(folder, out, epochs=epochs)))
    return train(cfg, log=lambda *a: None, show_progress=False)


def test_world_size_one_equals_a_plain_run(folder, tmp_path, monkeypatch):
    """A torchrun world of 1 (process group, DDP wrapper, barriers) trains exactly like a plain run.
    Both run in this process."""
    def run(out: Path):
        _train_in_process(folder, out)
        return load_model(out / "last.safetensors").model, read_metadata(out / "last.safetensors")

    wrapped = []  # what train() trained through (type names only: holding the wrapper would keep the group)
    real_wrap = distributed.wrap

    def spy_wrap(m, d):
        w = real_wrap(m, d)
        wrapped.append(type(w).__name__)
        return w

    monkeypatch.setattr(distributed, "wrap", spy_wrap)
    threads = torch.get_num_threads()
    try:
        plain, plain_meta = run(tmp_path / "plain")
        _torchrun_env(monkeypatch)
        ddp, ddp_meta = run(tmp_path / "ddp1")
        left_active = distributed.active()  # checked before the safety net below, which would hide it
    finally:
        torch.set_num_threads(threads)
        distributed.cleanup()
    assert left_active is False  # train() left no process group behind
    assert wrapped == ["CNN", "DistributedDataParallel"]
    for (name, x), y in zip(plain.state_dict().items(), ddp.state_dict().values()):
        assert torch.equal(x, y), name
    keys = ("train_loss", "train_acc", "valid_loss", "valid_acc")
    assert ([[h[k] for k in keys] for h in plain_meta.train_state["history"]]
            == [[h[k] for k in keys] for h in ddp_meta.train_state["history"]])


@pytest.mark.parametrize("failure", ["none", "error", "stop-signal"])
def test_group_is_left_on_every_path_after_the_wrapper_is_freed(folder, tmp_path, monkeypatch, failure):
    """The teardown abort (SIGABRT "terminate called without an active exception", about 1 run in 20)
    came from destroying the gloo group while the DDP wrapper still held it. Here, on success, on an
    error and on a stop signal, train() must destroy the group exactly once, with no wrapper alive,
    and with the explicit timeout."""
    import torch.distributed as dist

    from handsign.train import pixels as ht
    from handsign.errors import HandsignError

    at_destroy, inits = [], []
    real_destroy, real_init = dist.destroy_process_group, dist.init_process_group

    def spy_destroy(*a, **kw):
        at_destroy.append(distributed.live_wrappers())
        return real_destroy(*a, **kw)

    def spy_init(*a, **kw):
        inits.append(kw.get("timeout"))
        return real_init(*a, **kw)

    monkeypatch.setattr(dist, "destroy_process_group", spy_destroy)
    monkeypatch.setattr(dist, "init_process_group", spy_init)
    if failure != "none":
        real_epoch = ht.train_one_epoch

        def failing_epoch(*a, **kw):
            if failure == "stop-signal":  # a real SIGTERM: the loop stops at its next agreed check
                signal.raise_signal(signal.SIGTERM)
            real_epoch(*a, **kw)  # (a real epoch through the DDP wrapper, then the error)
            raise RuntimeError("boom")

        monkeypatch.setattr(ht, "train_one_epoch", failing_epoch)
    _torchrun_env(monkeypatch)
    threads = torch.get_num_threads()
    try:
        if failure == "none":
            _train_in_process(folder, tmp_path / "run")
        else:
            with pytest.raises(RuntimeError if failure == "error" else HandsignError) as e:
                _train_in_process(folder, tmp_path / "run")
            assert ("boom" in str(e.value)) if failure == "error" else type(e.value).__name__ == "TrainingInterrupted"
        left_active = distributed.active()
    finally:
        torch.set_num_threads(threads)
        distributed.cleanup()
    assert left_active is False
    assert at_destroy == [0]  # destroyed once, with no DDP wrapper left alive
    assert [t.total_seconds() for t in inits] == [distributed.GROUP_TIMEOUT_S]


def test_group_timeout_setting(monkeypatch):
    from handsign.errors import HandsignError

    assert distributed.group_timeout().total_seconds() == 300
    monkeypatch.setenv("HANDSIGN_DIST_TIMEOUT", "45")
    assert distributed.group_timeout().total_seconds() == 45
    for bad in ("0", "-3", "soon"):
        monkeypatch.setenv("HANDSIGN_DIST_TIMEOUT", bad)
        with pytest.raises(HandsignError, match="HANDSIGN_DIST_TIMEOUT: must be a positive number"):
            distributed.group_timeout()
