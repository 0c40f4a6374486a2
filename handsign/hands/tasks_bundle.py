"""The hand-landmarker model bundle of MediaPipe's Tasks API (`hand_landmarker.task`), for the page's
in-browser route, made from the two models the pinned mediapipe wheel already ships: nothing is downloaded.

    data = hand_landmarker_task()   # bytes of a zip: hand_detector.tflite + hand_landmarks_detector.tflite

The Tasks API (`@mediapipe/tasks-vision` in the browser) reads a `.task` file: a zip of the palm
detector and the landmark model under those two names. The "full" models are the ones the Python route
(handsign.hands.landmarks, model complexity 1) runs first, so both routes run the same networks; what
differs is the graph around them (crops, smoothing; measured in benchmarks/browser_agreement.py).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import zipfile
from pathlib import Path

from handsign.errors import HandsignError
from handsign.hands.landmarks import INSTALL_HINT

# name in the .task bundle -> file in the mediapipe wheel (mediapipe/modules/...)
TASK_FILES = {"hand_detector.tflite": "palm_detection/palm_detection_full.tflite",
              "hand_landmarks_detector.tflite": "hand_landmark/hand_landmark_full.tflite"}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entry times: the same bytes (and ETag) on every build


def _modules_dir() -> Path:
    """mediapipe/modules of the installed wheel, found without importing mediapipe (~1 s)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise HandsignError(f"the in-browser hand model needs MediaPipe's model files: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "modules"


@functools.lru_cache(maxsize=1)
def hand_landmarker_task() -> bytes:
    """The `.task` bundle as bytes (~7.8 MB, built once per process from the wheel's two .tflite files).

    Entries are stored, not deflated: TFLite models hardly compress, and MediaPipe reads a stored entry
    in place."""
    modules = _modules_dir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, rel in TASK_FILES.items():
            path = modules / rel
            if not path.is_file():
                raise HandsignError(f"{path}: not in the installed mediapipe wheel; the in-browser hand model "
                                    f"needs mediapipe==0.10.21 ({INSTALL_HINT})")
            z.writestr(zipfile.ZipInfo(name, date_time=_FIXED_TIME), path.read_bytes())
    return buf.getvalue()
