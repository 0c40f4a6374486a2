"""Evaluate a saved picture model on its data set's test (or valid) split: accuracy, per-class table, confusion
matrix, most-confused pairs and a grid of the most confident mistakes. (The loss and accuracy on tensors that
training computes each epoch are handsign.train.pixels.evaluate_tensors.)"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from handsign.saved.checkpoint import load_model
from handsign.train.config import TrainConfig
from handsign.train.pixels import evaluate_tensors, predict_tensors  # noqa: F401 (evaluate_tensors: re-exported)
from handsign.data.readers import Dataset, load_dataset, resolve_data_dir, split_train_valid
from handsign.errors import HandsignError
from handsign.saved.meta import ModelMeta
from handsign.train.plots import confusion_matrix, image_grid
from handsign.saved.checkpoint import BUNDLED, resolve_model
from handsign.images.preprocess import to_model_input
from handsign.train.machine import select_device


def _dataset_for(meta: ModelMeta, split: str, data_dir) -> tuple[Dataset, list[str]]:
    """The split to evaluate on, and notes for the user (the data used is not the data trained with). The valid
    split is carved again exactly as training carved it, from the run's own config."""
    if meta.input != "image":
        raise HandsignError(f"evaluate reads pictures; this is a {meta.input} model (its leave-one-person-out "
                            f"figures are in its metrics: handsign train --recipe {meta.recipe or 'hands-asl'})")
    cfg = TrainConfig.from_dict(meta.config)
    name = meta.task or cfg.dataset
    if name not in ("mnist", "sign_mnist", "folder"):
        raise HandsignError(f"the checkpoint does not say which data set it was trained on ({name!r})")
    # --data-dir, else where the model was trained if that folder is here (a bundled model's relative path
    # may not be), else $HANDSIGN_DATA or ./data
    notes = []
    if not data_dir and cfg.data_dir and not Path(cfg.data_dir).is_dir():  # other copies may differ: say so
        notes.append(f"NOTE: the data folder this model was trained with, {cfg.data_dir!r}, is not here; evaluating "
                     f"on {resolve_data_dir(None)} instead (--data-dir chooses)")
    data_dir = data_dir or (cfg.data_dir if cfg.data_dir and Path(cfg.data_dir).is_dir() else None)
    # an image folder's pictures go through the model's own spec, as predict reads them
    kw = {"image_folder": cfg.image_folder, "spec": meta.preprocess}
    if split == "test" or cfg.valid_from_test:
        return load_dataset(name, "test", data_dir, **kw), notes
    full = load_dataset(name, "train", data_dir, **kw)
    if cfg.limit:
        full = full.subset(torch.arange(min(cfg.limit, len(full))))
    return split_train_valid(full, cfg.valid_fraction, cfg.seed, by=cfg.valid_split,
                             similarity=cfg.group_similarity)[1], notes


