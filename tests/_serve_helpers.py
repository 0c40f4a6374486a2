"""Shared by the serve tests: tiny trained checkpoints and a live uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import torch

from handsign.saved.checkpoint import save_checkpoint
from handsign.models import create_model
from handsign.images.preprocess import default_spec

ASL_LABELS = list("abcdefghiklmnopqrstuvwxy")
DIGITS = [str(d) for d in range(10)]


def synthetic_images(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 28, 28) in [0, 1] where class k is a bright blob at a k-dependent place, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.uniform(0, 0.3, (n, 1, 28, 28)).astype(np.float32)
    for i, k in enumerate(y):
        r, c = 4 + (k * 5) % 20, 4 + (k * 11) % 20
        x[i, 0, r:r + 6, c:c + 6] = 1.0
    return x, y


def make_checkpoint(folder: Path, name: str, labels: list[str], task: str, steps: int = 60) -> Path:
    """A small MLP trained `steps` Adam steps on synthetic data, saved as train.py saves models."""
    torch.manual_seed(0)
    arch = {"name": "mlp", "args": {"in_channels": 1, "image_size": 28, "hidden": [32]}}
    model = create_model("mlp", len(labels), **arch["args"])
    x, y = synthetic_images(512, len(labels))
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        i = torch.arange(step * 64, step * 64 + 64) % len(x)
        loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    meta = {"architecture": arch, "labels": labels, "task": task, "preprocess": default_spec(task),
            "metrics": {"final_loss": loss.item()}}
    return save_checkpoint(Path(folder) / f"{name}.safetensors", model.eval(), meta)


def make_models(folder: Path) -> dict[str, Path]:
    return {"asl": make_checkpoint(folder, "asl", ASL_LABELS, "sign_mnist"),
            "mnist": make_checkpoint(folder, "mnist", DIGITS, "mnist")}


class LiveServer:
    """uvicorn serving `app` in a thread on 127.0.0.1 (a socket bound to port 0: no race for the port)."""

    def __init__(self, app, **options):  # options: more uvicorn.Config settings
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **options))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
