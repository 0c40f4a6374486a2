"""Interruptions: SIGTERM stops training cleanly (exit 143, resumable); SIGKILL at any moment leaves the
previous checkpoint loadable; a run resumed after each kill ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_sign_mnist
from handsign.files import atomic_write_bytes, remove_stale_temps
from handsign.saved.checkpoint import load_model, load_train_state, read_metadata, save_checkpoint
from handsign.train.config import make_config
from handsign.errors import CheckpointError
from handsign.infer.evaluate import evaluate
from handsign.models import create_model
from handsign.images.preprocess import default_spec
from handsign.train.loop import train

QUIET = {"show_progress": False, "log": lambda *a: None}
# the MLP: cheap to train on 2 shared cores, and its 8 MB resumable checkpoint makes kills during saves likely
SETTINGS = {"recipe": "course-asl-mlp", "epochs": 30, "batch_size": 16, "augment": "course"}


def train_cmd(root: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "handsign", "train", "--recipe", SETTINGS["recipe"], "--epochs", str(epochs),
            "--batch-size", str(SETTINGS["batch_size"]), "--augment", SETTINGS["augment"], "--data-dir", str(root),
            "--out", str(out), "--quiet"]


def strip(history: list) -> list:
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in history]


@pytest.fixture(scope="module")
def data_and_reference(tmp_path_factory):
    """Synthetic data and an uninterrupted run of SETTINGS (the answer every interrupted run must reach)."""
    base = tmp_path_factory.mktemp("interrupt")
    root = make_sign_mnist(base / "data", n_train=144, n_test=48)
    ref = train(make_config(SETTINGS["recipe"], epochs=SETTINGS["epochs"], batch_size=SETTINGS["batch_size"],
                            augment=SETTINGS["augment"], data_dir=str(root), out=str(base / "reference")), **QUIET)
    return root, ref


def assert_same_as_reference(run: Path, ref):
    metrics = json.loads((run / "metrics.json").read_text())
    assert strip(metrics["history"]) == strip(ref.history)
    assert metrics["best"]["test_acc"] == ref.metrics["best"]["test_acc"]
    assert metrics["last"]["test_acc"] == ref.metrics["last"]["test_acc"]
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(load_model(run / "last.safetensors").model(x), load_model(ref.last).model(x))


def test_sigterm_saves_resumable_checkpoint_exits_143_and_resume_matches(data_and_reference, tmp_path):
    root, ref = data_and_reference
    out = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(root, out, SETTINGS["epochs"]), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # stop it in the middle of epoch 3 or later
        if line.startswith(f"epoch   2/{SETTINGS['epochs']}"):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.startswith("handsign: error: SIGTERM: training stopped") and err.count("\n") == 1, err
    assert f"handsign train --resume {out}" in err
    epoch = read_metadata(out / "last.safetensors").train_state["epoch"]
    assert 2 <= epoch < SETTINGS["epochs"]
    r = subprocess.run([sys.executable, "-m", "handsign", "train", "--resume", str(out), "--quiet"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert_same_as_reference(out, ref)


def _check_loadable(run: Path) -> dict:
    """After a kill: every checkpoint that exists loads (header, weights, training state) and the files a
    loader reads are whole; returns what was found."""
    found = {"last_epoch": None, "temps": sorted(p.name for p in run.glob(".*.tmp")) if run.exists() else []}
    if (run / "last.safetensors").exists():
        load_model(run / "last.safetensors")
        _, _, meta = load_train_state(run / "last.safetensors")
        found["last_epoch"] = meta.train_state["epoch"]
        json.loads((run / "last.json").read_text())
        load_model(run)  # a run folder resolves to best or last, never to a temp file
    if (run / "best.safetensors").exists():
        load_model(run / "best.safetensors")
    for name in ("config.json", "metrics.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())
    return found


# `handsign train ARGS` that SIGKILLs itself inside its Nth save of last.safetensors ($KILL_AT_SAVE), at
# $KILL_POINT: "half-written" (half the bytes are in the temp file) or "before-rename" (all written and
# fsynced, not yet renamed): a kill -9 that lands mid-save every time, with no timing involved
KILL_IN_SAVE = """
import os, signal, sys
import handsign.files as ck
n, point, calls = int(os.environ["KILL_AT_SAVE"]), os.environ["KILL_POINT"], [0]
real_fdopen, real_replace = os.fdopen, os.replace

def die():
    os.kill(os.getpid(), signal.SIGKILL)

class HalfThenDie:
    def __init__(self, f):
        self.f = f
    def __enter__(self):
        return self
    def __exit__(self, *a):
        return self.f.__exit__(*a)
    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        die()
    def __getattr__(self, name):
        return getattr(self.f, name)

def fdopen(fd, *a, **kw):
    f = real_fdopen(fd, *a, **kw)
    target = os.readlink(f"/proc/self/fd/{fd}")
    if os.path.basename(target).startswith(".last.safetensors."):
        calls[0] += 1
        if calls[0] == n and point == "half-written":
            return HalfThenDie(f)
    return f

def replace(src, dst, *a, **kw):
    if str(dst).endswith("last.safetensors") and calls[0] == n and point == "before-rename":
        die()
    return real_replace(src, dst, *a, **kw)

