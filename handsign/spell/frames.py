"""The frames of a video file or of a folder of pictures, one at a time, each with its time in ms.

    with open_frames("clip.mp4") as frames:          # or a folder of frames: open_frames("shots/", fps=30)
        for f in frames:                             # Frame(index, t_ms, rgb (H, W, 3) uint8, <= MAX_SIDE px)
            ...

A video is read with OpenCV (cv2.VideoCapture: whatever its FFmpeg reads, mp4/webm/avi/mov among them), one
frame in memory at a time, so a long 4K video costs one 4K frame (~25 MB), not the video. Each frame's time is
the container's (CAP_PROP_POS_MSEC); where that is missing or goes backwards, the frame before's + 1000 / fps
(the container's frame rate, else `fps`). A folder's frames are its image files sorted by name, `fps` apart.
Frames larger than landmarks.MAX_SIDE (640 px) are shrunk to it here, as photos are before landmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handsign.errors import HandsignError, ImageError
from handsign.hands import landmarks
from handsign.images import preprocess as pp

DEFAULT_FPS = 30.0  # frames/s of a folder of frames (and of a video whose container names none)


@dataclass(frozen=True)
class Frame:
    index: int         # 0-based, in reading order
    t_ms: float        # ms from the start of the video
    rgb: np.ndarray    # (H, W, 3) uint8 RGB, longest side <= landmarks.MAX_SIDE


def shrink(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> the same, longest side at most landmarks.MAX_SIDE (area-averaged)."""
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) <= landmarks.MAX_SIDE:
        return rgb
    s = landmarks.MAX_SIDE / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _check_fps(fps) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or not 0 < fps <= 1000:
        raise HandsignError(f"--fps must be a number of frames per second in (0, 1000], not {fps!r}")
    return float(fps)


def open_frames(source, fps: float | None = None):
    """A video file or a folder of frames -> VideoFrames or FolderFrames (iterables of Frame; close them).
    fps: a folder's frame rate (default 30); for a video, used only where the container gives none."""
    fps = DEFAULT_FPS if fps is None else _check_fps(fps)
    path = Path(source)
    if not path.exists():
        raise ImageError(f"{path}: no such file or folder")
    if path.is_dir():
        return FolderFrames(path, fps)
    if path.suffix.lower() in pp.IMAGE_EXTENSIONS:
        raise ImageError(f"{path}: a picture, not a video; give a video file or a folder of frames")
    return VideoFrames(path, fps)


class FolderFrames:
    """The image files of a folder, sorted by name, as frames `fps` apart."""

    def __init__(self, folder: Path, fps: float):
        self.source, self.fps = folder, fps
        self.files = sorted(f for f in folder.iterdir() if f.suffix.lower() in pp.IMAGE_EXTENSIONS and f.is_file())
        if not self.files:
            raise ImageError(f"{folder}: folder has no frames (image files: .png, .jpg, .bmp, ...)")
        self.total = len(self.files)  # frames, for the progress line

    def __iter__(self):
        for i, f in enumerate(self.files):
            img = pp.decode_image(f)  # the size guard and the odd modes of predict's decoding
            if max(img.size) > landmarks.MAX_SIDE:
                img.thumbnail((landmarks.MAX_SIDE, landmarks.MAX_SIDE))
            yield Frame(i, i * 1000.0 / self.fps, pp.to_rgb(img).astype(np.uint8))

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoFrames:
    """A video file read frame by frame with OpenCV."""

    def __init__(self, path: Path, fps: float):
        import cv2

        self.source = path
        # An absolute path: a name starting "concat:", "http:"... would be read by FFmpeg as a protocol
        with landmarks._quiet_stderr():  # FFmpeg's own complaints ("moov atom not found"): our one line says it
            self._cap = cv2.VideoCapture(str(path.resolve()), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise ImageError(f"{path}: not a video that can be read (unknown format, damaged or cut short)")
        w, h = self._cap.get(cv2.CAP_PROP_FRAME_WIDTH), self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if w * h > pp.MAX_PIXELS:  # the photo limit: each decoded frame would be over 120 MB
            self.close()
            raise ImageError(f"{path}: frames of {w:.0f}x{h:.0f} pixels, over the limit of {pp.MAX_PIXELS:,}")
        own = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = own if math.isfinite(own) and 0 < own <= 1000 else fps
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.total = int(count) if math.isfinite(count) and count > 0 else None  # an estimate, for progress

    def __iter__(self):
        import cv2

        cap, i, t_prev = self._cap, 0, None
        while True:
            with landmarks._quiet_stderr():
                ok, bgr = cap.read()
            if not ok:
                break
            t = cap.get(cv2.CAP_PROP_POS_MSEC)  # this frame's presentation time
            if t_prev is not None and not (math.isfinite(t) and t > t_prev):
                t = t_prev + 1000.0 / self.fps  # no usable time from the container
            elif not math.isfinite(t) or t < 0:
                t = 0.0
            t_prev = t
            rgb = cv2.cvtColor(shrink(bgr), cv2.COLOR_BGR2RGB)
            yield Frame(i, float(t), rgb)
            i += 1
        if i == 0:
            raise ImageError(f"{self.source}: no frame could be read (not a video, or damaged)")

    def close(self):
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
