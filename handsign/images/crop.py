"""Finding the hand in a photo: the box of the largest region unlike the picture's border, and the
square crop around it. Used by preprocess's photo spec (`crop: "foreground"`); NumPy + Pillow only.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def _otsu(values: np.ndarray) -> float:
    """Threshold that best splits `values` into two classes (Otsu 1979), on a 256-bin histogram."""
    hist, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = ((hist * centres).sum() - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    return float(centres[np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def find_foreground(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(H, W, 3) picture -> box (top, left, bottom, right) of the largest region unlike its border, or None.

    The background is modelled as a plane per colour channel fitted to the border pixels (a plain wall,
    or one lit unevenly); pixels far from it in colour are foreground (Otsu threshold, floored by the
    border's own spread); the connected region holding the most of them is the hand (+ arm).
    """
    h, w, _ = rgb.shape
    step = max(1, max(h, w) // 96)  # work at <= ~96 px: enough to find a hand, fast
    small = rgb[::step, ::step]
    sh, sw, _ = small.shape
    if sh < 8 or sw < 8:
        return None
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    border = np.zeros((sh, sw), dtype=bool)
    border[:2], border[-2:], border[:, :2], border[:, -2:] = True, True, True, True
    design = np.stack([np.ones_like(xs), xs / sw, ys / sh], -1)  # (sh, sw, 3)
    coef, *_ = np.linalg.lstsq(design[border], small[border], rcond=None)  # (3 terms, 3 channels)
    dist = np.linalg.norm(small - design @ coef, axis=-1)  # (sh, sw) colour distance from the wall
    floor = 2.5 * float(np.percentile(dist[border], 75)) + 12.0  # border texture/noise is not a hand
    mask = dist > max(_otsu(dist), floor)
    if mask.sum() < 0.01 * sh * sw:
        return None
    # opening (3x3 min then max) drops specks; then keep the connected region with the most pixels
    m = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))
    mask = np.asarray(m) > 0
    region = _largest_region(mask)
    if region is None or region.sum() < 0.01 * sh * sw:
        return None
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # an arm reaching the bottom edge: keep the hand end (Sign-MNIST frames show the hand and wrist)
    if bottom >= sh - 2 and (bottom - top) > 1.25 * (right - left):
        bottom = top + int(round(1.25 * (right - left)))
    return top * step, left * step, min(h, bottom * step), min(w, right * step)


def _largest_region(mask: np.ndarray) -> np.ndarray | None:
    """The 4-connected component of `mask` with the most pixels: every pixel takes the largest id among
    its neighbours until nothing changes (a few dozen vectorised sweeps at ~96x96)."""
    h, w = mask.shape
    lab = np.where(mask, np.arange(1, h * w + 1, dtype=np.int32).reshape(h, w), 0)
    for _ in range(h * w):
        pad = np.pad(lab, 1)
        new = np.maximum.reduce([lab, pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]]) * mask
        if np.array_equal(new, lab):
            break
        lab = new
    ids, counts = np.unique(lab[mask], return_counts=True)
    return lab == ids[np.argmax(counts)] if ids.size else None


def crop_square(rgb: np.ndarray, box, margin: float) -> np.ndarray:
    """Square crop around `box` with `margin`, padded with the border's median colour where it leaves the picture."""
    h, w, _ = rgb.shape
    top, left, bottom, right = box
    side = int(round(max(bottom - top, right - left) * (1 + 2 * margin)))
    cy, cx = (top + bottom) / 2, (left + right) / 2
    y0, x0 = int(round(cy - side / 2)), int(round(cx - side / 2))
    edge = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    out = np.empty((side, side, 3), dtype=np.float32)
    out[:] = np.median(edge, axis=0)
    sy0, sx0, sy1, sx1 = max(y0, 0), max(x0, 0), min(y0 + side, h), min(x0 + side, w)
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as PIL's "L"
