"""Run an exported .onnx model with ONNX Runtime: the deploy path, which never imports torch.

    meta, run = load_onnx("asl.onnx");  logits = run(x)   # x: (N, 1, S, S) float32 in [0, 1]

The handsign metadata (labels, preprocessing spec, architecture, metrics) travels inside the .onnx
file's metadata_props (written by handsign.infer.export), so the file describes itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handsign.errors import CheckpointError, HandsignError
from handsign.saved.meta import ModelMeta
from handsign.images.preprocess import check_spec

METADATA_KEY = "handsign"  # key in the ONNX model's metadata_props


def load_onnx(path, threads: int = 0, spin: bool = True) -> tuple[ModelMeta, callable]:
    """(metadata, run) for an .onnx file exported by handsign; run maps (N, 1, S, S) images (or, for a
    landmark model, (N, F) hand features) -> (N, classes) logits."""
    try:
        import onnxruntime as ort  # here: a missing deploy extra is a one-line hint, not an ImportError at import
    except ImportError:
        raise HandsignError("ONNX Runtime is not installed: pip install 'handsign[deploy]'") from None
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such ONNX file (create one with 'handsign export CHECKPOINT')")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: no warnings on stderr for a plain predict
    if threads:
        opts.intra_op_num_threads = threads
    if not spin:  # a server: ORT's busy-waiting workers would take the CPU from the event loop and the
        # clients on a small machine (measured on 2 cores: 287 -> 368-417 req/s); requests run in
        # parallel threads already, so one image needs no intra-op threads of its own
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.intra_op_num_threads = threads or 1
    try:
        session = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own Fail/InvalidGraph/... types for unreadable files
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: not a readable ONNX model ({first})") from None
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise CheckpointError(f"{p}: an ONNX model without handsign metadata (export it with 'handsign export')")
    meta = ModelMeta.from_json(raw, p)
    try:
        if meta.input == "landmarks":  # hand-landmark features [N, F]
            expected = [int(meta.architecture["args"]["in_features"])]
        else:  # a preprocessed picture [N, 1, S, S]
            size = check_spec(meta.preprocess)["size"]
            expected = [1, size, size]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{p}: {e}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or list(inputs[0].shape[1:]) != expected:
        raise CheckpointError(f"{p}: expected one input of shape [N, {', '.join(map(str, expected))}], "
                              f"got {[i.shape for i in inputs]}")
    n_out = outputs[0].shape[-1]
    if isinstance(n_out, int) and n_out != len(meta.labels):
        raise CheckpointError(f"{p}: model has {n_out} outputs but {len(meta.labels)} labels")
    in_name, out_name = inputs[0].name, outputs[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run([out_name], {in_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return meta, run
