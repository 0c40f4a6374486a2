"""Hand landmarks -> a feature vector that ignores where the hand is, how big and which hand it is.

NumPy only: the same function serves training, evaluation, predict, the server and the ONNX path.

    x = hand_features(points, left)   # points (N, 21, 3) in pixels, left (N,) bool -> (N, N_FEATURES)

The canonical hand: left hands mirrored to right; the wrist at the origin; lengths in palm sizes
(mean wrist -> index/middle/pinky knuckle distance, in 3-D); turned in the image plane so the
wrist -> middle knuckle line points up. What the hand's shape alone cannot tell is kept apart as
`orientation`: some letters differ only by where they point (k/p, g/q, h/u), so the angle that was
turned away is given to the classifier as (sin, cos), and the palm's facing as its normal.
"""

from __future__ import annotations

import itertools

import numpy as np

from handsign.hands.landmarks import FINGERTIPS, INDEX_MCP, MIDDLE_MCP, PINKY_MCP, THUMB_TIP, WRIST

FEATURES_VERSION = 1
_TIP_PAIRS = list(itertools.combinations(FINGERTIPS, 2))  # 10 fingertip-to-fingertip distances
_THUMB_TO = [j for j in range(5, 21) if j not in FINGERTIPS]  # thumb tip to every other finger's joints: 12
# the finger chains whose bend angles are measured: wrist -> MCP -> PIP -> DIP -> tip (thumb: CMC..tip)
_CHAINS = [(0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (0, 9, 10, 11, 12), (0, 13, 14, 15, 16), (0, 17, 18, 19, 20)]
_JOINTS = [(c[i - 1], c[i], c[i + 1]) for c in _CHAINS for i in range(1, 4)]  # 15 bend angles

# layout of the feature vector (names for reports and tests)
BLOCKS = {"points": 60, "tip_distances": len(_TIP_PAIRS), "thumb_distances": len(_THUMB_TO),
          "bends": len(_JOINTS), "orientation": 2, "palm_normal": 3}
N_FEATURES = sum(BLOCKS.values())  # 102
# the blocks that must not change when the hand is turned in the image plane
ROTATION_INVARIANT = ("points", "tip_distances", "thumb_distances", "bends")


def block_slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, n in BLOCKS.items():
        out[name] = slice(start, start + n)
        start += n
    return out


def canonical(points: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 21, 3) pixels -> ((N, 21, 3) canonical points, (N,) angle turned away in radians)."""
    p = np.array(points, dtype=np.float64, copy=True)
    p[np.asarray(left, dtype=bool), :, 0] *= -1  # mirror left hands to right (x only)
    p -= p[:, WRIST:WRIST + 1]
    palm = np.linalg.norm(p[:, [INDEX_MCP, MIDDLE_MCP, PINKY_MCP]], axis=2).mean(axis=1)  # (N,)
    p /= np.maximum(palm, 1e-6)[:, None, None]
    # image y grows downwards: "up" is -y; angle of the wrist -> middle knuckle line from up, clockwise
    angle = np.arctan2(p[:, MIDDLE_MCP, 0], -p[:, MIDDLE_MCP, 1])
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, y = p[..., 0].copy(), p[..., 1].copy()
    p[..., 0] = c * x + s * y  # turn by -angle: the middle knuckle goes to (0, -|.|)
    p[..., 1] = -s * x + c * y
    return p, angle


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle at b of the path a-b-c, in radians (pi = straight)."""
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-9)
    return np.arccos(np.clip(cos, -1, 1))


def hand_features(points, left) -> np.ndarray:
    """(N, 21, 3) points in pixels and (N,) left-hand flags -> (N, N_FEATURES) float32."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 2:
        return hand_features(points[None], np.atleast_1d(left))[0]
    if points.shape[1:] != (21, 3):
        raise ValueError(f"hand points must have shape (N, 21, 3), got {points.shape}")
    p, angle = canonical(points, left)
    tips = np.stack([np.linalg.norm(p[:, a] - p[:, b], axis=-1) for a, b in _TIP_PAIRS], 1)
    thumb = np.linalg.norm(p[:, _THUMB_TO] - p[:, THUMB_TIP:THUMB_TIP + 1], axis=-1)
    bends = np.stack([_angle(p[:, a], p[:, b], p[:, c]) for a, b, c in _JOINTS], 1) / np.pi
    normal = np.cross(p[:, INDEX_MCP], p[:, PINKY_MCP])  # palm facing: sign flips between palm and back
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
    orientation = np.stack([np.sin(angle), np.cos(angle)], 1)
    out = np.concatenate([p[:, 1:].reshape(len(p), -1), tips, thumb, bends, orientation, normal], 1)
    return out.astype(np.float32)


def palm_size(points) -> np.ndarray:
    """(N, 21, 3) or (21, 3) points in pixels -> palm size(s) in pixels: the mean wrist -> index, middle and pinky
    knuckle distance in 3-D (the unit `canonical` divides by)."""
    p = np.asarray(points, dtype=np.float64)
    d = p[..., [INDEX_MCP, MIDDLE_MCP, PINKY_MCP], :] - p[..., WRIST:WRIST + 1, :]
    return np.linalg.norm(d, axis=-1).mean(axis=-1)


def hand_speed(previous, points, dt_ms: float) -> float:
    """How fast the hand moves between two frames, in palm sizes per second: the displacement of the mean of its
    21 points in the image plane over the mean palm size of the two frames. Scale-free (near or far from the
    camera alike) and in time, not frames (15 or 60 frames/s alike): the decoder's `motion`. 0 when dt <= 0."""
    if dt_ms <= 0:
        return 0.0
    a, b = np.asarray(previous, dtype=np.float64), np.asarray(points, dtype=np.float64)
    shift = np.linalg.norm(b[:, :2].mean(axis=0) - a[:, :2].mean(axis=0))
    palm = max(0.5 * (palm_size(a) + palm_size(b)), 1e-6)
    return float(shift / palm / (dt_ms / 1000.0))
