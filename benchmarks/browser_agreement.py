"""What reading hands in the browser costs: the page's landmarker (MediaPipe Tasks Vision in WebAssembly, headless
chromium) against the Python route (mediapipe.solutions) on the same Massey photos.

    python benchmarks/browser_agreement.py --data-dir ../shared/data [--every 5] [--out benchmarks/results/browser-agreement.json]

Every `--every`-th photo (sorted by letter, then file name), read four ways:
  python         the Python route on the photo itself (handsign.hands.landmarks.detect: what `handsign predict`, the
                 server and training use; it pads the photo, and tries again with other settings where no hand is found)
  python_wall    the Python route on the photo put on a plain 640x480 wall, as the browser tests' fake camera shows it
                 (tests/fake_camera.py)
  browser_wall   the page's own code in chromium on that wall frame: hands.js (HandLandmarker, IMAGE mode, the served
                 .task) -> features.js -> landmark_model.js with GET /models/asl/weights
  browser_padded the same on the photo padded as the Python route's first attempt pads it (25 % of the longer side
                 on each side, the border's median colour): the same pixels as the Python route's first try
Landmarks are compared in the photo's pixels over its longer side (0.04 = 4 % of the photo); letters by the bundled
`asl` model on each route's landmarks. The bundled model was trained on all 5 Massey people, so the accuracies are
on its own training photos (how well each route reproduces them), not on unseen people. Prints a table and writes
JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from browser_common import machine, page_on_server  # sets sys.path

from fake_camera import HAND_SIDE, HEIGHT, WIDTH, on_wall  # noqa: E402
from report import write_report  # noqa: E402
from handsign.hands.landmarks import ATTEMPTS, detect, pad_photo  # noqa: E402
from handsign.infer.predict import Predictor  # noqa: E402

READ_IN_PAGE = """async ({urls, weights}) => {
  const hands = await import("/static/hands.js");
  const features = await import("/static/features.js");
  const lm = await import("/static/landmark_model.js");
  if (!window.bench) window.bench = {landmarker: await hands.createLandmarker("IMAGE"),
                                     model: await lm.LandmarkModel.load(weights)};
  const out = [];
  for (const url of urls) {
    const img = new Image();
    img.src = url;
    await img.decode();
    const t0 = performance.now();
    const hand = hands.largestHand(window.bench.landmarker.detect(img), img.naturalWidth, img.naturalHeight);
    const ms = performance.now() - t0;
    out.push({ms, points: hand && hand.points, handedness: hand && hand.handedness,
              probs: hand && Array.from(window.bench.model.probs(features.handFeatures(hand.points, hand.left)))});
  }
  return out;
}"""


def photo_frame(photo: Path) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The wall frame (uint8) and how to map its pixels back to the photo's: (frame, scale, offset)."""
    with Image.open(photo) as im:
        w, h = im.size
    scale = max(w, h) / HAND_SIDE if max(w, h) > HAND_SIDE else 1.0  # on_wall shrinks to HAND_SIDE, never enlarges
    tw, th = round(w / scale), round(h / scale)
    return np.clip(np.rint(on_wall(photo)), 0, 255).astype(np.uint8), scale, ((WIDTH - tw) // 2, (HEIGHT - th) // 2)


def padded(rgb: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The photo padded as handsign.hands.landmarks pads it for its first attempt: (frame, scale 1, offset)."""
    out, pad = pad_photo(rgb, ATTEMPTS[0][2])
    return out, 1.0, (pad, pad)


def to_photo(points, scale, offset) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)[:, :2].copy()
    p -= offset
    return p * scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--every", type=int, default=5, help="every N-th photo (default 5: 335 of 1,675)")
    ap.add_argument("--batch", type=int, default=25, help="photos per call into the page")
    ap.add_argument("--out", default="benchmarks/results/browser-agreement.json")
    args = ap.parse_args()
    root = Path(args.data_dir) / "asl_photos" / "massey"
    photos = sorted(root.glob("*/*"))[::args.every]
    if not photos:
        sys.exit(f"no photos under {root}")
    model = Predictor.load("asl", backend="onnx")
    rows = []
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp, page_on_server(["asl"]) as (url, page):
        frames = {}  # (variant, i) -> (frame, scale, offset, png path)
        for i, photo in enumerate(photos):
            rgb = np.asarray(Image.open(photo).convert("RGB"))
            for variant, (frame, scale, offset) in (("wall", photo_frame(photo)), ("padded", padded(rgb))):
                path = Path(tmp) / f"{variant}-{i}.png"
                Image.fromarray(frame).save(path)
                frames[variant, i] = (frame, scale, offset, path)
        page.route("**/bench/*.png", lambda route: route.fulfill(
            path=str(Path(tmp) / route.request.url.rsplit("/", 1)[1]), content_type="image/png"))
        browser = {}
        for variant in ("wall", "padded"):
            browser[variant] = []
            for start in range(0, len(photos), args.batch):
                urls = [f"/bench/{variant}-{i}.png" for i in range(start, min(start + args.batch, len(photos)))]
                browser[variant] += page.evaluate(READ_IN_PAGE, {"urls": urls, "weights": "/models/asl/weights"})
                print(f"\rbrowser, {variant}: {len(browser[variant])}/{len(photos)}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        for i, photo in enumerate(photos):
            rgb = np.asarray(Image.open(photo).convert("RGB"))
            side = max(rgb.shape[:2])
            wall, scale, offset, _ = frames["wall", i]
            row = {"file": f"{photo.parent.name}/{photo.name}", "label": photo.parent.name,
                   "person": photo.name.split("_")[0]}
            hands = {"python": (detect(rgb), 1.0, (0, 0)), "python_wall": (detect(wall), scale, offset)}
            for name, (hand, sc, off) in hands.items():
                row[name] = None if hand is None else model.labels[int(model.hands.probs([hand])[0].argmax())]
                row[f"{name}_hand"] = None if hand is None else hand.handedness
                hands[name] = None if hand is None else to_photo(hand.points, sc, off)
            for variant in ("wall", "padded"):
                b, name = browser[variant][i], f"browser_{variant}"
                _, sc, off, _ = frames[variant, i]
                row[name] = None if b["points"] is None else model.labels[int(np.argmax(b["probs"]))]
                row[f"{name}_hand"] = b["handedness"]
                row[f"{name}_ms"] = round(b["ms"], 2)
                if b["points"] is not None:
                    bp = to_photo(b["points"], sc, off)
                    for ref in ("python", "python_wall"):
                        if hands[ref] is not None:
                            d = np.linalg.norm(bp - hands[ref], axis=1) / side  # (21,) in photo sides
                            row[f"diff_{name}_{ref}"] = {"max": round(float(d.max()), 4), "mean": round(float(d.mean()), 4)}
            rows.append(row)
    result = summarise(rows, photos, args, time.time() - started)
    print_table(result)
    write_report(args.out, result)


def _stats(xs) -> dict:
    xs = np.array(xs)
    return {"n": len(xs), "median": round(float(np.median(xs)), 4), "p90": round(float(np.percentile(xs, 90)), 4),
            "max": round(float(xs.max()), 4)} if len(xs) else {"n": 0}


ROUTES = ("python", "python_wall", "browser_wall", "browser_padded")
PAIRS = (("browser_padded", "python"), ("browser_wall", "python"), ("browser_wall", "python_wall"))


def summarise(rows, photos, args, seconds) -> dict:
    n = len(rows)
    routes = {}
    for r in ROUTES:
        found = [x for x in rows if x[r] is not None]
        routes[r] = {"found": len(found), "found_rate": round(len(found) / n, 4),
                     "accuracy": round(sum(x[r] == x["label"] for x in rows) / n, 4),  # no hand = wrong
                     "per_person": {p: round(float(np.mean([x[r] == x["label"] for x in rows if x["person"] == p])), 4)
                                    for p in sorted({x["person"] for x in rows})}}
    agreement, diffs = {}, {}
    for a, b in PAIRS:
        both = [x for x in rows if x[a] is not None and x[b] is not None]
        agreement[f"{a}_vs_{b}"] = {
            "both_found": len(both), "same_letter": round(sum(x[a] == x[b] for x in both) / max(1, len(both)), 4),
            "same_handedness": round(sum(x[f"{a}_hand"] == x[f"{b}_hand"] for x in both) / max(1, len(both)), 4)}
        for k in ("max", "mean"):  # photo sides; per photo the largest of the 21 points' distances, and their mean
            diffs[f"{a}_vs_{b}_{k}"] = _stats([x[f"diff_{a}_{b}"][k] for x in rows if f"diff_{a}_{b}" in x])
    out = {"photos": n, "every": args.every, "seconds": round(seconds, 1), "machine": machine(), "routes": routes,
           "agreement": agreement, "landmark_difference": diffs,
           "browser_ms_per_photo": {v: _stats([x[f"browser_{v}_ms"] for x in rows]) for v in ("wall", "padded")},
           "browser_wall_per_person_letter": {},  # person -> letters read right on the wall (to pick a test word)
           "rows": rows}
    for p in sorted({x["person"] for x in rows}):
        mine = [x for x in rows if x["person"] == p]
        out["browser_wall_per_person_letter"][p] = {
            c: f"{sum(x['browser_wall'] == c for x in mine if x['label'] == c)}/{sum(x['label'] == c for x in mine)}"
            for c in sorted({x["label"] for x in mine})}
    return out


def print_table(r: dict) -> None:
    print(f"{r['photos']} Massey photos (every {r['every']}th), {r['seconds']} s, load {r['machine']['load_average']}")
    print(f"{'route':<15} {'found':>7} {'accuracy':>9}   per person")
    for name, x in r["routes"].items():
        pp = " ".join(f"{k}:{v * 100:.1f}" for k, v in x["per_person"].items())
        print(f"{name:<15} {x['found_rate'] * 100:6.1f}% {x['accuracy'] * 100:8.1f}%   {pp}")
    for k, a in r["agreement"].items():
        print(f"{k}: same letter {a['same_letter'] * 100:.1f}%, same handedness {a['same_handedness'] * 100:.1f}% "
              f"of {a['both_found']} found by both")
    for k, s in r["landmark_difference"].items():
        if s["n"]:
            print(f"landmarks {k}: median {s['median']:.4f}, p90 {s['p90']:.4f}, max {s['max']:.4f} (photo sides)")
    for v, s in r["browser_ms_per_photo"].items():
        print(f"browser landmarker (IMAGE mode), {v}: median {s['median']:.1f} ms per photo")


if __name__ == "__main__":
    main()
