"""Clips for Chromium's fake camera (--use-file-for-fake-video-capture=clip.y4m), made at run time from photos
with NumPy and Pillow only (no ffmpeg): a photo held on a plain wall, or a word fingerspelled from one person's
photos (each letter held, crossfades between letters, a hand-free pause before and after). Chromium plays the
file at its frame rate, in a loop. Used by tests/test_web_spell.py, tests/test_web_hands.py and
benchmarks/browser_speed.py; nothing here is written into the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 640, 480
WALL = (96, 104, 112)  # RGB of the plain wall behind the hand
HAND_SIDE = 400        # px: the photo's longer side on the 640x480 frame


def on_wall(photo: Path | None) -> np.ndarray:
    """(HEIGHT, WIDTH, 3) float32 RGB: the photo centred on the wall, or the wall alone (None)."""
    canvas = Image.new("RGB", (WIDTH, HEIGHT), WALL)
    if photo is not None:
        hand = Image.open(photo).convert("RGB")
        hand.thumbnail((HAND_SIDE, HAND_SIDE))
        canvas.paste(hand, ((WIDTH - hand.width) // 2, (HEIGHT - hand.height) // 2))
    return np.asarray(canvas, dtype=np.float32)


def _yuv420(rgb: np.ndarray) -> bytes:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b  # BT.601 full range (C420jpeg)
    u = (b - y) * 0.564 + 128
    v = (r - y) * 0.713 + 128
    sub = lambda c: c.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean((1, 3))  # 4:2:0  # noqa: E731
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in (y, sub(u), sub(v)))


def write_y4m(frames, path: Path, fps: int = 30) -> Path:
    """RGB frames (each (HEIGHT, WIDTH, 3)) -> a Y4M file, the fake camera's format (~460 KB a frame)."""
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n" + _yuv420(rgb))
    return path


def still_clip(photo: Path, path: Path, frames: int = 10, fps: int = 10) -> Path:
    """The photo on the wall, `frames` identical frames."""
    rgb = on_wall(photo)
    return write_y4m([rgb] * frames, path, fps)


def spelling_frames(photos: list[Path], fps: int = 30, hold_s: float = 0.5, fade_s: float = 0.15,
                    pause_s: float = 0.7):
    """Frames of a word fingerspelled from `photos` (one per letter, in order): a hand-free pause, each letter held
    hold_s, a crossfade of fade_s between letters (the hand changing shape), the pause again. Yields RGB frames."""
    wall = on_wall(None)
    hold, fade, pause = round(hold_s * fps), round(fade_s * fps), round(pause_s * fps)
    yield from [wall] * pause
    hands = [on_wall(p) for p in photos]
    for i, hand in enumerate(hands):
        if i:
            for k in range(1, fade + 1):  # a linear blend from the previous letter to this one
                a = k / (fade + 1)
                yield (1 - a) * hands[i - 1] + a * hand
        yield from [hand] * hold
    yield from [wall] * pause


def spelling_clip(photos: list[Path], path: Path, fps: int = 30, **timing) -> tuple[Path, float]:
    """spelling_frames written to `path`; returns (path, the clip's length in seconds)."""
    frames = list(spelling_frames(photos, fps, **timing))
    return write_y4m(frames, path, fps), len(frames) / fps
