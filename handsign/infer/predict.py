"""Predict labels of image files with a saved model: the torch path, or ONNX Runtime without torch.

    Predictor.load("asl").predict_files(["photo.png"], top_k=3)

Nothing here imports torch at module level: with backend="onnx" (the deploy install) torch is
never imported. Both backends share `handsign.images.preprocess`, driven by the spec in the model's metadata.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from handsign.images import preprocess as pp
from handsign.saved.checkpoint import BUNDLED, BUNDLED_DIR, load_model, read_metadata, resolve_model, weights_sha256  # noqa: F401 (re-exported)
from handsign.errors import CheckpointError, HandsignError, ImageError
from handsign.hands.landmarks import real_hand
from handsign.infer.hand_route import HandRoute, find_hand
from handsign.saved.meta import ModelMeta
from handsign.infer.onnx_runner import load_onnx
from handsign.infer.torch_runner import softmax, torch_runner

MIN_CONFIDENCE = 0.5  # top-1 probability below which the answer is "not sure" (ModelMeta.min_confidence overrides)
NOT_SURE = "not sure"


class Predictor:
    """A loaded model (torch or ONNX Runtime): a pixel model (meta, run: labels and preprocessing spec),
    a hand-landmark model (`hands`, handsign.infer.hand_route), or both, fused.

    With `hands`, a photo goes to the landmark model when MediaPipe finds a hand in it (fused with the
    pixel model's probabilities by the weight in the landmark model's metadata); otherwise, and for a
    picture already in the training data's form (a 28x28 gray frame), to the pixel model. Every answer
    says which route gave it: "via": "landmarks" (+ the 21 points in the image's pixels) or "pixels"."""

    def __init__(self, meta: ModelMeta | None, run, backend: str, source: Path, hands=None):
        if meta is None and hands is None:
            raise HandsignError("a Predictor needs a pixel model, a landmark model or both")
        self.pixel_meta, self._run, self.backend, self.source, self.hands = meta, run, backend, source, hands
        self.meta = hands.meta if hands is not None else meta  # the model the user named
        self.labels = list(self.meta.labels)
        self.spec = pp.check_spec(dict(meta.preprocess)) if meta is not None else None
        if hands is not None and meta is not None and list(meta.labels) != self.labels:
            raise CheckpointError(f"{source}: the pixel model's labels differ from the landmark model's")
        self.name = self.meta.name or source.stem
        own = self.meta.min_confidence
        self.min_confidence = MIN_CONFIDENCE if own is None else check_min_confidence(own)

    @classmethod
    def load(cls, model: str | os.PathLike = "asl", backend: str = "auto", device: str = "cpu",
             spin: bool = True) -> "Predictor":
        """backend: "torch" (the .safetensors checkpoint), "onnx" (the .onnx file: given, or beside the
        checkpoint) or "auto" (onnx when that file exists and onnxruntime is installed, else torch).
        spin=False: ONNX Runtime threads sleep instead of busy-waiting (for servers).

        An .onnx beside a checkpoint is used only if it was exported from that checkpoint's weights (its
        recorded weights_sha256 matches); else it is stale: "auto" warns on stderr and uses torch,
        "onnx" refuses. An .onnx named directly is used as it is, with a warning on stderr when the
        checkpoint of the same name beside it holds other weights."""
        if backend not in ("auto", "torch", "onnx"):
            raise HandsignError(f"--backend: choose auto, torch or onnx, not {backend!r}")
        requested = backend
        path = resolve_model(model)
        onnx_path = path if path.suffix == ".onnx" else path.with_suffix(".onnx")
        if backend == "auto":
            backend = "onnx" if onnx_path.is_file() and _have_onnxruntime() else "torch"
        if backend == "onnx":
            if not onnx_path.is_file():
                raise CheckpointError(f"{onnx_path}: no such ONNX file; create it with 'handsign export {path} {onnx_path}'")
            meta, run = load_onnx(onnx_path, spin=spin)
            direct = onnx_path == path  # an .onnx named directly: its checkpoint, if any, is the one beside it
            checkpoint = path.with_suffix(".safetensors") if direct else path
            stale = _stale(meta, checkpoint) if checkpoint.is_file() else ""
            if stale and direct:  # used as named, but not in silence
                print(f"handsign: warning: {onnx_path}: using it as named, but it is stale against "
                      f"{checkpoint.name} beside it ({stale}); re-export with 'handsign export {checkpoint} "
                      f"{onnx_path}'", file=sys.stderr, flush=True)
                stale = ""
            if not stale:
                if meta.input == "landmarks":
                    return cls._with_pixels(HandRoute(meta, run, "onnx", onnx_path), requested, device, spin)
                return cls(meta, run, "onnx", onnx_path)
            fix = f"re-export it with 'handsign export {path} {onnx_path}'"
            if requested == "onnx" or importlib.util.find_spec("torch") is None:
                raise CheckpointError(f"{onnx_path}: stale ONNX file: {stale}; {fix} or use --backend torch")
            print(f"handsign: warning: {onnx_path}: stale ONNX file ({stale}), using torch instead; {fix}",
                  file=sys.stderr, flush=True)
        if path.suffix == ".onnx":
            raise HandsignError(f"{path}: an ONNX model needs --backend onnx (or auto)")
        meta = read_metadata(path)
        if meta.input == "landmarks":
            return cls._with_pixels(HandRoute.load(meta, path, "torch", device), requested, device, spin)
        loaded = load_model(path, device=device)
        from handsign.models import for_inference  # torch: only a torch-backend Predictor imports it

        # BatchNorm folded into the convs: same logits, faster
        return cls(loaded.meta, torch_runner(for_inference(loaded.model), device), "torch", path)

    @classmethod
    def _with_pixels(cls, hands, backend: str, device: str, spin: bool) -> "Predictor":
        """A landmark model + the pixel model its metadata names (a file beside it), if any."""
        if not hands.pixel_model:
            return cls(None, None, hands.backend, hands.source, hands=hands)
        pixel_path = hands.source.parent / f"{hands.pixel_model}.safetensors"
        if backend == "onnx" or not pixel_path.is_file():
            pixel_path = pixel_path.with_suffix(".onnx")
        if not pixel_path.is_file():
            raise CheckpointError(f"{hands.source}: its pixel model {hands.pixel_model!r} is not beside it")
        pixels = cls.load(pixel_path, backend, device, spin)
        if pixels.hands is not None or pixels.pixel_meta is None:
            raise CheckpointError(f"{pixel_path}: the pixel model of {hands.source} must be a pixel model")
        return cls(pixels.pixel_meta, pixels._run, pixels.backend, pixels.source, hands=hands)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, 1, S, S) float32 in [0, 1] -> (N, classes) float32 logits (the pixel model)."""
        if self._run is None:
            raise HandsignError(f"{self.name}: a hand-landmark model; it reads photos, not image tensors")
        x = np.ascontiguousarray(x, dtype=np.float32)
        size = self.spec["size"]
        if x.ndim != 4 or x.shape[1:] != (1, size, size):
            raise HandsignError(f"input must have shape [N, 1, {size}, {size}], got {list(x.shape)}")
        return self._run(x)

    def answer(self, p: np.ndarray, top_k: int = 3) -> dict:
        """Probabilities (classes,) -> label (top-1), probability, top, confident and verdict (the label,
        or "not sure" below min_confidence)."""
        k = max(1, min(top_k, len(self.labels)))
        order = np.argsort(-p, kind="stable")[:k]
        top = [[self.labels[i], round(float(p[i]), 6)] for i in order]
        confident = bool(p[order[0]] >= self.min_confidence)
        return {"label": top[0][0], "probability": top[0][1], "top": top, "confident": confident,
                "verdict": top[0][0] if confident else NOT_SURE}

    def hand_probs(self, hand, img=None) -> np.ndarray:
        """A hand MediaPipe found in `img` (a PIL picture) -> probabilities (classes,) float64: the landmark
        model's, fused with the pixel model's on `img` by the landmark model's pixel_weight (when it has one)."""
        p = self.hands.probs([hand])[0]
        w = self.hands.pixel_weight
        if self._run is not None and w > 0:
            if img is None:
                raise HandsignError(f"{self.name}: fuses its landmark model with a pixel model; give the picture too")
            p = (1 - w) * p + w * softmax(self.logits(pp.preprocess(img, self.spec)[None]).astype(np.float64))[0]
        return p

    def predict_arrays(self, x: np.ndarray, top_k: int = 3) -> list[dict]:
        """Preprocessed pictures (N, 1, S, S) -> one answer dict per picture (the pixel model)."""
        return [self.answer(p, top_k) for p in softmax(self.logits(x).astype(np.float64))]

    def predict_image(self, img, top_k: int = 3, name: str = "image") -> dict:
        """A decoded PIL image -> answer dict with "via" (the route) and, via landmarks, the hand."""
        reason = None
        if self.hands is not None:
            if self.spec is not None and pp.is_gray(img):
                reason = "a gray picture, like Sign-MNIST's frames"
            else:
                hand = find_hand(img)
                if hand is not None:
                    return {**self.answer(self.hand_probs(hand, img), top_k), "via": "landmarks", "hands": hand.hands,
                            "handedness": real_hand(hand.handedness),
                            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in hand.points[:, :2]]}
                reason = "no hand found"
            if self._run is None:
                raise ImageError(f"{name}: no hand found (this model reads hand landmarks only)")
        out = self.predict_arrays(pp.preprocess(img, self.spec)[None], top_k)[0]
        return {**out, "via": "pixels", **({"reason": reason} if reason else {})}

    def iter_predictions(self, sources: list, top_k: int = 3, batch_size: int = 64, names: list | None = None,
                         on_error=None):
        """Decode + preprocess + predict files, `batch_size` at a time; yields one dict per image, in order.

        A bad file raises ImageError, unless `on_error(name, error)` is given: then it is reported there
        and skipped, and the other files are still predicted.
        """
        if batch_size < 1:
            raise HandsignError(f"--batch-size must be at least 1, got {batch_size}")
        names = names or [str(s) for s in sources]
        for start in range(0, len(sources), batch_size):
            arrays, kept, done = [], [], []
            for src, name in zip(sources[start:start + batch_size], names[start:start + batch_size]):
                try:
                    img = pp.decode_image(src, name=name)
                    if self.hands is not None:  # one photo at a time: each takes its own route
                        done.append({"path": name, **self.predict_image(img, top_k, name)})
                    else:
                        arrays.append(pp.preprocess(img, self.spec))
                        kept.append(name)
                except ImageError as e:
                    if on_error is None:
                        raise
                    on_error(name, e)
            yield from done
            if arrays:
                for name, r in zip(kept, self.predict_arrays(np.stack(arrays), top_k)):
                    yield {"path": name, **r, "via": "pixels"}

    def predict_files(self, sources: list, top_k: int = 3, batch_size: int = 64, names: list | None = None,
                      on_error=None) -> list[dict]:
        """All of iter_predictions as a list: [{"path", "label", "probability", "top", "via", ...}, ...]."""
        return list(self.iter_predictions(sources, top_k, batch_size, names, on_error))


