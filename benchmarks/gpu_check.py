"""Issue 15's GPU check, made to run in one short call on a borrowed GPU machine that has no network.

    python benchmarks/gpu_check.py pack --data-dir ../shared/data     # here: .devdata/ (about 42 MB, git-ignored)
    python3 benchmarks/gpu_check.py run --packed .devdata --out DIR  # there: a few minutes on one GPU

`pack` puts what the runs read into one folder small enough to travel with the checkout (the device tool
carries at most 64 MiB): MNIST's four .gz files as they are, Sign-MNIST's two CSVs gzipped, SOURCES.md.
`run` unpacks them into a temporary data root, then, on --device (default cuda):
1. docs/distributed.md's check: `handsign train --recipe course-asl-cnn --epochs 1` as a plain run and
   under `torchrun --nproc-per-node 1`; a world of one must train like a plain run, so both must end with
   the same test accuracy and bit-identical weights;
2. benchmarks/fast_round2.py on the same device: the fast recipes' seconds per epoch, images/s and test
   accuracy, each against its reference (the course loop, pytorch/examples' epoch) timed in the same run.
It writes gpu-check.json (both parts) and fast-gpu.json/.md (fast_round2's own output) into --out.
On a CPU (`--device cpu --limit 512 --epochs 1`) the same code runs as a smoke test: the figures then
measure nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's handsign: on the GPU machine it is not installed
sys.path.insert(0, str(Path(__file__).resolve().parent))

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
SIGN_FILES = ("sign_mnist_train.csv", "sign_mnist_test.csv")


def pack(data_dir, to: Path, level: int = 6) -> Path:
    """Copy what `run` reads into `to` (made afresh): MNIST/raw/*.gz, sign_mnist/*.csv.gz (gzip `level`),
    SOURCES.md."""
    from handsign.data.readers import resolve_data_dir

    root = resolve_data_dir(data_dir)
    missing = [f"MNIST/raw/{f}.gz" for f in MNIST_FILES if not (root / "MNIST" / "raw" / f"{f}.gz").is_file()]
    missing += [f"sign_mnist/{f}" for f in SIGN_FILES if not (root / "sign_mnist" / f).is_file()]
    if missing:
        raise SystemExit(f"gpu_check pack: {root} lacks {', '.join(missing)}")
    tmp = Path(tempfile.mkdtemp(prefix=".devdata-", dir=to.parent))  # then one rename: never half a pack
    try:
        (tmp / "MNIST" / "raw").mkdir(parents=True)
        (tmp / "sign_mnist").mkdir()
        for f in MNIST_FILES:
            shutil.copyfile(root / "MNIST" / "raw" / f"{f}.gz", tmp / "MNIST" / "raw" / f"{f}.gz")
        for f in SIGN_FILES:
            with open(root / "sign_mnist" / f, "rb") as src, gzip.open(tmp / "sign_mnist" / f"{f}.gz", "wb", level) as dst:
                shutil.copyfileobj(src, dst)
        if (root / "SOURCES.md").is_file():
            shutil.copyfile(root / "SOURCES.md", tmp / "SOURCES.md")
        if to.exists():
            shutil.rmtree(to)
        tmp.rename(to)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return to


def unpack(packed: Path, root: Path) -> Path:
    """A data root in torchvision's and handsign's layout from a pack (every .gz decompressed)."""
    for src in sorted(packed.rglob("*")):
        if not src.is_file():
            continue
        dst = root / src.relative_to(packed)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".gz":
            with gzip.open(src, "rb") as f, open(dst.with_suffix(""), "wb") as out:
                shutil.copyfileobj(f, out)
        else:
            shutil.copyfile(src, dst)
    return root


def ddp_check(root: Path, device: str, limit: int, work: Path, log) -> dict:
    """docs/distributed.md's check: a plain run and a one-rank torchrun of the same recipe must agree."""
    from safetensors.torch import load_file

    # the same threads in both: left to choose, each run takes the cores free when it starts, and another
    # thread count sums floats in another order (weights then differ in the last bits; seen on a busy CPU)
    common = ["--recipe", "course-asl-cnn", "--epochs", "1", "--device", device, "--data-dir", str(root),
              "--threads", "1"]
    if limit:
        common += ["--limit", str(limit)]
    commands = {"plain": [sys.executable, "-m", "handsign", "train", *common, "--out", str(work / "plain")],
                "torchrun-1": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
                               "-m", "handsign", "train", *common, "--out", str(work / "ddp1")]}
    runs = {}
    for name, cmd in commands.items():
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        if done.returncode:
            raise SystemExit(f"gpu_check: {name} run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        run_dir = Path(cmd[cmd.index("--out") + 1])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        runs[name] = {"seconds": round(time.perf_counter() - start, 1), "test_acc": metrics["last"]["test_acc"],
                      "weights": load_file(run_dir / "last.safetensors")}
        log(f"  {name}: {runs[name]['seconds']} s, test {runs[name]['test_acc']:.2%}")
    a, b = runs["plain"]["weights"], runs["torchrun-1"]["weights"]
    same = a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    out = {name: {k: v for k, v in r.items() if k != "weights"} for name, r in runs.items()}
    out["same_weights"] = same
    out["same_test_acc"] = runs["plain"]["test_acc"] == runs["torchrun-1"]["test_acc"]
    log(f"  weights {'identical' if same else 'DIFFER'}, test accuracy {'equal' if out['same_test_acc'] else 'DIFFERS'}")
    return out


def run(a) -> int:
    import fast_round2

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    packed = Path(a.packed)
    if not (packed / "sign_mnist" / "sign_mnist_train.csv.gz").is_file():
        raise SystemExit(f"gpu_check run: {packed} is not a pack (make one with: gpu_check.py pack)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"device": a.device, "seeds": a.seeds, "smoke": bool(a.limit or a.epochs)}
    with tempfile.TemporaryDirectory() as tmp:
        root = unpack(packed, Path(tmp) / "data")
        log("[1/2] docs/distributed.md: plain run vs torchrun --nproc-per-node 1")
        doc["ddp_check"] = ddp_check(root, a.device, a.limit, Path(tmp), log)
        log("[2/2] benchmarks/fast_round2.py on the same device")
        argv = ["--data-dir", str(root), "--device", a.device, "--seeds", a.seeds, "--out", str(out / "fast-gpu.json")]
        if a.limit:
            argv += ["--limit", str(a.limit)]
        if a.epochs:
            argv += ["--epochs", str(a.epochs)]
        fast_round2.main(argv)
    doc["fast"] = json.loads((out / "fast-gpu.json").read_text())
    (out / "gpu-check.json").write_text(json.dumps(doc, indent=2))
    ok = doc["ddp_check"]["same_weights"] and doc["ddp_check"]["same_test_acc"]
    log(f"wrote {out / 'gpu-check.json'}; plain and one-rank runs {'agree' if ok else 'DISAGREE'}")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="here: the data the runs read, small enough to carry")
    pk.add_argument("--data-dir", default=None, help="data root (default $HANDSIGN_DATA or ./data)")
    pk.add_argument("--to", default=str(REPO / ".devdata"), help="the pack's folder (default .devdata)")
    pk.add_argument("--level", type=int, default=6, choices=range(1, 10), metavar="1-9",
                    help="gzip level for the CSVs (default 6: about 31 MB; 1 is faster and larger)")
    rn = sub.add_parser("run", help="there: the distributed check and fast_round2 on one device")
    rn.add_argument("--packed", default=str(REPO / ".devdata"), help="a folder made by `pack`")
    rn.add_argument("--out", required=True, help="folder for gpu-check.json and fast-gpu.json/.md")
    rn.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a smoke run")
    rn.add_argument("--seeds", default="0,1,2", help="fast_round2's seeds, all reported")
    rn.add_argument("--limit", type=int, default=0, help="smoke run: the first N training images everywhere")
    rn.add_argument("--epochs", type=int, default=0, help="smoke run: this many epochs for each fast recipe")
    a = p.parse_args(argv)
    if a.command == "pack":
        to = pack(a.data_dir, Path(a.to), a.level)
        size = sum(f.stat().st_size for f in to.rglob("*") if f.is_file())
        print(f"packed {to} ({size / 2 ** 20:.1f} MiB)")
        return 0
    return run(a)


if __name__ == "__main__":
    raise SystemExit(main())
