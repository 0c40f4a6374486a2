"""Every speed figure of handsign, measured in one run on one machine; JSON + a Markdown table.

    python benchmarks/run.py --quick      # about 2 minutes: throughput, inference, predict, server
    python benchmarks/run.py              # full: + time-to-accuracy on ASL and MNIST (tens of minutes)

Writes benchmarks/results/bench-<mode>.json and bench-<mode>.md (the table is also printed).
Sections (--only picks some): machine (matmul GFLOP/s), train (the course's DataLoader loop vs
handsign's loop, same CNN), tta (time to 99 % test accuracy), infer (torch vs ONNX Runtime),
predict (process wall time of `handsign predict`), serve (POST /predict under bounded load).
Every throughput is also given as a share of the machine's own fp32 matmul rate, using the model's
FLOPs per image (training counts forward + backward as 3x the forward FLOPs).
The load average is recorded before and after each section: on a shared machine, read it first.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from anywhere: this checkout's handsign, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_load import run as load_run, served  # noqa: E402

from handsign.models.kernels import native  # noqa: E402
from handsign.saved.checkpoint import save_checkpoint  # noqa: E402
from handsign.train.config import make_config  # noqa: E402
from handsign.data.readers import Dataset, load_dataset  # noqa: E402
from handsign.infer.evaluate import evaluate_tensors  # noqa: E402
from handsign.models import count_parameters, create_model, flops_per_image, set_kernels  # noqa: E402
from handsign.images.preprocess import default_spec  # noqa: E402
from handsign.train.loop import make_optimizer, prepare_data, train_one_epoch  # noqa: E402

SECTIONS = ("machine", "train", "tta", "infer", "predict", "serve")
TARGETS = {  # issue 4's targets on a 2-core CPU (benchmark figures, not tests)
    "train_speedup": 3.0, "onnx_latency_ms": 1.0, "predict_onnx_s": 1.0, "serve_rps": 300, "serve_p99_ms": 50,
    "fast-asl_final": (0.998, 300), "fast-mnist_final": (0.995, 300),  # test accuracy within seconds of training
}


def loadavg() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


# ------------------------------------------------------------------------------------------ machine

def matmul_gflops(seconds: float, n: int = 1024, dtype=torch.float32) -> float:
    """(n x n) @ (n x n) in torch with the current threads: the machine's reachable FLOP rate in `dtype`."""
    a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


# ------------------------------------------------------------------------------------------ training

class CourseDataset(torch.utils.data.Dataset):
    """The course's MyDataset: float tensors in memory, one (x, y) per __getitem__."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.xs = images.float() / 255  # (N, 1, 28, 28)
        self.ys = labels

    def __getitem__(self, idx):
        return self.xs[idx], self.ys[idx]

    def __len__(self):
        return len(self.xs)


def course_transforms():
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomRotation(5), v2.RandomResizedCrop((28, 28), scale=(.9, 1), ratio=(1, 1)),
                       v2.RandomHorizontalFlip(), v2.ColorJitter(brightness=.2, contrast=.5)])


def course_epoch(model, loader, optimizer, augment, steps: int | None = None) -> dict:
    """The course's train(): DataLoader batches, transforms on the batch tensor, .item() every step."""
    loss_sum, accuracy, n = 0.0, 0.0, len(loader.dataset)
    model.train()
    start, images = time.perf_counter(), 0
    for x, y in itertools.islice(loader, steps):
        output = model(augment(x) if augment else x)
        optimizer.zero_grad()
        batch_loss = F.cross_entropy(output, y)
        batch_loss.backward()
        optimizer.step()
        loss_sum += batch_loss.item()
        accuracy += output.argmax(dim=1, keepdim=True).eq(y.view(-1, 1)).sum().item() / n
        images += len(y)
    seconds = time.perf_counter() - start
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds}


class CourseConvBlock(torch.nn.Module):
    """The course's MyConvBlock, verbatim in substance: plain torch modules, nothing of handsign's."""

    def __init__(self, in_ch, out_ch, dropout_p):
        super().__init__()
        nn = torch.nn
        self.model = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=1, padding=1), nn.BatchNorm2d(out_ch),
                                   nn.ReLU(), nn.Dropout(dropout_p), nn.MaxPool2d(2, stride=2))

    def forward(self, x):
        return self.model(x)


