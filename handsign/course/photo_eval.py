"""A synthetic photo-like test set built at run time from the Sign-MNIST *test* split, and the
evaluation of models on it with and without the photo preprocessing.

    photo_eval(["runs/robust-asl"], n_per_class=40) -> {"rows": [...], ...}

No real webcam photos ship with handsign, so each test image is staged as a webcam/phone picture:
upscaled to a hand of 90-170 px, tinted with a skin tone, cut out with a soft-edged oval, sometimes
given a forearm, rotated, mirrored, put at a random place on a 200x200 colour background (a plain wall,
a two-colour gradient or a texture), re-lit (exposure, gamma, colour cast, a light ramp), blurred,
noised and saved as JPEG. The files are decoded by the same code as `handsign predict`.

Honesty notes: this generator is written by the same person as the photo preprocessing, so it is
easier than real photos (the background never holds another person, a face or clutter; the hand is a
Sign-MNIST crop with its own old background inside the oval). Its random stream (seed 8_675_309 by
default) and its parameters (sizes, colours, JPEG, blur in the 200 px picture) differ from the training
augmentation, which only works on 28x28 gray tensors.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from handsign.images import preprocess as pp
from handsign.data.readers import load_dataset
from handsign.errors import HandsignError
from handsign.infer.predict import Predictor

PHOTO_SEED = 8_675_309
SIDE = 200  # output pictures are SIDE x SIDE RGB, like the course's webcam photos
SKIN = np.array([[255, 224, 189], [234, 192, 134], [224, 172, 105], [198, 134, 66], [141, 85, 36],
                 [92, 58, 32]], dtype=np.float32)  # light .. dark skin tones, RGB


def _background(rng: np.random.Generator) -> np.ndarray:
    """(SIDE, SIDE, 3) float32 wall: plain, a gradient between two colours, or a texture."""
    def wall_colour():
        level = rng.uniform(60, 240)
        return np.clip(level + rng.normal(0, 22, 3), 0, 255)

    kind = rng.choice(["plain", "gradient", "texture"], p=[0.4, 0.3, 0.3])
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    a = wall_colour()
    if kind == "plain":
        bg = np.broadcast_to(a, (SIDE, SIDE, 3)).copy()
    elif kind == "gradient":
        b = wall_colour()
        t = np.cos(rng.uniform(0, 2 * math.pi)) * xs + np.sin(rng.uniform(0, 2 * math.pi)) * ys
        t = (t - t.min()) / max(np.ptp(t), 1e-6)
        bg = a + (b - a) * t[..., None]
    else:  # fabric/plaster: coarse random field + fine grain
        cells = int(rng.integers(4, 16))
        coarse = rng.normal(0, 1, (cells, cells)).astype(np.float32)
        field = np.asarray(Image.fromarray(coarse, mode="F").resize((SIDE, SIDE), Image.Resampling.BICUBIC))
        bg = a + rng.uniform(8, 28) * field[..., None] + rng.normal(0, 4, (SIDE, SIDE, 1))
    return np.clip(bg, 0, 255).astype(np.float32)


def _oval_mask(w: int, h: int, feather: float) -> Image.Image:
    """Soft superellipse (|x|^3 + |y|^3 <= 1) alpha, 0..255, of w x h."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.abs((xs + 0.5) / w * 2 - 1) ** 3 + np.abs((ys + 0.5) / h * 2 - 1) ** 3
    alpha = np.clip((1.0 - r) / feather, 0, 1)
    return Image.fromarray((alpha * 255).astype(np.uint8))


def stage_photo(gray28: np.ndarray, rng: np.random.Generator) -> bytes:
    """One (28, 28) uint8 Sign-MNIST image -> JPEG bytes of a 200x200 photo-like picture."""
    bg = _background(rng)
    s = int(rng.integers(90, 171))  # hand size in the picture, px
    tone = SKIN[rng.integers(len(SKIN))] * rng.uniform(0.9, 1.1, 3)
    big = np.asarray(Image.fromarray(gray28).resize((s, s), Image.Resampling.BICUBIC), dtype=np.float32)
    hand = np.clip(big[..., None] / 200.0 * tone, 0, 255)  # (s, s, 3): bright = lit skin
    hand_img = Image.fromarray(hand.astype(np.uint8), "RGB")
    mask = _oval_mask(s, s, feather=rng.uniform(0.15, 0.4))
    angle = rng.uniform(-15, 15)
    hand_img = hand_img.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    mask = mask.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    cx, cy = rng.uniform(0.35, 0.65) * SIDE, rng.uniform(0.35, 0.6) * SIDE
    x0, y0 = int(cx - hand_img.width / 2), int(cy - hand_img.height / 2)
    pic = Image.fromarray(bg.astype(np.uint8), "RGB")
    if rng.random() < 0.5:  # a forearm from below the hand to the bottom edge
        arm = Image.new("L", (SIDE, SIDE), 0)
        half = s * rng.uniform(0.16, 0.24)
        top = cy + s * 0.3
        drift = rng.uniform(-0.25, 0.25) * SIDE
        ImageDraw.Draw(arm).polygon([(cx - half, top), (cx + half, top), (cx + half * 1.3 + drift, SIDE),
                                     (cx - half * 1.3 + drift, SIDE)], fill=255)
        arm = arm.filter(ImageFilter.GaussianBlur(3))
        arm_colour = tuple(int(c) for c in np.clip(tone * rng.uniform(0.55, 0.8), 0, 255))
        pic.paste(Image.new("RGB", (SIDE, SIDE), arm_colour), (0, 0), arm)
    pic.paste(hand_img, (x0, y0), mask)
    if rng.random() < 0.3:  # mirrored selfie camera / left hand
        pic = pic.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    # light: exposure, gamma, colour cast, a ramp across the picture
    a = np.asarray(pic, dtype=np.float32) / 255
    a = a ** rng.uniform(0.75, 1.35) * rng.uniform(0.6, 1.3) * rng.uniform(0.88, 1.12, 3)
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE - 0.5
    a = a * (1 + rng.uniform(-0.35, 0.35) * xs + rng.uniform(-0.35, 0.35) * ys)[..., None]
    pic = Image.fromarray(np.clip(a * 255, 0, 255).astype(np.uint8), "RGB")
    pic = pic.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.8)))
    noisy = np.asarray(pic, dtype=np.float32) + rng.normal(0, rng.uniform(0, 9), (SIDE, SIDE, 3))
    pic = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    pic.save(buf, "JPEG", quality=int(rng.integers(35, 91)))
    return buf.getvalue()


