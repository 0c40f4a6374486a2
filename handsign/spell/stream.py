"""Video frames -> per-frame letter evidence, what the fingerspelling decoder reads.

    stream = LetterStream(Predictor.load("asl"))        # a landmark model; optionally motion_reader=...
    ev = stream.push(t_ms, rgb)     # Evidence(t_ms, probs over stream.labels or None, motion, hand)
    decoder.push(ev.t_ms, ev.probs, ev.motion)

The hand is followed with handsign.hands.tracking.HandTracker (one MediaPipe graph for the stream) and read
by the same features, runner and fusion as `predict` (Predictor.hand_probs). `motion` is the hand's speed in
palm sizes per second since the previous frame with a hand (handsign.hands.features.hand_speed).

A motion-letter reader (j and z are signed by moving) plugs in as `motion_reader`: any object with
`labels` (the model's labels + its own) and `push(t_ms, points (21, 3) or None, left, probs or None) ->
probs over its labels, or None`. `left` is MediaPipe's "Left", the flag hand_features mirrors by (not the
real hand: see landmarks.real_hand). Given one, its output is the evidence instead of the model's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from handsign.errors import HandsignError
from handsign.hands.features import hand_speed
from handsign.hands.landmarks import Hand


@dataclass(frozen=True)
class Evidence:
    t_ms: float
    probs: np.ndarray | None  # (len(labels),) float64 over LetterStream.labels; None: no hand (or no reading)
    motion: float             # palm sizes/s since the previous frame with a hand; 0.0 when there was none
    hand: Hand | None         # what MediaPipe found (handedness as MediaPipe names it)


class LetterStream:
    """Frames in time order -> Evidence. predictor: a Predictor of a hand-landmark model; tracker: a callable
    rgb -> Hand or None (default: a new HandTracker, closed by close()); motion_reader: see the module's doc."""

    def __init__(self, predictor, tracker=None, motion_reader=None):
        if predictor.hands is None:
            raise HandsignError(f"{predictor.name}: not a hand-landmark model; spelling reads hands "
                                f"(use --model asl or a model trained with --recipe hands-asl)")
        self.predictor, self.motion_reader = predictor, motion_reader
        if motion_reader is not None:
            self.labels = [str(x) for x in motion_reader.labels]
            if self.labels[:len(predictor.labels)] != predictor.labels:
                raise HandsignError("the motion reader's labels must start with the model's labels, in order")
        else:
            self.labels = list(predictor.labels)
        self._own_tracker = tracker is None
        if tracker is None:
            from handsign.hands.tracking import HandTracker  # MediaPipe: only when a stream is made

            tracker = HandTracker()
        self._track = tracker
        self._last = None  # (t_ms, points) of the last frame with a hand
        self.seconds = {"landmarks": 0.0, "model": 0.0}  # time spent in each, for benchmarks and --json

    def push(self, t_ms: float, rgb: np.ndarray, img=None) -> Evidence:
        """One frame: (H, W, 3) uint8 RGB at t_ms (not before the last). img: the same frame as a PIL picture,
        needed only by a model fused with a pixel model (made from rgb when missing)."""
        t0 = time.perf_counter()
        hand = self._track(rgb)
        t1 = time.perf_counter()
        probs, motion = None, 0.0
        if hand is not None:
            if self._last is not None:
                motion = hand_speed(self._last[1], hand.points, t_ms - self._last[0])
            self._last = (t_ms, hand.points)
            if self.predictor.hands.pixel_weight > 0 and img is None:
                from PIL import Image

                img = Image.fromarray(rgb)
            probs = self.predictor.hand_probs(hand, img)
        if self.motion_reader is not None:
            points = None if hand is None else hand.points
            left = hand is not None and hand.handedness == "Left"
            probs = self.motion_reader.push(t_ms, points, left, probs)
            if probs is not None:
                probs = np.asarray(probs, dtype=np.float64)
                if probs.shape != (len(self.labels),):
                    raise ValueError(f"the motion reader gave {probs.shape} probabilities for "
                                     f"{len(self.labels)} labels")
        self.seconds["landmarks"] += t1 - t0
        self.seconds["model"] += time.perf_counter() - t1
        return Evidence(float(t_ms), probs, motion, hand)

    def close(self):
        if self._own_tracker and hasattr(self._track, "close"):
            self._track.close()

    def __enter__(self) -> "LetterStream":
        return self

    def __exit__(self, *exc):
        self.close()
