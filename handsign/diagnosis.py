"""Plain-words diagnosis of a training history: overfitting, underfitting, instability, or a good fit."""

from __future__ import annotations


def diagnose(history: list[dict]) -> dict:
    """history: per-epoch dicts with train_acc, valid_acc, train_loss, valid_loss (accuracies in 0..1).

    Returns {"verdict": ..., "text": ..., "gap": ...}; verdict is one of
    overfitting | underfitting | unstable | good-fit | too-short.
    """
    if not history:
        return {"verdict": "too-short", "text": "No epoch finished, so there is nothing to diagnose.", "gap": None}
    last = history[-1]
    tr, va = last["train_acc"] * 100, last["valid_acc"] * 100
    gap = tr - va
    best = max(history, key=lambda h: h["valid_acc"])
    # drops of validation accuracy between consecutive epochs in the second half (rises are learning)
    half = history[len(history) // 2:]
    drops = [(a["valid_acc"] - b["valid_acc"]) * 100 for a, b in zip(half, half[1:])]
    tail_swing = max(drops, default=0.0)
    valid_loss_rising = (len(history) >= 3 and last["valid_loss"] > min(h["valid_loss"] for h in history) * 1.25
                         and last["train_loss"] < history[0]["train_loss"])
    nums = f"train {tr:.1f} % vs valid {va:.1f} % after {len(history)} epochs (gap {gap:.1f} points)"
    if tr >= 90 and gap >= 8:
        verdict = "overfitting"
        text = (f"Overfitting: {nums}. The model is memorising the training images instead of learning "
                f"what generalises to new ones")
        if valid_loss_rising:
            text += "; the validation loss has been rising while the training loss falls"
        text += (". Try a model that suits images (a CNN), data augmentation, dropout or weight decay, "
                 "or more data.")
    elif tr < 90 and va < 90 and gap < 8:
        verdict = "underfitting"
        text = (f"Underfitting: {nums}. The model has not yet learned the training set; train longer, raise "
                f"the learning rate or use a bigger model.")
    elif tail_swing >= 3:
        verdict = "unstable"
        text = (f"Unstable: {nums}; validation accuracy fell by up to {tail_swing:.1f} points between the "
                f"last epochs. Lower the learning rate, use a schedule that decays it, or a larger batch.")
    else:
        verdict = "good-fit"
        text = (f"Good fit: {nums}. Best validation accuracy {best['valid_acc'] * 100:.2f} % "
                f"at epoch {best['epoch']}.")
    return {"verdict": verdict, "text": text, "gap": round(gap, 2)}
