"""The one preprocessing definition: any image file -> model input (1, H, W) float32 in [0, 1].

Used by training on image folders, evaluation, CLI prediction, the web app and the ONNX path.
Pure NumPy + Pillow on purpose: the deploy install predicts without importing torch.

A *spec* is a small JSON-able dict stored in every checkpoint, so preprocessing travels with the
model (timm's pretrained_cfg idea) and the consumers above cannot drift apart.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from handsign.images.crop import crop_square, find_foreground, luma
from handsign.errors import ImageError

SPEC_VERSION = 2  # written into new specs; version 1 specs (no photo fields) are still read unchanged
SPEC_VERSIONS = (1, 2)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 40_000_000  # ~ a 7000x5700 photo; larger files are refused before decoding (bomb guard)
MAX_BYTES = 50 * 1024 * 1024  # refuse image files over 50 MiB before reading them

# fit: how a non-square picture becomes square before resizing to `size`
#   "pad"      pad the short side with the picture's median border colour (nothing is squashed or cut)
#   "squash"   resize straight to size x size, as the course's keras load_img(target_size=...) did
#   "digit"    MNIST's own recipe: crop to the ink, fit it in a 20x20 box, centre by mass in 28x28
# invert: "auto" flips dark-on-light pictures (a digit on paper) to MNIST's light-on-dark; "never"
# Version 2 adds, for pictures that are not already in the training data's form (photos):
#   crop     "none" | "foreground": find the hand as the largest region that differs from the picture's
#            border (a plain wall, a gradient), crop a square around it with `margin` on every side
#   margin   extra border around the found hand, as a fraction of its size (Sign-MNIST crops are loose)
#   match    null | {"mean": m, "std": s}: give the 28x28 gray result this mean and standard deviation
#            (0..255 units; Sign-MNIST train images average 160 and 40), whatever the lighting was
SPECS = {
    "mnist": {"version": 1, "size": 28, "mode": "L", "fit": "digit", "invert": "auto"},
    "sign_mnist": {"version": 1, "size": 28, "mode": "L", "fit": "pad", "invert": "never"},
}
PHOTO_FIELDS = {"crop": "foreground", "margin": 0.05, "match": {"mean": 160.0, "std": 40.0}}
PREPROCESS_PRESETS = ("", "photo")  # "" = the data set's own spec; "photo" = it + PHOTO_FIELDS
_CROPS = {"none", "foreground"}
_FITS = {"pad", "squash", "digit"}
_INVERTS = {"auto", "never", "always"}


def default_spec(dataset: str, preset: str = "") -> dict:
    """Preprocessing spec for a built-in dataset; image folders use the sign_mnist one (pad).

    preset "photo" adds the version-2 fields that find and crop the hand in a photo and match its
    brightness and contrast to the training images."""
    spec = dict(SPECS.get(dataset, SPECS["sign_mnist"]))
    if preset == "photo":
        spec.update(version=2, **{k: (dict(v) if isinstance(v, dict) else v) for k, v in PHOTO_FIELDS.items()})
    elif preset:
        raise ValueError(f"preprocess preset {preset!r} is not one of {PREPROCESS_PRESETS}")
    return spec


def with_preset(spec: dict, preset: str) -> dict:
    """A model's spec with its photo fields switched on ("photo") or off ("plain"), for comparisons."""
    base = {k: v for k, v in spec.items() if k not in PHOTO_FIELDS}
    if preset == "plain":
        return {**base, "version": 1}
    if preset == "photo":
        return check_spec({**base, "version": 2, **{k: (dict(v) if isinstance(v, dict) else v)
                                                    for k, v in PHOTO_FIELDS.items()}})
    raise ValueError(f"preprocessing {preset!r}: choose photo or plain")


