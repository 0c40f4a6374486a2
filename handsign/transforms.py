"""Training-time augmentation, vectorised over a batch of tensors.

The course's torchvision pipeline (RandomRotation(5), RandomResizedCrop(28, scale=(0.9, 1), ratio=(1, 1)),
RandomHorizontalFlip(), ColorJitter(brightness=0.2, contrast=0.5)) is composed here into one affine
warp per image (a single grid_sample for the whole batch) plus a per-image colour jitter, so every
image gets its own random draw at the cost of two batched ops. `per_batch=True` reproduces the
course, which applied the transforms to a whole batch tensor and so drew one set per batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSpec:
    rotation_deg: float = 5.0          # uniform in [-r, r] degrees
    crop_scale: tuple = (0.9, 1.0)     # area fraction of the square crop (ratio fixed at 1)
    hflip_p: float = 0.5               # probability of a left-right mirror
    brightness: float = 0.2            # factor uniform in [1 - b, 1 + b]
    contrast: float = 0.5              # factor uniform in [1 - c, 1 + c], around each image's mean
    translate: float = 0.0             # extra shift, uniform in [-t, t] x image side, each axis


# "hands": Sign-MNIST's test set is other hands, so besides the course set, shift and scale more
# "digits": MNIST is centred by mass and never mirrored: small shifts, scale and rotation only
AUGMENT_PRESETS = {
    "none": None,
    "course": AugmentSpec(),
    "hands": AugmentSpec(rotation_deg=10.0, crop_scale=(0.8, 1.0), translate=0.1),
    "digits": AugmentSpec(rotation_deg=10.0, crop_scale=(0.85, 1.0), hflip_p=0.0, brightness=0.0,
                          contrast=0.0, translate=0.08),
}


def _uniform(n, lo, hi, g, device):
    return lo + (hi - lo) * torch.rand(n, generator=g, device=g.device).to(device)


def augment_batch(x: torch.Tensor, spec: AugmentSpec | None, generator: torch.Generator,
                  per_batch: bool = False) -> torch.Tensor:
    """(N, C, H, W) float in [0, 1] -> augmented copy, same shape. Square images assumed (H == W)."""
    if spec is None:
        return x
    n, dev = x.shape[0], x.device
    draws = 1 if per_batch else n
    angle = _uniform(draws, -spec.rotation_deg, spec.rotation_deg, generator, dev) * (math.pi / 180)
    side = _uniform(draws, *spec.crop_scale, generator, dev).sqrt()  # crop side / image side
    # crop centre, normalised to [-1, 1]: anywhere the crop still fits inside the image
    cx = _uniform(draws, -1, 1, generator, dev) * (1 - side)
    cy = _uniform(draws, -1, 1, generator, dev) * (1 - side)
    if spec.translate:  # normalised coordinates span 2 per image side
        cx = cx + _uniform(draws, -2 * spec.translate, 2 * spec.translate, generator, dev)
        cy = cy + _uniform(draws, -2 * spec.translate, 2 * spec.translate, generator, dev)
    flip = torch.where(_uniform(draws, 0, 1, generator, dev) < spec.hflip_p, -1.0, 1.0)
    bright = _uniform(draws, 1 - spec.brightness, 1 + spec.brightness, generator, dev)
    contrast = _uniform(draws, 1 - spec.contrast, 1 + spec.contrast, generator, dev)
    if per_batch:
        angle, side, cx, cy, flip, bright, contrast = (t.expand(n) for t in
                                                        (angle, side, cx, cy, flip, bright, contrast))

    # output coords -> flip -> crop (scale + shift) -> rotation -> input coords: theta = R @ [S | c]
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([
        torch.stack([cos * side * flip, -sin * side, cos * cx - sin * cy], 1),
        torch.stack([sin * side * flip, cos * side, sin * cx + cos * cy], 1),
    ], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    out = (out * bright.view(n, 1, 1, 1).to(x.dtype)).clamp_(0, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * contrast.view(n, 1, 1, 1).to(x.dtype) + mean).clamp_(0, 1)


def get_augment(name: str) -> AugmentSpec | None:
    return AUGMENT_PRESETS[name]
