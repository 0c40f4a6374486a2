"""PNG figures: learning curves, picture grids and confusion matrices (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handsign.files import atomic_open


def _plt():
    import matplotlib  # on first use: importing handsign.infer.evaluate or .train loads no matplotlib (~0.5 s)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    try:
        with atomic_open(path) as f:
            fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    finally:
        _plt().close(fig)
    return path


def learning_curves(history: list[dict], path, title: str = "") -> Path:
    """Loss and accuracy per epoch, train vs valid, side by side."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax1.plot(epochs, [h["valid_loss"] for h in history], "o-", label="valid")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax2.plot(epochs, [100 * h["train_acc"] for h in history], "o-", label="train")
    ax2.plot(epochs, [100 * h["valid_acc"] for h in history], "o-", label="valid")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def image_grid(rows: list[list[np.ndarray]], path, row_titles=None, captions=None, title: str = "") -> Path:
    """rows of (H, W) arrays in [0, 1] -> one PNG; captions[r][c] under each picture if given."""
    plt = _plt()
    nr, nc = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(nr, nc, figsize=(1.3 * nc, 1.45 * nr + 0.3), squeeze=False)
    for r in range(nr):
        for c in range(nc):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(rows[r]):
                ax.imshow(rows[r][c], cmap="gray", vmin=0, vmax=1)
                if captions:
                    ax.set_xlabel(captions[r][c], fontsize=7)
            else:
                ax.axis("off")
        if row_titles:
            axes[r][0].set_ylabel(row_titles[r], fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(cm: np.ndarray, labels: list[str], path, title: str = "") -> Path:
    """Row-normalised confusion matrix (true rows, predicted columns) with counts off the diagonal."""
    plt = _plt()
    n = len(labels)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.38 * n + 2, 0.38 * n + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    for i in range(n):
        for j in range(n):
            if cm[i, j] and i != j:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6, color="crimson")
    return _save(fig, path)
