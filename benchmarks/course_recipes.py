"""Run the four course recipes to completion on the full data; print a table, write JSON.

    python benchmarks/course_recipes.py --data-dir ../shared/data [--recipes course-mnist-mlp ...]

Full-size runs (minutes each on a 2-core CPU): this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from handsign.train.config import make_config
from handsign.train.loop import train

COURSE = ["course-mnist-mlp", "course-asl-mlp", "course-asl-cnn", "course-asl-cnn-aug"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--recipes", nargs="+", default=COURSE)
    p.add_argument("--runs", default="runs/course", help="parent folder of the run folders")
    p.add_argument("--json", default="benchmarks/results/course-recipes.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--retrain", action="store_true",
                   help="train again even if the run folder holds a finished run (default: re-evaluate it)")
    a = p.parse_args(argv)

    # rows of recipes not run this time are kept, so recipes can be run one at a time
    old = json.loads(Path(a.json).read_text()).get("rows", []) if Path(a.json).is_file() else []
    rows = [r for r in old if r["recipe"] not in a.recipes]
    for name in a.recipes:
        out = Path(a.runs) / name
        prev = next((r for r in old if r["recipe"] == name), None)
        t0 = time.perf_counter()
        if not a.retrain and prev and (out / "metrics.json").is_file() and \
                "best" in json.loads((out / "metrics.json").read_text()):
            result = train(resume=out, show_progress=False)  # nothing to train: its summary again (e.g. a newer diagnosis)
            seconds = prev["seconds"]
        else:
            result = train(make_config(name, data_dir=a.data_dir, out=str(out), seed=a.seed, threads=a.threads),
                           show_progress=False)
            seconds = time.perf_counter() - t0
        best, last = result.metrics["best"], result.metrics["last"]
        rows.append({"recipe": name, "seconds": round(seconds, 1), "epochs": len(result.history),
                     "best_epoch": best["epoch"], "train_acc": best["train_acc"], "valid_acc": best["valid_acc"],
                     "test_acc": best.get("test_acc"), "last_test_acc": last.get("test_acc"),
                     "diagnosis": result.diagnosis["verdict"], "diagnosis_text": result.diagnosis["text"],
                     "history": result.history, "run_dir": str(out)})
        # write after every recipe, so a stopped benchmark still leaves its finished rows
        doc = {"machine": {"python": platform.python_version(), "platform": platform.platform()}, "rows": rows}
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(doc, indent=2))

    print(f"\n| recipe | epochs | best epoch | train % | valid % | test % (best) | test % (last) | diagnosis | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows.sort(key=lambda r: COURSE.index(r["recipe"]) if r["recipe"] in COURSE else 99)
    for r in rows:
        print(f"| {r['recipe']} | {r['epochs']} | {r['best_epoch']} | {100 * r['train_acc']:.2f} | "
              f"{100 * r['valid_acc']:.2f} | {100 * (r['test_acc'] or 0):.2f} | {100 * (r['last_test_acc'] or 0):.2f} | "
              f"{r['diagnosis']} | {r['seconds']:.0f} |")
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