ck.os.fdopen, ck.os.replace = fdopen, replace
from handsign.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["half-written", "before-rename"])
def test_sigkill_in_the_middle_of_a_save_keeps_the_previous_checkpoint(data_and_reference, tmp_path, point):
    """A kill -9 inside the save of epoch 2's last.safetensors (the 3rd save: epoch 0, 1, 2): the process
    dies, the half or whole temp file stays beside it, last.safetensors still holds epoch 1 and loads,
    and --resume clears the temp and ends exactly like the uninterrupted run."""
    root, ref = data_and_reference
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-c", KILL_IN_SAVE, *train_cmd(root, out, SETTINGS["epochs"])[3:]],
                       cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "KILL_AT_SAVE": "3", "KILL_POINT": point})
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    found = _check_loadable(out)
    assert found["last_epoch"] == 1
    (temp,) = [out / name for name in found["temps"]]
    assert temp.name.startswith(".last.safetensors.")
    copy = tmp_path / "temp-copy.safetensors"  # what the kill left, looked at under a loadable name
    copy.write_bytes(temp.read_bytes())
    if point == "half-written":
        with pytest.raises(CheckpointError, match="temp-copy.safetensors"):
            load_train_state(copy)
    else:  # complete: epoch 2 was written and synced, only the rename was missing
        assert read_metadata(copy).train_state["epoch"] == 2
    r = subprocess.run([sys.executable, "-m", "handsign", "train", "--resume", str(out), "--quiet"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert list(out.glob(".*.tmp")) == []
    assert_same_as_reference(out, ref)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(data_and_reference, tmp_path):
    """Kill -9 a training process at random moments (start-up, data loading, mid-epoch; a kill inside a
    save is rare here and has its own test above), then resume; after the last kill the resumed run must
    end exactly like the uninterrupted reference."""
    root, ref = data_and_reference
    out = tmp_path / "run"
    rng = random.Random(int(os.environ.get("HANDSIGN_KILL_SEED", "5")))
    epochs_seen, kills = [], 0
    for attempt in range(4):
        first = not (out / "config.json").exists()
        cmd = train_cmd(root, out, SETTINGS["epochs"]) if first else \
            [sys.executable, "-m", "handsign", "train", "--resume", str(out), "--quiet"]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if attempt:  # the first kill lands anywhere (often in start-up), the others once training has begun
            proc.stdout.readline()  # "handsign 0.1.0 | run ...": data loaded, model built
        time.sleep(rng.uniform(0.0, 1.0))  # 30 tiny epochs last a few seconds even on an idle machine
        if proc.poll() is not None:  # finished before the kill: nothing more to interrupt
            proc.stdout.close()
            break
        proc.kill()
        proc.wait(30)
        proc.stdout.close()
        kills += 1
        found = _check_loadable(out)
        epochs_seen.append((found["last_epoch"], len(found["temps"])))
    r = subprocess.run([sys.executable, "-m", "handsign", "train", "--resume", str(out), "--quiet"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert kills >= 2, f"only {kills} kills landed"
    assert list(out.glob(".*.tmp")) == []  # resume cleared what kills left behind
    assert_same_as_reference(out, ref)
    print(f"kills: {kills}, (last epoch on disk, stray temp files) after each: {epochs_seen}")


def _tiny_checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = create_model("mlp", 24, hidden=[8]).eval()
    meta = {"architecture": {"name": "mlp", "args": {"hidden": [8]}}, "labels": list("abcdefghiklmnopqrstuvwxy"),
            "preprocess": default_spec("sign_mnist"), "metrics": {"seed": seed}}
    return save_checkpoint(path, model, meta)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = _tiny_checkpoint(tmp_path / "m.safetensors", seed=1)
    old = path.read_bytes()

    def crash(fd):  # the process dies between writing and renaming (as far as Python can show it)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        _tiny_checkpoint(path, seed=2)
    assert path.read_bytes() == old and load_model(path).meta.metrics["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_stray_temp_files_are_ignored_by_loaders_and_removed_on_resume(data_and_reference, tmp_path):
    """What SIGKILL during a save leaves: a half-written `.last.safetensors.XXXX.tmp` beside the real file."""
    root, _ = data_and_reference
    out = tmp_path / "run"
    train(make_config(SETTINGS["recipe"], epochs=1, batch_size=16, data_dir=str(root), out=str(out)), **QUIET)
    good = (out / "last.safetensors").read_bytes()
    stray = [out / ".last.safetensors.k1ll3d.tmp", out / ".best.safetensors.x.tmp", out / ".metrics.json.y.tmp"]
    for p in stray:
        p.write_bytes(good[: len(good) // 3])
    assert load_model(out).path.name == "best.safetensors"
    assert evaluate(out, device="cpu")["n"] == 48  # the test split of the synthetic data
    train(resume=out, epochs=2, **QUIET)
    assert not any(p.exists() for p in stray)
    assert remove_stale_temps(out) == []
    atomic_write_bytes(out / "x.bin", b"1")  # and a normal write leaves nothing behind
    assert list(out.glob(".*.tmp")) == []


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(data_and_reference, tmp_path):
    """Kill between writing config.json and the epoch-0 checkpoint: --resume starts at epoch 1."""
    root, ref = data_and_reference
    out = tmp_path / "run"
    cfg = make_config(SETTINGS["recipe"], epochs=SETTINGS["epochs"], batch_size=SETTINGS["batch_size"],
                      augment=SETTINGS["augment"], data_dir=str(root), out=str(out))
    out.mkdir()
    (out / "config.json").write_text(json.dumps(cfg.to_dict()))
    train(resume=out, **QUIET)
    assert_same_as_reference(out, ref)