def course_model(classes: int) -> torch.nn.Module:
    """The course's ASL CNN (404,099 parameters with 24 classes), as the course notebook builds it."""
    nn = torch.nn
    return nn.Sequential(CourseConvBlock(1, 25, 0), CourseConvBlock(25, 50, 0.2), CourseConvBlock(50, 75, 0),
                         nn.Flatten(), nn.Linear(75 * 3 * 3, 512), nn.Dropout(.3), nn.ReLU(), nn.Linear(512, classes))


def course_setup(data: Dataset, seed: int = 0, device="cpu"):
    """The course's model, loader and optimizer. On a GPU the course keeps its data set on the device
    (MyDataset moves it there), so the loader hands out device batches."""
    torch.manual_seed(seed)
    model = course_model(len(data.classes)).to(device)
    dataset = CourseDataset(data.images.to(device), data.labels.to(device))
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True)
    return model, loader, torch.optim.Adam(model.parameters(), lr=1e-3)


def handsign_epoch(model, data: Dataset, cfg, optimizer, epoch: int = 1, total_steps: int = 1) -> dict:
    tr = train_one_epoch(model, data, optimizer, cfg, epoch, torch.device("cpu"), 0, total_steps,
                         show_progress=False)
    return {"images": len(data), "seconds": tr["seconds"], "images_per_s": tr["images_per_s"]}


def build_model(cfg, classes: int):
    """The model as handsign.train.train builds it (kernels and memory format included)."""
    model = set_kernels(create_model(cfg.model, classes, **cfg.model_args), cfg.kernels)
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def bench_train(data: Dataset, steps: int, recipes: list[str]) -> dict:
    """Images/s of the course loop and of handsign's loop on `steps` batches (after a short warm-up)."""
    out = {}
    model, loader, opt = course_setup(data)
    course_epoch(model, loader, opt, course_transforms(), steps=3)  # warm-up
    out["course loop (DataLoader, batch 32, course transforms)"] = {
        **course_epoch(model, loader, opt, course_transforms(), steps=steps), "model": "cnn", "batch_size": 32,
        "train_flops_per_image": 3 * flops_per_image(model)}
    variants = [("handsign loop, unfused blocks (course CNN, batch 32, course aug per image)", "course-asl-cnn-aug",
                 {}, "plain"),
                ("handsign loop (course CNN, batch 32, course aug per image)", "course-asl-cnn-aug", {}, "default"),
                ("handsign loop, unfused blocks (course CNN, batch 256, course aug per image, channels-last)",
                 "course-asl-cnn-aug", {"channels_last": True, "batch_size": 256}, "plain"),
                ("handsign loop (course CNN, batch 256, course aug per image, channels-last)", "course-asl-cnn-aug",
                 {"channels_last": True, "batch_size": 256}, "default"),
                ("handsign loop, blocks in torch ops (course CNN, batch 256, course aug per image, channels-last, "
                 "bf16 autocast)", "course-asl-cnn-aug",
                 {"channels_last": True, "batch_size": 256, "precision": "bf16"}, "torch-ops"),
                ("handsign loop (course CNN, batch 256, course aug per image, channels-last, bf16 autocast)",
                 "course-asl-cnn-aug", {"channels_last": True, "batch_size": 256, "precision": "bf16"}, "default"),
                ("handsign loop (course CNN, batch 512, course aug per image, channels-last, bf16 autocast)",
                 "course-asl-cnn-aug", {"channels_last": True, "batch_size": 512, "precision": "bf16"}, "default")]
    variants += [(f"handsign loop ({r} recipe)", r, {}, "default") for r in recipes]
    # blocks: "default" = handsign.models.kernels.fused, in C where fused_block.c builds; "torch-ops" = the same
    # without its C kernels; "plain" = ConvBlock's nn.Sequential in training too (the ablations): --kernels
    kernels = {"default": "auto", "torch-ops": "torch", "plain": "unfused"}
    for label, recipe, extra, blocks in variants:
        cfg = make_config(recipe, **extra, kernels=kernels[blocks])
        n = min(len(data), steps * cfg.batch_size)
        subset = data.subset(torch.arange(n))
        torch.manual_seed(0)
        model = build_model(cfg, len(data.classes))
        opt = make_optimizer(model, cfg)
        handsign_epoch(model, data.subset(torch.arange(min(len(data), 3 * cfg.batch_size))), cfg, opt)  # warm-up
        out[label] = {**handsign_epoch(model, subset, cfg, opt), "model": cfg.model, "batch_size": cfg.batch_size,
                      "fused_blocks": blocks != "plain", "conv_blocks": blocks,
                      "train_flops_per_image": 3 * flops_per_image(model)}
    return out


