"""Find one hand and its 21 landmarks in a decoded image with MediaPipe Hands (offline).

    hand = detect(rgb)   # rgb: (H, W, 3) uint8; -> Hand(points (21, 3) in pixels, handedness, score) or None

mediapipe 0.10.21 ships the palm-detection and landmark models inside its wheel
(`mediapipe.solutions.hands`), so nothing is downloaded at run time. It is an optional extra
(`pip install 'handsign[hands]'`): without it `available()` is False and callers use the pixel route.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from handsign.errors import HandsignError

INSTALL_HINT = "pip install 'handsign[hands]'"
# How detection is run; part of the landmark cache key, so changing any of it re-extracts.
# Attempts, in order, until one finds a hand: (landmark model complexity, min detection confidence,
# padding on each side as a fraction of the longer side). Tight crops are missed without padding; on
# the 1,675 Massey photos the first attempt found 94.9 %, the chain 99.8 % (the rest cost time only
# when the first attempt fails).
ATTEMPTS = ((1, 0.5, 0.25), (1, 0.5, 0.5), (0, 0.3, 0.5), (1, 0.5, 0.75))
MAX_SIDE = 640  # px; larger photos are shrunk first (the palm detector works at 192x192 anyway)
MIN_SIDE = 192  # px; smaller pictures are enlarged first, so the landmark model sees some detail
DETECTOR = f"mediapipe-hands-v2:{ATTEMPTS}:max{MAX_SIDE}:min{MIN_SIDE}"

# The 21 points (MediaPipe's numbering) and the bones drawn between them.
WRIST, THUMB_TIP, INDEX_MCP, INDEX_TIP, MIDDLE_MCP, MIDDLE_TIP, RING_TIP, PINKY_MCP, PINKY_TIP = (
    0, 4, 5, 8, 9, 12, 16, 17, 20)
FINGERTIPS = (THUMB_TIP, INDEX_TIP, MIDDLE_TIP, RING_TIP, PINKY_TIP)
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
         (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))


@dataclass(frozen=True)
class Hand:
    """One detected hand. points: (21, 3) float32; x, y in the image's pixels (origin top-left), z is
    MediaPipe's depth relative to the wrist in the same units as x (negative: towards the camera).
    handedness: "Left" or "Right" as MediaPipe names it (as if mirrored: `real_hand` gives the real one);
    score: its handedness confidence;
    hands: how many hands were found (this one is the largest)."""
    points: np.ndarray
    handedness: str
    score: float
    hands: int = 1

    def to_json(self) -> dict:
        return {"points": np.round(self.points, 2).tolist(), "handedness": self.handedness,
                "score": round(float(self.score), 4), "hands": self.hands}

    @classmethod
    def from_json(cls, d: dict) -> "Hand":
        points = np.asarray(d["points"], dtype=np.float32)
        if points.shape != (21, 3) or not np.isfinite(points).all() or d["handedness"] not in ("Left", "Right"):
            raise ValueError("not a hand: need 21 finite (x, y, z) points and handedness Left or Right")
        return cls(points, d["handedness"], float(d["score"]), int(d.get("hands", 1)))


def real_hand(handedness: str) -> str:
    """MediaPipe's handedness label -> the hand it is in an ordinary, unmirrored picture ("Left" -> "Right").

    MediaPipe Hands names hands as if every picture were a mirrored selfie preview, so a right hand in a
    photo, a video or a camera frame as the camera delivers it comes back "Left" (1,669 of the 1,672 hands
    found in the Massey photos, all of them right hands, come back "Left"). handsign's convention: what it
    *reports* ("handedness" in predict's and spell's answers) is the real hand of an unmirrored picture; what
    the features use (`Hand.handedness`, the cache, training) stays MediaPipe's label, as the models were
    trained on it. A picture that is itself mirrored (a selfie preview saved as shown) reads the other way."""
    if handedness not in ("Left", "Right"):
        raise ValueError(f"handedness must be 'Left' or 'Right', not {handedness!r}")
    return "Right" if handedness == "Left" else "Left"


def available() -> bool:
    """Whether MediaPipe is installed (a look, not an import: importing it takes ~1 s)."""
    return importlib.util.find_spec("mediapipe") is not None


# One MediaPipe graph per setting, shared, one image at a time: a graph must not run two images at once,
# and a graph per server thread (up to 40) would cost ~1 s and tens of MB each. Detection takes ~15-30 ms
# on this 2-core CPU, so a server's requests queue briefly here rather than fight over the cores.
_lock = threading.Lock()
_graphs: dict = {}
_warmed: set = set()  # graphs that have run once (MediaPipe's start-up chatter is over)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for MediaPipe's one-time C++ start-up lines (TFLite's "Created
    delegate", absl warnings), which would otherwise follow every first prediction in a terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _hands(complexity: int, confidence: float):
    graphs = _graphs
    graph = graphs.get((complexity, confidence))
    if graph is None:
        try:
            from mediapipe.python.solutions import hands as mp_hands  # lazy: ~1 s, and an optional extra
        except ImportError as e:
            raise HandsignError(f"hand landmarks need MediaPipe ({e.name or e} could not be imported): "
                                f"{INSTALL_HINT}") from None
        with _quiet_stderr():
            graph = graphs[complexity, confidence] = mp_hands.Hands(
                static_image_mode=True, max_num_hands=2, model_complexity=complexity,
                min_detection_confidence=confidence)
    return graph


def _process(graph, image: np.ndarray):
    if id(graph) in _warmed:
        return graph.process(image)
    with _quiet_stderr():
        result = graph.process(image)
    _warmed.add(id(graph))
    return result


def pad_photo(rgb: np.ndarray, fraction: float) -> tuple[np.ndarray, int]:
    """(H, W, 3) uint8 RGB -> (the image padded, the padding in pixels): every side padded by `fraction` of the
    longer side with the border's median colour, so a hand cut by the frame still looks like a hand on its
    background. How detect pads for each of its ATTEMPTS."""
    import cv2  # OpenCV comes with MediaPipe; lazy, as MediaPipe is

    h, w = rgb.shape[:2]
    pad = round(fraction * max(h, w))
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colour = tuple(int(x) for x in np.median(border, axis=0).astype(np.uint8))
    # the same pixels as filling an array and copying the picture in, 20-40x faster on a 640x480 frame
    # (0.16 against 6 ms): NumPy broadcasts a 3-vector over every pixel slowly
    return cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=colour), pad


def _scale_for_detection(h: int, w: int) -> float:
    side = max(h, w)
    if side > MAX_SIDE:
        return MAX_SIDE / side
    if side < MIN_SIDE:
        return MIN_SIDE / side
    return 1.0


def detect(rgb: np.ndarray) -> Hand | None:
    """(H, W, 3) uint8 RGB -> the largest hand found, or None. Points come back in `rgb`'s pixels."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"detect needs an (H, W, 3) image, got shape {rgb.shape}")
    h, w = rgb.shape[:2]
    scale = _scale_for_detection(h, w)
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    with _lock:
        for complexity, confidence, fraction in ATTEMPTS:
            padded, pad = pad_photo(rgb, fraction)
            result = _process(_hands(complexity, confidence), padded)
            if result.multi_hand_landmarks:
                break
        else:
            return None
    ph, pw = padded.shape[:2]
    found = []
    for marks, label in zip(result.multi_hand_landmarks, result.multi_handedness):
        pts = np.array([[p.x * pw, p.y * ph, p.z * pw] for p in marks.landmark], dtype=np.float32)
        pts[:, :2] -= pad
        pts /= scale  # back to the caller's pixels (z scales with x)
        extent = np.ptp(pts[:, :2], axis=0).prod()  # bounding-box area: the nearest, largest hand wins
        cls = label.classification[0]
        found.append((extent, pts, cls.label, cls.score))
    extent, pts, handedness, score = max(found, key=lambda f: f[0])
    return Hand(pts, handedness, float(score), hands=len(found))


def draw_skeleton(img, points):
    """A copy of PIL image `img` (RGB) with a hand's bones and joints drawn on it; points: the 21 (x, y)
    (or (x, y, z)) in the image's pixels."""
    out = img.convert("RGB")
    d = ImageDraw.Draw(out)
    unit = max(2, round(max(out.size) / 120))
    xy = [(float(p[0]), float(p[1])) for p in points]
    for a, b in BONES:
        d.line([xy[a], xy[b]], fill=(57, 255, 136), width=unit)
    for x, y in xy:
        d.ellipse([x - 1.5 * unit, y - 1.5 * unit, x + 1.5 * unit, y + 1.5 * unit], fill=(255, 61, 127))
    return out
