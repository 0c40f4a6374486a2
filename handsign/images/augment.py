"""Training-time augmentation, vectorised over a batch of tensors.

The course's torchvision pipeline (RandomRotation(5), RandomResizedCrop(28, scale=(0.9, 1), ratio=(1, 1)),
RandomHorizontalFlip(), ColorJitter(brightness=0.2, contrast=0.5)) is composed here into one affine
warp per image (a single grid_sample for the whole batch) plus a per-image colour jitter, so every
image gets its own random draw at the cost of two batched ops. `per_batch=True` reproduces the
course, which applied the transforms to a whole batch tensor and so drew one set per batch.

The "photo" preset imitates what a webcam or phone picture looks like after handsign's photo
preprocessing (hand crop, square pad, brightness match): a random perspective warp (scale, shift,
rotation, tilt) whose uncovered area is filled with a random background instead of black, uneven
lighting and gamma, blur, sensor noise and a resolution loss, all drawn per image in a few batched ops.
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


@dataclass(frozen=True)
class PhotoAugmentSpec:
    p: float = 0.85                    # probability that an image gets the photo effects (the rest: mild warp only)
    rotation_deg: float = 12.0         # uniform in [-r, r] degrees
    zoom: tuple = (0.8, 1.2)           # side of the sampled window / image side (> 1 shows background)
    shift: float = 0.12                # window centre offset, fraction of the half-side, uniform in [-s, s]
    tilt: float = 0.06                 # perspective terms of the homography, uniform in [-t, t]
    hflip_p: float = 0.5               # probability of a left-right mirror (left hands, mirrored webcams)
    gamma: tuple = (0.7, 1.45)         # x ** gamma, log-uniform
    contrast: float = 0.35             # factor uniform in [1 - c, 1 + c], around each image's mean
    brightness: float = 0.1            # added offset uniform in [-b, b]
    light_slope: float = 0.3           # multiplicative illumination ramp 1 + a*x + b*y, |a|, |b| <= slope
    blur_p: float = 0.5                # probability of a 3x3 Gaussian blur, mixed in with a random weight
    noise_std: float = 0.03            # Gaussian noise sigma uniform in [0, s], in [0, 1] units
    lowres_p: float = 0.3              # probability of a down-up resample (16..24 px), as after a small crop


# "hands": Sign-MNIST's test set is other hands, so besides the course set, shift and scale more
# "digits": MNIST is centred by mass and never mirrored: small shifts, scale and rotation only
AUGMENT_PRESETS = {
    "none": None,
    "course": AugmentSpec(),
    "hands": AugmentSpec(rotation_deg=10.0, crop_scale=(0.8, 1.0), translate=0.1),
    "digits": AugmentSpec(rotation_deg=10.0, crop_scale=(0.85, 1.0), hflip_p=0.0, brightness=0.0,
                          contrast=0.0, translate=0.08),
    "photo": PhotoAugmentSpec(),
}


def _uniform(n, lo, hi, g, device):
    return lo + (hi - lo) * torch.rand(n, generator=g, device=g.device).to(device)


def augment_batch(x: torch.Tensor, spec: AugmentSpec | None, generator: torch.Generator,
                  per_batch: bool = False) -> torch.Tensor:
    """(N, C, H, W) float in [0, 1] -> augmented copy, same shape. Square images assumed (H == W)."""
    if spec is None:
        return x
    if isinstance(spec, PhotoAugmentSpec):
        return photo_augment_batch(x, spec, generator)
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


def _background(n, h, w, g, dev):
    """(N, 1, H, W) random backgrounds in [0, 1]: a flat level + a linear gradient + low-frequency texture."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=dev), torch.linspace(-1, 1, w, device=dev), indexing="ij")
    level = _uniform(n, 0.05, 0.95, g, dev).view(n, 1, 1, 1)
    gx, gy = (_uniform(n, -0.3, 0.3, g, dev).view(n, 1, 1, 1) for _ in range(2))
    coarse = torch.rand(n, 1, 4, 4, generator=g, device=g.device).to(dev) - 0.5  # (N, 1, 4, 4)
    # bicubic upsampling is separable and linear: (H, 4) @ coarse @ (4, W) is F.interpolate(coarse, (H, W),
    # mode="bicubic") as two small products, several times cheaper than the resampling kernel on 1 channel
    texture = _bicubic_matrix(h, dev) @ coarse @ _bicubic_matrix(w, dev).T
    amount = _uniform(n, 0, 0.3, g, dev).view(n, 1, 1, 1)
    return (level + gx * xs + gy * ys + amount * texture).clamp(0, 1)


def _bicubic_matrix(size: int, dev) -> torch.Tensor:
    """(size, 4): row i holds the weights F.interpolate(mode="bicubic", align_corners=False) gives the 4
    coarse samples for output position i (the 1-D kernel; resampling the identity reads it off)."""
    eye = torch.eye(4, device=dev).view(1, 1, 4, 4)
    return F.interpolate(eye, size=(size, 4), mode="bicubic", align_corners=False)[0, 0]


