"""The served models: loading them from names, run folders or NAME=PATH, their URL names, and picking
one for a request."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.exceptions import HTTPException

from handsign.errors import HandsignError
from handsign.infer.predict import Predictor

DEFAULT_MODELS = ("asl", "mnist")
MODEL_VERSION = "1"  # one version per served model; /versions/1/ paths are accepted


def _served_name(spec: str, predictor: Predictor) -> str:
    """URL-safe name: a bundled name as given; a run folder (or its best/last checkpoint) by the folder."""
    if spec in DEFAULT_MODELS:
        return spec
    name = predictor.meta.name or predictor.name
    path = Path(spec)
    if path.is_dir():
        name = path.resolve().name
    elif name in ("best", "last", "model"):
        name = path.resolve().parent.name or name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"


def load_models(specs, backend: str = "auto") -> dict[str, Predictor]:
    """['asl', 'runs/x', 'digits=path.onnx'] -> {name: Predictor}; NAME=PATH picks the served name."""
    models: dict[str, Predictor] = {}
    for spec in specs:
        spec = str(spec)
        name, sep, path = spec.partition("=")
        if sep and re.fullmatch(r"[A-Za-z0-9_.-]+", name) and not Path(spec).exists():
            predictor = Predictor.load(path, backend, spin=False)  # share the CPU with the event loop
        else:
            predictor = Predictor.load(spec, backend)
            name = _served_name(spec, predictor)
        if name in models:
            raise HandsignError(f"--model: two models are served as {name!r}; name one with NAME=PATH")
        models[name] = predictor
    if not models:
        raise HandsignError("serve: no models given")
    return models


def pick(models: dict[str, Predictor], name: str | None, version: str | None = None) -> tuple[str, Predictor]:
    """(name, Predictor) of the model a request names (none: the first served), else 404."""
    name = name or next(iter(models))
    if name not in models:
        raise HTTPException(404, f"unknown model {name!r}; served models: {', '.join(models)}")
    if version is not None and version != MODEL_VERSION:
        raise HTTPException(404, f"model {name!r} has no version {version!r} (only {MODEL_VERSION!r})")
    return name, models[name]


def backend_name(p: Predictor) -> str:
    return getattr(p, "backend", "torch")  # "torch" or "onnx"
