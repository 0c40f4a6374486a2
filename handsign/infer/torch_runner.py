"""What every backend runs: a callable from a float32 NumPy batch to float32 logits, and the softmax over them.

`torch_runner(net)` makes one of a torch model (onnx_runtime.load_onnx returns the ONNX Runtime one);
Predictor (pixel models) and hands.route.HandRoute (landmark models) hold one each. torch is imported
only when a torch runner runs, so the ONNX deploy path never imports it.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, classes) logits -> probabilities, row by row (max subtracted first: no overflow)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def torch_runner(net, device: str = "cpu"):
    """A torch model as the backends' common callable: float32 NumPy array in -> float32 logits out."""
    import torch  # only when a torch model is run: the ONNX deploy install has no torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(x).to(device)).float().cpu().numpy()

    return run
