"""Search the per-stage settings of `handsign reproduce --quick` (subset size, epochs) on real data.

    python benchmarks/quick_settings.py --data-dir ../shared/data --seeds 0 1 2 [--only course-asl-mlp]

Each candidate is trained once per seed with one torch thread (so the numbers do not depend on how busy
the machine is; the seconds do) and one JSON row per run is appended to benchmarks/results/
quick-settings.json. The lessons the quick demo must show (issue 14) are checked in the summary:
stage 2 overfits (train far above test), the CNN beats the MLP, augmentation is no worse than the plain
CNN, fast-asl beats the course CNN. This is a benchmark, not a test: minutes per candidate.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from handsign.train.config import make_config
from handsign.train.loop import train

# recipe -> candidate overrides (limit = first N training samples, 0 = all)
CANDIDATES = {
    "course-mnist-mlp": [{"limit": 8000, "epochs": 2}, {"limit": 12000, "epochs": 2}],
    "course-asl-mlp": [{"limit": 8000, "epochs": 4}, {"limit": 8000, "epochs": 8}, {"limit": 0, "epochs": 3},
                       {"limit": 0, "epochs": 5}],
    "course-asl-cnn": [{"limit": 8000, "epochs": 4}, {"limit": 8000, "epochs": 3}],
    "course-asl-cnn-aug": [{"limit": 8000, "epochs": 4}, {"limit": 8000, "epochs": 6}, {"limit": 12000, "epochs": 4}],
    "fast-asl": [{"limit": 8000, "epochs": 4}, {"limit": 12000, "epochs": 4}, {"limit": 0, "epochs": 2},
                 {"limit": 0, "epochs": 3}],
    "fast-mnist": [{"limit": 8000, "epochs": 2}, {"limit": 8000, "epochs": 3}],
}


def run(recipe: str, overrides: dict, seed: int, data_dir: str, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config(recipe, data_dir=data_dir, out=str(Path(tmp) / "run"), seed=seed, threads=threads,
                          **overrides)
        t0 = time.perf_counter()
        r = train(cfg, log=lambda *a: None, show_progress=False)
        seconds = time.perf_counter() - t0
    best, last = r.metrics["best"], r.metrics["last"]
    pct = lambda x: None if x is None else round(100 * x, 2)  # noqa: E731
    return {"recipe": recipe, **overrides, "seed": seed, "threads": threads, "seconds": round(seconds, 1),
            "best_epoch": best["epoch"], "best": {k: pct(best.get(k + "_acc")) for k in ("train", "valid", "test")},
            "last": {k: pct(last.get(k + "_acc")) for k in ("train", "valid", "test")},
            "diagnosis": r.diagnosis["verdict"], "load_avg": [round(x, 2) for x in os.getloadavg()]}


def summary(rows: list[dict]) -> str:
    """One Markdown row per (recipe, limit, epochs): every seed's last-epoch train / test and diagnosis."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["recipe"], r["limit"], r["epochs"]), []).append(r)
    lines = ["| recipe | limit | epochs | seeds | last epoch: train % | last epoch: test % | best epoch: test % | "
             "diagnosis (last epoch) | seconds (1 thread, busy machine) |", "|---|---|---|---|---|---|---|---|---|"]
    for (recipe, limit, epochs), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])

        def col(get):
            return ", ".join(str(get(r)) for r in rs)
        lines.append(f"| {recipe} | {limit or 'all'} | {epochs} | {col(lambda r: r['seed'])} | "
                     f"{col(lambda r: r['last']['train'])} | {col(lambda r: r['last']['test'])} | "
                     f"{col(lambda r: r['best']['test'])} | {col(lambda r: r['diagnosis'])} | "
                     f"{col(lambda r: round(r['seconds']))} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", default=list(CANDIDATES), help="recipes to search")
    p.add_argument("--candidate", type=json.loads, help='one override dict instead of the list, e.g. '
                   '\'{"limit": 0, "epochs": 3}\'')
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="benchmarks/results/quick-settings.json")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="add the rows of these files to --json (runs made "
                   "in parallel into other files), write the Markdown summary, and stop")
    a = p.parse_args(argv)
    path = Path(a.json)
    rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    if a.merge:
        for extra in a.merge:
            rows += json.loads(Path(extra).read_text())["rows"]
        path.write_text(json.dumps({"note": __doc__.strip().splitlines()[0], "rows": rows}, indent=1))
        path.with_suffix(".md").write_text(summary(rows))
        print(summary(rows))
        return 0
    for recipe in a.only:
        for cand in [a.candidate] if a.candidate else CANDIDATES[recipe]:
            for seed in a.seeds:
                row = run(recipe, cand, seed, a.data_dir, a.threads)
                print(json.dumps(row), flush=True)
                rows.append(row)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"note": __doc__.strip().splitlines()[0], "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
