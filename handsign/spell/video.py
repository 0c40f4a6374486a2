"""`handsign spell VIDEO`: a fingerspelled video (or a folder of frames) -> letters and words.

    r = spell("clip.mp4")                 # model="asl"; r["text"], r["letters"], r["words"], r["frames"], ...

frames (handsign.spell.frames) -> hand and letter evidence per frame (handsign.spell.stream.LetterStream)
-> the decoder (handsign.spell.decode), one frame in memory at a time.
"""

from __future__ import annotations

import sys
import time

from handsign.hands.landmarks import real_hand
from handsign.hands.tracking import TRACKER
from handsign.infer.predict import Predictor
from handsign.spell.decode import DecoderSettings, decode
from handsign.spell.frames import open_frames
from handsign.spell.motion import MotionReader, reads_j_and_z
from handsign.spell.stream import LetterStream


class _ProgressLine:
    """`spell: 120/450 frames, 28 frames/s` redrawn on a terminal (at most 10 times a second); nothing elsewhere."""

    def __init__(self, total: int | None, enabled: bool, stream=None):
        self.stream = stream or sys.stderr
        self.on = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.start, self.last, self.done = total, time.perf_counter(), 0.0, 0

    def update(self):
        self.done += 1
        now = time.perf_counter()
        if self.on and now - self.last >= 0.1:
            self.last = now
            of = f"/{self.total}" if self.total else ""
            rate = self.done / max(now - self.start, 1e-9)
            self.stream.write(f"\rspell: {self.done}{of} frames, {rate:.0f} frames/s ")
            self.stream.flush()

    def close(self):
        if self.on and self.done:
            self.stream.write("\n")
            self.stream.flush()


def spell(source, model="asl", backend: str = "auto", fps: float | None = None,
          settings: DecoderSettings | dict | None = None, motion_reader=None, progress: bool = False) -> dict:
    """Read the fingerspelled words of a video file or a folder of frames.

    model: a hand-landmark model (bundled name or path); backend: auto, torch or onnx (as predict's); fps: a
    folder's frame rate (default 30; for a video only where its container names none); settings: the
    decoder's (DecoderSettings or a partial dict); motion_reader: see handsign.spell.stream (default: the bundled
    J/Z reader, handsign.spell.motion, for a model of the ASL letters); progress: a live
    line on stderr when it is a terminal.

    Returns {"text", "letters": [{letter, start_ms, end_ms, confidence}], "words": [{word, start_ms, end_ms}],
    "frames" (read), "frames_with_hand", "handedness" ({"Right": frames, "Left": frames}: the real hand, as
    predict reports it), "duration_ms", "fps_read" (frames read per second of wall time), "seconds" (where
    the time went: read, landmarks, model, decoder), "source", "model", "detector" (the tracker's settings),
    and "reason" when the text is empty}. A missing or unreadable source, a video with no frame, a model
    that does not read hands: ImageError / HandsignError (the CLI's one line, exit 2)."""
    settings = DecoderSettings() if settings is None else settings
    frames = open_frames(source, fps)  # a bad path fails here, before the model is loaded
    with frames:
        predictor = Predictor.load(model, backend, spin=False)  # ORT must not busy-wait: MediaPipe needs the cores
        count = {"frames": 0, "hand": 0, "Right": 0, "Left": 0, "first": None, "last": None, "read": 0.0,
                 "decoder": 0.0}
        bar = _ProgressLine(frames.total, progress)
        if motion_reader is None and reads_j_and_z(predictor.labels):  # the bundled motion model: j and z too
            motion_reader = MotionReader(predictor.labels)
        with LetterStream(predictor, motion_reader=motion_reader) as stream:
            start = time.perf_counter()

            def evidence():  # (t_ms, probs, motion) per frame, for decode(); counts on the way
                t_read = time.perf_counter()
                for f in frames:
                    count["read"] += time.perf_counter() - t_read
                    ev = stream.push(f.t_ms, f.rgb)
                    count["frames"] += 1
                    if ev.hand is not None:
                        count["hand"] += 1
                        count[real_hand(ev.hand.handedness)] += 1
                    count["first"] = f.t_ms if count["first"] is None else count["first"]
                    count["last"] = f.t_ms
                    bar.update()
                    t_dec = time.perf_counter()
                    yield ev.t_ms, ev.probs, ev.motion
                    t_read = time.perf_counter()
                    count["decoder"] += t_read - t_dec  # decode() ran its push() between the yields

            try:
                result = decode(evidence(), stream.labels, settings)
            finally:
                bar.close()
            wall = time.perf_counter() - start
            seconds = {"read": count["read"], **stream.seconds, "decoder": count["decoder"], "total": wall}
    n = count["frames"]
    for x in result["letters"] + result["words"]:  # 0.1 ms and 4 digits are plenty to read
        x.update({k: round(v, 1 if k.endswith("_ms") else 4) for k, v in x.items() if isinstance(v, float)})
    out = {**result, "frames": n, "frames_with_hand": count["hand"],
           "handedness": {"Right": count["Right"], "Left": count["Left"]},  # frames per real hand (real_hand)
           "duration_ms": round(count["last"] - count["first"] + 1000.0 / frames.fps, 1),
           "fps_read": round(n / max(wall, 1e-9), 2), "seconds": {k: round(v, 4) for k, v in seconds.items()},
           "source": str(source), "model": predictor.name, "detector": TRACKER}
    if not result["text"]:
        out["reason"] = (f"no hand was found in any of {n} frames" if not count["hand"] else
                         f"a hand was found in {count['hand']} of {n} frames, but no letter was held long "
                         f"enough to read")
    return out
