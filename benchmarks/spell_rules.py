"""Rules for J and Z, the alternative to the motion MLP that benchmarks/spell.py measures it against
(`--motion rules`): template matching on the same trajectory features (handsign.spell.motion.Trajectory).

For each fingertip (the little finger for J, the index for Z) and each candidate start of the gesture in the
window (every 3rd sample), the path from there to now is resampled to 16 points equally spaced along it,
moved to start at 0 and scaled by its length, and compared with the letter's template (the mean J or Z path of
handsign.spell.synth, prepared alike): d = the mean distance between the points. A letter scores
exp(-(d / sigma)^2) when its path is at least `min_length` palm sizes long and the palm's centre moved at
least `min_palm` palm sizes (a finger folding moves a tip, not the palm); none gets the rest.
"""
from __future__ import annotations

import numpy as np

from handsign.spell import synth
from handsign.spell.motion_fit import SAMPLES, WINDOW_MS

POINTS = 16


def _resample(path: np.ndarray) -> tuple[np.ndarray, float]:
    """(n, 2) polyline -> (POINTS, 2) equally spaced along it, from 0, divided by its length; and the length."""
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    length = float(s[-1])
    at = np.linspace(0.0, length, POINTS)
    out = np.stack([np.interp(at, s, path[:, 0]), np.interp(at, s, path[:, 1])], 1)
    return (out - out[0]) / max(length, 1e-9), length


def _template(strokes) -> np.ndarray:
    strokes = np.asarray(strokes, dtype=np.float64)
    d = np.sqrt(np.linalg.norm(strokes, axis=1))
    onsets = np.concatenate([[0.0], np.cumsum(d[:-1] * 0.8)])  # 20 % overlap, the middle of synth's 10-35 %
    path = synth.Path(strokes, onsets, d)
    return _resample(path.at(np.linspace(0.0, path.ms, 200)))[0]


# the mean proportions of synth.letter_path's J and Z
TEMPLATES = {"j": _template([(0.0, 1.15), (-0.525, 0.3675), (-0.341, -0.42)]),
             "z": _template([(1.2, 0.0), (-1.14, 0.95), (1.2, 0.0)])}


class RuleModel:
    """Stands in for MotionModel in MotionReader: the same window, the same features, rules instead of an MLP."""

    def __init__(self, sigma: float = 0.15, min_length: float = 1.0, min_palm: float = 0.3):
        self.window_ms, self.samples, self.tips = WINDOW_MS, SAMPLES, dict(synth.TIPS)
        self.sigma, self.min_length, self.min_palm = sigma, min_length, min_palm

    def __call__(self, x: np.ndarray) -> np.ndarray:
        tracks = np.asarray(x, dtype=np.float64).reshape(3, self.samples, 2)  # j tip, z tip, palm centre
        palm = tracks[2]
        moved = float(np.linalg.norm(palm - palm[0], axis=1).max()) >= self.min_palm
        scores = []
        for letter, track in zip(("j", "z"), tracks[:2]):
            best = np.inf
            for k0 in range(0, self.samples - 4, 3):
                pts, length = _resample(track[k0:])
                if length >= self.min_length:
                    best = min(best, float(np.linalg.norm(pts - TEMPLATES[letter], axis=1).mean()))
            scores.append(np.exp(-(best / self.sigma) ** 2) if moved and np.isfinite(best) else 0.0)
        total = sum(scores)
        if total > 1:
            scores = [v / total for v in scores]
        return np.array([1.0 - sum(scores), *scores])
