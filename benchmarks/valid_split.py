"""How far Sign-MNIST's validation images are from training, per split, against the test file (issue 15).

    python benchmarks/valid_split.py --data-dir ../shared/data      # ~1 min on 2 cores; prints a table, writes JSON

A validation split should predict test accuracy, so its images should be as far from the training images
as the test file's are. Distance here is the cosine similarity of mean-centred pixels (handsign.data.groups) to
the nearest training image. The script prints the quantiles of that similarity for the test file and, for
each split, its held-out images: a random split and `--valid-split groups` at several near-copy thresholds.
Only test *images* are read (no labels, no model), so choosing the threshold whose quantiles match the
test file's does not tune anything on test accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's handsign, not an installed one

from handsign.data.readers import load_dataset  # noqa: E402
from handsign.data.groups import near_duplicate_groups, split_by_groups, unit_rows  # noqa: E402

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def nearest_similarity(queries: torch.Tensor, reference: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """(Q, D), (R, D) unit rows -> (Q,) similarity of each query to its nearest reference row."""
    return torch.cat([(queries[i:i + chunk] @ reference.T).max(1).values for i in range(0, len(queries), chunk)])


def quantiles(s: torch.Tensor) -> dict:
    return {f"q{round(q * 100)}": round(float(s.quantile(q)), 3) for q in QUANTILES}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="data root (default $HANDSIGN_DATA or ./data)")
    p.add_argument("--thresholds", nargs="+", type=float, default=[0.95, 0.97, 0.98, 0.99])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="splits per threshold (seeded)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "valid-split.json"))
    args = p.parse_args(argv)
    train = load_dataset("sign_mnist", "train", args.data_dir)
    test = load_dataset("sign_mnist", "test", args.data_dir)
    x = unit_rows(train.images)
    rows = [{"split": "test file", "held_out": len(test), **quantiles(nearest_similarity(unit_rows(test.images), x))}]
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    cut = len(x) // 10
    rows.append({"split": "random 10 %", "held_out": cut, **quantiles(nearest_similarity(x[perm[:cut]], x[perm[cut:]]))})
    for t in args.thresholds:
        ids = near_duplicate_groups(train.images, similarity=t)
        sims, held = [], 0
        for seed in args.seeds:
            tr, va = split_by_groups(ids, train.labels, len(train.classes), 0.1, seed)
            sims.append(nearest_similarity(x[va], x[tr]))
            held += len(va)
        rows.append({"split": f"groups at {t}", "groups": int(ids.max()) + 1, "held_out": held // len(args.seeds),
                     **quantiles(torch.cat(sims))})
    cols = [f"q{round(q * 100)}" for q in QUANTILES]
    print("| split | groups | held out | " + " | ".join(f"nearest-train similarity, {c}" for c in cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['split']} | {r.get('groups', '')} | {r['held_out']:,} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
    Path(args.out).write_text(json.dumps({"seeds": args.seeds, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
