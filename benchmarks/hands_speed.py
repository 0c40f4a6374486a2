"""Photo -> letter speed of the landmark route: one image at a time in-process, and live camera frames
through `handsign serve` (N clients, each sending its next frame when the last answer arrives).

    python benchmarks/hands_speed.py --data-dir ../shared/data [--seconds 60] [--clients 1 4]

In-process: decode + MediaPipe + features + landmark MLP (+ the pixel CNN it is fused with), p50/p99
over Massey photos. Server: 640x480 JPEG frames (a Massey hand on a plain wall, like a webcam frame)
to POST /predict; frames/s, p50/p99 latency, any 5xx, and the server's peak memory (VmHWM).
Prints a table and writes hands-speed.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_load import served  # noqa: E402

from handsign.images import preprocess as pp  # noqa: E402
from handsign.infer.predict import Predictor  # noqa: E402


def percentiles(xs) -> dict:
    ms = np.array(xs) * 1000
    return {"n": len(xs), "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def frame_jpeg(photo: Path) -> bytes:
    canvas = Image.new("RGB", (640, 480), (96, 104, 112))
    hand = Image.open(photo).convert("RGB")
    hand.thumbnail((400, 400))
    canvas.paste(hand, ((640 - hand.width) // 2, (480 - hand.height) // 2))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def in_process(photos: list[Path], backend: str) -> dict:
    p = Predictor.load("asl", backend=backend)
    p.predict_image(pp.decode_image(photos[0].read_bytes()))  # warm-up: MediaPipe graphs, ORT session
    times, routes = [], {}
    for f in photos:
        data = f.read_bytes()
        t = time.perf_counter()
        r = p.predict_image(pp.decode_image(data), name=f.name)
        times.append(time.perf_counter() - t)
        routes[r["via"]] = routes.get(r["via"], 0) + 1
    return {"backend": p.backend, **percentiles(times), "routes": routes}


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


async def live_clients(url: str, frame: bytes, clients: int, seconds: float) -> dict:
    import httpx

    lat, statuses = [], {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async def one():
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                t = time.perf_counter()
                r = await client.post("/predict?model=asl&top_k=3", files={"file": ("frame.jpg", frame, "image/jpeg")})
                lat.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        wall = time.perf_counter() - start
    return {"clients": clients, "seconds": round(wall, 1), "frames_per_s": round(len(lat) / wall, 1),
            **percentiles(lat), "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "server_5xx": sum(v for k, v in statuses.items() if k >= 500)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("HANDSIGN_DATA", "data"))
    ap.add_argument("--photos", type=int, default=96, help="Massey photos timed in-process")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args(argv)
    root = Path(a.data_dir) / "asl_photos" / "massey"
    photos = sorted(root.glob("*/*.jpeg"))[:: max(1, 1675 // a.photos)][: a.photos]
    doc = {"machine": {"cpus": os.cpu_count(), "load_at_start": os.getloadavg(), "python": platform.python_version()},
           "in_process": [in_process(photos, b) for b in ("onnx", "torch")], "live": []}
    frame = frame_jpeg(photos[len(photos) // 2])
    with served(["--model", "asl", "--backend", "onnx"]) as (url, proc):
        for n in a.clients:
            doc["live"].append(asyncio.run(live_clients(url, frame, n, a.seconds)))
            doc["live"][-1]["server_peak_rss_mb"] = vm_hwm_mb(proc.pid)
    doc["machine"]["load_at_end"] = os.getloadavg()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hands-speed.json").write_text(json.dumps(doc, indent=2))
    print("| measurement | result |\n|---|---|")
    for r in doc["in_process"]:
        print(f"| photo -> letter, in-process, {r['backend']} (decode + detect + classify), {r['n']} photos | "
              f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; routes {r['routes']} |")
    for r in doc["live"]:
        print(f"| live frames 640x480 through the server, {r['clients']} client(s), {r['seconds']} s | "
              f"{r['frames_per_s']} frames/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, 5xx {r['server_5xx']}, "
              f"server peak RSS {r['server_peak_rss_mb']} MB |")
    print(f"load average at start {doc['machine']['load_at_start']}, at end {doc['machine']['load_at_end']}; "
          f"wrote {out / 'hands-speed.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