# ------------------------------------------------------------------------------------------ time to accuracy

def tta_course(dataset: str, data_dir, target: float, budget_s: float, max_epochs: int, log) -> dict:
    """The course recipe with the course loop (ASL: CNN + course transforms; MNIST: CNN, no augmentation),
    trained on the whole train file; test accuracy after each epoch (not counted in the time)."""
    train_ds = load_dataset(dataset, "train", data_dir)
    test = load_dataset(dataset, "test", data_dir)
    model, loader, opt = course_setup(train_ds)
    augment = course_transforms() if dataset == "sign_mnist" else None
    return _tta_loop(lambda e: course_epoch(model, loader, opt, augment)["seconds"],
                     lambda: evaluate_tensors(model, test)["acc"], target, budget_s, max_epochs, log)


def tta_recipe(recipe: str, data_dir, target: float, budget_s: float, log, threads: int = 0) -> dict:
    """A handsign recipe as `handsign train` runs it (valid carved from train), test accuracy per epoch."""
    cfg = make_config(recipe, data_dir=data_dir, threads=threads or None)
    splits = prepare_data(cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, len(splits.train.classes))
    opt = make_optimizer(model, cfg)
    steps = -(-len(splits.train) // cfg.batch_size)
    total = steps * cfg.epochs

    def one(epoch):
        return train_one_epoch(model, splits.train, opt, cfg, epoch, torch.device("cpu"), (epoch - 1) * steps,
                               total, show_progress=False)["seconds"]

    # a recipe's schedule is fixed in advance (one-cycle), so it runs to its last epoch: the row gives
    # the time to 99 % and the recipe's final accuracy and total training time (issue 4's 5-minute target)
    return _tta_loop(one, lambda: evaluate_tensors(model, splits.test)["acc"], target, budget_s, cfg.epochs, log,
                     run_to_end=True)


def _tta_loop(train_epoch, test_acc, target, budget_s, max_epochs, log, run_to_end=False) -> dict:
    seconds, curve, reached = 0.0, [], None
    for epoch in range(1, max_epochs + 1):
        seconds += train_epoch(epoch)
        acc = test_acc()
        curve.append([epoch, round(seconds, 1), acc])
        log(f"  epoch {epoch}: {seconds:.0f} s, test {acc:.2%}")
        if acc >= target and reached is None:
            reached = {"reached": True, "seconds": seconds, "epochs": epoch, "test_acc": acc}
            if not run_to_end:
                break
        if seconds > budget_s:
            break
    out = reached or {"reached": False, "seconds": seconds, "epochs": len(curve), "test_acc": curve[-1][2]}
    return {**out, "final": {"seconds": seconds, "epochs": len(curve), "test_acc": curve[-1][2]}, "curve": curve}


# ------------------------------------------------------------------------------------------ inference

def make_checkpoint(folder: Path, recipe: str, classes: list, dataset: str) -> Path:
    """An untrained checkpoint of `recipe`'s model (latency does not depend on the weights) + its .onnx."""
    from handsign.infer.export import export

    cfg = make_config(recipe)
    torch.manual_seed(0)
    model = create_model(cfg.model, len(classes), **cfg.model_args).eval()
    meta = {"architecture": {"name": cfg.model, "args": {"in_channels": 1, "image_size": 28, **cfg.model_args}},
            "labels": classes, "task": dataset, "preprocess": default_spec(dataset), "recipe": recipe,
            "name": recipe, "metrics": {}}
    path = save_checkpoint(folder / f"{recipe}.safetensors", model, meta)
    export(path)
    return path


def _ms_stats(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3), "n": len(ms)}


