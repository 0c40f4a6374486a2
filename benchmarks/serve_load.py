"""Bounded load on a running `handsign serve`: N single-image requests at concurrency C; requests/s, p50/p99.

    python -m handsign serve --model asl=PATH --port 8765 &
    python benchmarks/serve_load.py --url http://127.0.0.1:8765 --image hand.jpg -n 500 -c 8

Measures the whole HTTP round trip as a client sees it (upload, decode, preprocess, model, JSON).
`--v2` sends the same picture as an Open Inference Protocol tensor (1, 1, 28, 28) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np


@contextlib.contextmanager
def served(serve_args: list[str], timeout_s: float = 120):
    """`python -m handsign serve SERVE_ARGS --port P` on a free 127.0.0.1 port, run from this checkout;
    yields (url, process) once /v2/health/ready answers 200, and stops the server on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "handsign", "serve", *serve_args, "--port", str(port)],
                            cwd=Path(__file__).resolve().parents[1],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"handsign serve {' '.join(serve_args)} did not start")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def run(url: str, n: int, concurrency: int, make_request) -> tuple[list[float], float, dict]:
    latencies, statuses = [], {}
    queue = iter(range(n))

    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        for _ in range(min(20, n)):  # warm-up: connections, lazy init in the server
            (await make_request(client)).raise_for_status()

        async def worker():
            for _ in queue:
                t = time.perf_counter()
                r = await make_request(client)
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return latencies, wall, statuses


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--image", required=True, help="picture to send (POST /predict, multipart)")
    p.add_argument("--model", default=None)
    p.add_argument("-n", type=int, default=500, help="requests")
    p.add_argument("-c", type=int, default=8, help="concurrent requests")
    p.add_argument("--v2", action="store_true", help="POST /v2/models/MODEL/infer with a 28x28 tensor")
    a = p.parse_args(argv)
    data = open(a.image, "rb").read()

    if a.v2:
        x = np.random.default_rng(0).uniform(0, 1, (1, 1, 28, 28)).astype(np.float32)
        body = {"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                            "data": x.ravel().tolist()}]}
        model = a.model or "asl"

        def make_request(client):
            return client.post(f"/v2/models/{model}/infer", json=body)
    else:
        params = {"model": a.model} if a.model else {}

        def make_request(client):
            return client.post("/predict", params=params, files={"file": ("image", data, "image/jpeg")})

    lat, wall, statuses = asyncio.run(run(a.url, a.n, a.c, make_request))
    ms = np.array(lat) * 1000
    result = {"endpoint": "v2 infer" if a.v2 else "/predict", "image_bytes": len(data), "requests": a.n,
              "concurrency": a.c, "statuses": statuses, "requests_per_s": round(a.n / wall, 1),
              "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
              "max_ms": round(float(ms.max()), 2), "machine": f"{platform.machine()} {platform.processor()}".strip()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