def photo_like_set(images: np.ndarray, labels: np.ndarray, n_per_class: int = 40,
                   seed: int = PHOTO_SEED) -> tuple[list[bytes], np.ndarray]:
    """(N, 28, 28) uint8 test images + labels -> n_per_class JPEGs per class and their labels.

    The same seed always gives the same pictures (the samples, their order and every draw)."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picked.append(rng.choice(idx, size=min(n_per_class, len(idx)), replace=False))
    picked = np.concatenate(picked)
    return [stage_photo(images[i], rng) for i in picked], labels[picked]


def _accuracy(predictor, jpegs: list[bytes], labels: np.ndarray, spec: dict, batch: int = 256) -> dict:
    lbl = np.asarray(predictor.labels)
    preds, confident = [], []
    for i in range(0, len(jpegs), batch):
        x = np.stack([pp.load_image(j, spec) for j in jpegs[i:i + batch]])
        for r in predictor.predict_arrays(x, top_k=1):
            preds.append(r["label"])
            confident.append(r["confident"])
    right = np.asarray(preds) == lbl[labels]
    conf = np.asarray(confident)
    return {"accuracy": float(right.mean()), "confident_share": float(conf.mean()),
            "accuracy_when_confident": float(right[conf].mean()) if conf.any() else None}


def photo_eval(models: list, n_per_class: int = 40, seed: int = PHOTO_SEED, data_dir=None,
               preprocess: str = "both", backend: str = "torch", save_images=None) -> dict:
    """Plain Sign-MNIST test accuracy and photo-like accuracy of each model, per preprocessing:
    "model" (the model's own spec), "plain" (photo fields off), "photo" (on) or "both" (plain and photo)."""
    if preprocess not in ("model", "plain", "photo", "both"):
        raise HandsignError(f"--preprocess: choose model, plain, photo or both, not {preprocess!r}")
    if not 1 <= n_per_class <= 1000:
        raise HandsignError(f"--n-per-class must be in 1..1000, not {n_per_class}")
    test = load_dataset("sign_mnist", "test", data_dir)
    images, labels = test.images[:, 0].numpy(), test.labels.numpy()
    jpegs, y = photo_like_set(images, labels, n_per_class, seed)
    if save_images:
        out = Path(save_images)
        out.mkdir(parents=True, exist_ok=True)
        for k, (j, c) in enumerate(zip(jpegs, y)):
            (out / f"{k:05d}-{test.classes[c]}.jpg").write_bytes(j)
    x_test = pp.to_model_input(images[:, None])  # (N, 1, 28, 28) exactly as evaluate feeds it
    rows = []
    for m in models:
        predictor = Predictor.load(m, backend)
        if predictor.labels != test.classes:
            raise HandsignError(f"{m}: labels {predictor.labels} are not the Sign-MNIST letters")
        plain_acc = float(np.mean([r["label"] for b in range(0, len(x_test), 1000)
                                   for r in predictor.predict_arrays(x_test[b:b + 1000], 1)]
                                  == np.asarray(test.classes)[labels]))
        if preprocess == "model":
            variants = [("model", predictor.spec)]
        else:
            names = ("plain", "photo") if preprocess == "both" else (preprocess,)
            variants = [(v, pp.with_preset(predictor.spec, v)) for v in names]
        for name, spec in variants:
            r = _accuracy(predictor, jpegs, y, spec)
            rows.append({"model": str(m), "preprocess": name, "test_accuracy": plain_acc,
                         "min_confidence": predictor.min_confidence, **r})
    return {"seed": seed, "n": len(jpegs), "n_per_class": n_per_class, "rows": rows}


def format_photo_eval(r: dict) -> str:
    lines = [f"photo-like set: {r['n']} pictures ({r['n_per_class']} per letter), seed {r['seed']}", "",
             "model                                    preprocess  test acc  photo acc  confident  acc|confident"]
    for row in r["rows"]:
        awc = f"{row['accuracy_when_confident']:.2%}" if row["accuracy_when_confident"] is not None else "-"
        lines.append(f"{row['model'][-40:]:<40} {row['preprocess']:<10} {row['test_accuracy']:>9.2%} "
                     f"{row['accuracy']:>10.2%} {row['confident_share']:>10.1%} {awc:>14}")
    return "\n".join(lines)
