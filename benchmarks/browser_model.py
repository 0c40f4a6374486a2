"""Which landmark model runtime the page should use: the bundled asl.onnx in onnxruntime-web, or the MLP's weights
(GET /models/asl/weights) in a few matrix products of plain JavaScript (handsign/web/landmark_model.js).

    python benchmarks/browser_model.py [--ort-version 1.31.1] [--runs 300] [--out benchmarks/results/browser-model.json]

onnxruntime-web is fetched with `npm pack` (the registry's ordinary client) into a temporary folder, never into the
repository, and served to the page from there (its WebAssembly build, one thread: the page is not cross-origin
isolated). In headless chromium, on the 26 hands of tests/fixtures/hands/features.json, one hand per call as in live
mode: bytes the page downloads for each, time to load (the onnxruntime-web files come through playwright's request
interception, slower than a server: an upper bound), ms per frame (per hand the mean of --runs calls; the median and
the largest over the hands), and the largest difference of their probabilities from Python's. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from browser_common import REPO, machine, page_on_server  # sets sys.path

from report import write_report  # noqa: E402

MEASURE = """async ({hands, runs}) => {
  const features = await import("/static/features.js");
  const lm = await import("/static/landmark_model.js");
  const xs = hands.map((h) => features.handFeatures(h.points, h.left));
  const time = async (load, run) => {
    const t0 = performance.now();
    const model = await load();
    const loadMs = performance.now() - t0;
    const probs = [];
    for (const x of xs) probs.push(Array.from(await run(model, x)));
    const ms = [];  // per hand, the mean over `runs` calls (the page's clock is coarsened to 0.1 ms)
    for (const x of xs) {
      const t = performance.now();
      for (let i = 0; i < runs; i++) await run(model, x);
      ms.push((performance.now() - t) / runs);
    }
    return {loadMs, ms, probs};
  };
  const js = await time(() => lm.LandmarkModel.load("/models/asl/weights"), (m, x) => m.probs(x));
  const ort = await import("/ort/ort.wasm.bundle.min.mjs");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = "/ort/";
  const softmax = (z) => { const m = Math.max(...z); const e = z.map((v) => Math.exp(v - m));
                           const s = e.reduce((a, b) => a + b, 0); return e.map((v) => v / s); };
  const onnx = await time(() => ort.InferenceSession.create("/ort/asl.onnx", {executionProviders: ["wasm"]}),
    async (s, x) => softmax(Array.from((await s.run({features: new ort.Tensor("float32", x, [1, x.length])})).logits.data)));
  return {js, onnx};
}"""


def fetch_ort(version: str, into: Path) -> Path:
    """onnxruntime-web's dist folder, from `npm pack` (a tarball of the published package) unpacked in `into`."""
    out = subprocess.run(["npm", "pack", f"onnxruntime-web@{version}", "--pack-destination", str(into), "--silent"],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    with tarfile.open(into / out) as t:
        t.extractall(into, filter="data")
    return into / "package" / "dist"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ort-version", default="1.31.1")
    ap.add_argument("--runs", type=int, default=300, help="calls per hand for the timing")
    ap.add_argument("--out", default="benchmarks/results/browser-model.json")
    args = ap.parse_args()
    fx = json.loads((REPO / "tests" / "fixtures" / "hands" / "features.json").read_text())
    hands = [{"points": h["points"], "left": h["left"]} for h in fx["hands"]]
    want = np.array([h["probs"] for h in fx["hands"]])
    with tempfile.TemporaryDirectory() as tmp:
        dist = fetch_ort(args.ort_version, Path(tmp))
        files = {"ort.wasm.bundle.min.mjs": dist / "ort.wasm.bundle.min.mjs",  # + the glue it imports, the wasm
                 "ort-wasm-simd-threaded.mjs": dist / "ort-wasm-simd-threaded.mjs",
                 "ort-wasm-simd-threaded.wasm": dist / "ort-wasm-simd-threaded.wasm",
                 "asl.onnx": REPO / "handsign" / "bundled" / "asl.onnx"}
        types = {".mjs": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream"}
        with page_on_server(["asl"]) as (url, page):
            served = []

            def ort_file(route):
                name = route.request.url.rsplit("/", 1)[1]
                if name not in files:  # a file this version asks for that the list above lacks: say which
                    print(f"onnxruntime-web asked for {name}, not served", flush=True)
                    return route.fulfill(status=404, body="")
                served.append(name)
                route.fulfill(path=str(files[name]), content_type=types[Path(name).suffix])

            page.route("**/ort/*", ort_file)
            weights_bytes = len(page.request.get(url + "/models/asl/weights").body())
            js_bytes = len(page.request.get(url + "/static/landmark_model.js").body())
            r = page.evaluate(MEASURE, {"hands": hands, "runs": args.runs})
        sizes = {name: files[name].stat().st_size for name in set(served)}
    result = {"ort_version": args.ort_version, "hands": len(hands), "runs_per_hand": args.runs, "machine": machine()}
    for name, x, nbytes in (("plain JS (landmark_model.js + weights)", r["js"], js_bytes + weights_bytes),
                            (f"onnxruntime-web {args.ort_version} (wasm, 1 thread) + asl.onnx", r["onnx"],
                             sum(sizes.values()))):
        ms = np.array(x["ms"])
        result[name] = {"bytes": nbytes, "load_ms": round(x["loadMs"], 1),
                        "ms_per_frame_median": round(float(np.median(ms)), 4),
                        "ms_per_frame_max": round(float(ms.max()), 4),
                        "max_abs_prob_diff_vs_python": float(np.abs(np.array(x["probs"]) - want).max())}
    result["onnx_files"] = sizes
    write_report(args.out, result,
                 f"{'runtime':<55} {'bytes':>12} {'load ms':>8} {'ms/frame':>9} {'max':>8} {'max |p - python|':>17}",
                 [f"{name:<55} {v['bytes']:>12,} {v['load_ms']:>8.1f} {v['ms_per_frame_median']:>9.4f} "
                  f"{v['ms_per_frame_max']:>8.4f} {v['max_abs_prob_diff_vs_python']:>17.2e}"
                  for name, v in result.items() if isinstance(v, dict) and "bytes" in v])


if __name__ == "__main__":
    main()
