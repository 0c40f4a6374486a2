"""Fingerspelled test videos made at run time from labelled photos (never stored in the repo).

    frames = spelled_frames(words, photo_of, size=(480, 360), fps=15)   # yields (H, W, 3) uint8 BGR frames
    write_video(path, frames, fps=15)                                   # MJPG .avi (or mp4v .mp4)

Each letter's photo is held `hold_s`, crossfaded into the next letter's over `fade_s`; words are separated by
`pause_s` of a plain frame (no hand). The photo is scaled to `hand_frac` of the frame's height and centred on
a black frame: Massey's photos are segmented hands on black, so the frame looks like the photo, padded.
Used by tests/test_spell_video.py and benchmarks/spell_speed.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def place(photo_rgb: np.ndarray, size: tuple[int, int], hand_frac: float = 0.75) -> np.ndarray:
    """An (h, w, 3) RGB photo -> a (H, W, 3) BGR frame of `size` (W, H): the photo scaled to hand_frac of
    the frame's height, centred on black."""
    import cv2

    w, h = size
    scale = hand_frac * h / max(photo_rgb.shape[:2])
    ph, pw = round(photo_rgb.shape[0] * scale), round(photo_rgb.shape[1] * scale)
    small = cv2.resize(photo_rgb, (pw, ph), interpolation=cv2.INTER_AREA)
    frame = np.zeros((h, w, 3), np.uint8)
    y, x = (h - ph) // 2, (w - pw) // 2
    frame[y:y + ph, x:x + pw] = small[:, :, ::-1]  # RGB -> BGR
    return frame


def spelled_frames(words, photo_of, size=(480, 360), fps: float = 15, hold_s: float = 0.5, fade_s: float = 0.15,
                   pause_s: float = 0.6, hand_frac: float = 0.75):
    """Frames (BGR uint8) of `words` signed one letter at a time: photo_of(letter) -> (h, w, 3) RGB photo.
    A pause (a plain frame) before, between and after the words."""
    blank = np.zeros((size[1], size[0], 3), np.uint8)
    n_hold, n_fade, n_pause = (max(1, round(s * fps)) for s in (hold_s, fade_s, pause_s))
    yield from [blank] * n_pause
    for word in words:
        shown = [place(photo_of(c), size, hand_frac) for c in word]
        for i, frame in enumerate(shown):
            yield from [frame] * n_hold
            if i + 1 < len(shown):  # crossfade into the next letter
                for k in range(1, n_fade + 1):
                    a = k / (n_fade + 1)
                    yield ((1 - a) * frame + a * shown[i + 1]).astype(np.uint8)
        yield from [blank] * n_pause


def write_video(path, frames, fps: float = 15) -> Path:
    """Frames (BGR uint8, all one size) -> a video file: MJPG in .avi, mp4v in .mp4."""
    import cv2

    path = Path(path)
    frames = iter(frames)
    first = next(frames)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    out = cv2.VideoWriter(str(path), fourcc, fps, (first.shape[1], first.shape[0]))
    if not out.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write this video")
    try:
        out.write(first)
        for f in frames:
            out.write(f)
    finally:
        out.release()
    return path
