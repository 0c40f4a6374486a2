"""Export a handsign model to ONNX: dynamic batch, metadata embedded, checked against torch.

    export("runs/asl/best.safetensors", "asl.onnx")  ->  {"path": ..., "max_abs_diff": 3e-08, ...}

The graph takes `image` [N, 1, S, S] float32 in [0, 1] (preprocessed by handsign.images.preprocess) and
returns `logits` [N, classes]. The checkpoint's metadata JSON is stored in metadata_props["handsign"],
so handsign.infer.onnx_runner can predict from the .onnx file alone, without torch; its `weights_sha256`
(handsign.saved.checkpoint.weights_sha256 of the weights exported) ties the file to its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handsign.files import atomic_write_bytes
from handsign.saved.checkpoint import LoadedModel, load_model, state_dict_sha256
from handsign.errors import HandsignError
from handsign.infer.onnx_runner import METADATA_KEY
from handsign.saved.checkpoint import resolve_model
from handsign.images.preprocess import to_model_input

OPSET = 18
INPUT, OUTPUT = "image", "logits"
LANDMARK_INPUT = "features"  # a landmark model's input: [N, F] handsign.hands.features vectors
TOLERANCE = 1e-4  # max |logit difference| ONNX Runtime vs torch accepted, per unit of the largest |logit|
CHECK_BATCH = 16  # random images in the check (a batch size the export never saw: the batch dim is dynamic)


def export(model, out=None, format: str = "onnx", check: bool = True) -> dict:
    """Export a checkpoint path, run folder, bundled name or LoadedModel to `out` (default: beside it, .onnx).

    Returns {"path", "max_abs_diff", "max_abs_logit", "check_batch", "opset"}; raises HandsignError if
    ONNX Runtime disagrees with torch by more than TOLERANCE * max(1, max |logit|) (float32 sums of
    large logits differ in the last bits between kernels), and then nothing is written.
    """
    import torch  # torch, onnx and onnxruntime only when exporting: importing this module needs none of them

    if format != "onnx":
        raise HandsignError(f"--format: only 'onnx' is supported, not {format!r}")
    if not isinstance(model, LoadedModel):
        path = resolve_model(model)
        if path.suffix == ".onnx":
            raise HandsignError(f"{path}: is already an ONNX model; export a .safetensors checkpoint")
        model = load_model(path)
    out = Path(out) if out else model.path.with_suffix(".onnx")
    if out.suffix != ".onnx":
        raise HandsignError(f"{out}: the output file name must end in .onnx")
    net = model.model.cpu().eval()
    shape = model.meta.input_shape
    input_name = LANDMARK_INPUT if model.meta.input == "landmarks" else INPUT
    # weights_sha256, the identity of the weights this graph is made from: Predictor.load compares it with the
    # checkpoint beside the .onnx, so an export left over from before a retrain is never used in silence
    meta = model.meta.replace(train_state=None, name=model.meta.name or model.path.stem,
                              weights_sha256=state_dict_sha256(net.state_dict()))

    example = torch.rand(2, *shape)
    try:
        program = torch.onnx.export(net, (example,), dynamo=True, input_names=[input_name], output_names=[OUTPUT],
                                    dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=OPSET,
                                    verbose=False)
    except ImportError as e:  # the torch.export-based exporter needs onnx and onnxscript
        raise HandsignError(f"ONNX export needs the onnx extra ({e.name or e}): pip install 'handsign[onnx]'") \
            from None
    proto = program.model_proto
    diff, scale = check_against_torch(proto.SerializeToString(), net, shape, input_name) if check else (None, None)
    if diff is not None and not diff < TOLERANCE * max(1.0, scale):
        raise HandsignError(f"{out}: ONNX Runtime differs from torch by {diff:.3g} on logits up to {scale:.3g}; "
                            f"not written")
    if diff is not None:
        meta = meta.replace(onnx={"opset": OPSET, "input": input_name, "output": OUTPUT, "max_abs_diff_vs_torch": diff})
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_json()
    proto.producer_name, proto.doc_string = "handsign", f"handsign model {meta.name}: {input_name} -> {OUTPUT}"
    atomic_write_bytes(out, proto.SerializeToString())
    return {"path": out, "max_abs_diff": diff, "max_abs_logit": scale, "check_batch": CHECK_BATCH, "opset": OPSET,
            "input": f"{input_name} [N,{','.join(map(str, shape))}]"}


def check_against_torch(onnx_bytes: bytes, net, shape: tuple, input_name: str = INPUT,
                        seed: int = 0) -> tuple[float, float]:
    """(max |logit difference| ONNX Runtime vs torch, max |logit|) on CHECK_BATCH random inputs: pictures of
    random gray levels made model input as every picture is (to_model_input), or features in [0, 1)."""
    import onnxruntime as ort  # as in export()
    import torch  # as in export()

    g = torch.Generator().manual_seed(seed)
    x = (to_model_input(torch.randint(0, 256, (CHECK_BATCH, *shape), dtype=torch.uint8, generator=g))
         if input_name == INPUT else torch.rand(CHECK_BATCH, *shape, generator=g))
    with torch.inference_mode():
        expected = net(x).float().numpy()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT], {input_name: x.numpy()})[0]
    return float(np.abs(got - expected).max()), float(np.abs(expected).max())
