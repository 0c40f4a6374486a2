"""One hand followed through the frames of a video with MediaPipe Hands in tracking mode (offline).

    with HandTracker() as track:
        for rgb in frames:            # (H, W, 3) uint8, in order
            hand = track(rgb)         # Hand(points (21, 3) in rgb's pixels, handedness, score) or None

The photo route (landmarks.detect) runs the palm detector on every picture, with a chain of padded retries.
Here one graph is kept across frames (`static_image_mode=False`): once a hand is found its landmarks seed the
next frame's crop, and the palm detector runs again only when the hand is lost. The landmark model is the
same (complexity 1, the photo route's first attempt), so the points, and what the landmark model sees, agree
with the photo route's. Measured on 640x480 videos made from the Massey photos (benchmarks/spell_detectors.py,
docs/spell.md): `asl` reads the same letter as through the photo route on 98.5 % of held frames (95.3-100 %
per person), the points are 0.04 palm sizes apart, and a frame takes 16 ms (p50) against 51 ms. No padding
and no retries: padding found no more hands on those videos and cost 12 ms; a hand missed now is looked for
again in the next frame.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from handsign.errors import HandsignError
from handsign.hands import landmarks
from handsign.hands.landmarks import Hand

# (landmark model complexity, min detection confidence, min tracking confidence, hands followed).
# One hand: with two, the palm detector would run on every frame until two hands were seen (+16 ms a frame).
TRACKING = (1, 0.5, 0.5, 1)
TRACKER = f"mediapipe-hands-v2-tracking:{TRACKING}:max{landmarks.MAX_SIDE}:min{landmarks.MIN_SIDE}"


class HandTracker:
    """A MediaPipe Hands graph in tracking mode for one stream of frames; close() (or `with`) frees it.
    Not thread-safe: one stream, one tracker."""

    def __init__(self):
        complexity, detection, tracking, hands = TRACKING
        try:
            from mediapipe.python.solutions import hands as mp_hands  # lazy: ~1 s, and an optional extra
        except ImportError as e:
            raise HandsignError(f"hand landmarks need MediaPipe ({e.name or e} could not be imported): "
                                f"{landmarks.INSTALL_HINT}") from None
        with landmarks._quiet_stderr():  # TFLite's start-up lines
            self._graph = mp_hands.Hands(static_image_mode=False, max_num_hands=hands, model_complexity=complexity,
                                         min_detection_confidence=detection, min_tracking_confidence=tracking)
            # The graph opens its calculators in its own threads, and they print after __init__ returns; a first
            # frame waits for them (a blank one: no hand, so nothing is tracked from it).
            self._graph.process(np.zeros((landmarks.MIN_SIDE, landmarks.MIN_SIDE, 3), np.uint8))

    def __call__(self, rgb: np.ndarray) -> Hand | None:
        """The next frame, (H, W, 3) uint8 RGB -> the hand in it, or None. Large frames are shrunk to
        landmarks.MAX_SIDE first (small ones enlarged to MIN_SIDE), as photos are; points in rgb's pixels."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
            raise ValueError(f"a frame must be an (H, W, 3) image, got shape {rgb.shape}")
        h, w = rgb.shape[:2]
        scale = landmarks._scale_for_detection(h, w)
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        with landmarks._quiet_stderr():  # start-up lines, then a warning on the first tracked frame; ~10 us
            result = self._graph.process(rgb)
        if not result.multi_hand_landmarks:
            return None
        sh, sw = rgb.shape[:2]
        found = []
        for marks, label in zip(result.multi_hand_landmarks, result.multi_handedness):
            pts = np.array([[p.x * sw, p.y * sh, p.z * sw] for p in marks.landmark], dtype=np.float32) / scale
            cls = label.classification[0]
            found.append((np.ptp(pts[:, :2], axis=0).prod(), pts, cls.label, cls.score))
        _, pts, handedness, score = max(found, key=lambda f: f[0])  # the largest, as landmarks.detect
        return Hand(pts, handedness, float(score), hands=len(found))

    def close(self):
        if self._graph is not None:
            with landmarks._quiet_stderr():
                self._graph.close()
            self._graph = None

    def __enter__(self) -> "HandTracker":
        return self

    def __exit__(self, *exc):
        self.close()
