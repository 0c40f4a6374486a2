"""Training throughput vs intra-op threads, on an idle machine and with one busy process beside it.

    python benchmarks/threads.py [--seconds 3] [--repeats 3]

Rows: the course MLP at batch 32 and the course CNN at batch 128 (handsign's training step, synthetic
28x28 images, 24 classes), with 1 thread, 2 threads and the default handsign now picks (threads 0 ->
runtime.choose_threads); each "quiet" (no process of ours beside it) and "busy" (one `while True: pass`
process started here). Each figure is the median of --repeats runs of ~--seconds each. Other processes
on a shared machine are not ours to stop: the cores they kept busy (runtime.busy_cores, measured before
each row) and the load average are written beside every row. JSON and Markdown in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from handsign.train.config import make_config
from handsign.data.readers import Dataset
from handsign.models import create_model
from handsign.train.machine import busy_cores, choose_threads, step_flop
from handsign.train.loop import make_optimizer, train_one_epoch

CASES = [("mlp", 32), ("cnn", 128)]


def throughput(model_name: str, batch: int, threads: int, seconds: float) -> tuple[float, int]:
    """Images per second of handsign's training loop; threads 0 = handsign's default choice."""
    model = create_model(model_name, 24)
    n = choose_threads(step_flop(model, batch, torch.zeros(1, 1, 28, 28)))[0] if threads == 0 else threads
    torch.set_num_threads(n)
    g = torch.Generator().manual_seed(0)
    data = Dataset(torch.randint(0, 256, (batch * 16, 1, 28, 28), dtype=torch.uint8, generator=g),
                   torch.randint(0, 24, (batch * 16,), generator=g), list("abcdefghiklmnopqrstuvwxy"), "synthetic", "")
    cfg = make_config("", model=model_name, batch_size=batch, epochs=1)
    opt = make_optimizer(model, cfg)
    train_one_epoch(model, data, opt, cfg, 1, torch.device("cpu"), 0, 1, show_progress=False)  # warm-up
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        train_one_epoch(model, data, opt, cfg, 1, torch.device("cpu"), 0, 1, show_progress=False)
        images += len(data)
    return images / (time.perf_counter() - start), n


def render_md(doc: dict) -> str:
    """The Markdown table of a results document (also: python -c 'from threads import render_md ...')."""
    rows = doc["rows"]
    lines = ["| model, batch | condition | threads | img/s (median) | runs | other work on the cores | load avg |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = f"default ({r['chosen']})" if r["threads"] == "default" else str(r["threads"])
        lines.append(f"| {r['model']}, {r['batch']} | {r['condition']} | {t} | {r['img_per_s']:,} | "
                     f"{', '.join(f'{x:,}' for x in r['runs'])} | {r['other_busy_cores']:.2f} cores | "
                     f"{', '.join(map(str, r['load_avg']))} |")
    m = doc["machine"]
    head = [f"`python benchmarks/threads.py --seconds {doc['seconds_per_run']:g} --repeats {doc['repeats']}`: "
            f"handsign's training step on synthetic 28x28 images, {m['cpus']} CPUs, torch {m['torch']}. 'busy' = "
            "one `while True: pass` process of ours beside it; 'other work' = cores other people's processes kept "
            "busy just before the row (our own busy process not counted).", ""]
    return "\n".join(head + ([doc["note"], ""] if doc.get("note") else []) + lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/threads")
    p.add_argument("--note", default="", help="what else ran on the machine, for the record")
    a = p.parse_args(argv)
    cpus = os.sched_getaffinity(0)
    rows = []
    for condition in ("quiet", "busy"):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "busy" else None
        try:
            time.sleep(0.5 if hog else 0)
            for model_name, batch in CASES:
                for threads in (1, 2, 0):
                    others = busy_cores(cpus, 0.5) - (1.0 if hog else 0.0)  # other people's, not our hog's
                    runs = [throughput(model_name, batch, threads, a.seconds) for _ in range(a.repeats)]
                    row = {"model": model_name, "batch": batch, "condition": condition,
                           "threads": "default" if threads == 0 else threads, "chosen": runs[0][1],
                           "img_per_s": round(statistics.median(r[0] for r in runs)),
                           "runs": [round(r[0]) for r in runs], "other_busy_cores": round(max(others, 0.0), 2),
                           "load_avg": [round(x, 2) for x in os.getloadavg()]}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            if hog:
                hog.kill()
                hog.wait()
    doc = {"note": a.note, "machine": {"cpus": len(cpus), "platform": platform.platform(), "torch": torch.__version__},
           "seconds_per_run": a.seconds, "repeats": a.repeats, "rows": rows}
    Path(a.out + ".json").write_text(json.dumps(doc, indent=1))
    Path(a.out + ".md").write_text(render_md(doc))
    print(render_md(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
