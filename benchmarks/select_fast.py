"""Choose fast-recipe settings on validation: candidates x seeds, every epoch's valid accuracy in JSON.

    python benchmarks/select_fast.py --data-dir ../shared/data --seeds 0 1 2 --jobs 2
    python benchmarks/select_fast.py --only n12-13 base --seeds 0            # a subset of CANDIDATES

Rounds three to five's selections (issue 15; docs/fast.md) are these candidates. fast-asl candidates use
`--valid-split groups`: Sign-MNIST's random split is near-copies of training and ranks nothing
(handsign/data/groups.py). fast-mnist candidates use the random split (MNIST has no near-copies).
`--group-similarity` is the grouped split's near-copy threshold (rounds three and four: 0.95; round five:
0.98, then 0.99, the default now, whose held-out photos are as far from training as the test file's).
Each run also records which valid images its last epoch misreads; where several candidates share a split,
the script prints how many of those every candidate misreads (round six: MNIST's floor, docs/fast.md).

Each run trains with 1 torch thread; `--jobs N` runs N of them at once in separate processes (on 2
cores, two 1-thread runs finish about 1.5x sooner than one after the other), so the seconds compare
only within one invocation. Each run's test accuracy is written to the JSON next to its valid
accuracies but is not printed: read it only after choosing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's handsign, not an installed one

NARROW = {"channels": [12, 24, 48], "hidden": 192, "flip_average": True}
COURSE_WIDTH = {"channels": [25, 50, 75], "hidden": 512, "flip_average": True}
W20 = {"channels": [20, 40, 60], "hidden": 384, "flip_average": True}
MNIST_ARGS = {"channels": [16, 32, 64], "hidden": 256}
NO_DROPOUT = {"dropouts": [0, 0, 0], "head_dropout": 0}
# name -> (recipe, overrides); every fast-asl candidate adds valid_split="groups" (see run())
CANDIDATES = {
    "base": ("fast-asl", {"epochs": 10, "model_args": {"channels": [16, 32, 64], "hidden": 256, "flip_average": True}}),
    "ema99": ("fast-asl", {"epochs": 10, "ema": 0.99,
                           "model_args": {"channels": [16, 32, 64], "hidden": 256, "flip_average": True}}),
    "ema995": ("fast-asl", {"epochs": 10, "ema": 0.995,
                            "model_args": {"channels": [16, 32, 64], "hidden": 256, "flip_average": True}}),
    "n12-12": ("fast-asl", {"epochs": 12, "model_args": NARROW}),
    "n12-13": ("fast-asl", {"epochs": 13, "model_args": NARROW}),
    "n12-14": ("fast-asl", {"epochs": 14, "model_args": NARROW}),
    "robust": ("robust-asl", {}),
    "mnist-base": ("fast-mnist", {}),
    "mnist-ema99": ("fast-mnist", {"ema": 0.99}),
    "mnist-noaug": ("fast-mnist", {"augment": "none"}),
    "mnist-bs128": ("fast-mnist", {"batch_size": 128, "lr": 4e-3}),
    "mnist-n12-7": ("fast-mnist", {"epochs": 7, "model_args": {"channels": [12, 24, 48], "hidden": 192}}),
    # round four: no dropout (5 epochs is too short for it to pay), and a fourth block (3x3 -> 1x1, ~1.3 MFLOP)
    "mnist-nodrop": ("fast-mnist", {"model_args": {**MNIST_ARGS, **NO_DROPOUT}}),
    "mnist-deep4": ("fast-mnist", {"model_args": {**MNIST_ARGS, "channels": [16, 32, 64, 128],
                                                  "dropouts": [0, 0, 0, 0], "head_dropout": 0}}),
    # round four, after the C kernels for the conv blocks (an epoch of any width costs less): longer or wider
    "n12-16": ("fast-asl", {"epochs": 16, "model_args": NARROW}),
    "w16-15": ("fast-asl", {"epochs": 15, "model_args": {"channels": [16, 32, 64], "hidden": 256, "flip_average": True}}),
    "course-9": ("fast-asl", {"epochs": 9, "model_args": {"channels": [25, 50, 75], "hidden": 512, "flip_average": True}}),
    "mnist-e7": ("fast-mnist", {"epochs": 7}),
    "mnist-deep4-drop": ("fast-mnist", {"model_args": {**MNIST_ARGS, "channels": [16, 32, 64, 128],
                                                       "dropouts": [0, 0.2, 0, 0]}}),
    # round five: weaker or no mirroring, fewer heavy photo effects, half the warp (at 0.95), then wider nets
    # for the time the C kernels freed (at 0.98 and 0.99); "w20-12" is the recipe since round five
    "noflip": ("fast-asl", {"epochs": 13, "augment": "photo-noflip", "model_args": {**NARROW, "flip_average": False}}),
    "mild": ("fast-asl", {"epochs": 13, "augment": "photo-mild", "model_args": NARROW}),
    "halfgeo": ("fast-asl", {"epochs": 13, "augment": "photo-halfgeo", "model_args": NARROW}),
    "course-10": ("fast-asl", {"epochs": 10, "model_args": COURSE_WIDTH}),
    "w20-12": ("fast-asl", {"epochs": 12, "model_args": W20}),
    # round six, fast-mnist: no label smoothing, milder augmentation, two blocks (7x7 maps into the dense
    # layer), and two convs at 28x28 and at 14x14 before pooling (benchmark-only "cnn2", torch ops, ~2x the time)
    "mnist-ls0": ("fast-mnist", {"label_smoothing": 0.0}),
    "mnist-mild": ("fast-mnist", {"augment": "digits-mild"}),
    "mnist-2blk24": ("fast-mnist", {"model_args": {"channels": [24, 48], "dropouts": [0, 0.2], "hidden": 256}}),
    "mnist-2blk32": ("fast-mnist", {"model_args": {"channels": [32, 64], "dropouts": [0, 0.2], "hidden": 256}}),
    "mnist-cnn2": ("fast-mnist", {"model": "cnn2", "model_args": {}}),
    # round six, outside the clock (about 3x it): does a larger budget reach 99.6 % on validation at all?
    "mnist-e15": ("fast-mnist", {"epochs": 15}),
    "mnist-cnn2-e15": ("fast-mnist", {"model": "cnn2", "model_args": {}, "epochs": 15}),
    # round seven, fast-mnist: smaller batches (more steps per epoch), and the clock's whole budget: the recipe
    # for 9 epochs, cnn2 for 8 (torch ops, so over the clock; it asks whether C kernels for it would pay)
    "mnist-bs64": ("fast-mnist", {"batch_size": 64, "lr": 3e-3}),
    "mnist-e9": ("fast-mnist", {"epochs": 9}),
    "mnist-cnn2-e8": ("fast-mnist", {"model": "cnn2", "model_args": {}, "epochs": 8}),
    # round seven, fast-asl outside the clock (3x the recipe's epochs): does more training read every held-out photo?
    "w20-36": ("fast-asl", {"epochs": 36, "model_args": W20}),
    # round seven, fast-asl outside the clock: two convs per stage at 28x28 and 14x14 (cnn2 at the recipe's widths):
    # does capacity at full resolution read the fists (e, s, m) every one-conv-per-stage candidate misreads?
    "asl-cnn2": ("fast-asl", {"model": "cnn2", "model_args": {"stages": [[20, 20], [40, 40], [60]], "hidden": 384,
                                                              "flip_average": True}}),
    "asl-cnn2-28": ("fast-asl", {"model": "cnn2", "model_args": {"stages": [[20, 20], [40], [60]], "hidden": 384,
                                                                 "flip_average": True}}),  # only the 28x28 stage doubled
    "asl-cnn2-14": ("fast-asl", {"model": "cnn2", "model_args": {"stages": [[20], [40, 40], [60]], "hidden": 384,
                                                                 "flip_average": True}}),  # only the 14x14 stage doubled
    # the same idea in handsign's CNN (`convs`: the pooled conv of each block stays on the fused path). Its extra
    # 28x28 conv trains in torch ops at 2.5x the recipe's step; the extra 14x14 one at 1.7x, so 8-10 epochs of
    # it cost about the recipe's 12 (round seven, 2 threads, batch 256)
    "w20-c121-8": ("fast-asl", {"epochs": 8, "model_args": {**W20, "convs": [1, 2, 1]}}),
    "w20-c121-10": ("fast-asl", {"epochs": 10, "model_args": {**W20, "convs": [1, 2, 1]}}),
    # and on digits: does fast-asl's new shape help fast-mnist too?
    "mnist-c121": ("fast-mnist", {"model_args": {**MNIST_ARGS, "convs": [1, 2, 1]}}),
}
# augmentation variants (benchmark-only presets): a preset with some settings changed. Round five: `photo`;
# round six: `digits` with half its rotation and less zoom and shift
VARIANTS = {"photo-noflip": ("photo", {"hflip_p": 0.0}), "photo-mild": ("photo", {"p": 0.5}),
            "photo-halfgeo": ("photo", {"rotation_deg": 6.0, "zoom": (0.9, 1.1), "shift": 0.06, "tilt": 0.03}),
            "digits-mild": ("digits", {"rotation_deg": 5.0, "crop_scale": (0.9, 1.0), "translate": 0.06})}


def register_variants():
    """Add VARIANTS to the augmentation presets and "cnn2" to the models of this process (a worker's)."""
    import dataclasses

    import handsign.train.config as config
    import handsign.models as models
    import handsign.images.augment as transforms

    for name, (base, changes) in VARIANTS.items():
        transforms.AUGMENT_PRESETS[name] = dataclasses.replace(transforms.AUGMENT_PRESETS[base], **changes)
    config.AUGMENTS = tuple(dict.fromkeys((*config.AUGMENTS, *VARIANTS)))
    models.MODELS["cnn2"] = two_conv_cnn


def two_conv_cnn(num_classes=10, in_channels=1, image_size=28, stages=((16, 16), (32, 32), (64,)), hidden=256,
                 flip_average=False):
    """VGG-style: per stage, [3x3 conv -> BatchNorm -> ReLU] per width, then 2x2 max-pool; then the fast
    CNN's head (Flatten -> Linear -> Dropout 0.3 -> ReLU -> Linear). Stages (16,16),(32,32),(64,): 28 -> 14 -> 7 -> 3.
    flip_average: in eval mode, the mean of the logits of the picture and its mirror image, as handsign's CNN."""
    from torch import nn

    class TwoConvCNN(nn.Sequential):
        def forward(self, x):  # handsign's CNN.forward: eval mode averages the picture's and its mirror's logits
            if flip_average and not self.training:
                return (super().forward(x) + super().forward(x.flip(-1))) / 2
            return super().forward(x)

    layers, c = [], in_channels
    for widths in stages:
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.MaxPool2d(2))
    side = image_size // 2 ** len(stages)
    return TwoConvCNN(*layers, nn.Flatten(), nn.Linear(c * side * side, hidden), nn.Dropout(0.3), nn.ReLU(),
                      nn.Linear(hidden, num_classes))


