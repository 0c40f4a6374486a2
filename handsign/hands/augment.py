"""Augmentation in landmark space: what a camera a little to the side, a turned hand and MediaPipe's own wobble
do to the 21 points. NumPy only; the training loop of the landmark family (handsign.train.landmarks) calls it
once per epoch with that epoch's generator."""

from __future__ import annotations

import numpy as np

from handsign.hands.landmarks import MIDDLE_MCP, WRIST


def augment(points: np.ndarray, rotate: float, stretch: float, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Random in-plane turn about the wrist (degrees, +-rotate), aspect stretch (exp(+-stretch)) and jitter
    (normal, in palm sizes) of (N, 21, 3) pixel landmarks. Mirroring is done by the caller, by swapping the
    handedness: features are computed on a right hand."""
    n = len(points)
    p = points - points[:, WRIST:WRIST + 1]
    palm = np.linalg.norm(p[:, MIDDLE_MCP, :2], axis=-1)[:, None, None]  # wrist -> middle knuckle, px
    a = np.deg2rad(rng.uniform(-rotate, rotate, n))[:, None]
    c, s = np.cos(a), np.sin(a)
    x, y = p[..., 0], p[..., 1]
    sx = np.exp(rng.uniform(-stretch, stretch, n))[:, None]
    out = np.stack([(c * x - s * y) * sx, (s * x + c * y) / sx, p[..., 2]], -1)
    return out + rng.normal(0, jitter, out.shape) * palm