def evaluate(checkpoint, split: str = "test", data_dir=None, out=None, device: str = "auto",
             batch_size: int = 1000, worst: int = 24) -> dict:
    """Evaluate a checkpoint or run folder; writes confusion.png and mistakes.png into `out` if given."""
    if split not in ("test", "valid"):
        raise HandsignError(f"--split: choose test or valid, not {split!r}")
    if out and Path(out).exists() and not Path(out).is_dir():  # said now, not after the whole evaluation
        raise HandsignError(f"--out {out}: a file, not a folder (it gets confusion.png and mistakes.png)")
    dev = select_device(device)
    if str(checkpoint) in BUNDLED:  # a bundled name ("mnist", "asl")
        checkpoint = resolve_model(checkpoint)
    loaded = load_model(checkpoint, device=str(dev))
    if loaded.meta.input == "landmarks":
        pixel = loaded.meta.fusion.get("pixel_model")
        hint = f"; evaluate its pixel model: handsign evaluate {loaded.path.parent / pixel}.safetensors" if pixel else ""
        raise HandsignError(f"{loaded.path}: a hand-landmark model, evaluated on photos leaving one person out "
                            f"(its metrics and benchmarks/hands_lopo.py){hint}")
    data, notes = _dataset_for(loaded.meta, split, data_dir)
    labels = loaded.labels
    if data.classes != labels:
        raise HandsignError(f"the data's classes {data.classes} differ from the model's labels {labels}")
    logits = predict_tensors(loaded.model, data.images, batch_size, dev)
    probs = torch.softmax(logits, 1)
    pred = probs.argmax(1)
    y = data.labels
    n_cls = len(labels)
    cm = torch.bincount(y * n_cls + pred, minlength=n_cls * n_cls).reshape(n_cls, n_cls).numpy()
    per_class = {}
    for i, name in enumerate(labels):
        total = int(cm[i].sum())
        per_class[name] = {"n": total, "correct": int(cm[i, i]),
                           "accuracy": (float(cm[i, i]) / total) if total else None}
    off = [(int(cm[i, j] + cm[j, i]), labels[i], labels[j]) for i in range(n_cls) for j in range(i + 1, n_cls)]
    confused = [{"pair": [a, b], "count": c} for c, a, b in sorted(off, reverse=True)[:10] if c]
    wrong = torch.nonzero(pred != y).flatten()
    conf = probs[wrong, pred[wrong]]
    order = wrong[conf.argsort(descending=True)][:worst]
    mistakes = [{"index": int(i), "true": labels[int(y[i])], "predicted": labels[int(pred[i])],
                 "probability": round(float(probs[i, pred[i]]), 4)} for i in order]
    result = {"checkpoint": str(loaded.path), "split": split, "dataset": data.name, "n": len(y),
              "accuracy": float((pred == y).float().mean()) if len(y) else None,
              "loss": float(torch.nn.functional.cross_entropy(logits, y)) if len(y) else None,
              "per_class": per_class, "most_confused": confused, "worst_mistakes": mistakes,
              "confusion_matrix": cm.tolist(), "labels": labels, "data": data.source, "notes": notes}
    if out:
        out = Path(out)
        result["confusion_png"] = str(confusion_matrix(cm, labels, out / "confusion.png",
                                                       title=f"{split}: {result['accuracy']:.2%} of {len(y)}"))
        if mistakes:
            cols = 8
            imgs = [to_model_input(data.images[m["index"], 0].numpy()) for m in mistakes]
            caps = [f"{m['true']}→{m['predicted']} {m['probability']:.0%}" for m in mistakes]
            rows = [imgs[i:i + cols] for i in range(0, len(imgs), cols)]
            capr = [caps[i:i + cols] for i in range(0, len(caps), cols)]
            result["mistakes_png"] = str(image_grid(rows, out / "mistakes.png", captions=capr,
                                                    title="most confident mistakes (true→predicted)"))
        (out / "evaluation.json").write_text(json.dumps(result, indent=2))
    return result


def format_report(r: dict) -> str:
    lines = [f"{r['checkpoint']} on {r['dataset']} {r['split']}: accuracy {r['accuracy']:.2%} "
             f"({sum(c['correct'] for c in r['per_class'].values())}/{r['n']}), loss {r['loss']:.4f}",
             "", "class      n  correct  accuracy"]
    for name, c in r["per_class"].items():
        acc = f"{c['accuracy']:.2%}" if c["accuracy"] is not None else "-"
        lines.append(f"{name:<5} {c['n']:>6} {c['correct']:>8} {acc:>9}")
    if r["most_confused"]:
        lines += ["", "most confused pairs: " + ", ".join(f"{a}/{b} ({c['count']})" for c in r["most_confused"][:5]
                                                         for a, b in [c["pair"]])]
    for key in ("confusion_png", "mistakes_png"):
        if key in r:
            lines.append(f"wrote {r[key]}")
    return "\n".join(lines)
