"""The optimizer, the learning-rate schedule and the per-epoch seeds: the arithmetic every family's step shares.

The learning rate is a pure function of the step and each epoch's randomness a pure function of (seed, epoch),
so a run resumed from the checkpoint of epoch k ends with exactly the metrics of an uninterrupted run.
"""

from __future__ import annotations

import math

import torch


def make_optimizer(model, cfg) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)


def lr_at(step: int, total: int, cfg) -> float:
    """Learning rate of optimizer step `step` (0-based) of `total`: a pure function, so resume is exact."""
    t = step / max(total, 1)
    if cfg.schedule == "onecycle":  # linear warm-up over 25 %, then linear decay to ~0
        return cfg.lr * (t / 0.25 if t < 0.25 else max(1 - t, 0.0) / 0.75)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))
    return cfg.lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def take_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, model, ema=None) -> None:
    """One optimizer step on `loss`; `ema` (an AveragedModel), if given, then averages `model`'s new weights."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if ema is not None:
        ema.update_parameters(model)