def bench_infer(ckpt: Path, image: Path, n_single: int, batch: np.ndarray) -> dict:
    """Single-image latency (decode + preprocess + model, and model alone) and batch images/s."""
    from handsign.infer.predict import Predictor

    out = {}
    for backend in ("torch", "onnx"):
        p = Predictor.load(ckpt, backend)
        x1 = batch[:1]
        for _ in range(20):
            p.predict_files([image])
        full, model_only = [], []
        for _ in range(n_single):
            t = time.perf_counter()
            p.predict_files([image])
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            p.logits(x1)
            model_only.append(time.perf_counter() - t)
        p.logits(batch)
        reps, start = 0, time.perf_counter()
        while reps < 3 or time.perf_counter() - start < 1.0:
            p.logits(batch)
            reps += 1
        out[backend] = {"single_image": _ms_stats(full), "model_only": _ms_stats(model_only),
                        "batch": len(batch), "batch_images_per_s": reps * len(batch) / (time.perf_counter() - start)}
    # the same folded torch model under bfloat16 autocast, batch only (predict and serve stay fp32)
    from handsign.saved.checkpoint import load_model
    from handsign.models import for_inference

    model, xb = for_inference(load_model(ckpt).model), torch.from_numpy(batch)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(3):
            model(xb)
        reps, start = 0, time.perf_counter()
        while reps < 3 or time.perf_counter() - start < 1.0:
            model(xb)
            reps += 1
    out["torch-bf16"] = {"batch": len(batch), "batch_images_per_s": reps * len(batch) / (time.perf_counter() - start)}
    return out


def bench_predict_process(ckpt: Path, image: Path, runs: int) -> dict:
    """Wall time of `python -m handsign predict IMAGE` as a user runs it, torch and onnx backends."""
    out = {}
    for backend in ("torch", "onnx"):
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "handsign", "predict", str(image), "--model", str(ckpt),
                                "--backend", backend], cwd=REPO, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if r.returncode:
                raise RuntimeError(f"handsign predict failed: {r.stderr.strip()}")
        out[backend] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3), "runs": runs}
    return out


# ------------------------------------------------------------------------------------------ server

def bench_serve(ckpt: Path, image: Path, n: int, concurrency: int, backends=("onnx",)) -> dict:
    """`handsign serve` in its own process; single-image POST /predict at bounded concurrency."""
    data, out = image.read_bytes(), {}
    for backend in backends:
        with served(["--model", f"bench={ckpt}", "--backend", backend], timeout_s=60) as (url, _):
            def request(client):
                return client.post("/predict", files={"file": ("one.png", data, "image/png")})

            lat, wall, statuses = asyncio.run(load_run(url, n, concurrency, request))
        out[backend] = {"requests": n, "concurrency": concurrency, "statuses": statuses,
                        "requests_per_s": round(n / wall, 1), **_ms_stats(lat)}
    return out


# ------------------------------------------------------------------------------------------ report

