"""Shared by the deploy tests: a tiny random checkpoint and test images in every format and mode."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
ASL = list("abcdefghiklmnopqrstuvwxy")
TINY_CNN = {"in_channels": 1, "image_size": 28, "channels": [4, 8, 8], "dropouts": [0.0, 0.2, 0.0], "hidden": 16}


def make_checkpoint(path: Path, seed: int = 0, **extra_meta) -> Path:
    """A small random-initialised CNN (non-trivial BatchNorm statistics) saved as a handsign checkpoint."""
    import torch

    from handsign.saved.checkpoint import save_checkpoint
    from handsign.models import create_model
    from handsign.images.preprocess import default_spec

    torch.manual_seed(seed)
    model = create_model("cnn", len(ASL), **TINY_CNN).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    meta = {"architecture": {"name": "cnn", "args": TINY_CNN}, "labels": ASL, "task": "sign_mnist",
            "preprocess": default_spec("sign_mnist"), **extra_meta}
    return save_checkpoint(path, model, meta)


def base_image(seed: int = 0, size: int = 28) -> np.ndarray:
    """(size, size) uint8: a smooth blob on noise, so different images give different predictions."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(6, size - 6, 2)
    blob = 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(10, 60))
    return np.clip(blob + rng.uniform(0, 50, (size, size)), 0, 255).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def format_cases(a: np.ndarray) -> dict:
    """name -> (file bytes, lossless?) for one 28x28 gray picture `a`, in every format and mode handled."""
    g = Image.fromarray(a, "L")
    other = Image.fromarray(255 - a, "L")  # a second animation frame that must be ignored
    rgba = np.dstack([a, a, a, np.full_like(a, 255)])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: the viewer rotates 90 degrees clockwise to display
    stored = g.transpose(Image.Transpose.ROTATE_90)  # stored rotated 90 degrees anti-clockwise
    return {
        "gray.png": (encode(g, "PNG"), True),
        "rgb.png": (encode(g.convert("RGB"), "PNG"), True),
        "rgba.png": (encode(Image.fromarray(rgba, "RGBA"), "PNG"), True),
        "la.png": (encode(g.convert("LA"), "PNG"), True),
        "palette.png": (encode(g.convert("P"), "PNG"), True),
        "gray16.png": (encode(Image.fromarray(a.astype(np.uint16) * 257), "PNG"), True),
        "exif6.png": (encode(stored, "PNG", exif=exif), True),
        "animated.png": (encode(g, "PNG", save_all=True, append_images=[other]), True),
        "gray.bmp": (encode(g, "BMP"), True),
        "rgb.bmp": (encode(g.convert("RGB"), "BMP"), True),
        "palette.gif": (encode(g, "GIF"), True),
        "animated.gif": (encode(g, "GIF", save_all=True, append_images=[other], duration=100, loop=0), True),
        "lossless.webp": (encode(g.convert("RGB"), "WEBP", lossless=True), True),
        "rgba.webp": (encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True), True),
        "animated.webp": (encode(g.convert("RGB"), "WEBP", save_all=True, append_images=[other.convert("RGB")],
                                 lossless=True), True),
        "lossy.webp": (encode(g.convert("RGB"), "WEBP", quality=95), False),
        "gray.jpg": (encode(g, "JPEG", quality=95), False),
        "rgb.jpeg": (encode(g.convert("RGB"), "JPEG", quality=95), False),
        "cmyk.jpg": (encode(g.convert("CMYK"), "JPEG", quality=95), False),
        "exif6.jpg": (encode(stored, "JPEG", quality=95, exif=exif), False),
    }


def write_images(folder: Path, n: int = 3) -> list[Path]:
    """n different gray PNGs named img0.png..."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray(base_image(i), "L").save(p)
        paths.append(p)
    return paths


# run handsign's CLI with torch made unimportable (what a deploy install without the train extra sees)
NO_TORCH = ("import sys\n"
            "for name in ('torch', 'torchvision', 'matplotlib'):\n"
            "    sys.modules[name] = None\n"
            "from handsign.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "sys.exit(code)\n")


def no_torch_cmd(*args) -> list[str]:
    return [sys.executable, "-c", NO_TORCH, *map(str, args)]
