"""The fast recipes against the references, in one run on one machine (issue 15); JSON + a Markdown table.

    python benchmarks/fast_round2.py --data-dir ../shared/data            # 3 seeds each, ~15 min on 2 cores
    python benchmarks/fast_round2.py --seeds 0 --only fast-asl             # one recipe, one seed
    python benchmarks/fast_round2.py --device cuda                        # all of it on a GPU (issue 15, item 5)
    python benchmarks/fast_round2.py --limit 512 --epochs 1               # a smoke run: checks the script, measures nothing

Each recipe is timed against its reference, measured in the same run, so the ratio holds on a noisy machine:
- fast-asl against 3 epochs of the course's own loop (DataLoader, batch 32, the course's transforms, Adam;
  each epoch followed by the course's validation pass over the test file), target >= 99.8 % test accuracy;
- fast-mnist against 1 epoch of pytorch/examples' `mnist/main.py` (its two-conv net, Adadelta 1.0, batch 64,
  ToTensor + Normalize, StepLR 0.7; train() then test()), target >= 99.6 %.
A recipe's time is `handsign.train.train` from the start of its first epoch to the end of its last one:
training, the per-epoch validation pass and the per-epoch checkpoint writes (data loading, which is
cached, and the final test pass are outside it, as the references' data loading is).
Every seed is reported; test accuracy is the last epoch's model (the recipe's output).
--device puts references and recipes on the same device: on a GPU the course keeps its data on the GPU and
the example adds its CUDA loader settings (1 worker, pinned memory, shuffling), as both do there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's handsign, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import course_epoch, course_setup, course_transforms, loadavg, matmul_gflops  # noqa: E402

from handsign.train.config import make_config  # noqa: E402
from handsign.data.readers import load_dataset, resolve_data_dir  # noqa: E402
from handsign.errors import HandsignError  # noqa: E402
from handsign.train.machine import select_device  # noqa: E402
from handsign.train.loop import train  # noqa: E402

TARGETS = {"fast-asl": {"test_acc": 0.998, "reference": "course loop, 3 epochs"},
           "fast-mnist": {"test_acc": 0.996, "reference": "pytorch/examples mnist, 1 epoch"}}


# ------------------------------------------------------------------------------------------ references

def course_three_epochs(data_dir, log, device="cpu", limit: int = 0) -> dict:
    """The course's ASL training: 3 epochs, each = train() over the train file + validate() over the test file.
    limit > 0: the first `limit` training images only (a smoke run)."""
    train_ds, test_ds = load_dataset("sign_mnist", "train", data_dir), load_dataset("sign_mnist", "test", data_dir)
    if limit:
        train_ds = train_ds.subset(torch.arange(min(limit, len(train_ds))))
    model, loader, opt = course_setup(train_ds, device=device)
    valid_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        (test_ds.images.float() / 255).to(device), test_ds.labels.to(device)), batch_size=32)
    augment = course_transforms()
    start, epochs = time.perf_counter(), []
    for epoch in range(1, 4):
        course_epoch(model, loader, opt, augment)
        model.eval()  # the course's validate(): batch 32, .item() per batch
        correct = 0
        with torch.no_grad():
            for x, y in valid_loader:
                correct += model(x).argmax(1).eq(y).sum().item()
        epochs.append({"epoch": epoch, "seconds": round(time.perf_counter() - start, 2),
                       "test_acc": correct / len(test_ds)})
        log(f"  course epoch {epoch}: {epochs[-1]['seconds']:.1f} s, test {epochs[-1]['test_acc']:.2%}")
    return {"seconds": time.perf_counter() - start, "epochs": epochs}


class ExamplesNet(nn.Module):
    """pytorch/examples mnist/main.py's Net (1,199,882 parameters)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = self.dropout2(F.relu(self.fc1(torch.flatten(x, 1))))
        return F.log_softmax(self.fc2(x), dim=1)


def examples_one_epoch(data_dir, log, device="cpu", limit: int = 0) -> dict:
    """pytorch/examples mnist/main.py, one epoch: torchvision's MNIST + ToTensor + Normalize, DataLoader
    batch 64 (test 1000), Adadelta lr 1.0, StepLR(1, 0.7), nll_loss; train() then test().
    limit > 0: the first `limit` training images only (a smoke run)."""
    from torchvision import datasets, transforms

    torch.manual_seed(1)  # the example's default --seed
    device = torch.device(device)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    root = resolve_data_dir(data_dir)  # torchvision's layout: <root>/MNIST/raw
    train_set = datasets.MNIST(root, train=True, download=False, transform=tf)
    if limit:
        train_set = torch.utils.data.Subset(train_set, range(min(limit, len(train_set))))
    # on a CPU the example passes only batch_size; on CUDA it adds these to both loaders
    extra = {"num_workers": 1, "pin_memory": True, "shuffle": True} if device.type == "cuda" else {}
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=64, **extra)
    test_loader = torch.utils.data.DataLoader(datasets.MNIST(root, train=False, transform=tf), batch_size=1000,
                                              **extra)
    model = ExamplesNet().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    start = time.perf_counter()
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % 10 == 0:  # the example's --log-interval 10 prints the loss (a .item() sync)
            loss.item()
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            F.nll_loss(output, target, reduction="sum").item()  # the example sums the test loss per batch
            correct += output.argmax(dim=1).eq(target).sum().item()
    scheduler.step()
    seconds = time.perf_counter() - start
    log(f"  pytorch/examples mnist, 1 epoch: {seconds:.1f} s, test {correct / 10000:.2%}")
    return {"seconds": seconds, "test_acc": correct / 10000}


