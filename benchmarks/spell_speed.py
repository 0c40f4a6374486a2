"""Speed of `handsign spell`: frames per second on a 640x480 video, and where each frame's time goes.

    python benchmarks/spell_speed.py --data-dir ../shared/data [--runs 3] [--uhd-seconds 4]

The video is made here (tests/spell_video_helpers.py) from one Massey person's photos: words of held letters
with crossfades and hand-free pauses, 640x480 MJPG at 30 frames/s. Each run is spell() in this process
(the model, MediaPipe's graph and the reading as the CLI does them, without Python's start-up), per backend;
the split per frame: read (decode + shrink + BGR->RGB), landmarks (MediaPipe tracking), model (features +
MLP), decoder. Then 3840x2160 videos of 1 s and --uhd-seconds are read the same way, each in a fresh process, with its
peak memory (max RSS): frames are streamed, so the longer one must not need more.
Prints a table and writes spell-speed.json. The goal: >= 30 frames/s at 640x480 on this 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the video maker the tests use

from report import write_report  # noqa: E402
from spell_video_helpers import spelled_frames, write_video  # noqa: E402

from handsign.data.sources import KNOWN  # noqa: E402
from handsign.spell import spell  # noqa: E402

WORDS = ["bed", "fix", "two", "cab", "hide"]


def uhd_run(tmp: Path, photo, seconds: float, backend: str) -> dict:
    """spell() of a 3840x2160 video of `seconds` in a fresh Python: frames/s and the process's peak memory."""
    n = round(30 * seconds)
    frames = (np.repeat(np.repeat(f, 6, axis=0), 6, axis=1)  # 640x360 -> 3840x2160
              for f in spelled_frames(WORDS, photo, size=(640, 360), fps=30))
    video = write_video(tmp / f"uhd-{n}.mp4", (f for _, f in zip(range(n), frames)), fps=30)
    # VmHWM, the peak of this process's own memory (ru_maxrss would carry the parent's over fork + exec)
    code = ("import json, re; from handsign.spell import spell; "
            f"r = spell({str(video)!r}, backend={backend!r}); "
            "hwm = int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1]); "
            "print(json.dumps({'frames': r['frames'], 'fps': r['fps_read'], 'seconds': r['seconds'], "
            "'max_rss_mb': hwm / 1024}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    r = json.loads(out.stdout)
    return {"size": [3840, 2160], "seconds": seconds, "frames": r["frames"], "fps": r["fps"],
            "decoded_size_mb": round(r["frames"] * 3840 * 2160 * 3 / 2**20), "max_rss_mb": round(r["max_rss_mb"]),
            "ms_per_frame": {k: round(1000 * v / r["frames"], 2) for k, v in r["seconds"].items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("HANDSIGN_DATA", "data"))
    ap.add_argument("--person", default="hand3")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backends", nargs="+", default=["onnx", "torch"])
    ap.add_argument("--uhd-seconds", type=float, default=4.0, help="length of the 3840x2160 video (0: skip it)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    massey = Path(a.data_dir) / KNOWN["asl_photos"].folder

    def photo(c):
        return np.asarray(Image.open(sorted((massey / c).glob(f"{a.person}_*"))[0]).convert("RGB"))

    doc = {"machine": {"cpus": os.cpu_count(), "load_at_start": os.getloadavg(), "python": platform.python_version()},
           "video": {"size": [640, 480], "fps": 30, "words": WORDS, "person": a.person}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "words.avi", spelled_frames(WORDS, photo, size=(640, 480), fps=30), fps=30)
        for backend in a.backends:
            spell(video, backend=backend)  # warm: the first graph and model loads
            runs = []
            for _ in range(a.runs):
                r = spell(video, backend=backend)
                n = r["frames"]
                runs.append({"text": r["text"], "frames": n, "frames_with_hand": r["frames_with_hand"],
                             "fps": r["fps_read"], "ms_per_frame": {k: round(1000 * v / n, 2) for k, v in
                                                                    r["seconds"].items()}})
            doc["runs"][backend] = runs
        if a.uhd_seconds > 0:  # two lengths, each in a fresh process: the same peak memory means streamed
            doc["uhd"] = [uhd_run(Path(tmp), photo, seconds, a.backends[0]) for seconds in (1.0, a.uhd_seconds)]
    doc["machine"]["load_at_end"] = os.getloadavg()

    rows = []
    for backend, runs in doc["runs"].items():
        for x in runs:
            m = x["ms_per_frame"]
            rows.append(f"{backend:<8} {x['fps']:>9.1f} {m['read']:>6.2f} {m['landmarks']:>10.2f} {m['model']:>6.2f} "
                        f"{m['decoder']:>8.3f} {m['total']:>6.2f}  {x['text']!r}")
    rows.append("(ms per frame; landmarks = MediaPipe tracking; model = features + MLP)")
    rows += [f"3840x2160, {u['seconds']:g} s: {u['frames']} frames, {u['fps']:.1f} frames/s (read "
             f"{u['ms_per_frame']['read']:.1f} ms/frame), peak memory {u['max_rss_mb']} MB (the video decoded: "
             f"{u['decoded_size_mb']} MB)" for u in doc.get("uhd", [])]
    write_report(Path(a.out) / "spell-speed.json", doc,
                 f"640x480 @ 30 fps, {len(WORDS)} words, load {doc['machine']['load_at_start'][0]:.2f} -> "
                 f"{doc['machine']['load_at_end'][0]:.2f} on {os.cpu_count()} cores\n"
                 f"{'backend':<8} {'frames/s':>9} {'read':>6} {'landmarks':>10} {'model':>6} {'decoder':>8} "
                 f"{'total':>6}  text", rows)


if __name__ == "__main__":
    main()
