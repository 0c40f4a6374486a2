"""The landmark family: the `hands-asl` recipe, as the one loop (handsign.train.loop) runs it.

    train(make_config("hands-asl", photos="../shared/data/asl_photos/massey"))   # -> runs/hands-asl-<time>/
    lopo = leave_one_person_out(load_folder(root), make_config("hands-asl"))    # per-person accuracy

MediaPipe's hand landmarks of real photos (handsign.hands) become feature vectors of ~100 numbers that a small
MLP reads; an epoch is seconds on a CPU. The photos of one person are near-copies of each other, so the
honest figure is on a person the model never saw: before training, each person is left out once
(leave-one-person-out, `--lopo`), and `--holdout PERSON` keeps one person out of the run as its test split.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from handsign.errors import HandsignError
from handsign.hands.augment import augment
from handsign.hands.photos import HandSet, LandmarkSet, load_folder
from handsign.hands.features import FEATURES_VERSION, N_FEATURES, hand_features
from handsign.hands.landmarks import DETECTOR
from handsign.models import create_model
from handsign.train.config import HandsConfig, make_config
from handsign.train.optim import epoch_seed, lr_at, take_step, make_optimizer, set_lr
from handsign.train.run import Splits, Stopped, versions
from handsign.train.machine import Progress

TASK = "asl_photos"


class LandmarkTrainer:
    """What the loop asks of a family, for hand landmarks (handsign.train.pixels.PixelTrainer is the other)."""

    distributed = False  # seconds an epoch: one process

    def __init__(self, cfg: HandsConfig):
        self.cfg = cfg

    def prepare(self) -> Splits:
        """Train and valid from every person but --holdout (valid: a seeded share of their photos, near-copies
        of the training ones); test: the holdout person's photos."""
        cfg = self.cfg
        root = cfg.photos_root()
        self.photos = hs = load_folder(root, group_pattern=cfg.group_pattern, every=cfg.every)
        report = hs.detection_report()
        groups = np.array(hs.groups)
        if cfg.holdout and cfg.holdout not in hs.groups:
            raise HandsignError(f"--holdout {cfg.holdout!r}: no such person in {root} "
                                f"(people: {', '.join(sorted(set(hs.groups) - {''}))})")
        kept = np.flatnonzero(groups != cfg.holdout)  # every photo when there is no holdout
        train, valid = hs.landmarks(kept).split(cfg.valid_fraction, cfg.seed)
        test = hs.landmarks(np.flatnonzero(groups == cfg.holdout)) if cfg.holdout else None
        if len(train) == 0:
            raise HandsignError(f"{root}: no hand was found in the training photos")
        notes = [f"{len(hs.files)} photos of {len(set(hs.groups))} people in {root}: hand found in "
                 f"{report['overall']['found']} ({100 * report['overall']['rate']:.1f} %)",
                 "valid: photos of the training people (near-copies of training photos); leave-one-person-out "
                 "and --holdout measure people the model never saw"]
        if test is not None:
            held = groups == cfg.holdout
            notes.append(f"test: held-out person {cfg.holdout}, {int(held.sum())} photos, hand found in {len(test)} "
                         f"(the test figure counts those)")
        info = {"photos": str(root), "n_photos": int(len(kept)), "n_train": len(train), "n_valid": len(valid),
                "n_test": len(test) if test is not None else 0,
                "people": sorted(set(groups[kept]) - {""}), "holdout": cfg.holdout, "detection": report}
        return Splits(train, valid, test, notes, info, hs.label_names)

    def build(self, splits: Splits, device):
        """A LandmarkMLP that standardises its input with the clean training features' mean and spread."""
        cfg = self.cfg
        arch = {"name": "landmark_mlp", "args": {"in_features": N_FEATURES, "hidden": list(cfg.hidden),
                                                 "dropout": cfg.dropout}}
        model = create_model("landmark_mlp", len(splits.classes), **arch["args"])
        clean = torch.from_numpy(hand_features(splits.train.points, splits.train.left))
        model.mean.copy_(clean.mean(0))
        model.std.copy_(clean.std(0).clamp_min(1e-3))  # a constant feature (the wrist's own) must not divide by 0
        return model.to(device), arch

    def prepare_model(self, model):
        return model

    def default_threads(self, model, splits: Splits, device) -> str:
        if self.cfg.threads or device.type != "cpu":
            return ""
        # a 100 x 256 x 256 MLP on batches of 64: one thread is fastest, and on a busy machine several
        # threads that wait for each other were measured ~10x slower
        torch.set_num_threads(1)
        return "threads: 1 (a small MLP: one thread is fastest; --threads N overrides)"

    def notes(self, model, device) -> list[str]:
        return []

    def before_training(self, splits: Splits, log) -> dict:
        """Leave-one-person-out over the training people (--lopo): figures on people the model never saw."""
        metrics = {"detection": splits.info["detection"]}
        if self.cfg.lopo:
            hs = self.photos
            kept = hs.subset(np.flatnonzero(np.array(hs.groups) != self.cfg.holdout)) if self.cfg.holdout else hs
            result = leave_one_person_out(kept, self.cfg, log=log)
            metrics["leave_one_person_out"] = {k: v for k, v in result.items() if k != "probs"}
            log(f"leave-one-person-out: mean {100 * result['mean_accuracy']:.1f} %, "
                f"worst person {100 * result['min_accuracy']:.1f} %")
        return metrics

    def steps_per_epoch(self, splits: Splits) -> int:
        return math.ceil(len(splits.train) / self.cfg.batch_size)

    def train_one_epoch(self, model, data: LandmarkSet, optimizer, epoch, device, step0, total_steps, stop=None,
                        show_progress=True, ema=None) -> dict:
        """One pass over freshly augmented landmarks in shuffled batches; the randomness comes from (seed, epoch)."""
        cfg = self.cfg
        model.train()
        torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout
        rng = np.random.default_rng(epoch_seed(cfg.seed, epoch))  # augmentation, mirroring, order
        n = len(data)
        # "mirror" swaps the hand MediaPipe named, so the features see the mirror image of the hand (what a
        # wrong handedness guess gives at prediction time)
        flip = rng.random(n) < cfg.mirror
        points = augment(data.points, cfg.rotate, cfg.stretch, cfg.jitter, rng)
        x = torch.from_numpy(hand_features(points, data.left ^ flip)).to(device)  # (N, N_FEATURES)
        y = torch.from_numpy(data.labels).to(device)
        order = torch.from_numpy(rng.permutation(n))
        steps = math.ceil(n / cfg.batch_size)
        # epochs of a fraction of a second: a bar on a terminal, no quarter lines in a log
        progress = Progress(steps, f"epoch {epoch}/{cfg.epochs}", enabled=show_progress and sys.stderr.isatty())
        loss_sum, correct, start = 0.0, 0, time.perf_counter()
        for b in range(steps):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size].to(device)
            set_lr(optimizer, lr_at(step0 + b, total_steps, cfg))
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx], label_smoothing=cfg.label_smoothing)
            take_step(optimizer, loss, model, ema)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            progress.update(len(idx), loss.item() if progress.tty else None)
            if stop is not None and stop.signum:
                raise Stopped
        seconds = time.perf_counter() - start
        return {"train_loss": loss_sum / n, "train_acc": correct / n, "seconds": seconds,
                "images_per_s": n / seconds}

    @torch.inference_mode()
    def evaluate(self, model, data: LandmarkSet, device) -> dict:
        model.eval()
        if len(data) == 0:
            return {"loss": float("nan"), "acc": 0.0}
        logits = model(torch.from_numpy(hand_features(data.points, data.left)).to(device)).float().cpu()
        y = torch.from_numpy(data.labels)
        return {"loss": F.cross_entropy(logits, y).item(), "acc": (logits.argmax(1) == y).float().mean().item()}

    def meta_fields(self, splits: Splits) -> dict:
        """What a checkpoint says of its input: hand features, and how they were found."""
        return {"labels": splits.classes, "task": TASK, "input": "landmarks",
                "preprocess": {"version": 1, "kind": "hand-landmarks", "features": FEATURES_VERSION,
                               "detector": DETECTOR}}

    def versions(self, model, device) -> dict:
        import mediapipe  # its version, when a model is saved: importing this module loads no mediapipe (~1 s)

        return versions(mediapipe=mediapipe.__version__)


