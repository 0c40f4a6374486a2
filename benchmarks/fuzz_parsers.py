"""Coverage-guided fuzzing (atheris + libFuzzer) of the two parsers users feed directly, for a bounded time.

    python benchmarks/fuzz_parsers.py --seconds 120            # both targets, 120 s each
    python benchmarks/fuzz_parsers.py --target csv --seconds 30

Targets:
  image  bytes -> handsign.images.preprocess.load_image (decode + preprocessing) with each bundled model's spec
         (the photo spec of `asl`: foreground crop, brightness match; the digit spec of `mnist`)
         and the plain Sign-MNIST spec. Allowed outcome: a (1, 28, 28) float32 array in [0, 1], or ImageError.
  csv    bytes -> handsign.data.parse_sign_mnist_csv (+ the label mapping load_sign_mnist applies).
         Allowed outcome: (labels, pixels) of matching lengths with pixels in 0..255, or DataError.
Anything else (another exception, a wrong shape or range) is a crash: libFuzzer stops and writes the input
as crash-<sha1> into --artifacts; each one becomes a regression test in tests/test_fuzz.py.

handsign's Python modules (and Pillow's Python-side parsers) are instrumented for coverage; Pillow's C
decoders and NumPy are not (atheris covers Python code only; see docs/bad-input.md). Not run in CI:
it needs `pip install atheris` and minutes of CPU. Each target runs in its own process (libFuzzer exits
the process when done); the summary (executions, coverage, crashes) goes to --out as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def image_seeds() -> list[bytes]:
    """Small valid pictures in the formats and modes users send: the mutations start from real structure."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    g = Image.fromarray(a, "L")
    out = []
    for img, fmt, kw in ((g, "PNG", {}), (g.convert("RGB"), "JPEG", {"quality": 80}), (g, "GIF", {}),
                         (g.convert("RGB"), "BMP", {}), (g.convert("RGBA"), "WEBP", {"lossless": True}),
                         (g.convert("P"), "PNG", {}), (g.convert("CMYK"), "TIFF", {}),
                         (g.resize((64, 20)).convert("LA"), "PNG", {})):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        out.append(buf.getvalue())
    return out


def csv_seeds() -> list[bytes]:
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    rows = [",".join([str(label)] + [str((label * 7 + i) % 256) for i in range(784)]) for label in (0, 24, 10)]
    return [("\n".join([header] + rows) + "\n").encode(), ("\r\n".join([header] + rows[:1])).encode()]


# ---------------------------------------------------------------- the fuzzing process (one target)

def run_target(target: str, argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["handsign", "PIL"]):
        import numpy as np  # noqa: F401  (imported here so that it is not instrumented below)
        from handsign.images import preprocess as pp
        from handsign.data.readers import map_sign_labels, parse_sign_mnist_csv
        from handsign.errors import DataError, ImageError

    if target == "image":
        specs = [pp.check_spec(json.loads((REPO / "handsign" / "bundled" / f"{n}.json").read_text())["preprocess"])
                 for n in ("asl", "mnist")] + [pp.default_spec("sign_mnist")]

        def one(data: bytes) -> None:
            for spec in specs:
                try:
                    x = pp.load_image(data, spec, name="fuzz")
                except ImageError:
                    return  # the same bytes fail the same way for every spec
                assert x.shape == (1, spec["size"], spec["size"]) and x.dtype == np.float32, (x.shape, x.dtype)
                assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1, (x.min(), x.max())
    else:
        fd, tmp = tempfile.mkstemp(suffix=".csv", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        os.close(fd)
        path = Path(tmp)

        header = ("label," + ",".join(f"pixel{i}" for i in range(1, 785)) + "\n").encode()

        def one(data: bytes) -> None:
            # half the inputs get the valid header put in front: mutations of a 3.7 KB header rarely
            # survive it, and the body is where the row/column/value parsing is
            path.write_bytes(header + data[1:] if data[:1] and data[0] % 2 else data)
            try:
                labels, pixels = parse_sign_mnist_csv(path)
                map_sign_labels(labels, str(path))
            except DataError:
                return
            assert labels.ndim == 1 and pixels.shape == (len(labels), 784) and pixels.dtype == np.uint8

    atheris.Setup(argv, one)
    atheris.Fuzz()


# ---------------------------------------------------------------- the driver

def fuzz(target: str, seconds: int, workdir: Path, artifacts: Path) -> dict:
    corpus = workdir / f"corpus-{target}"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(image_seeds() if target == "image" else csv_seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    artifacts.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    cmd = [sys.executable, __file__, "--_run", target, str(corpus), f"-max_total_time={seconds}",
           f"-artifact_prefix={artifacts}/{target}-", "-rss_limit_mb=4096", "-timeout=30", "-print_final_stats=1",
           "-max_len=65536" if target == "image" else "-max_len=262144"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - t0
    log = r.stdout + r.stderr
    (workdir / f"{target}.log").write_text(log)
    stat = lambda name: int(m[1]) if (m := re.search(rf"stat::{name}:\s+(\d+)", log)) else None  # noqa: E731
    crashes = sorted(str(p) for p in set(artifacts.iterdir()) - before)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    return {"target": target, "seconds": round(wall, 1), "executions": stat("number_of_executed_units"),
            "execs_per_s": stat("average_exec_per_sec"), "peak_rss_mb": stat("peak_rss_mb"),
            "coverage_edges": int(cov[-1][0]) if cov else None, "features": int(cov[-1][1]) if cov else None,
            "corpus_files": len(list(corpus.iterdir())), "exit_code": r.returncode, "crashes": crashes,
            "crash_report": log[log.find("=== Uncaught Python exception"):][:3000] if crashes else None}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_run"]:  # the child process: libFuzzer takes its own flags from argv
        run_target(argv[1], [sys.argv[0], *argv[2:]])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["image", "csv", "both"], default="both")
    p.add_argument("--seconds", type=int, default=120, help="fuzzing time per target")
    p.add_argument("--workdir", default=None, help="corpus and logs (default: a temporary folder)")
    p.add_argument("--artifacts", default=str(REPO / "benchmarks" / "results" / "fuzz-crashes"))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "fuzz-parsers.json"))
    a = p.parse_args(argv)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="handsign-fuzz-"))
    targets = ["image", "csv"] if a.target == "both" else [a.target]
    results = []
    for t in targets:
        r = fuzz(t, a.seconds, workdir, Path(a.artifacts))
        print(f"{t}: {r['executions']} executions in {r['seconds']} s ({r['execs_per_s']}/s), coverage "
              f"{r['coverage_edges']} edges, {len(r['crashes'])} crash(es)" + (f": {r['crashes']}" if r["crashes"] else ""),
              flush=True)
        results.append(r)
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "load_average": list(os.getloadavg())}, "seconds_per_target": a.seconds, "results": results}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {a.out} (corpus and logs in {workdir})")
    return 1 if any(r["crashes"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
