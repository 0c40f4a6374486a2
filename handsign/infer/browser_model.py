"""A landmark model as the page's in-browser route runs it: its weights in a small safetensors file that
handsign/web/landmark_model.js reads and runs with a few matrix products in plain JavaScript.

    data = browser_weights(predictor)   # bytes, or HandsignError saying why this model cannot run in a browser

Layout (little-endian float32, no torch names): `mean`, `std` (F,) standardise the features; `layers.i.weight`
(out, in) and `layers.i.bias` (out,) for i = 0..L-1, ReLU between layers (dropout is a no-op at inference);
the header's metadata: format, labels (JSON), features (handsign.hands.features version), detector.
Why not the .onnx with onnxruntime-web: docs/spell.md, "In the browser" (bytes and ms measured).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from handsign.errors import HandsignError
from handsign.hands.features import FEATURES_VERSION
from handsign.saved.checkpoint import weights_sha256

FORMAT = "handsign-landmark-mlp"
FORMAT_VERSION = "1"


def _checkpoint_of(predictor) -> Path:
    """The .safetensors holding the served landmark model's weights (an .onnx only if exported from it)."""
    hands = predictor.hands
    source = Path(hands.source)
    checkpoint = source.with_suffix(".safetensors")
    if not checkpoint.is_file():
        raise HandsignError(f"{source.name}: served without its checkpoint ({checkpoint.name}), whose weights "
                            f"the page reads")
    if hands.backend == "onnx" and hands.meta.weights_sha256 != weights_sha256(checkpoint):
        raise HandsignError(f"{source.name} was not exported from {checkpoint.name} beside it: the browser "
                            f"would run other weights than the server")
    return checkpoint


def browser_weights(predictor) -> bytes:
    """The served landmark model's weights in the layout above; HandsignError (one line, the reason) for a
    model the page cannot run itself: a pixel model, a landmark model fused with a pixel model, another
    architecture, or an .onnx without its checkpoint."""
    from safetensors.numpy import load_file, save  # numpy only: the torch-free deploy install serves it too

    hands = getattr(predictor, "hands", None)  # (a Predictor; the server also takes objects of its interface)
    if hands is None:
        raise HandsignError("a pixel model; the page reads only hand-landmark models itself")
    if hands.pixel_weight > 0:
        raise HandsignError(f"{predictor.name}: fused with pixel model {hands.pixel_model!r} "
                            f"(weight {hands.pixel_weight}), which the browser does not run")
    arch = hands.meta.architecture
    if arch.get("name") != "landmark_mlp":
        raise HandsignError(f"{predictor.name}: architecture {arch.get('name')!r}; the browser runs landmark_mlp only")
    checkpoint = _checkpoint_of(predictor)
    try:
        tensors = load_file(str(checkpoint))
    except Exception as e:  # safetensors' own error types: a damaged file is a reason, not a crash of the server
        raise HandsignError(f"{checkpoint.name}: unreadable ({type(e).__name__})") from None
    if "mean" not in tensors or "std" not in tensors:
        raise HandsignError(f"{checkpoint.name}: no feature mean and std; not a landmark_mlp checkpoint")
    # LandmarkMLP.net: [Linear, ReLU, Dropout] * hidden + [Linear]; its Linear layers are net.<i>.weight
    linear = sorted({int(m.group(1)) for k in tensors if (m := re.fullmatch(r"net\.(\d+)\.weight", k))})
    out = {"mean": tensors["mean"], "std": tensors["std"]}
    width = len(out["mean"])
    for i, j in enumerate(linear):
        w, b = tensors[f"net.{j}.weight"], tensors.get(f"net.{j}.bias")
        if b is None or w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
            raise HandsignError(f"{predictor.name}: layer {i} has shape {w.shape}, expected (?, {width})")
        out[f"layers.{i}.weight"], out[f"layers.{i}.bias"] = w, b
        width = w.shape[0]
    if width != len(hands.labels) or len(out["std"]) != len(out["mean"]):
        raise HandsignError(f"{predictor.name}: {width} outputs for {len(hands.labels)} labels")
    out = {k: np.ascontiguousarray(v, dtype="<f4") for k, v in out.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "labels": json.dumps(list(hands.labels)),
            "features": str(FEATURES_VERSION), "detector": str(hands.meta.preprocess.get("detector", "")),
            "layers": str(len(linear))}
    return save(out, metadata=meta)