def fit(train: LandmarkSet, n_classes: int, cfg: HandsConfig, device=torch.device("cpu")):
    """A LandmarkMLP trained for cfg.epochs on `train` (no validation, the last epoch's weights; eval mode).
    The same steps as a run of the loop: leave-one-person-out trains one of these per person."""
    if len(train) == 0:
        raise HandsignError("no hands were found in the training photos")
    trainer = LandmarkTrainer(cfg)
    splits = Splits(train, None, None, [], {}, list(range(n_classes)))
    torch.manual_seed(cfg.seed)
    model, _ = trainer.build(splits, device)
    optimizer = make_optimizer(model, cfg)
    steps = trainer.steps_per_epoch(splits)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or 1)
    try:
        for epoch in range(1, cfg.epochs + 1):
            trainer.train_one_epoch(model, train, optimizer, epoch, device, (epoch - 1) * steps, cfg.epochs * steps,
                                    show_progress=False)
    finally:
        torch.set_num_threads(threads)
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
    hands = hs.landmarks(index)
    probs = landmark_probs(model, hands.points, hands.left)
    out = np.zeros((len(index), probs.shape[1]), dtype=np.float64)
    out[[k for k, i in enumerate(index) if hs.hands[i] is not None]] = probs
    return out


def leave_one_person_out(hs: HandSet, cfg: HandsConfig | None = None, log=print) -> dict:
    """Train on all people but one, test on that one, for each person. A photo where no hand is found
    counts as wrong. Returns per-person figures, their mean, and each held-out photo's probabilities
    (`probs`, rows in hs order) for choosing a fusion weight."""
    cfg = cfg or make_config("hands-asl")
    groups = np.array(hs.groups)
    probs = np.zeros((len(hs.files), len(hs.label_names)), dtype=np.float64)
    per_person = {}
    for person in hs.people():
        test = np.flatnonzero(groups == person)
        t0 = time.perf_counter()
        model = fit(hs.landmarks(np.flatnonzero(groups != person)), len(hs.label_names), cfg)
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
