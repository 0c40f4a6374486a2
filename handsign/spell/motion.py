"""J and Z, the letters signed by moving: per-frame static letter probabilities + the hand's landmarks ->
probabilities over the static letters and j, z, for the fingerspelling decoder. NumPy only.

    reader = MotionReader(static_labels)                   # the bundled motion model
    out = reader.push(t_ms, points, left, probs)           # (len(reader.labels),), or None: no hand
    decoder = StreamDecoder(reader.labels); decoder.push(t_ms, out, motion)

What it looks at, all in milliseconds (never frames, so 15-60 frames/s read alike):

1. The trajectory: the last `window_ms` of the little fingertip (J), the index fingertip (Z) and the palm's
   centre (the wrist and the four knuckles: a finger folding moves a tip but not the palm), in the signer's
   frame (image x mirrored for a hand MediaPipe calls "Left", as hand_features does; y down), resampled
   by linear interpolation at `samples` fixed times over the window, relative to the window's first
   sample, in palm sizes (the mean palm size over the samples).
2. A tiny MLP (handsign/bundled/motion.json: plain JSON weights, written by handsign.spell.motion_fit)
   reads those 6 x samples numbers -> q = softmax over (none, j, z): "a J / a Z is under way or has just
   been completed". It was trained on synthetic clips (handsign.spell.synth): real I and D shapes of the
   Massey photos moved along J and Z paths, never on recordings of signers.
3. The shape: J is signed with the I handshape and Z with D, so each share is gated by the static model's
   evidence for that shape (`evidence`: the summed probability of i and y for j, of d for z; y because the
   static model reads some people's I as Y): E = the mean of the `evidence_top` largest resampled values over
   the window, gate = clip((E - gate_low) / (gate_high - gate_low), 0, 1).
4. Output: s_j = q_j gate_j, s_z = q_z gate_z; the static probabilities (normalised) times 1 - s_j - s_z,
   then s_j and s_z: it sums to 1.

A still hand gives a flat trajectory (q_none ~ 1): static letters pass through unchanged. With the
decoder's `motion_bases` (give it the same letters as `evidence`), a hold of i (d) that runs into a j (z)
becomes part of it, so one J is one j.
handsign/web/motion.js is the same reader in JavaScript, tested against it on tests/fixtures/motion/.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from handsign.hands.features import palm_size
from handsign.spell.decode import check_fields, letter_pairs, pairs_dict, settings_from_dict

MOTION_LETTERS = ("j", "z")


def reads_j_and_z(labels) -> bool:
    """A letter model that J and Z can be read beside: it has I, Y and D (their handshapes), and no j or z
    (web/live.js's readsJandZ is the same test)."""
    return {"i", "y", "d"} <= set(map(str, labels)) and not set(MOTION_LETTERS) & set(map(str, labels))
CLASSES = ("none", "j", "z")  # the motion model's outputs
MODEL_FORMAT = "handsign-motion-model"
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "bundled" / "motion.json"


@dataclass(frozen=True)
class MotionSettings:
    reset_ms: float = 350.0     # ms without a hand that forget the trajectory (as the decoder's gap_ms: a new word)
    evidence_top: int = 6       # shape evidence: mean of this many largest resampled i (d) probabilities (~300 ms)
    gate_low: float = 0.15      # 0-1, shape evidence at or under which j (z) gets no share
    gate_high: float = 0.45     # 0-1, shape evidence at or over which j (z) gets the motion model's full share
    # the static letters whose probabilities are the shape evidence ({"j": ["i", "y"], "z": ["d"]} in to_dict /
    # JSON): I for J, D for Z, and Y for J too (the static model reads some people's I as Y; chosen on training
    # people by benchmarks/spell.py)
    evidence: tuple[tuple[str, str], ...] = (("j", "i"), ("j", "y"), ("z", "d"))

    def __post_init__(self):
        pairs = letter_pairs(self.evidence, "evidence")
        if sorted({m for m, _ in pairs}) != list(MOTION_LETTERS):
            raise ValueError(f"evidence needs letters for each of {list(MOTION_LETTERS)}")
        object.__setattr__(self, "evidence", pairs)
        check_fields(self, {"evidence": None})
        if self.evidence_top < 1 or self.evidence_top != int(self.evidence_top):
            raise ValueError(f"evidence_top must be a whole number >= 1, not {self.evidence_top!r}")
        if not self.gate_low < self.gate_high <= 1:
            raise ValueError(f"need gate_low < gate_high <= 1, not {self.gate_low!r}, {self.gate_high!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "evidence": pairs_dict(self.evidence)}

    @classmethod
    def from_dict(cls, d: dict) -> "MotionSettings":
        return settings_from_dict(cls, d, "motion")


@dataclass
class MotionModel:
    """The motion MLP: input standardisation, dense layers (ReLU between), softmax over CLASSES."""
    window_ms: float  # ms of trajectory it reads
    samples: int      # resampled times over the window
    tips: dict        # {"j": landmark index, "z": landmark index}
    mean: np.ndarray  # (6 samples,) input standardisation
    std: np.ndarray
    layers: list      # [(weight (out, in), bias (out,))]
    info: dict        # how it was trained (command, people, seed, measured figures)

    @property
    def n_inputs(self) -> int:
        return 6 * self.samples

    def to_json(self) -> dict:
        return {"format": MODEL_FORMAT, "version": 1, "classes": list(CLASSES), "window_ms": self.window_ms,
                "samples": self.samples, "tips": self.tips, "mean": self.mean.tolist(), "std": self.std.tolist(),
                "layers": [{"weight": w.tolist(), "bias": b.tolist()} for w, b in self.layers], "info": self.info}

    @classmethod
    def from_json(cls, d: dict) -> "MotionModel":
        if not isinstance(d, dict) or d.get("format") != MODEL_FORMAT or d.get("version") != 1:
            raise ValueError(f"not a motion model (format {MODEL_FORMAT!r}, version 1)")
        if list(d.get("classes", ())) != list(CLASSES):
            raise ValueError(f"a motion model's classes must be {list(CLASSES)}")
        m = cls(float(d["window_ms"]), int(d["samples"]), {k: int(v) for k, v in d["tips"].items()},
                np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64),
                [(np.asarray(x["weight"], dtype=np.float64), np.asarray(x["bias"], dtype=np.float64))
                 for x in d["layers"]], dict(d.get("info", {})))
        n = m.n_inputs
        if m.window_ms <= 0 or m.samples < 2 or sorted(m.tips) != list(MOTION_LETTERS) \
                or not all(0 <= v < 21 for v in m.tips.values()):
            raise ValueError("a motion model needs window_ms > 0, samples >= 2 and tips for j and z (0-20)")
        if m.mean.shape != (n,) or m.std.shape != (n,) or not (m.std > 0).all():
            raise ValueError(f"a motion model's mean and std must be {n} numbers (std > 0)")
        for w, b in m.layers:
            if w.ndim != 2 or w.shape[1] != n or b.shape != (w.shape[0],):
                raise ValueError("a motion model's layers do not chain")
            n = w.shape[0]
        if n != len(CLASSES) or not all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in m.layers):
            raise ValueError(f"a motion model must end in {len(CLASSES)} outputs, with finite weights")
        return m

    @classmethod
    def load(cls, path=BUNDLED_MODEL) -> "MotionModel":
        return cls.from_json(json.loads(Path(path).read_text()))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n_inputs,) or (N, n_inputs) features -> probabilities over CLASSES."""
        h = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        e = np.exp(h - h.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)


PALM = (0, 5, 9, 13, 17)  # the wrist and the knuckles: their mean is the palm's centre


class Trajectory:
    """The last window of the two fingertips and the palm's centre (image pixels), palm sizes and shape
    evidence, hand frames only, and its fixed-time resampling: what the motion model and the gate read."""

    def __init__(self, window_ms: float, samples: int, tips: dict):
        self.window_ms, self.samples = float(window_ms), int(samples)
        self.tips = (int(tips["j"]), int(tips["z"]))
        self.rows: list[list[float]] = []  # [t, jx, jy, zx, zy, cx, cy, palm, e_j, e_z], oldest first

    def clear(self):
        self.rows = []

    def add(self, t: float, points: np.ndarray, e_j: float, e_z: float):
        (jx, jy), (zx, zy) = points[self.tips[0], :2], points[self.tips[1], :2]
        c = points[PALM, :2].sum(0) / len(PALM)
        row = [t, float(jx), float(jy), float(zx), float(zy), float(c[0]), float(c[1]), float(palm_size(points)),
               e_j, e_z]
        if self.rows and self.rows[-1][0] == t:  # the same time twice: the later frame replaces it
            self.rows[-1] = row
        else:
            self.rows.append(row)
        start = t - self.window_ms  # keep one row at or before the window's start, for interpolation
        while len(self.rows) > 1 and self.rows[1][0] <= start:
            self.rows.pop(0)

    def resample(self) -> np.ndarray:
        """(samples, 9) at times t_now - window_ms + k window_ms / (samples - 1): linear in time between the
        rows around each time; before the first row, the first row (a hand just come into view was still)."""
        rows = np.asarray(self.rows, dtype=np.float64)
        t_now = rows[-1, 0]
        times = t_now - self.window_ms + np.arange(self.samples) * (self.window_ms / (self.samples - 1))
        return np.stack([np.interp(times, rows[:, 0], rows[:, c]) for c in range(1, 10)], 1)

    def features(self, left: bool) -> tuple[np.ndarray, np.ndarray]:
        """-> (6 samples,) trajectory features [jx0, jy0, jx1, ..., zx0, zy0, ..., cx0, cy0, ...] in palm
        sizes, relative to the first sample, x mirrored for a left hand; and (samples, 2) resampled shape
        evidence for j and z."""
        r = self.resample()
        palm = max(float(r[:, 6].mean()), 1e-6)
        rel = (r[:, :6] - r[0, :6]) / palm
        if left:
            rel[:, 0::2] *= -1.0
        return np.concatenate([rel[:, 0:2].reshape(-1), rel[:, 2:4].reshape(-1), rel[:, 4:6].reshape(-1)]), r[:, 7:9]


def _gate(evidence: np.ndarray, st: MotionSettings) -> float:
    top = np.sort(evidence)[::-1][:int(st.evidence_top)]
    e = float(top.mean())
    return min(max((e - st.gate_low) / (st.gate_high - st.gate_low), 0.0), 1.0)


class MotionReader:
    """Static letter probabilities + landmarks, frame by frame -> probabilities over labels + j, z."""

    def __init__(self, labels: list[str], model: MotionModel | dict | str | Path | None = None,
                 settings: MotionSettings | dict | None = None):
        self.static_labels = [str(x) for x in labels]
        for m in MOTION_LETTERS:
            if m in self.static_labels:
                raise ValueError(f"labels already hold {m!r}: the motion reader adds j and z itself")
        self.labels = self.static_labels + list(MOTION_LETTERS)
        if model is None or isinstance(model, (str, Path)):
            model = MotionModel.load(BUNDLED_MODEL if model is None else model)
        elif isinstance(model, dict):
            model = MotionModel.from_json(model)
        self.model = model
        self.settings = MotionSettings.from_dict(settings) if isinstance(settings, dict) else \
            (settings or MotionSettings())
        for _, x in self.settings.evidence:
            if x not in self.static_labels:
                raise ValueError(f"labels must hold {x!r}: J and Z are read from the I and D handshapes")
        # the labels summed into each motion letter's shape evidence
        self._evidence = [[self.static_labels.index(x) for m, x in self.settings.evidence if m == letter]
                          for letter in MOTION_LETTERS]
        self._track = Trajectory(model.window_ms, model.samples, model.tips)
        self._t_prev = None  # ms, previous frame
        self._t_hand = None  # ms, last hand frame

    def push(self, t_ms: float, points, left: bool, probs) -> np.ndarray | None:
        """One frame: points (21, 3) in pixels (None: no hand), MediaPipe's handedness (left: "Left"), the
        static model's probabilities over `labels` (given with a hand). -> (len(self.labels),) summing to 1,
        or None when there is no hand."""
        t = float(t_ms)
        if self._t_prev is not None and t < self._t_prev:
            raise ValueError(f"timestamps must not decrease: {t} after {self._t_prev}")
        self._t_prev = t
        if points is None:
            return None
        pts = np.asarray(points, dtype=np.float64)
        if pts.shape != (21, 3) or not np.isfinite(pts).all():
            raise ValueError("points must be 21 finite (x, y, z) points, in pixels")
        if probs is None:
            raise ValueError("a hand frame needs the static model's probabilities")
        p = np.asarray(probs, dtype=np.float64)
        if p.shape != (len(self.static_labels),) or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"probs must be {len(self.static_labels)} finite numbers >= 0, one per label")
        p = p / p.sum()
        if self._t_hand is not None and t - self._t_hand >= self.settings.reset_ms:
            self._track.clear()  # the hand was gone: a new word, a new trajectory
        self._t_hand = t
        e_j, e_z = (sum(float(p[k]) for k in idx) for idx in self._evidence)
        self._track.add(t, pts, e_j, e_z)
        x, evidence = self._track.features(bool(left))
        q = self.model(x)
        s_j = float(q[1]) * _gate(evidence[:, 0], self.settings)
        s_z = float(q[2]) * _gate(evidence[:, 1], self.settings)
        return np.concatenate([p * (1.0 - s_j - s_z), [s_j, s_z]])
