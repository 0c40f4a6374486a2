"""Plain-words diagnosis of a training history: overfitting, underfitting, instability, or a good fit."""

from __future__ import annotations

GAP_POINTS = 8.0  # train minus held-out accuracy, in percentage points, that we call overfitting


def diagnose(history: list[dict], test_acc: float | None = None) -> dict:
    """history: per-epoch dicts with train_acc, valid_acc, train_loss, valid_loss (accuracies in 0..1);
    test_acc: the last epoch's model on the test split, when known.

    Returns {"verdict", "text", "gap"}; verdict is one of
    overfitting | underfitting | unstable | good-fit | too-short. `gap` is the larger of
    train-valid and train-test, in points: Sign-MNIST's training images are augmented frames of a few
    hands, so a validation split carved from them can look perfect while other hands (test) do not.
    """
    if not history:
        return {"verdict": "too-short", "text": "No epoch finished, so there is nothing to diagnose.", "gap": None}
    last = history[-1]
    tr, va = last["train_acc"] * 100, last["valid_acc"] * 100
    te = test_acc * 100 if test_acc is not None else None
    gap_valid = tr - va
    gap_test = tr - te if te is not None else float("-inf")
    gap = max(gap_valid, gap_test)
    best = max(history, key=lambda h: (h["valid_acc"], -h["valid_loss"]))  # as train.py picks it
    # drops of validation accuracy between consecutive epochs in the second half (rises are learning)
    half = history[len(history) // 2:]
    drops = [(a["valid_acc"] - b["valid_acc"]) * 100 for a, b in zip(half, half[1:])]
    worst_drop = max(drops, default=0.0)
    valid_loss_rising = (len(history) >= 3 and last["valid_loss"] > min(h["valid_loss"] for h in history) * 1.25
                         and last["train_loss"] < history[0]["train_loss"])
    test_txt = f", test {te:.1f} %" if te is not None else ""
    nums = f"train {tr:.1f} % vs valid {va:.1f} %{test_txt} after {len(history)} epochs"
    if tr >= 90 and gap >= GAP_POINTS:
        verdict = "overfitting"
        text = f"Overfitting: {nums}. "
        if gap_test >= GAP_POINTS and gap_valid < GAP_POINTS:
            text += (f"The validation split, carved from the training file, looks fine ({va:.1f} %), but on the "
                     f"test file (other hands, other sessions) accuracy is {gap_test:.1f} points below train: "
                     f"the training images are near-copies of each other, so the model memorised them "
                     f"rather than learning what generalises.")
        else:
            text += (f"Train accuracy is {gap:.1f} points above held-out accuracy: the model is memorising "
                     f"the training images instead of learning what generalises to new ones.")
        if valid_loss_rising:
            text += " The validation loss has been rising while the training loss falls."
        text += " Try a model that suits images (a CNN), data augmentation, dropout or weight decay, or more data."
    elif tr < 90 and va < 90 and gap_valid < GAP_POINTS:
        verdict = "underfitting"
        text = (f"Underfitting: {nums}. The model has not yet learned the training set; train longer, raise "
                f"the learning rate or use a bigger model.")
    elif worst_drop >= 3:
        verdict = "unstable"
        text = (f"Unstable: {nums}; validation accuracy fell by up to {worst_drop:.1f} points from one epoch to "
                f"the next in the second half of training. Lower the learning rate, use a schedule that "
                f"decays it, or a larger batch.")
    else:
        verdict = "good-fit"
        text = (f"Good fit: {nums} (gap {gap:.1f} points). Best validation accuracy "
                f"{best['valid_acc'] * 100:.2f} % at epoch {best['epoch']}.")
    return {"verdict": verdict, "text": text, "gap": round(gap, 2)}