def run(name: str, seed: int, data_dir: str, limit: int = 0, group_similarity: float | None = None) -> dict:
    from handsign.saved.checkpoint import load_model  # imported in the worker process
    from handsign.train.config import make_config
    from handsign.infer.evaluate import predict_tensors
    from handsign.data.groups import near_duplicate_groups
    from handsign.train.loop import prepare_data, train

    register_variants()
    recipe, overrides = CANDIDATES[name]
    split = "random" if recipe == "fast-mnist" else "groups"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config(recipe, **{"valid_split": split, **overrides}, seed=seed, threads=1, limit=limit,
                          group_similarity=group_similarity, data_dir=data_dir, out=str(Path(tmp) / "run"))
        start = time.perf_counter()
        r = train(cfg, log=lambda *a: None, show_progress=False)
        seconds = time.perf_counter() - start
        valid = prepare_data(cfg).valid  # the run's own split: which images the last epoch's model misreads
        wrong = (predict_tensors(load_model(r.last).model, valid.images).argmax(1) != valid.labels).nonzero().flatten()
        # a grouped split holds out whole groups, so grouping its valid images alone finds the same groups:
        # which source photo each misread image comes from
        photos = near_duplicate_groups(valid.images, cfg.group_similarity)[wrong].tolist() if split == "groups" else None
    return {"name": name, "recipe": recipe, "seed": seed, "overrides": overrides, "valid_split": split,
            "group_similarity": cfg.group_similarity if split == "groups" else None,
            "valid_acc_per_epoch_pct": [round(h["valid_acc"] * 100, 2) for h in r.history],
            "train_seconds": round(sum(h["seconds"] for h in r.history), 1),
            "wall_seconds": round(seconds, 1), "valid_images": len(valid), "valid_wrong": wrong.tolist(),
            "valid_wrong_group": photos,
            "test_acc_last": r.metrics["last"].get("test_acc")}


