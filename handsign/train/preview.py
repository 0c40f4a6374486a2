"""Stage 4's picture: a grid of training images, each followed by augmented copies of it
(`handsign augment-preview`, and the course report)."""

from __future__ import annotations

from pathlib import Path

import torch

from handsign.data.readers import load_dataset
from handsign.errors import HandsignError
from handsign.images.augment import augment_batch, get_augment
from handsign.images.preprocess import to_model_input
from handsign.train.config import TrainConfig, make_config
from handsign.train.plots import image_grid


def augment_preview(recipe: str = "course-asl-cnn-aug", dataset: str | None = None, n: int = 8, copies: int = 7,
                    seed: int = 0, data_dir=None, out="augment-preview.png", per_batch: bool = False,
                    augment: str = "course") -> Path:
    """PNG grid: each row one training image, then `copies` augmented versions of it."""
    if n < 1 or copies < 1 or n > 64 or copies > 32:
        raise HandsignError("--n must be 1..64 and --copies 1..32")
    if Path(out).suffix.lower() != ".png":  # the grid is always a PNG: a .jpg name would hold PNG bytes
        raise HandsignError(f"--out {out}: the preview is a PNG image; give a name ending in .png")
    cfg = make_config(recipe) if recipe else TrainConfig()
    ds = load_dataset(dataset or cfg.dataset, "train", data_dir)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:n]
    x = to_model_input(ds.images[idx])  # (n, 1, 28, 28) in [0, 1]
    spec = get_augment(augment)
    rows, caps = [], []
    for i in range(len(idx)):
        reps = x[i:i + 1].expand(copies, -1, -1, -1).contiguous()
        aug = augment_batch(reps, spec, g, per_batch=per_batch)
        rows.append([x[i, 0].numpy()] + [a[0].numpy() for a in aug])
        caps.append([f"original '{ds.classes[int(ds.labels[idx[i]])]}'"] + ["augmented"] * copies)
    mode = "one draw per batch (course)" if per_batch else "one draw per image"
    return image_grid(rows, out, captions=caps, title=f"{augment} augmentation, {mode}")
