"""Which letters a small model that never saw a person reads right in a video of that person: the evidence behind
the words of tests/test_spell_video.py.

    python benchmarks/spell_letters.py --data-dir ../shared/data [--people hand3] [--per-person 2] [--seeds 0 1 2 3 4]

For each held-out person: hands-asl trained (40 epochs, no LOPO) on --per-person photos per letter of every
other person (the test's recipe), one run per seed; then a 480x360 15 fps video of all 24 letters of the held-out
person (their first photo of each, held 0.5 s, crossfaded 0.15 s) goes through the video route
(handsign.spell.stream.LetterStream). Per letter: the share of its held frames read as that letter and the mean
probability of it there. "safe": letters right on every held frame with mean probability >= 0.8 for every seed.
Prints a table and writes spell-letters.json. Landmarks are cached as usual (~/.cache/handsign or $HANDSIGN_CACHE).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from report import write_report  # noqa: E402
from spell_video_helpers import spelled_frames  # noqa: E402

from handsign.data.sources import KNOWN  # noqa: E402
from handsign.infer.predict import Predictor  # noqa: E402
from handsign.spell.stream import LetterStream  # noqa: E402
from handsign.train import train  # noqa: E402
from handsign.train.config import make_config  # noqa: E402

LETTERS = "abcdefghiklmnopqrstuvwxy"
PEOPLE = ("hand1", "hand2", "hand3", "hand4", "hand5")
FPS = 15


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("HANDSIGN_DATA", "data"))
    ap.add_argument("--people", nargs="+", default=["hand3"], help="held out, one at a time")
    ap.add_argument("--per-person", type=int, default=2, help="training photos per letter and person")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    massey = Path(a.data_dir) / KNOWN["asl_photos"].folder
    doc = {"per_person": a.per_person, "epochs": a.epochs, "seeds": a.seeds, "fps": FPS, "people": {}}
    n_hold, n_fade, lead = round(0.5 * FPS), round(0.15 * FPS), round(0.6 * FPS)
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        for c in LETTERS:
            (photos / c).mkdir(parents=True)
            for person in PEOPLE:
                for f in sorted((massey / c).glob(f"{person}_*"))[:a.per_person]:
                    shutil.copy(f, photos / c / f.name)
        for held in a.people:
            def photo(c):
                return np.asarray(Image.open(sorted((massey / c).glob(f"{held}_*"))[0]).convert("RGB"))
            frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in
                      spelled_frames([LETTERS], photo, size=(480, 360), fps=FPS)]
            rows = {}
            for seed in a.seeds:
                run = Path(tmp) / f"run-{held}-{seed}"
                train(make_config("hands-asl", photos=str(photos), holdout=held, epochs=a.epochs, lopo=False,
                                  seed=seed, out=str(run)), log=lambda *x: None, show_progress=False)
                with LetterStream(Predictor.load(run / "best.safetensors", backend="torch")) as stream:
                    ev = [stream.push(i * 1000 / FPS, f) for i, f in enumerate(frames)]
                row = {}
                for k, c in enumerate(LETTERS):
                    start = lead + k * (n_hold + n_fade)
                    probs = np.array([ev[i].probs for i in range(start, start + n_hold) if ev[i].probs is not None])
                    right = float((probs.argmax(1) == k).sum() / n_hold) if len(probs) else 0.0
                    row[c] = {"right": round(right, 3), "mean_prob": round(float(probs[:, k].mean()), 3)
                              if len(probs) else 0.0}
                rows[seed] = row
                good = "".join(c for c in LETTERS if row[c]["right"] == 1 and row[c]["mean_prob"] >= 0.8)
                print(f"{held} seed {seed}: right on every held frame with p >= 0.8: {good} ({len(good)})", flush=True)
            safe = "".join(c for c in LETTERS if all(r[c]["right"] == 1 and r[c]["mean_prob"] >= 0.8
                                                      for r in rows.values()))
            doc["people"][held] = {"seeds": rows, "safe": safe}
    rows = []
    for held, d in doc["people"].items():
        rows.append(f"{held:<9} {d['safe']} ({len(d['safe'])} of 24)")
        rows.append(f"{'':<9} worst: " + ", ".join(
            f"{c} {min(r[c]['right'] for r in d['seeds'].values()):.2f}/"
            f"{min(r[c]['mean_prob'] for r in d['seeds'].values()):.2f}" for c in LETTERS if c not in d["safe"]))
    write_report(Path(a.out) / "spell-letters.json", doc, f"\n{'held out':<9} safe letters (every seed: {a.seeds})",
                 rows)


if __name__ == "__main__":
    main()
