"""Leave-one-person-out on the Massey ASL photos: the landmark route, the pixel CNN, and their fusion.

    python benchmarks/hands_lopo.py --data-dir ../shared/data [--seeds 0 1 2] [--out benchmarks/results]

For each seed and each of the five people: train the `hands-asl` recipe on the other four, predict
every photo of the fifth. The pixel CNN (the bundled `asl` pixel model, never trained on these
photos) predicts the same photos. The fusion weight w (p = (1 - w) p_landmarks + w p_pixels) is
chosen here, on these held-out people, never on a test set. Two ways to count a photo where no hand
is found: `strict` (wrong, the issue's rule) and `system` (the pixel model answers, as predict does).
Prints a table and writes hands-lopo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handsign.images import preprocess as pp  # noqa: E402
from handsign.hands.photos import load_folder  # noqa: E402
from handsign.data.sources import KNOWN  # noqa: E402
from handsign.train.config import make_config  # noqa: E402
from handsign.train.landmarks import leave_one_person_out  # noqa: E402
from handsign.infer.predict import BUNDLED_DIR, Predictor  # noqa: E402
from handsign.infer.torch_runner import softmax  # noqa: E402

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


MIN_GAIN = 0.005  # fusion must beat the landmarks alone by half a point (the seeds differ by ~0.7)


def choose_weight(mean_by_w: dict) -> float:
    """The pixel weight with the best mean accuracy over seeds, if it measurably beats no fusion; else 0."""
    best = max(WEIGHTS, key=lambda w: (mean_by_w[str(w)], -w))  # ties: the smaller weight
    return best if mean_by_w[str(best)] - mean_by_w["0.0"] >= MIN_GAIN else 0.0


def pixel_probs(files, model) -> np.ndarray:
    p = Predictor.load(model, backend="torch")
    x = np.stack([pp.load_image(f, p.spec) for f in files])
    return softmax(p.logits(x).astype(np.float64))


def score(probs_hand, probs_pix, found, labels, groups, w: float, strict: bool) -> dict:
    fused = np.where(found[:, None], (1 - w) * probs_hand + w * probs_pix, 0.0 if strict else probs_pix)
    correct = (fused.argmax(1) == labels) & (found | (not strict))
    per = {g: round(float(correct[groups == g].mean()), 4) for g in sorted(set(groups))}
    return {"per_person": per, "mean": round(float(np.mean(list(per.values()))), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("HANDSIGN_DATA", "data"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pixel-model", default=str(BUNDLED_DIR / "asl-pixels.safetensors"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args(argv)
    root = Path(a.data_dir) / KNOWN["asl_photos"].folder
    t0 = time.perf_counter()
    hs = load_folder(root)
    detection = hs.detection_report()
    print(f"{len(hs.files)} photos, hand found in {detection['overall']['found']} "
          f"({100 * detection['overall']['rate']:.1f} %) [{time.perf_counter() - t0:.0f} s incl. landmark cache]")
    groups, found = np.array(hs.groups), hs.found
    pix = pixel_probs(hs.files, a.pixel_model)
    pixels_only = score(pix, pix, np.ones_like(found), hs.labels, groups, 1.0, strict=False)
    runs = []
    for seed in a.seeds:
        t = time.perf_counter()
        lopo = leave_one_person_out(hs, make_config("hands-asl", seed=seed), log=lambda *_: None)
        fusion = {str(w): {"strict": score(lopo["probs"], pix, found, hs.labels, groups, w, True),
                           "system": score(lopo["probs"], pix, found, hs.labels, groups, w, False)} for w in WEIGHTS}
        runs.append({"seed": seed, "seconds": round(time.perf_counter() - t, 1),
                     "landmarks": {k: v for k, v in lopo.items() if k != "probs"}, "fusion": fusion})
        print(f"seed {seed}: landmarks {100 * lopo['mean_accuracy']:.2f} % mean, "
              + ", ".join(f"w={w}: {100 * fusion[str(w)]['strict']['mean']:.2f}" for w in WEIGHTS))
    mean_by_w = {str(w): round(float(np.mean([r["fusion"][str(w)]["strict"]["mean"] for r in runs])), 4) for w in WEIGHTS}
    best_w = choose_weight(mean_by_w)
    doc = {"photos": str(root), "n_photos": len(hs.files), "detection": detection, "seeds": a.seeds,
           "pixel_model": a.pixel_model, "pixels_only": pixels_only, "runs": runs,
           "fusion_mean_over_seeds": mean_by_w, "min_gain": MIN_GAIN, "chosen_pixel_weight": best_w}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hands-lopo.json").write_text(json.dumps(doc, indent=2))
    people = sorted(set(hs.groups))
    print(f"\n| route | {' | '.join(people)} | mean |\n|---|{'---|' * len(people)}---|")
    row = " | ".join(f"{100 * pixels_only['per_person'][g]:.1f}" for g in people)
    print(f"| pixel CNN only | {row} | {100 * pixels_only['mean']:.1f} |")
    for r in runs:
        for w, label in ((0.0, "landmarks"),) + (((best_w, f"fused w={best_w}"),) if best_w else ()):
            s = r["fusion"][str(w)]["strict"]
            row = " | ".join(f"{100 * s['per_person'][g]:.1f}" for g in people)
            print(f"| {label}, seed {r['seed']} | {row} | {100 * s['mean']:.2f} |")
    print(f"\nchosen pixel weight {best_w} (fusion kept only if it gains >= {100 * MIN_GAIN} points; mean over "
          f"seeds {mean_by_w}); wrote {out / 'hands-lopo.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
