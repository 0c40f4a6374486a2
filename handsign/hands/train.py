"""Train the hand-landmark classifier (recipe `hands-asl`) and evaluate it leaving whole people out.

    cfg = HandsConfig(photos="../shared/data/asl_photos/massey")
    result = train_hands(cfg)        # -> runs/hands-asl-<time>/best.safetensors + metrics.json
    lopo = leave_one_person_out(load_folder(cfg.photos), cfg)   # per-person accuracy, no hand = wrong

Training is seconds on a CPU: ~1,300 feature vectors of 102 numbers. The photos of one person are
near-copies of each other, so the only honest figure is on a person the model never saw.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from handsign import __version__
from handsign.atomic import atomic_write_bytes
from handsign.checkpoint import save_checkpoint
from handsign.datasets import resolve_data_dir
from handsign.errors import HandsignError
from handsign.hands.data import GROUP_PATTERN, HandSet, load_folder
from handsign.hands.features import FEATURES_VERSION, N_FEATURES, hand_features
from handsign.hands.landmarks import DETECTOR, WRIST
from handsign.meta import ModelMeta
from handsign.models import create_model

PHOTOS_SUBDIR = "asl_photos/massey"  # under the data root; ROOT/<letter>/*.jpeg, people hand1..hand5


@dataclass
class HandsConfig:
    recipe: str = "hands-asl"       # name of the recipe these settings came from
    photos: str = ""                # ROOT/<label>/*.jpg ("" = DATA/asl_photos/massey)
    data_dir: str = ""              # data root for the default photos ("" = $HANDSIGN_DATA or ./data)
    group_pattern: str = GROUP_PATTERN  # regex naming the person in a file name (leave-one-person-out)
    holdout: str = ""               # a person never trained on (e.g. hand3): reported as a test figure
    every: int = 1                  # use every Nth photo of each letter (1 = all; quick runs take fewer)
    hidden: tuple = (256, 256)      # hidden layer widths of the landmark MLP
    dropout: float = 0.2            # after each hidden layer
    epochs: int = 150               # passes over the training photos
    batch_size: int = 64            # feature vectors per optimizer step
    lr: float = 3e-3                # peak learning rate (AdamW, cosine decay to 0)
    weight_decay: float = 1e-2      # AdamW's decoupled weight decay
    label_smoothing: float = 0.1    # cross-entropy label smoothing
    rotate: float = 15.0            # degrees: random in-plane turn of the landmarks about the wrist
    stretch: float = 0.1            # random x/y aspect change (+-10 %): a camera a little to the side
    jitter: float = 0.03            # landmark noise, in palm sizes (MediaPipe's own wobble)
    mirror: float = 0.5             # share of samples read as the other hand: robustness to handedness errors
    seed: int = 0                   # seeds weights, shuffling, dropout and augmentation
    threads: int = 0                # torch CPU threads while training (0 = 1: fastest for this small MLP)
    out: str = ""                   # run directory ("" = runs/<recipe>-<time>)

    def __post_init__(self):
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise HandsignError(f"--epochs: must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise HandsignError(f"--batch-size: must be a positive integer, got {self.batch_size!r}")
        if not self.lr > 0:
            raise HandsignError(f"--lr: must be positive, got {self.lr!r}")
        if not isinstance(self.every, int) or self.every < 1:
            raise HandsignError(f"--every: must be a positive integer, got {self.every!r}")
        if not 0 <= self.dropout < 1 or not 0 <= self.label_smoothing < 1:
            raise HandsignError("--dropout and --label-smoothing must be in [0, 1)")
        if self.rotate < 0 or self.stretch < 0 or self.jitter < 0 or not 0 <= self.mirror <= 1:
            raise HandsignError("--rotate, --stretch and --jitter must be >= 0 and --mirror in 0..1")
        self.hidden = tuple(int(h) for h in self.hidden)

    def photos_root(self) -> Path:
        return Path(self.photos) if self.photos else resolve_data_dir(self.data_dir or None) / PHOTOS_SUBDIR

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


HANDS_RECIPES = {  # plain data, like handsign.config.RECIPES; the defaults above were chosen by leave-one-person-out
    "hands-asl": {"description": "ASL letters from real photos: MediaPipe hand landmarks -> MLP, trained on the "
                                 "Massey photos (5 people), evaluated leaving one person out",
                  "settings": {}},
}


def make_hands_config(recipe: str = "hands-asl", **overrides) -> HandsConfig:
    """A hands recipe's settings with explicit overrides on top (None values are ignored)."""
    if recipe not in HANDS_RECIPES:
        raise HandsignError(f"unknown hands recipe {recipe!r}; choose from: {', '.join(HANDS_RECIPES)}")
    settings = {**HANDS_RECIPES[recipe]["settings"], **{k: v for k, v in overrides.items() if v is not None}}
    return HandsConfig(recipe=recipe, **settings)


