"""How many epochs of a net's convolutions alone fit in fast-mnist's clock (one pytorch/examples epoch).

    python benchmarks/conv_floor.py --data-dir ../shared/data            # the clock: one real examples epoch
    python benchmarks/conv_floor.py --reference-steps 20 --steps 5        # a quick run: the clock from 20 steps

Round seven (issue 15, docs/fast.md): the only net that reached 99.6 % on MNIST validation was select_fast's
VGG-style `cnn2` trained for 15 epochs, at 6.6x fast-mnist's time. Would C kernels for its BatchNorm and ReLU
make that fit? Not if its convolutions alone, which no fused kernel removes, already take longer than the
clock. Per net: a training step (batch 256, channels-last, bf16 autocast where the CPU has it), the time
torch.profiler puts in its convolutions (forward and backward; their share of the step), and from that the seconds
of convolutions per 54,000-image epoch and how many such epochs fit in the clock. The clock is timed in the
same run: one epoch of pytorch/examples' mnist recipe (benchmarks/fast_round2.py, real data), or, with
--reference-steps N, N of its training steps on synthetic images scaled to an epoch (steps only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import profile  # noqa: E402

from torch import nn  # noqa: E402

from handsign.models import create_model, flops_per_image  # noqa: E402
from handsign.train.machine import use_bf16  # noqa: E402

TRAIN_IMAGES, BATCH = 54_000, 256  # fast-mnist trains on 90 % of MNIST's 60,000 (10 % is its valid split)
CONV_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution", "aten::conv2d")


def nets() -> dict:
    from select_fast import two_conv_cnn  # a sibling script: benchmark-only model

    return {"fast-mnist recipe (16-32-64)": create_model("cnn", 10, channels=(16, 32, 64), hidden=256),
            "cnn2 (16,16 / 32,32 / 64)": two_conv_cnn()}


def step_profile(model, steps: int, repeats: int) -> dict:
    """Median over `repeats` rounds of the step's seconds and of its convolutions' seconds (forward and backward)."""
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(BATCH, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,))
    bf16 = use_bf16("auto", torch.device("cpu"))  # as fast-mnist's precision "auto" decides

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    seconds, conv_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds.append((time.perf_counter() - start) / steps)
        with profile() as p:
            for _ in range(steps):
                step()
        # the convolutions' own time per step (profiled ops' self time, microseconds), over the unprofiled
        # step: C kernels called through ctypes are not profiled ops, so the profile's total would miss them
        self_us = {e.key: e.self_cpu_time_total for e in p.key_averages()}
        conv_s.append(sum(self_us.get(k, 0) for k in CONV_OPS) / 1e6 / steps)
    step_s, conv = statistics.median(seconds), statistics.median(conv_s)
    # the convolutions' arithmetic per step: forward + backward (input and weight gradients) = 3x the forward
    conv_flop = 3 * BATCH * flops_per_image(model, layers=(nn.Conv2d,))
    return {"step_s": step_s, "conv_s": conv, "conv_share": conv / step_s, "bf16": bf16,
            "conv_gflop_per_step": conv_flop / 1e9, "conv_gflop_per_s": conv_flop / 1e9 / conv}


def reference_seconds(data_dir, steps: int) -> dict:
    """The clock: one pytorch/examples epoch on real MNIST, or `steps` of its training steps scaled to 60,000 images."""
    from fast_round2 import ExamplesNet, examples_one_epoch

    if not steps:
        r = examples_one_epoch(data_dir, log=print)
        return {"seconds": r["seconds"], "how": "one pytorch/examples epoch, real data (train + test)"}
    net = ExamplesNet()
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        opt.zero_grad()
        F.nll_loss(net(x), y).backward()
        opt.step()
    per_step = (time.perf_counter() - start) / steps
    return {"seconds": per_step * 60_000 / 64, "how": f"{steps} pytorch/examples steps, synthetic, x 938 steps"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="data root, for the real pytorch/examples epoch")
    p.add_argument("--reference-steps", type=int, default=0, help="time N synthetic examples steps instead (0 = a real epoch)")
    p.add_argument("--steps", type=int, default=20, help="training steps per timing and per profile")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "conv-floor.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    for name, model in nets().items():
        r = step_profile(model, a.steps, a.repeats)
        r["conv_s_per_epoch"] = r["conv_s"] * TRAIN_IMAGES / BATCH
        r["step_s_per_epoch"] = r["step_s"] * TRAIN_IMAGES / BATCH
        rows.append({"net": name, **r})
    ref = reference_seconds(a.data_dir, a.reference_steps)
    print(f"\nclock: {ref['seconds']:.1f} s ({ref['how']}); {a.threads} threads, batch {BATCH}\n")
    print("| net | step, ms | convolutions' share | s/epoch, whole step | s/epoch, convolutions alone "
          "| epochs of convolutions alone in the clock |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        r["epochs_in_clock_conv_only"] = ref["seconds"] / r["conv_s_per_epoch"]
        print(f"| {r['net']} | {1000 * r['step_s']:.1f} | {100 * r['conv_share']:.0f} % | {r['step_s_per_epoch']:.1f} "
              f"| {r['conv_s_per_epoch']:.1f} | {r['epochs_in_clock_conv_only']:.1f} |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"threads": a.threads, "batch": BATCH, "train_images": TRAIN_IMAGES,
                                       "reference": ref, "rows": rows}, indent=1))
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
