"""SIGKILL a training run at N random moments, resuming after each; check after every kill that the
checkpoints on disk load, and at the end that the run equals an uninterrupted one. Writes one JSON object.

    python benchmarks/kill_resume.py --kills 20 [--seed 0]

Synthetic data (made here: 24 classes of bright squares), the course MLP recipe with augmentation, 8 epochs.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from handsign.saved.checkpoint import load_model, load_train_state
from handsign.train.config import make_config
from handsign.train.loop import train

SETTINGS = {"recipe": "course-asl-mlp", "epochs": 8, "batch_size": 16, "augment": "course"}


def synthetic_sign_mnist(root: Path, n_train: int = 240, n_test: int = 96) -> Path:
    rng = np.random.default_rng(0)
    kaggle = [k for k in range(25) if k != 9]
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    (root / "sign_mnist").mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        rows = [header]
        for i in range(n):
            c = i % 24
            img = rng.integers(0, 60, (28, 28))
            r, q = divmod(c, 6)
            img[2 + r * 6:7 + r * 6, 2 + q * 4:6 + q * 4] = 230
            rows.append(",".join(map(str, [kaggle[c], *img.ravel()])))
        (root / "sign_mnist" / f"sign_mnist_{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def strip(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-delay", type=float, default=4.0, help="kill within this many seconds of the start "
                   "(of training, for 80 %% of the kills)")
    p.add_argument("--json", default="benchmarks/results/kill-resume.json")
    a = p.parse_args(argv)
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = synthetic_sign_mnist(tmp / "data")
        cfg = dict(epochs=SETTINGS["epochs"], batch_size=SETTINGS["batch_size"], augment=SETTINGS["augment"],
                   data_dir=str(root))
        ref = train(make_config(SETTINGS["recipe"], out=str(tmp / "ref"), **cfg), show_progress=False,
                    log=lambda *x: None)
        out = tmp / "run"
        first = [sys.executable, "-m", "handsign", "train", "--recipe", SETTINGS["recipe"], "--epochs",
                 str(SETTINGS["epochs"]), "--batch-size", str(SETTINGS["batch_size"]), "--augment",
                 SETTINGS["augment"], "--data-dir", str(root), "--out", str(out), "--quiet"]
        resume = [sys.executable, "-m", "handsign", "train", "--resume", str(out), "--quiet"]
        events, finished_early = [], 0
        while len(events) < a.kills:
            cmd = resume if (out / "config.json").exists() else first
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if rng.random() < 0.8:  # most kills after start-up (import torch, data: seconds), in the loop or a save
                proc.stdout.readline()  # "handsign 0.1.0 | run ...": the data is loaded, the model built
            delay = rng.uniform(0.0, a.max_delay)
            time.sleep(delay)
            if proc.poll() is not None:  # the run finished: start a new one in a fresh folder
                finished_early += 1
                out = tmp / f"run{finished_early}"
                first[first.index("--out") + 1] = str(out)
                resume[resume.index("--resume") + 1] = str(out)
                continue
            proc.kill()
            proc.wait()
            proc.stdout.close()
            event = {"after_s": round(delay, 2), "last_epoch": None,
                     "stray_temps": len(list(out.glob(".*.tmp"))) if out.exists() else 0}
            if (out / "last.safetensors").exists():
                load_model(out / "last.safetensors")
                event["last_epoch"] = load_train_state(out / "last.safetensors")[2]["train_state"]["epoch"]
                load_model(out)
            events.append(event)
        r = subprocess.run(resume, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"final resume failed: {r.stderr}")
        metrics = json.loads((out / "metrics.json").read_text())
        same = strip(metrics["history"]) == strip(ref.history) and \
            metrics["best"]["test_acc"] == ref.metrics["best"]["test_acc"]
    result = {"kills": len(events), "all_checkpoints_loadable": True, "runs_completed_between_kills": finished_early,
              "kills_with_stray_temp_files": sum(e["stray_temps"] > 0 for e in events),
              "kills_before_first_checkpoint": sum(e["last_epoch"] is None for e in events),
              "final_run_equals_uninterrupted": same, "events": events}
    print(json.dumps(result, indent=2))
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