def augment(points: np.ndarray, cfg: HandsConfig, rng: np.random.Generator) -> np.ndarray:
    """Random in-plane turn about the wrist, aspect stretch and jitter of (N, 21, 3) pixel landmarks.
    (Mirroring is done in `fit` by swapping the handedness: features are computed on a right hand.)"""
    n = len(points)
    p = points - points[:, WRIST:WRIST + 1]
    palm = np.linalg.norm(p[:, 9, :2], axis=-1)[:, None, None]  # wrist -> middle knuckle, px
    a = np.deg2rad(rng.uniform(-cfg.rotate, cfg.rotate, n))[:, None]
    c, s = np.cos(a), np.sin(a)
    x, y = p[..., 0], p[..., 1]
    sx = np.exp(rng.uniform(-cfg.stretch, cfg.stretch, n))[:, None]
    out = np.stack([(c * x - s * y) * sx, (s * x + c * y) / sx, p[..., 2]], -1)
    return out + rng.normal(0, cfg.jitter, out.shape) * palm


def _to_arrays(hs: HandSet, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (n, 21, 3), left (n,), labels (n,)) of the photos in `index` that have a hand."""
    keep = [i for i in index if hs.hands[i] is not None]
    pts = np.stack([hs.hands[i].points for i in keep]) if keep else np.zeros((0, 21, 3), np.float32)
    left = np.array([hs.hands[i].handedness == "Left" for i in keep], dtype=bool)
    return pts, left, hs.labels[keep]


def fit(points: np.ndarray, left: np.ndarray, labels: np.ndarray, n_classes: int, cfg: HandsConfig):
    """A trained LandmarkMLP (eval mode) from landmarks; deterministic for a given cfg.seed."""
    if len(points) == 0:
        raise HandsignError("no hands were found in the training photos")
    threads = torch.get_num_threads()
    # a 100 x 256 x 256 MLP on batches of 64: one thread is fastest, and on a busy machine several
    # threads that wait for each other were measured ~10x slower
    torch.set_num_threads(cfg.threads or 1)
    try:
        return _fit(points, left, labels, n_classes, cfg)
    finally:
        torch.set_num_threads(threads)


def _fit(points, left, labels, n_classes: int, cfg: HandsConfig):
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = create_model("landmark_mlp", n_classes, in_features=N_FEATURES, hidden=cfg.hidden, dropout=cfg.dropout)
    clean = torch.from_numpy(hand_features(points, left))
    model.mean.copy_(clean.mean(0))
    model.std.copy_(clean.std(0).clamp_min(1e-3))  # a constant feature (the wrist's own) must not divide by 0
    y = torch.from_numpy(labels)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(points) / cfg.batch_size)
    total, step = cfg.epochs * steps_per_epoch, 0
    model.train()
    for _ in range(cfg.epochs):
        # fresh augmentation each epoch; "mirror" swaps the hand MediaPipe named, so the features see the
        # mirror image of the hand (what a wrong handedness guess would give at prediction time)
        flip = rng.random(len(points)) < cfg.mirror
        x = torch.from_numpy(hand_features(augment(points, cfg, rng), left ^ flip))
        order = torch.from_numpy(rng.permutation(len(points)))
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            for g in opt.param_groups:
                g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    return model.eval()


@torch.no_grad()
def landmark_probs(model, points: np.ndarray, left: np.ndarray) -> np.ndarray:
    """(n, 21, 3) landmarks -> (n, classes) probabilities."""
    if len(points) == 0:
        return np.zeros((0, model.net[-1].out_features), dtype=np.float64)
    x = torch.from_numpy(hand_features(points, left))
    return torch.softmax(model(x), 1).double().numpy()


def photo_probs(hs: HandSet, index: np.ndarray, model) -> np.ndarray:
    """(len(index), classes) probabilities; rows of photos without a hand are all zero."""
    pts, left, _ = _to_arrays(hs, index)
    probs = landmark_probs(model, pts, left)
    out = np.zeros((len(index), probs.shape[1]), dtype=np.float64)
    out[[k for k, i in enumerate(index) if hs.hands[i] is not None]] = probs
    return out


def people(hs: HandSet) -> list[str]:
    found = sorted(set(hs.groups) - {""})
    if len(found) < 2:
        raise HandsignError(f"leave-one-person-out needs photos of at least 2 people; the file names name "
                            f"{len(found)} (pattern {GROUP_PATTERN!r})")
    return found


def leave_one_person_out(hs: HandSet, cfg: HandsConfig, log=print) -> dict:
    """Train on all people but one, test on that one, for each person. A photo where no hand is found
    counts as wrong. Returns per-person figures, their mean, and each held-out photo's probabilities
    (`probs`, rows in hs order) for choosing a fusion weight."""
    groups = np.array(hs.groups)
    probs = np.zeros((len(hs.files), len(hs.label_names)), dtype=np.float64)
    per_person = {}
    for person in people(hs):
        test = np.flatnonzero(groups == person)
        train_idx = np.flatnonzero(groups != person)
        t0 = time.perf_counter()
        model = fit(*_to_arrays(hs, train_idx), len(hs.label_names), cfg)
        probs[test] = photo_probs(hs, test, model)
        found = hs.found[test]
        correct = found & (probs[test].argmax(1) == hs.labels[test])
        per_person[person] = {"photos": int(len(test)), "hand_found": int(found.sum()),
                              "accuracy": round(float(correct.mean()), 4),
                              "accuracy_when_found": round(float(correct[found].mean()), 4) if found.any() else None,
                              "seconds": round(time.perf_counter() - t0, 1)}
        log(f"  held out {person}: {100 * correct.mean():.1f} % of {len(test)} photos "
            f"(hand found in {found.sum()})")
    accs = [p["accuracy"] for p in per_person.values()]
    return {"per_person": per_person, "mean_accuracy": round(float(np.mean(accs)), 4),
            "min_accuracy": round(float(np.min(accs)), 4), "probs": probs}


def _versions() -> dict:
    import mediapipe  # its version, when a model is saved: importing hands.train loads no mediapipe (~1 s)

    return {"handsign": __version__, "torch": torch.__version__, "mediapipe": mediapipe.__version__,
            "python": platform.python_version()}


def landmark_meta(cfg: HandsConfig, labels: list[str], metrics: dict, data: dict) -> ModelMeta:
    """The checkpoint metadata of a landmark model: what it reads (`input`), how (`preprocess`)."""
    return ModelMeta(architecture={"name": "landmark_mlp", "args": {"in_features": N_FEATURES,
                                                                    "hidden": list(cfg.hidden), "dropout": cfg.dropout}},
                     labels=labels, input="landmarks", task="asl_photos", recipe=cfg.recipe,
                     preprocess={"version": 1, "kind": "hand-landmarks", "features": FEATURES_VERSION,
                                 "detector": DETECTOR},
                     config=cfg.to_dict(), metrics=metrics, data=data, versions=_versions(),
                     created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def train_hands(cfg: HandsConfig, log=print, lopo: bool = True) -> Path:
    """Leave-one-person-out figures (lopo=True), then the model trained on every person (but `holdout`),
    saved as run_dir/best.safetensors. Returns run_dir."""
    log(f"config: {json.dumps(cfg.to_dict())}")
    root = cfg.photos_root()
    hs = load_folder(root, group_pattern=cfg.group_pattern, every=cfg.every)
    report = hs.detection_report()
    log(f"{len(hs.files)} photos of {len(set(hs.groups))} people in {root}: hand found in "
        f"{report['overall']['found']} ({100 * report['overall']['rate']:.1f} %)")
    groups = np.array(hs.groups)
    if cfg.holdout and cfg.holdout not in hs.groups:
        raise HandsignError(f"--holdout {cfg.holdout!r}: no such person in {root} (people: {', '.join(people(hs))})")
    metrics: dict = {"detection": report}
    if lopo:
        kept = _subset(hs, np.flatnonzero(groups != cfg.holdout)) if cfg.holdout else hs
        result = leave_one_person_out(kept, cfg, log=log)
        metrics["leave_one_person_out"] = {k: v for k, v in result.items() if k != "probs"}
        log(f"leave-one-person-out: mean {100 * result['mean_accuracy']:.1f} %, "
            f"worst person {100 * result['min_accuracy']:.1f} %")
    train_idx = np.flatnonzero(groups != cfg.holdout) if cfg.holdout else np.arange(len(hs.files))
    model = fit(*_to_arrays(hs, train_idx), len(hs.label_names), cfg)
    if cfg.holdout:
        test = np.flatnonzero(groups == cfg.holdout)
        correct = hs.found[test] & (photo_probs(hs, test, model).argmax(1) == hs.labels[test])
        metrics["holdout"] = {"person": cfg.holdout, "photos": int(len(test)), "accuracy": round(float(correct.mean()), 4)}
        log(f"held-out person {cfg.holdout}: {100 * correct.mean():.1f} % of {len(test)} photos")
    run_dir = Path(cfg.out) if cfg.out else Path("runs") / f"{cfg.recipe}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {"photos": str(root), "n_photos": int(len(train_idx)), "people": sorted(set(groups[train_idx]) - {""})}
    atomic_write_bytes(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2).encode())
    atomic_write_bytes(run_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
    save_checkpoint(run_dir / "best.safetensors", model, landmark_meta(cfg, hs.label_names, metrics, data))
    log(f"saved {run_dir / 'best.safetensors'}")
    return run_dir


def _subset(hs: HandSet, index: np.ndarray) -> HandSet:
    return HandSet([hs.files[i] for i in index], hs.labels[index], hs.label_names, [hs.groups[i] for i in index],
                   [hs.hands[i] for i in index])
