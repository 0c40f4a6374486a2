"""Which MediaPipe hand detector for video: speed and agreement with the photo route the `asl` model was trained on.

    python benchmarks/spell_detectors.py --data-dir ../shared/data [--people hand1 hand3] [--fps 15]

Per person, a 640x480 video (made here, tests/spell_video_helpers.py) of all 24 letters, each photo held 0.5 s
and crossfaded into the next over 0.15 s. On the held frames, each candidate is compared with the photo route
(handsign.hands.landmarks.detect, what `asl` was trained on): hand found, the same letter from `asl` (bundled,
ONNX), mean landmark distance in palm sizes, the share MediaPipe calls "Left" (the hands are right hands), and
ms per frame. Candidates:
  photo         landmarks.detect on every frame (static mode, padded retries)
  solutions-1   mediapipe.solutions.hands tracking mode, 1 hand, full landmark model (what `spell` uses)
  solutions-1-pad  the same, each frame padded by 0.25 of its longer side (the photo route's first attempt)
  solutions-2   the same, 2 hands (the palm detector runs until two are seen)
  tasks-1       mediapipe.tasks HandLandmarker in RunningMode.VIDEO, its .task bundle built here from the wheel's
                palm_detection_full.tflite + hand_landmark_full.tflite, 1 hand
  *-lite        the same with hand_landmark_lite (model complexity 0)
Prints a table and writes spell-detectors.json.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from report import write_report  # noqa: E402
from spell_video_helpers import spelled_frames  # noqa: E402

from handsign.data.sources import KNOWN  # noqa: E402
from handsign.hands import landmarks  # noqa: E402
from handsign.hands.features import palm_size  # noqa: E402
from handsign.hands.tracking import HandTracker  # noqa: E402
from handsign.infer.predict import Predictor  # noqa: E402

LETTERS = "abcdefghiklmnopqrstuvwxy"


def _largest(found):
    return None if not found else max(found, key=lambda f: np.ptp(f[0][:, :2], axis=0).prod())


def solutions(hands: int, complexity: int, pad: float = 0.0):
    import mediapipe as mp

    g = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=hands, model_complexity=complexity,
                                 min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def run(rgb, t_ms):
        padded, px = landmarks.pad_photo(rgb, pad) if pad else (rgb, 0)  # the photo route's border padding
        r = g.process(padded)
        h, w = padded.shape[:2]
        found = [(np.array([[p.x * w, p.y * h, p.z * w] for p in m.landmark], np.float32),
                  c.classification[0].label) for m, c in zip(r.multi_hand_landmarks or [], r.multi_handedness or [])]
        for points, _ in found:
            points[:, :2] -= px
        return _largest(found)
    return run


def tasks(hands: int, complexity: int):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    models = Path(mp.__file__).parent / "modules"
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_STORED) as z:
        z.write(models / "palm_detection" / "palm_detection_full.tflite", "hand_detector.tflite")
        z.write(models / "hand_landmark" / f"hand_landmark_{'full' if complexity else 'lite'}.tflite",
                "hand_landmarks_detector.tflite")
    g = vision.HandLandmarker.create_from_options(vision.HandLandmarkerOptions(
        base_options=BaseOptions(model_asset_buffer=bundle.getvalue()), running_mode=vision.RunningMode.VIDEO,
        num_hands=hands))

    def run(rgb, t_ms):
        r = g.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), int(t_ms))
        h, w = rgb.shape[:2]
        return _largest([(np.array([[p.x * w, p.y * h, p.z * w] for p in m], np.float32), c[0].category_name)
                         for m, c in zip(r.hand_landmarks, r.handedness)])
    return run


def shipped():
    track = HandTracker()

    def run(rgb, t_ms):
        hand = track(rgb)
        return None if hand is None else (hand.points, hand.handedness)
    return run


def photo_route():
    def run(rgb, t_ms):
        hand = landmarks.detect(rgb)
        return None if hand is None else (hand.points, hand.handedness)
    return run


CANDIDATES = {"photo": photo_route, "solutions-1": shipped, "solutions-1-pad": lambda: solutions(1, 1, 0.25),
              "solutions-2": lambda: solutions(2, 1), "tasks-1": lambda: tasks(1, 1),
              "solutions-1-lite": lambda: solutions(1, 0), "tasks-1-lite": lambda: tasks(1, 0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("HANDSIGN_DATA", "data"))
    ap.add_argument("--people", nargs="+", default=["hand1", "hand2", "hand3", "hand4", "hand5"])
    ap.add_argument("--fps", type=float, default=15)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    massey = Path(a.data_dir) / KNOWN["asl_photos"].folder
    route = Predictor.load("asl", backend="onnx").hands
    n_hold, n_fade = round(0.5 * a.fps), round(0.15 * a.fps)
    doc = {"machine": {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()}, "fps": a.fps, "size": [640, 480],
           "people": {}}
    for person in a.people:
        def photo(c):
            return np.asarray(Image.open(sorted((massey / c).glob(f"{person}_*"))[0]).convert("RGB"))

        frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in  # RGB
                  spelled_frames([LETTERS], photo, size=(640, 480), fps=a.fps)]
        lead = round(0.6 * a.fps)
        held = [lead + k * (n_hold + n_fade) + j for k in range(len(LETTERS)) for j in range(n_hold)]
        answers = {}
        for name, make in CANDIDATES.items():
            run, out, ms = make(), [], []
            for i, rgb in enumerate(frames):
                t0 = time.perf_counter()
                out.append(run(rgb, i * 1000 / a.fps))
                ms.append(1000 * (time.perf_counter() - t0))
            answers[name] = (out, np.array(ms[5:]))
        ref = answers["photo"][0]
        rows = {}
        for name, (out, ms) in answers.items():
            both = [i for i in held if out[i] is not None and ref[i] is not None]

            def letter(hand):
                return int(np.argmax(route.probs([landmarks.Hand(hand[0], hand[1], 1.0)])[0]))
            rows[name] = {
                "found": round(sum(out[i] is not None for i in held) / len(held), 4),
                "same_letter": round(sum(letter(out[i]) == letter(ref[i]) for i in both) / max(len(both), 1), 4),
                "distance_palms": round(float(np.mean([
                    np.linalg.norm(out[i][0][:, :2] - ref[i][0][:, :2], axis=1).mean() / palm_size(ref[i][0])
                    for i in both])), 4),
                "mediapipe_left": round(sum(out[i][1] == "Left" for i in held if out[i]) / max(1, sum(
                    out[i] is not None for i in held)), 4),
                "ms_p50": round(float(np.median(ms)), 2), "ms_mean": round(float(ms.mean()), 2)}
            print(person, f"{name:<17}", rows[name], flush=True)
        doc["people"][person] = rows
    doc["machine"]["load_at_end"] = os.getloadavg()
    mean = {name: {k: round(float(np.mean([doc["people"][p][name][k] for p in a.people])), 4)
                   for k in doc["people"][a.people[0]][name]} for name in CANDIDATES}
    doc["mean"] = mean
    write_report(Path(a.out) / "spell-detectors.json", doc,
                 f"\nmean over {len(a.people)} people, 640x480 @ {a.fps:g} fps, "
                 f"load {doc['machine']['load_at_start'][0]:.2f} -> {doc['machine']['load_at_end'][0]:.2f}\n"
                 f"{'candidate':<17} {'found':>6} {'same letter':>12} {'palms apart':>12} {'Left':>6} {'ms p50':>7} "
                 f"{'mean':>6}",
                 (f"{name:<17} {m['found']:>6.3f} {m['same_letter']:>12.3f} {m['distance_palms']:>12.3f} "
                  f"{m['mediapipe_left']:>6.3f} {m['ms_p50']:>7.1f} {m['ms_mean']:>6.1f}" for name, m in mean.items()))


if __name__ == "__main__":
    main()