def table(doc: dict) -> str:
    gf = doc.get("machine", {}).get("matmul_gflops")
    rows = []

    def share(flops_per_s):
        return f"{100 * flops_per_s / (gf * 1e9):.1f} %" if gf and flops_per_s else ""

    m = doc.get("machine")
    if m:
        rows.append(("machine", f"fp32 matmul, {m['threads']} threads", f"{gf:.1f} GFLOP/s", "100 %", ""))
        if m.get("matmul_gflops_bf16"):
            rows.append(("machine", f"bf16 matmul, {m['threads']} threads", f"{m['matmul_gflops_bf16']:.1f} GFLOP/s",
                         "", ""))
    train = doc.get("train", {})
    course = next((r for k, r in train.items() if k.startswith("course loop")), None)
    for name, r in train.items():
        speed = f" ({r['images_per_s'] / course['images_per_s']:.1f}x course)" if course and r is not course else ""
        target = f">= {TARGETS['train_speedup']:.0f}x course" if r is not course else ""
        rows.append(("train", name, f"{r['images_per_s']:,.0f} img/s{speed}, "
                     f"{doc['epoch_images'] / r['images_per_s']:.1f} s/epoch",
                     share(r["images_per_s"] * r["train_flops_per_image"]), target))
    for name, r in doc.get("tta", {}).items():
        got = f"{r['seconds']:.0f} s ({r['epochs']} epochs)" if r["reached"] else \
            f"not reached in {r['seconds']:.0f} s ({r['epochs']} epochs, {r['test_acc']:.2%})"
        rows.append(("time to 99 % test", name, got, "", ""))
        final = r.get("final")
        goal = TARGETS.get(f"{name}_final")
        if goal and final:
            rows.append(("recipe to the end", f"{name}: test accuracy after all {final['epochs']} epochs, "
                         f"training seconds", f"{final['test_acc']:.2%}, {final['seconds']:.0f} s", "",
                         f">= {goal[0]:.1%} within {goal[1]} s"))
    inf = doc.get("infer", {})
    for backend, r in inf.items():
        flops = doc["infer_flops_per_image"]
        if "single_image" not in r:  # batch only (torch under bf16 autocast): also as a share of the bf16 peak
            bf = doc["machine"].get("matmul_gflops_bf16")
            rows.append(("inference", f"{backend}: batch of {r['batch']}", f"{r['batch_images_per_s']:,.0f} img/s"
                         + (f" ({100 * r['batch_images_per_s'] * flops / (bf * 1e9):.1f} % of the bf16 matmul peak)"
                            if bf else ""), share(r["batch_images_per_s"] * flops), ""))
            continue
        rows.append(("inference", f"{backend}: one image, decode + preprocess + model (p50 / p99)",
                     f"{r['single_image']['p50_ms']:.2f} / {r['single_image']['p99_ms']:.2f} ms", "",
                     "<= 1 ms" if backend == "onnx" else ""))
        rows.append(("inference", f"{backend}: one image, model only (p50 / p99)",
                     f"{r['model_only']['p50_ms']:.3f} / {r['model_only']['p99_ms']:.3f} ms", "", ""))
        rows.append(("inference", f"{backend}: batch of {r['batch']}", f"{r['batch_images_per_s']:,.0f} img/s",
                     share(r["batch_images_per_s"] * flops), ""))
    for backend, r in doc.get("predict", {}).items():
        rows.append(("predict", f"`handsign predict one.png --backend {backend}` process wall (median)",
                     f"{r['median_s']:.2f} s", "", "<= 1 s" if backend == "onnx" else ""))
    for backend, r in doc.get("serve", {}).items():
        rows.append(("serve", f"POST /predict ({backend}), {r['concurrency']} concurrent",
                     f"{r['requests_per_s']:,.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms", "",
                     f">= {TARGETS['serve_rps']} req/s, p99 <= {TARGETS['serve_p99_ms']} ms"
                     if backend == "onnx" else ""))  # the server's default backend
    lines = ["| section | measurement | result | share of matmul peak | target |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    la = doc["loadavg"]
    lines.append(f"\nmode {doc['mode']}, {doc['machine_info']['cpus']} CPUs, torch threads "
                 f"{doc['machine_info']['torch_threads']}, load average at start {la['start']}, at end {la['end']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ main

def synthetic(n: int, classes: int, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    return Dataset(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                   torch.arange(n) % classes, list("abcdefghiklmnopqrstuvwxy"[:classes]), "sign_mnist", "synthetic")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="about 2 minutes; no time-to-accuracy")
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    p.add_argument("--data-dir", default=None, help="data root (default $HANDSIGN_DATA or ./data)")
    p.add_argument("--synthetic", action="store_true", help="random images instead of Sign-MNIST (smoke tests)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in this process (0 = torch's default)")
    p.add_argument("--steps", type=int, default=None, help="training batches measured per loop")
    p.add_argument("--requests", type=int, default=None, help="server requests")
    p.add_argument("--concurrency", type=int, default=8, help="server requests in flight")
    p.add_argument("--budget", type=float, default=600, help="time-to-accuracy: seconds of training per run")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/bench-<mode>.json)")
    a = p.parse_args(argv)

    if a.threads:
        torch.set_num_threads(a.threads)
    mode = "quick" if a.quick else "full"
    sections = a.only or [s for s in SECTIONS if not (a.quick and s == "tta")]
    steps = a.steps or (60 if a.quick else 300)
    requests = a.requests or (1000 if a.quick else 3000)
    out = Path(a.out) if a.out else REPO / "benchmarks" / "results" / f"bench-{mode}.json"
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    if a.synthetic:
        data = synthetic(256, 24)
    else:
        data = load_dataset("sign_mnist", "train", a.data_dir)
    doc = {"mode": mode, "sections": sections, "epoch_images": len(data), "data": data.source,
           "machine_info": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "torch": torch.__version__, "python": platform.python_version(),
                            "platform": platform.platform(), "processor": platform.processor()},
           "loadavg": {"start": loadavg()}, "section_loadavg": {}, "targets": TARGETS}

    def timed(name, fn):
        la0 = loadavg()
        log(f"[{name}] load average {la0}")
        t = time.perf_counter()
        doc[name] = fn()
        doc["section_loadavg"][name] = {"start": la0, "end": loadavg(), "seconds": round(time.perf_counter() - t, 1)}

    doc["machine"] = {"threads": torch.get_num_threads(), "matmul_gflops": matmul_gflops(0.5 if a.quick else 2.0),
                      "matmul_gflops_bf16": matmul_gflops(0.5 if a.quick else 2.0, dtype=torch.bfloat16),
                      "conv_block_kernels": native.status()}  # handsign/models/kernels/fused_block.c built, or why not
    recipes = ["fast-asl"]
    if "train" in sections:
        timed("train", lambda: bench_train(data, steps, recipes))
    if "tta" in sections:
        def tta():
            res = {}
            for ds in ("sign_mnist", "mnist"):
                log(f"course recipe on {ds}")
                res[f"course-{ds} (course loop)"] = tta_course(ds, a.data_dir, 0.99, a.budget, 100, log)
            for recipe in ("fast-asl", "fast-mnist"):
                log(recipe)
                res[recipe] = tta_recipe(recipe, a.data_dir, 0.99, a.budget, log, a.threads)
            return res
        timed("tta", tta)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if {"infer", "predict", "serve"} & set(sections):
            from PIL import Image

            # the course CNN (the model doc["infer_flops_per_image"] counts; fast-asl's is narrower since round two)
            ckpt = make_checkpoint(tmp, "course-asl-cnn", data.classes, "sign_mnist")
            image = tmp / "one.png"  # a test-sized picture: 112 x 112 gray, upscaled from a sample
            Image.fromarray(data.images[0, 0].numpy()).resize((112, 112)).save(image)
            batch = (data.images[:256].float() / 255).numpy()
            model = create_model("cnn", len(data.classes))
            doc["infer_flops_per_image"] = flops_per_image(model)
            doc["models"] = {"cnn": {"params": count_parameters(model), "flops_per_image": flops_per_image(model)}}
        if "infer" in sections:
            timed("infer", lambda: bench_infer(ckpt, image, 20 if a.synthetic else (300 if a.quick else 2000), batch))
        if "predict" in sections:
            timed("predict", lambda: bench_predict_process(ckpt, image, 1 if a.synthetic else (3 if a.quick else 7)))
        if "serve" in sections:
            timed("serve", lambda: bench_serve(ckpt, image, requests, a.concurrency,
                                               ("onnx",) if a.quick else ("onnx", "torch")))
    doc["machine"]["matmul_gflops_end"] = matmul_gflops(0.5 if a.quick else 2.0)
    doc["loadavg"]["end"] = loadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))  # first: the measurements survive a bug in the table
    md = table(doc)
    print(md)
    out.with_suffix(".md").write_text(md + "\n")
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
