"""Evaluate a checkpoint on its data set's test (or valid) split: accuracy, per-class table,
confusion matrix, most-confused pairs and a grid of the most confident mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from handsign.checkpoint import load_model
from handsign.config import TrainConfig, get_recipe, make_config
from handsign.errors import HandsignError


def _dataset_for(meta: dict, split: str, data_dir):
    from handsign.data import load_dataset, split_train_valid

    cfg = meta.get("config") or {}
    name = meta.get("task") or cfg.get("dataset")
    data_dir = data_dir or cfg.get("data_dir") or None
    if name not in ("mnist", "sign_mnist", "folder"):
        raise HandsignError(f"the checkpoint does not say which data set it was trained on ({name!r})")
    folder = cfg.get("image_folder", "")
    if split == "test":
        return load_dataset(name, "test", data_dir, image_folder=folder)
    if cfg.get("valid_from_test"):
        return load_dataset(name, "test", data_dir, image_folder=folder)
    full = load_dataset(name, "train", data_dir, image_folder=folder)
    if cfg.get("limit"):
        full = full.subset(torch.arange(min(cfg["limit"], len(full))))
    return split_train_valid(full, cfg.get("valid_fraction", 0.1), cfg.get("seed", 0))[1]


def evaluate(checkpoint, split: str = "test", data_dir=None, out=None, device: str = "auto",
             batch_size: int = 1000, worst: int = 24) -> dict:
    """Evaluate a checkpoint or run folder; writes confusion.png and mistakes.png into `out` if given."""
    from handsign.runtime import select_device
    from handsign.train import predict_tensors

    if split not in ("test", "valid"):
        raise HandsignError(f"--split: choose test or valid, not {split!r}")
    dev = select_device(device)
    loaded = load_model(checkpoint, device=str(dev))
    if loaded.meta.get("input") == "landmarks":
        pixel = (loaded.meta.get("fusion") or {}).get("pixel_model")
        hint = f"; evaluate its pixel model: handsign evaluate {loaded.path.parent / pixel}.safetensors" if pixel else ""
        raise HandsignError(f"{loaded.path}: a hand-landmark model, evaluated on photos leaving one person out "
                            f"(its metrics and benchmarks/hands_lopo.py){hint}")
    data = _dataset_for(loaded.meta, split, data_dir)
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
              "confusion_matrix": cm.tolist(), "labels": labels}
    if out:
        from handsign.plots import confusion_matrix, image_grid

        out = Path(out)
        result["confusion_png"] = str(confusion_matrix(cm, labels, out / "confusion.png",
                                                       title=f"{split}: {result['accuracy']:.2%} of {len(y)}"))
        if mistakes:
            cols = 8
            imgs = [data.images[m["index"], 0].numpy() / 255.0 for m in mistakes]
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


def augment_preview(recipe: str = "course-asl-cnn-aug", dataset: str | None = None, n: int = 8, copies: int = 7,
                    seed: int = 0, data_dir=None, out="augment-preview.png", per_batch: bool = False,
                    augment: str = "course") -> Path:
    """PNG grid: each row one training image, then `copies` augmented versions of it."""
    from handsign.data import load_dataset
    from handsign.transforms import augment_batch, get_augment

    if n < 1 or copies < 1 or n > 64 or copies > 32:
        raise HandsignError("--n must be 1..64 and --copies 1..32")
    cfg = make_config(recipe) if recipe else TrainConfig()
    ds = load_dataset(dataset or cfg.dataset, "train", data_dir)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:n]
    x = ds.images[idx].float() / 255  # (n, 1, 28, 28)
    spec = get_augment(augment)
    rows, caps = [], []
    for i in range(len(idx)):
        reps = x[i:i + 1].expand(copies, -1, -1, -1).contiguous()
        aug = augment_batch(reps, spec, g, per_batch=per_batch)
        rows.append([x[i, 0].numpy()] + [a[0].numpy() for a in aug])
        caps.append([f"original '{ds.classes[int(ds.labels[idx[i]])]}'"] + ["augmented"] * copies)
    from handsign.plots import image_grid

    mode = "one draw per batch (course)" if per_batch else "one draw per image"
    return image_grid(rows, out, captions=caps, title=f"{augment} augmentation, {mode}")
