"""Hold `handsign serve` under load: N /predict requests at concurrency C against a fresh server process;
count 5xx answers, p50/p99 latency and the server's RSS growth (/proc, Linux). Writes one JSON object.

    python benchmarks/serve_abuse.py -n 2000 -c 32 [--model CHECKPOINT] [--max-concurrency 64]

Without --model it serves a course-size CNN (404,099 parameters, random weights: the cost is what matters).
`--max-concurrency` below -c shows the overload answer (503 + Retry-After) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from serve_load import run, served  # noqa: E402  (the shared server start and load loop)


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def course_cnn(folder: Path) -> Path:
    import torch

    from handsign.saved.checkpoint import save_checkpoint
    from handsign.models import create_model
    from handsign.images.preprocess import default_spec

    torch.manual_seed(0)
    meta = {"architecture": {"name": "cnn", "args": {}}, "labels": list("abcdefghiklmnopqrstuvwxy"),
            "task": "sign_mnist", "preprocess": default_spec("sign_mnist")}
    return save_checkpoint(folder / "asl.safetensors", create_model("cnn", 24).eval(), meta)


def photo_jpeg(seed: int = 0) -> bytes:
    """A 320x240 photo-like JPEG (~10 kB): decode, pad and resize are part of every request."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:240, :320]
    img = 120 + 100 * np.exp(-((yy - 120) ** 2 + (xx - 160) ** 2) / 3000) + rng.normal(0, 12, (240, 320))
    b = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).convert("RGB").save(b, "JPEG", quality=85)
    return b.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000, help="requests")
    p.add_argument("-c", type=int, default=32, help="concurrent requests")
    p.add_argument("--model", help="checkpoint to serve (default: a course-size CNN made here)")
    p.add_argument("--max-concurrency", type=int, default=64, help="the server's in-flight limit")
    p.add_argument("--json", default="benchmarks/results/serve-abuse.json")
    a = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model = a.model or str(course_cnn(Path(tmp)))
        serve_args = ["--model", f"asl={model}", "--backend", "torch", "--max-concurrency", str(a.max_concurrency)]
        with served(serve_args) as (url, server):
            data = photo_jpeg()

            def make_request(client):
                return client.post("/predict", files={"file": ("hand.jpg", data, "image/jpeg")})

            asyncio.run(run(url, 200, a.c, make_request))  # warm-up round: allocator, thread pool, connections
            before = rss_mib(server.pid)
            lat, wall, statuses = asyncio.run(run(url, a.n, a.c, make_request))
            after = rss_mib(server.pid)
    ms = np.array(lat) * 1000
    result = {"requests": a.n, "concurrency": a.c, "max_concurrency": a.max_concurrency,
              "statuses": {str(k): v for k, v in sorted(statuses.items())},
              "5xx": sum(v for k, v in statuses.items() if k >= 500),
              "requests_per_s": round(a.n / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
              "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1),
              "server_rss_mib_before": round(before, 1), "server_rss_mib_after": round(after, 1),
              "server_rss_growth_mib": round(after - before, 1), "image_bytes": len(data),
              "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs (shared), "
                         f"python {platform.python_version()}"}
    print(json.dumps(result, indent=2))
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