def check_spec(spec: dict) -> dict:
    """Validate a spec read from a checkpoint; raise ValueError naming the bad field."""
    if not isinstance(spec, dict):
        raise ValueError("preprocess spec must be an object")
    version = spec.get("version")
    if version not in SPEC_VERSIONS:
        raise ValueError(f"preprocess spec version {version!r} is not one of {list(SPEC_VERSIONS)}")
    size = spec.get("size")
    if not isinstance(size, int) or not 8 <= size <= 512:
        raise ValueError(f"preprocess size {size!r} must be an integer in 8..512")
    if spec.get("mode") != "L":
        raise ValueError(f"preprocess mode {spec.get('mode')!r} is not supported (only 'L')")
    if spec.get("fit") not in _FITS:
        raise ValueError(f"preprocess fit {spec.get('fit')!r} is not one of {sorted(_FITS)}")
    if spec.get("invert") not in _INVERTS:
        raise ValueError(f"preprocess invert {spec.get('invert')!r} is not one of {sorted(_INVERTS)}")
    extra = sorted(set(spec) & set(PHOTO_FIELDS))
    if version == 1 and extra:
        raise ValueError(f"preprocess field(s) {', '.join(extra)} need spec version 2")
    if spec.get("crop", "none") not in _CROPS:
        raise ValueError(f"preprocess crop {spec.get('crop')!r} is not one of {sorted(_CROPS)}")
    margin = spec.get("margin", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 1:
        raise ValueError(f"preprocess margin {margin!r} must be a number in 0..1")
    match = spec.get("match")
    if match is not None:
        ok = isinstance(match, dict) and set(match) == {"mean", "std"} and all(
            isinstance(match[k], (int, float)) and not isinstance(match[k], bool) for k in match)
        if not ok or not 0 <= match["mean"] <= 255 or not 0 < match["std"] <= 255:
            raise ValueError(f"preprocess match {match!r} must be null or {{'mean': 0..255, 'std': (0, 255]}}")
    return spec


def decode_image(source, *, name: str | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode a path or bytes into a loaded, upright PIL image; ImageError on anything unusable.

    Handles EXIF orientation, animated files (first frame), palette, alpha, 16-bit and CMYK.
    The pixel-count check runs on the header, before any pixel data is decoded.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{label}: no such file")
        if path.is_dir():
            raise ImageError(f"{label}: is a directory, not an image")
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"{label}: file is over {MAX_BYTES // 2**20} MiB")
        data = path.read_bytes()
    else:
        data = bytes(source)
    if not data:
        raise ImageError(f"{label}: file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w <= 0 or h <= 0:
                raise ImageError(f"{label}: image declares {w}x{h} pixels")
            if w * h > max_pixels:
                raise ImageError(f"{label}: image declares {w}x{h} pixels, over the limit of {max_pixels:,}")
            img.seek(0)  # animated GIF/WebP/PNG: the first frame
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except Image.UnidentifiedImageError:  # its message names a BytesIO object's address: say it plainly
        fmt = _looks_like(data)
        why = (f"starts like a {fmt} file but is damaged, cut short or declares no pixels" if fmt
               else "unknown format or not an image")
        raise ImageError(f"{label}: not a readable image ({why})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # Pillow's check ran first
        declared = re.search(r"\((\d+) pixels\)", str(e))
        size = f"image declares {int(declared[1]):,} pixels: " if declared else "image is "
        raise ImageError(f"{label}: {size}too large to decode safely (decompression bomb)") from None
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError...) for bad files
        raise ImageError(f"{label}: not a readable image ({type(e).__name__}: {e})") from None
    return img


_MAGIC = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def _looks_like(data: bytes) -> str | None:
    """The image format a file's first bytes announce, for error messages only."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


def to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> (H, W) float32 gray in [0, 255]; transparency is composited over white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float32)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(a * (255.0 / hi), 0, 255)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("LA", "PA", "RGBA", "La", "RGBa"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    if img.mode != "L":
        img = img.convert("RGB").convert("L")  # CMYK, YCbCr, 1, RGB...: ITU-R 601-2 luma
    return np.asarray(img, dtype=np.float32)


MAX_SIDE = 4096  # longest side the crop and fit steps work on (a 12 Mpx phone photo is 4032 wide)


def _bounded(a: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) float32 -> reduced (box average, smallest integer factor) to MAX_SIDE or less.

    The crop and pad steps make square canvases of the longest side: a 20x32796 picture (656 k pixels,
    a 499-byte JPEG found by fuzzing) asked for a 4.3 GB one. Pictures up to MAX_SIDE are unchanged."""
    k = -(-max(a.shape[:2]) // MAX_SIDE)
    if k <= 1:
        return a
    if a.ndim == 3:
        return np.stack([_bounded(a[..., c]) for c in range(a.shape[2])], axis=2)
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").reduce(k), dtype=np.float32)


def _resize(gray: np.ndarray, w: int, h: int) -> np.ndarray:
    img = Image.fromarray(gray.astype(np.float32), mode="F")
    # BOX averages every source pixel when shrinking a lot (no aliasing); BILINEAR when close in size
    shrink = max(gray.shape[0] / max(h, 1), gray.shape[1] / max(w, 1))
    resample = Image.Resampling.BOX if shrink > 2 else Image.Resampling.BILINEAR
    return np.asarray(img.resize((w, h), resample), dtype=np.float32)


def _border_median(gray: np.ndarray) -> float:
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.median(border))


def _fit_pad(gray: np.ndarray, size: int) -> np.ndarray:
    h, w = gray.shape
    side = max(h, w)
    canvas = np.full((side, side), _border_median(gray), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = gray
    return _resize(canvas, size, size)


def _fit_digit(gray: np.ndarray, size: int) -> np.ndarray:
    """MNIST recipe: ink bounding box -> fit in a (20/28*size) box keeping aspect -> centre of mass."""
    ink = gray > 0.2 * gray.max() if gray.max() > 0 else np.zeros_like(gray, dtype=bool)
    if not ink.any():
        return _resize(gray, size, size)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    box = max(1, round(size * 20 / 28))
    scale = box / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.clip(_resize(crop, w, h), 0, 255)
    out = np.zeros((size, size), dtype=np.float32)
    mass = small.sum()
    cy = (small.sum(1) @ np.arange(h)) / mass if mass else h / 2
    cx = (small.sum(0) @ np.arange(w)) / mass if mass else w / 2
    top = int(np.clip(round(size / 2 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - cx), 0, size - w))
    out[top:top + h, left:left + w] = small
    return out


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> (H, W, 3) float32 in [0, 255], transparency over white (as to_gray does)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L"):
        return np.repeat(to_gray(img)[..., None], 3, axis=2)
    if img.mode in ("P", "LA", "PA", "RGBA", "La", "RGBa"):
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img.convert("RGBA"))
    return np.asarray(img.convert("RGB"), dtype=np.float32)


_GRAY_MODES = ("L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "1")
GRAY_TOLERANCE = 8  # max |R - G|, |G - B| (0..255) still taken as gray: JPEG's colour noise on a gray picture


def in_training_form(img: Image.Image, spec: dict) -> bool:
    """A gray picture at the model's size, like a row of the training data (a Sign-MNIST frame)."""
    return img.size == (spec["size"], spec["size"]) and img.mode in ("L", "I", "F", "I;16", "I;16B", "I;16L")


def is_gray(img: Image.Image) -> bool:
    """No colour: a gray mode, or RGB(A) whose channels agree (looked at on a <= 128 px copy).

    A gray picture of a hand is a frame like the training data's at another size (Sign-MNIST, the
    course's deployment pictures), not a camera photo: it is fitted and resized, never cropped or
    brightness-matched, and is read by the pixel model. Measured on 400 Sign-MNIST test frames enlarged
    to 186x184: 100 % read right that way, 62 % with the photo crop, 40 % through hand landmarks."""
    if img.mode in _GRAY_MODES:
        return True
    small = img.copy()
    small.thumbnail((128, 128))
    rgb = np.asarray(small.convert("RGB"), dtype=np.int16)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() <= GRAY_TOLERANCE
                and np.abs(rgb[..., 1] - rgb[..., 2]).max() <= GRAY_TOLERANCE)


def to_model_input(levels):
    """Stored images, uint8 gray levels 0..255 (a NumPy array or a torch tensor, any shape) -> float32 in
    [0, 1], the models' input. The one place that scaling is written: training, evaluation, predict, serve
    and the ONNX export check all go through it (float32 division: the same bits for NumPy and torch)."""
    if isinstance(levels, np.ndarray):
        return levels.astype(np.float32) / np.float32(255)
    return levels.float().div_(255)  # a torch tensor, on whatever device it is


def preprocess(img: Image.Image, spec: dict) -> np.ndarray:
    """A decoded image -> (1, size, size) float32 in [0, 1], the model's input for one image."""
    return to_model_input(preprocess_levels(img, spec))


def preprocess_levels(img: Image.Image, spec: dict) -> np.ndarray:
    """A decoded image -> (1, size, size) uint8 gray levels: the form the training data is stored in.

    An image already at the model's size and in gray is taken as it is (it is in the training
    data's form), so evaluating a test sample and predicting its PNG give the same input.
    """
    size = spec["size"]
    gray = _bounded(to_gray(img))  # (H, W) in [0, 255]
    if in_training_form(img, spec) or is_gray(img):
        pass  # the training data's form (at this or another size): no crop, no brightness match
    elif spec.get("crop", "none") == "foreground" or spec.get("match"):
        if spec.get("crop", "none") == "foreground":
            rgb = _bounded(to_rgb(img))
            box = find_foreground(rgb)
            gray = luma(crop_square(rgb, box, spec.get("margin", 0.0))) if box else gray
        gray = _fit_pad(gray, size) if gray.shape != (size, size) else gray
        match = spec.get("match")
        if match:  # standardise: whatever the exposure, the result has the training images' mean and spread
            sd = float(gray.std())
            gray = (gray - gray.mean()) * (match["std"] / max(sd, 1.0)) + match["mean"]
    if spec["invert"] == "always" or (spec["invert"] == "auto" and _border_median(gray) > 127):
        gray = 255.0 - gray  # dark ink on light paper -> light ink on dark, as in MNIST
    if gray.shape != (size, size):
        if spec["fit"] == "squash":
            gray = _resize(gray, size, size)
        elif spec["fit"] == "digit":
            gray = _fit_digit(gray, size)
        else:
            gray = _fit_pad(gray, size)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[None]  # 8-bit levels, like the training data


def load_image(source, spec: dict, *, name: str | None = None) -> np.ndarray:
    """Path or bytes -> (1, size, size) float32 in [0, 1]."""
    return preprocess(decode_image(source, name=name), spec)


def load_batch(sources, spec: dict) -> np.ndarray:
    """Many paths -> (N, 1, size, size) float32; raises ImageError on the first bad one."""
    size = spec["size"]
    out = np.empty((len(sources), 1, size, size), dtype=np.float32)
    for i, src in enumerate(sources):
        out[i] = load_image(src, spec)
    return out