def photo_augment_batch(x: torch.Tensor, spec: PhotoAugmentSpec, g: torch.Generator) -> torch.Tensor:
    """(N, 1, H, W) float in [0, 1] -> photo-like copy, same shape; every image draws its own parameters."""
    n, _, h, w = x.shape
    dev, dt = x.device, x.dtype
    heavy = (_uniform(n, 0, 1, g, dev) < spec.p).to(dt)  # (N,) 1 = full photo effects, 0 = mild warp only

    def amp(v):  # heavy images use the full range, the others a quarter of it
        return v * (0.25 + 0.75 * heavy)

    angle = amp(_uniform(n, -spec.rotation_deg, spec.rotation_deg, g, dev)) * (math.pi / 180)
    zoom = 1 + amp(_uniform(n, *spec.zoom, g, dev) - 1)
    cx, cy = (amp(_uniform(n, -spec.shift, spec.shift, g, dev)) for _ in range(2))
    px, py = (amp(_uniform(n, -spec.tilt, spec.tilt, g, dev)) for _ in range(2))
    flip = torch.where(_uniform(n, 0, 1, g, dev) < spec.hflip_p, -1.0, 1.0)
    cos, sin = angle.cos(), angle.sin()
    zeros, ones = torch.zeros_like(cos), torch.ones_like(cos)
    # homography output coords -> input coords (normalised [-1, 1]): rotation @ zoom/flip, shift, tilt row
    hom = torch.stack([
        torch.stack([cos * zoom * flip, -sin * zoom, cx], 1),
        torch.stack([sin * zoom * flip, cos * zoom, cy], 1),
        torch.stack([px, py, ones], 1),
    ], 1)  # (N, 3, 3)
    ys, xs = torch.meshgrid(torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=dev),
                            torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=dev), indexing="ij")
    hom = hom.to(dt)
    out_x, out_y = xs.reshape(1, h * w), ys.reshape(1, h * w)  # (1, HW) output pixel coordinates

    def src(row):  # (N, HW): row `row` of hom @ [x, y, 1]; multiply-adds beat a batched matmul with K = 3
        return hom[:, row, 0:1] * out_x + hom[:, row, 1:2] * out_y + hom[:, row, 2:3]

    depth = src(2).clamp_min(1e-3)
    grid = torch.stack([src(0) / depth, src(1) / depth], -1).view(n, h, w, 2)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    covered = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (N, 1, H, W): 1 where the picture is, 0 off its edge
    out = warped + (1 - covered) * _background(n, h, w, g, dev).to(dt)

    # lighting: gamma, contrast around the mean, offset, an illumination ramp
    gamma = torch.exp(amp(_uniform(n, math.log(spec.gamma[0]), math.log(spec.gamma[1]), g, dev)))
    out = out.clamp(1e-4, 1) ** gamma.view(n, 1, 1, 1).to(dt)
    contrast = 1 + amp(_uniform(n, -spec.contrast, spec.contrast, g, dev))
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast.view(n, 1, 1, 1).to(dt) + mean
    out = out + amp(_uniform(n, -spec.brightness, spec.brightness, g, dev)).view(n, 1, 1, 1).to(dt)
    sx, sy = (amp(_uniform(n, -spec.light_slope, spec.light_slope, g, dev)).view(n, 1, 1, 1).to(dt)
              for _ in range(2))
    out = (out * (1 + sx * xs + sy * ys)).clamp(0, 1)

    # blur: a 3x3 Gaussian mixed in per image; resolution loss: down to 16..24 px and back up
    # the 3x3 Gaussian [1 2 1]' [1 2 1] / 16 as its two 1-D passes (a 1-channel conv2d is slow on CPU)
    padded = F.pad(out, (1, 1, 1, 1), mode="replicate")  # (N, 1, H + 2, W + 2)
    rows = padded[:, :, :-2] + 2 * padded[:, :, 1:-1] + padded[:, :, 2:]  # (N, 1, H, W + 2)
    blurred = (rows[..., :-2] + 2 * rows[..., 1:-1] + rows[..., 2:]) / 16
    mix = heavy * (_uniform(n, 0, 1, g, dev) < spec.blur_p).to(dt) * _uniform(n, 0.3, 1, g, dev).to(dt)
    out = out + mix.view(n, 1, 1, 1) * (blurred - out)
    lowres = heavy * (_uniform(n, 0, 1, g, dev) < spec.lowres_p).to(dt)
    if lowres.any():
        side = int(torch.randint(16, 25, (1,), generator=g))  # one size per batch: one resample op
        chosen = lowres.nonzero().flatten()  # only those images (~1 in 4) are resampled
        small = F.interpolate(out[chosen], size=(side, side), mode="area")
        out = out.index_copy(0, chosen, F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False))
    sigma = heavy * _uniform(n, 0, spec.noise_std, g, dev).to(dt)
    noise = torch.randn(x.shape, generator=g, device=g.device).to(dev, dt)
    return (out + sigma.view(n, 1, 1, 1) * noise).clamp_(0, 1)


def get_augment(name: str) -> AugmentSpec | PhotoAugmentSpec | None:
    return AUGMENT_PRESETS[name]