def check_min_confidence(value) -> float:
    """--min-confidence (or a model's stored default): a probability in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise HandsignError(f"--min-confidence must be a probability in 0..1, not {value!r}")
    return float(value)


def _stale(onnx_meta: ModelMeta, checkpoint: Path) -> str:
    """Why an .onnx file does not belong to `checkpoint` ("" if it does): it records the sha256 of the
    weights it was exported from (handsign.infer.export); one without that record cannot be trusted."""
    recorded = onnx_meta.weights_sha256
    if not recorded:
        return (f"it records no weights hash (exported by an older handsign), so it cannot be matched to "
                f"{checkpoint.name}")
    if recorded != weights_sha256(checkpoint):
        return f"exported from other weights than {checkpoint.name} now holds (retrained or resumed since)"
    return ""


def _have_onnxruntime() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None  # a look, not an import (~0.3 s saved)


def expand_inputs(items: list[str]) -> list[Path]:
    """IMAGE | DIR | GLOB arguments -> image paths (a folder gives its image files, sorted)."""
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in pp.IMAGE_EXTENSIONS and f.is_file())
            if not found:
                raise ImageError(f"{p}: folder has no images (.png, .jpg, .bmp, .gif, .webp)")
            paths += found
        elif p.exists():
            paths.append(p)
        elif any(c in item for c in "*?["):
            found = sorted(Path(f) for f in glob.glob(item, recursive=True) if Path(f).is_file())
            if not found:
                raise ImageError(f"{item}: pattern matches no files")
            paths += found
        else:
            raise ImageError(f"{p}: no such file")
    return paths


def predict(inputs, model: str = "asl", top_k: int = 3, backend: str = "auto", min_confidence: float | None = None,
            batch_size: int = 64, on_error=None) -> list[dict]:
    """Python API of `handsign predict`: paths/folders/globs -> one dict per image.

    top_k: labels listed per image, at least 1 (more than the model has lists them all). min_confidence:
    "not sure" below this top probability (None: the model's own, else MIN_CONFIDENCE). on_error(name,
    error): a bad image is reported there and skipped (default: ImageError is raised)."""
    return list(iter_predict(inputs, model, top_k, backend, min_confidence, batch_size, on_error))


def iter_predict(inputs, model: str = "asl", top_k: int = 3, backend: str = "auto",
                 min_confidence: float | None = None, batch_size: int = 64, on_error=None):
    """`predict`, one answer at a time as each batch is done (what the CLI prints as it goes)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise HandsignError(f"--top-k must be at least 1, not {top_k!r}")
    if min_confidence is not None:
        check_min_confidence(min_confidence)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths = expand_inputs([str(i) for i in inputs])
    predictor = Predictor.load(model, backend)
    if min_confidence is not None:
        predictor.min_confidence = check_min_confidence(min_confidence)
    yield from predictor.iter_predictions(paths, top_k=top_k, batch_size=batch_size, on_error=on_error)
