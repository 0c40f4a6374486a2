"""Would MediaPipe's lite landmark model make the photo route fast enough, and at what cost in accuracy?

    python benchmarks/lite_landmarks.py --data-dir ../shared/data [--seeds 0 1 2] [--photos 96]

Issue 26 asks for photo -> letter p50 <= 30 ms on the server route on a quiet machine, with the lite landmark
model (complexity 0) if leave-one-person-out holds within half a point. Two detector settings are compared:
`full`, the one handsign uses (handsign.hands.landmarks.ATTEMPTS, complexity 1 first), and `lite`, the same
chain of attempts with complexity 0 everywhere. For each: the in-process photo -> hand time (decode + MediaPipe,
p50/p99 over Massey photos, measured first, before any training loads the cores), the hand-found rate on all
1,675 photos, and leave-one-person-out accuracy of the `hands-asl` recipe on the landmarks it finds (seeds as
given; a photo with no hand counts as wrong). The lite run uses its own landmark cache (a temporary
HANDSIGN_CACHE), so the real cache, keyed by the real settings, is never mixed with it.
Prints a table and writes lite-landmarks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handsign.data.sources import KNOWN  # noqa: E402
from handsign.files import atomic_write_bytes  # noqa: E402
from handsign.hands import landmarks  # noqa: E402
from handsign.hands.photos import list_folder, load_folder  # noqa: E402
from handsign.images import preprocess as pp  # noqa: E402
from handsign.infer.hand_route import find_hand  # noqa: E402
from handsign.train.config import make_config  # noqa: E402
from handsign.train.landmarks import leave_one_person_out  # noqa: E402

FULL = landmarks.ATTEMPTS
LITE = tuple((0, confidence, pad) for _, confidence, pad in FULL)  # the same chain, the lite landmark model


def time_detection(files: list[Path], attempts) -> dict:
    """decode + find_hand (what the server route does before the tiny MLP) per photo, one at a time."""
    landmarks.ATTEMPTS = attempts
    find_hand(pp.decode_image(files[0].read_bytes()))  # warm-up: MediaPipe builds its graphs
    times, found = [], 0
    for f in files:
        t = time.perf_counter()
        found += find_hand(pp.decode_image(f.read_bytes())) is not None
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"photos": len(files), "found": found, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def lopo(root: Path, attempts, seeds, cache: str | None) -> dict:
    landmarks.ATTEMPTS = attempts
    if cache:
        os.environ["HANDSIGN_CACHE"] = cache
    t = time.perf_counter()
    hs = load_folder(root)
    out = {"found": int(hs.found.sum()), "photos": len(hs.files),
           "extract_s": round(time.perf_counter() - t, 1), "seeds": {}}
    for seed in seeds:
        r = leave_one_person_out(hs, make_config("hands-asl", seed=seed), log=lambda *_: None)
        out["seeds"][seed] = {"mean": r["mean_accuracy"], "per_person": {k: v["accuracy"] for k, v in r["per_person"].items()}}
        print(f"  seed {seed}: {100 * r['mean_accuracy']:.2f} %", flush=True)
    out["mean_over_seeds"] = round(float(np.mean([s["mean"] for s in out["seeds"].values()])), 4)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("HANDSIGN_DATA", "data"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--photos", type=int, default=96, help="Massey photos timed (every n-th of all)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "lite-landmarks.json"))
    a = ap.parse_args(argv)
    root = Path(a.data_dir) / KNOWN["asl_photos"].folder
    files = list_folder(root)[0]
    timed = files[:: max(1, len(files) // a.photos)][: a.photos]
    load = os.getloadavg()
    speed = {name: time_detection(timed, att) for name, att in (("full", FULL), ("lite", LITE))}
    print(f"load average before timing {load}, after {os.getloadavg()}")
    for name, s in speed.items():
        print(f"{name}: photo -> hand p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms ({s['found']}/{s['photos']} found)")
    with tempfile.TemporaryDirectory() as lite_cache:
        accuracy = {"full": lopo(root, FULL, a.seeds, None), "lite": lopo(root, LITE, a.seeds, lite_cache)}
    landmarks.ATTEMPTS = FULL
    doc = {"attempts": {"full": FULL, "lite": LITE}, "load_before_timing": load, "speed": speed,
           "lopo": accuracy, "seeds": a.seeds}
    atomic_write_bytes(Path(a.out), json.dumps(doc, indent=2).encode())
    print("\n| detector | photo -> hand p50 / p99 (ms) | hand found (all photos) | LOPO mean, seeds "
          f"{' / '.join(map(str, a.seeds))} | mean |\n|---|---|---|---|---|")
    for name in ("full", "lite"):
        s, r = speed[name], accuracy[name]
        per_seed = " / ".join(f"{100 * r['seeds'][x]['mean']:.2f}" for x in a.seeds)
        print(f"| {name} | {s['p50_ms']} / {s['p99_ms']} | {r['found']}/{r['photos']} | {per_seed} | "
              f"{100 * r['mean_over_seeds']:.2f} % |")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