# ------------------------------------------------------------------------------------------ recipes

def run_recipe(recipe: str, seed: int, data_dir, threads: int, log, device: str = "cpu", limit: int = 0,
               epochs: int = 0) -> dict:
    """`handsign.train.train` on the recipe; seconds from the first epoch's start to the last epoch's end.
    limit / epochs > 0 override the recipe's (a smoke run)."""
    marks = {}

    def timing_log(msg: str):
        now = time.perf_counter()
        if msg.startswith("data: "):  # printed after data loading, right before epoch 1
            marks["start"] = now
        elif msg.startswith("epoch "):
            marks["end"] = now

    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"limit": limit or None, "epochs": epochs or None}
        cfg = make_config(recipe, seed=seed, data_dir=str(resolve_data_dir(data_dir)), out=f"{tmp}/run",
                          threads=threads or None, device=device, **overrides)
        result = train(cfg, log=timing_log, show_progress=False)
    seconds = marks["end"] - marks["start"]
    out = {"seed": seed, "seconds": round(seconds, 2), "epochs": cfg.epochs,
           "test_acc_last": result.metrics["last"]["test_acc"], "test_acc_best": result.metrics["best"]["test_acc"],
           "best_epoch": result.metrics["best_epoch"],
           "valid_acc": [round(h["valid_acc"], 4) for h in result.history],
           "epoch_seconds": [round(h["seconds"], 2) for h in result.history],  # each epoch's training loop
           "images_per_s": round(sum(h["images_per_s"] for h in result.history) / len(result.history))}
    log(f"  {recipe} seed {seed}: {seconds:.1f} s, test {out['test_acc_last']:.2%} (last epoch), "
        f"valid per epoch {out['valid_acc']}")
    return out


def table(doc: dict) -> str:
    rows = ["| recipe | reference (same run) | budget | seed | seconds | test accuracy | target met |",
            "|---|---|---|---|---|---|---|"]
    if doc.get("smoke"):
        rows.insert(0, f"SMOKE RUN ({doc['smoke']}): checks that the benchmark runs; its figures measure nothing\n")
    for recipe, res in doc["recipes"].items():
        ref = doc["references"][recipe]
        for r in res["seeds"]:
            ok = r["test_acc_last"] >= TARGETS[recipe]["test_acc"] and r["seconds"] <= ref["seconds"]
            rows.append(f"| {recipe} | {TARGETS[recipe]['reference']}: {ref['seconds']:.1f} s | "
                        f"{ref['seconds']:.1f} s | {r['seed']} | {r['seconds']:.1f} | {r['test_acc_last']:.2%} | "
                        f"{'yes' if ok else 'no'} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="data root (default $HANDSIGN_DATA or ./data)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, all reported")
    p.add_argument("--only", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default: all cores)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto: references and recipes alike")
    p.add_argument("--limit", type=int, default=0, help="smoke run: only the first N training images everywhere")
    p.add_argument("--epochs", type=int, default=0, help="smoke run: this many epochs for each recipe")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "fast-round2.json"))
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    seeds = [int(s) for s in a.seeds.split(",")]
    try:
        device = select_device(a.device)
    except HandsignError as e:
        p.error(str(e))
    machine = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
               "python": platform.python_version(), "matmul_gflops": matmul_gflops(2.0), "device": str(device)}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    doc = {"machine": machine, "loadavg": {"start": loadavg()}, "targets": TARGETS, "references": {}, "recipes": {}}
    if a.limit or a.epochs:
        doc["smoke"] = f"--limit {a.limit} --epochs {a.epochs}"
    for recipe in a.only:
        log(f"[{recipe}] load average {loadavg()}")
        ref = course_three_epochs if recipe == "fast-asl" else examples_one_epoch
        doc["references"][recipe] = ref(a.data_dir, log, device, a.limit)
        doc["recipes"][recipe] = {"seeds": [run_recipe(recipe, s, a.data_dir, a.threads, log, str(device), a.limit,
                                                       a.epochs) for s in seeds],
                                  "loadavg_end": loadavg()}
    doc["loadavg"]["end"] = loadavg()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    md = table(doc)
    print(md)
    out.with_suffix(".md").write_text(md + f"\n\nload average {doc['loadavg']}, torch threads "
                                           f"{doc['machine']['torch_threads']}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
