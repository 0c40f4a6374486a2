"""The run folder and its records, the same for every model family: where a run goes (a new folder, or the one
being resumed), config.json, metrics.csv / metrics.json, the versions that made it, and how a run stops.

    runs/<name>/  config.json  metrics.csv  metrics.json  curves.png  best.safetensors  last.safetensors
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import platform
import signal
from dataclasses import dataclass
from pathlib import Path

from handsign import __version__
from handsign.errors import HandsignError
from handsign.files import atomic_write_bytes, remove_stale_temps
from handsign.train.config import config_from_dict

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "seconds", "images_per_s"]


class TrainingInterrupted(HandsignError):
    """SIGINT/SIGTERM stopped training; the last finished epoch is saved and resumable."""

    def __init__(self, signum: int, run_dir: Path, epoch: int):
        self.signum, self.run_dir, self.epoch = signum, run_dir, epoch
        name = signal.Signals(signum).name
        super().__init__(f"{name}: training stopped; epoch {epoch} is saved in {run_dir}/last.safetensors. "
                         f"Resume with: handsign train --resume {run_dir}")


@dataclass
class RunResult:
    run_dir: Path
    history: list          # one dict per epoch
    metrics: dict          # final summary: best epoch, train/valid/test accuracy...
    diagnosis: dict
    best: Path
    last: Path


@dataclass
class Splits:
    """A family's data for one run: each split has len() and .subset(index) (pixels: handsign.data.readers.Dataset,
    landmarks: handsign.train.landmarks.LandmarkSet); `info` goes into every checkpoint's metadata as `data`."""
    train: object
    valid: object
    test: object | None
    notes: list
    info: dict
    classes: list


class StopFlag:
    """Records SIGINT/SIGTERM during training; the loop stops at the next batch boundary."""

    def __init__(self):
        self.signum = 0
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


class Stopped(Exception):
    """Raised inside an epoch when a StopFlag was set: the loop saves nothing more and reports the signal."""


def default_run_dir(cfg) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = cfg.recipe or f"{cfg.model}-{cfg.dataset}"
    return Path("runs") / f"{name}-{stamp}"


def new_run_dir(cfg) -> Path:
    """The folder of a new run (--out, else runs/<recipe>-<time>): refused now, before any data is loaded,
    if a file is in the way or the folder holds something."""
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    in_the_way = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        raise HandsignError(f"--out {run_dir}: {in_the_way} is a file, not a folder (name a new or empty "
                            f"folder for the run)")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise HandsignError(f"--out {run_dir}: folder exists and is not empty (use --resume {run_dir} "
                            f"to continue it, or another --out)")
    return run_dir


def resumed_config(run_dir: Path, epochs: int | None):
    """The config of the run folder being resumed (its config.json), with a new epoch count if given."""
    if not (run_dir / "config.json").is_file():
        raise HandsignError(f"--resume {run_dir}: not a handsign run folder (no config.json)")
    saved = json.loads((run_dir / "config.json").read_text())
    if (run_dir / "best.safetensors").exists() and not (run_dir / "last.safetensors").exists():
        # a landmark run from before both families shared the loop: it kept no resumable state
        raise HandsignError(f"--resume {run_dir}: this run kept no resumable checkpoint (last.safetensors); train it "
                            f"again: handsign train --recipe {saved.get('recipe') or '...'}")
    cfg = config_from_dict(saved)
    remove_stale_temps(run_dir)  # left by a kill during a save; this run owns the folder
    if epochs is not None:  # --epochs 0 is an error to report, not "keep the old count"
        cfg.epochs = epochs
        cfg.__post_init__()
    return cfg


def write_config(run_dir: Path, cfg) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2).encode())


def write_metrics(run_dir: Path, history: list, summary: dict | None = None) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(history)
    atomic_write_bytes(run_dir / "metrics.csv", buf.getvalue().encode())
    doc = {"history": history, **(summary or {})}
    atomic_write_bytes(run_dir / "metrics.json", json.dumps(doc, indent=2).encode())


def versions(**more) -> dict:
    """The versions that made a checkpoint: handsign, torch, python, and any `more` (e.g. mediapipe)."""
    import torch

    return {"handsign": __version__, "torch": torch.__version__, **more, "python": platform.python_version()}


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
