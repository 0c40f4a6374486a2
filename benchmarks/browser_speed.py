"""Speed of live spelling in the browser: headless chromium, its fake camera playing a 30 frames/s clip of a word
fingerspelled from Massey photos (made at run time, tests/fake_camera.py), the page's #live button.

    python benchmarks/browser_speed.py --data-dir ../shared/data [--seconds 20] [--runs 3] [--out ...]

Per run: frames read per second (frames the page analysed over the measuring window; the camera delivers 30) and
frame -> letter latency (from the frame's capture, requestVideoFrameCallback's captureTime, or presentationTime
where the browser gives none: `clock` in the JSON, until its letter and confidence are on the page), from the page's
"handsign-frame" events; the clip is read for a few seconds before measuring (WebAssembly start-up, first frames).
Goals (issue 26): >= 15 frames/s, <= 100 ms. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from browser_common import FAKE_CAMERA, machine, page_on_server, wait_until  # sets sys.path

from fake_camera import spelling_clip  # noqa: E402
from report import write_report  # noqa: E402

COLLECT = """() => { window.benchFrames = [];
  document.addEventListener("handsign-frame", (e) => window.benchFrames.push(e.detail)); }"""
PLAYED = "() => document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames"


def one_run(clip: Path, seconds: float, warmup: float) -> dict:
    with page_on_server(["asl"], FAKE_CAMERA + [f"--use-file-for-fake-video-capture={clip}"]) as (url, page):
        page.evaluate(COLLECT)
        t0 = time.monotonic()
        page.click("#live")
        wait_until(page, "() => window.benchFrames.length > 0", timeout_s=120)
        ready_s = time.monotonic() - t0
        route = page.get_attribute("#route", "data-route")
        time.sleep(warmup)
        start = page.evaluate("() => [window.benchFrames.length, performance.now()]")
        played0 = page.evaluate(PLAYED)
        time.sleep(seconds)
        frames, now = page.evaluate("() => [window.benchFrames, performance.now()]")
        played = page.evaluate(PLAYED) - played0
        fps_shown = page.inner_text("#fps")
        spelled = page.inner_text("#spelled")
    window = frames[start[0]:]
    span_s = (now - start[1]) / 1000
    lat = np.array([f["latencyMs"] for f in window])
    return {"route": route, "ready_s": round(ready_s, 2), "window_s": round(span_s, 2), "frames_read": len(window),
            "frames_per_s": round(len(window) / span_s, 2), "camera_frames_per_s": round(played / span_s, 2),
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                           "max": round(float(lat.max()), 1)},
            "clock": sorted({f["since"] for f in window}), "with_hand": sum(f["hand"] for f in window),
            "fps_shown": fps_shown, "spelled": spelled}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--word", default="wolf")
    ap.add_argument("--person", default="hand2")
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring window per run")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds read before the window")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/browser-speed.json")
    args = ap.parse_args()
    root = Path(args.data_dir) / "asl_photos" / "massey"
    photos = [sorted((root / c).glob(f"{args.person}_*"))[0] for c in args.word]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        clip, length = spelling_clip(photos, Path(tmp) / "clip.y4m")
        for i in range(args.runs):
            runs.append(one_run(clip, args.seconds, args.warmup))
            r = runs[-1]
            print(f"run {i + 1}: {r['route']} route, {r['frames_per_s']} frames/s read (camera {r['camera_frames_per_s']}), "
                  f"latency p50 {r['latency_ms']['p50']} ms, p95 {r['latency_ms']['p95']} ms; ready after "
                  f"{r['ready_s']} s; spelled {r['spelled']!r}", flush=True)
    result = {"word": args.word, "person": args.person, "clip_s": round(length, 2), "clip_fps": 30,
              "seconds": args.seconds, "warmup": args.warmup, "machine": machine(), "runs": runs,
              "goals": {"frames_per_s": 15, "latency_ms": 100}}
    fps = [r["frames_per_s"] for r in runs]
    p50 = [r["latency_ms"]["p50"] for r in runs]
    write_report(args.out, result, f"frames/s read: {min(fps)}-{max(fps)} (goal >= 15); latency p50 {min(p50)}-"
                                   f"{max(p50)} ms (goal <= 100); load average {result['machine']['load_average']}")


if __name__ == "__main__":
    main()