def shared_errors(runs: list) -> list[str]:
    """Per split (recipe, seed) with two or more candidates: how many valid images every candidate misreads
    and how many any does. A large shared core is a floor no candidate moves (ambiguous or mislabelled images)."""
    lines, splits = [], {}
    for r in runs:
        splits.setdefault((r["recipe"], r["seed"]), []).append(r)
    for (recipe, seed), rs in splits.items():
        if len(rs) > 1:
            sets = [set(r["valid_wrong"]) for r in rs]
            shared = set.intersection(*sets)
            line = (f"{recipe} split {seed}: {len(shared)} valid images misread by all {len(rs)} candidates, "
                    f"{len(set.union(*sets))} by any (each: {', '.join(map(str, map(len, sets)))})")
            if rs[0]["valid_wrong_group"] is not None:  # the grouped split: how many source photos that is
                group = {i: g for r in rs for i, g in zip(r["valid_wrong"], r["valid_wrong_group"])}
                line += (f"; source photos: {len({group[i] for i in shared})} by all "
                         f"(each: {', '.join(str(len(set(r['valid_wrong_group']))) for r in rs)})")
            lines.append(line)
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="data root (default $HANDSIGN_DATA or ./data)")
    p.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=1, help="runs at once, one process and one thread each")
    p.add_argument("--limit", type=int, default=0, help="first N training samples only (a smoke run; 0 = all)")
    p.add_argument("--group-similarity", type=float, default=None,
                   help="near-copy threshold of the grouped split (default: handsign's, see handsign/data/groups.py)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "select-fast.json"))
    args = p.parse_args(argv)
    jobs = [(name, seed) for name in args.only for seed in args.seeds]
    runs = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run, name, seed, args.data_dir, args.limit, args.group_similarity) for name, seed in jobs]
        for f in futures:
            r = f.result()
            runs.append(r)
            photos = "" if r["valid_wrong_group"] is None else f", {len(set(r['valid_wrong_group']))} source photos misread"
            print(f"{r['name']:<12} seed {r['seed']}: valid {r['valid_acc_per_epoch_pct'][-1]:.2f} % "
                  f"({r['valid_split']} split{photos}), {r['train_seconds']:.0f} s of training", flush=True)
    print("\n".join(shared_errors(runs)))
    Path(args.out).write_text(json.dumps({"jobs": args.jobs, "limit": args.limit, "runs": runs}, indent=1))
    print(f"wrote {args.out} (test accuracies are in it, not printed)")


if __name__ == "__main__":
    main()
