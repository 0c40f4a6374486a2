"""The landmark route of a prediction: a loaded landmark model (torch or ONNX Runtime) and how its
answer is fused with a pixel model's.

    route = HandRoute.load(meta, path, backend="torch")   # or "onnx"
    hand = find_hand(img)               # a decoded PIL picture -> MediaPipe's Hand, or None
    probs = route.probs([hand])         # (1, classes)

Nothing here imports torch or MediaPipe at module level: the deploy install (ONNX Runtime) and a
machine without the hands extra both load this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from handsign.images import preprocess as pp
from handsign.saved.checkpoint import load_model
from handsign.errors import CheckpointError, HandsignError
from handsign.hands import landmarks
from handsign.hands.features import FEATURES_VERSION, hand_features
from handsign.saved.meta import ModelMeta
from handsign.infer.onnx_runner import load_onnx
from handsign.infer.torch_runner import softmax, torch_runner


class HandRoute:
    """A landmark model: labels, how to run it, and the fusion with a pixel model named in its metadata
    (`fusion`: {"pixel_model": file stem beside it, "pixel_weight": w}; p = (1 - w) p_hand + w p_pixel)."""

    def __init__(self, meta: ModelMeta, run, backend: str, source: Path):
        pre = meta.preprocess
        if pre.get("kind") != "hand-landmarks" or pre.get("features") != FEATURES_VERSION:
            raise CheckpointError(f"{source}: landmark features {pre.get('features')!r} are not the ones this "
                                  f"handsign computes (version {FEATURES_VERSION}); retrain or upgrade handsign")
        if pre.get("detector") != landmarks.DETECTOR:  # other detection settings give other points
            raise CheckpointError(f"{source}: trained on landmarks found with detector settings "
                                  f"{pre.get('detector')!r}, this handsign uses {landmarks.DETECTOR!r}; retrain it")
        self.meta, self._run, self.backend, self.source = meta, run, backend, source
        self.labels = list(meta.labels)
        fusion = meta.fusion
        self.pixel_model = fusion.get("pixel_model")
        w = fusion.get("pixel_weight", 0.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1:
            raise CheckpointError(f"{source}: fusion pixel_weight {w!r} must be a number in 0..1")
        self.pixel_weight = float(w)

    @classmethod
    def load(cls, meta: ModelMeta, path: Path, backend: str, device: str = "cpu", spin: bool = True) -> "HandRoute":
        """backend "onnx": path.onnx (or the given .onnx); "torch": the .safetensors checkpoint."""
        if backend == "onnx":
            onnx_meta, run = load_onnx(path.with_suffix(".onnx"), spin=spin)
            return cls(onnx_meta, run, "onnx", path.with_suffix(".onnx"))
        return cls(meta, torch_runner(load_model(path, device=device).model, device), "torch", path)

    def probs(self, hands: list) -> np.ndarray:
        """Hands -> (n, classes) float64 probabilities."""
        points = np.stack([h.points for h in hands]).astype(np.float32)
        left = np.array([h.handedness == "Left" for h in hands])
        x = hand_features(points, left)  # (n, N_FEATURES)
        return softmax(self._run(x).astype(np.float64))


_warned = False


def find_hand(img):
    """MediaPipe on one decoded PIL picture; None when no hand is found or MediaPipe is not installed
    (then one line on stderr, once per process, says how to get the better route). A large photo is
    shrunk before it becomes an array (a 36-megapixel RGB float array would be 430 MB); the points come
    back in the picture's own pixels."""
    global _warned
    if not landmarks.available():
        if not _warned:
            print(f"handsign: note: photos are read by pixels only; for real photos install hand landmarks: "
                  f"{landmarks.INSTALL_HINT}", file=sys.stderr)
            _warned = True
        return None
    small, factor = img, 1.0
    if max(img.size) > landmarks.MAX_SIDE:
        small = img.copy()
        small.thumbnail((landmarks.MAX_SIDE, landmarks.MAX_SIDE))
        factor = img.size[0] / small.size[0]
    try:
        hand = landmarks.detect(pp.to_rgb(small).astype(np.uint8))
        if hand is None or factor == 1.0:
            return hand
        return landmarks.Hand(hand.points * np.float32(factor), hand.handedness, hand.score, hand.hands)
    except HandsignError:
        raise
    except Exception as e:  # MediaPipe's C++ errors (an odd image): no hand, answered by pixels
        print(f"handsign: note: hand detection failed ({type(e).__name__}); reading by pixels", file=sys.stderr)
        return None
