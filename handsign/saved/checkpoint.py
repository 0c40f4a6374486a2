"""Checkpoints: safetensors weights + JSON metadata, written atomically, loaded without pickle.

Layout of `NAME.safetensors`: the model's state dict (plus `train_state.*` tensors in resumable
checkpoints) and, in the safetensors header's `__metadata__["handsign"]`, one JSON document:
a handsign.saved.meta.ModelMeta (architecture and its arguments, labels, preprocessing spec, config,
metrics, data fingerprint, versions). `NAME.json` beside it is a readable copy of that document.
The header is the source of truth: one file, one atomic rename, so a kill never pairs new
weights with old metadata.
"""

from __future__ import annotations

import hashlib
import io
import os
import json
import struct
from pathlib import Path

from handsign.files import atomic_write_bytes
from handsign.errors import CheckpointError, HandsignError
from handsign.saved.meta import ModelMeta
from handsign.images.preprocess import check_spec

TRAIN_STATE_PREFIX = "train_state."
MAX_HEADER_BYTES = 100 * 2**20
BUNDLED_DIR = Path(__file__).parent.parent / "bundled"
BUNDLED = ("asl", "mnist")  # names usable as --model; files bundled/<name>.safetensors/.json/.onnx


def resolve_model(model: str | os.PathLike) -> Path:
    """A bundled name ('asl', 'mnist') or a path (checkpoint, sidecar JSON, run folder, .onnx)."""
    if str(model) in BUNDLED:
        path = BUNDLED_DIR / f"{model}.safetensors"
        if not path.is_file():
            raise CheckpointError(f"bundled model {model!r} is missing from {BUNDLED_DIR} (broken install?)")
        return path
    p = Path(model)
    if p.suffix == ".onnx":
        if not p.is_file():
            raise CheckpointError(f"{p}: no such file")
        return p
    if not p.exists():
        raise CheckpointError(f"{p}: no such model file or folder; use a path or one of: {', '.join(BUNDLED)}")
    return resolve_checkpoint(p)


def resolve_checkpoint(path) -> Path:
    """A run directory (-> best.safetensors), a .json sidecar or a .safetensors file -> the weights file."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.safetensors", "last.safetensors", "model.safetensors"):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p}: no best.safetensors, last.safetensors or model.safetensors in this folder")
    if p.suffix == ".json" and p.with_suffix(".safetensors").is_file():
        return p.with_suffix(".safetensors")
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or folder")
    return p


def read_metadata(path) -> ModelMeta:
    """The metadata from a safetensors header, read without torch and without loading weights."""
    p = resolve_checkpoint(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{p}: too short to be a safetensors file ({size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER_BYTES, size - 8):
                if head[:1] == b"\x80" or head[:2] == b"PK":  # pickle protocol 2+ / torch.save's zip
                    raise CheckpointError(f"{p}: not a safetensors file but a pickle or torch.save file; handsign "
                                          f"never unpickles model files (course models: 'handsign import-course-model')")
                raise CheckpointError(f"{p}: not a safetensors file (header length {n} does not fit a {size}-byte file)")
            header = json.loads(f.read(n))
    except CheckpointError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{p}: not a safetensors file ({type(e).__name__})") from None
    raw = (header.get("__metadata__") or {}).get("handsign") if isinstance(header, dict) else None
    if raw is None:
        raise CheckpointError(f"{p}: a safetensors file without handsign metadata (import other models with "
                              f"'handsign import-course-model')")
    return ModelMeta.from_json(raw, p)


def weights_sha256(source) -> str:
    """Identity of a checkpoint's model weights: sha256 over every tensor except `train_state.*`, in name
    order, each as name, dtype, shape and raw bytes. `source`: a .safetensors path or its bytes.

    Reads the safetensors header and the tensor bytes only (no torch, no numpy), so the torch-free deploy
    install can tell whether an .onnx file was exported from these weights. Independent of the file's
    layout and of its metadata, optimizer state and sidecar: only the weights count."""
    f = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(resolve_checkpoint(source), "rb")
    where = "checkpoint" if isinstance(source, (bytes, bytearray)) else str(source)
    with f:
        try:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > MAX_HEADER_BYTES:
                raise ValueError("header too long")
            header = json.loads(f.read(n))
            h = hashlib.sha256()
            for name in sorted(k for k in header if k != "__metadata__" and not k.startswith(TRAIN_STATE_PREFIX)):
                t = header[name]
                start, end = t["data_offsets"]
                f.seek(8 + n + start)
                data = f.read(end - start)
                if len(data) != end - start:
                    raise ValueError(f"tensor {name} is truncated")
                h.update(f"{name}|{t['dtype']}|{t['shape']}|{len(data)}\n".encode())
                h.update(data)
        except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
            raise CheckpointError(f"{where}: corrupt or truncated safetensors file ({e})") from None
    return h.hexdigest()


def state_dict_sha256(state: dict) -> str:
    """weights_sha256 of a torch state dict, as it would be once saved (same canonical form)."""
    from safetensors.torch import save  # safetensors.torch imports torch: not on the metadata-only path

    return weights_sha256(save({k: v.detach().cpu().contiguous() for k, v in state.items()}))


def save_checkpoint(path, model, meta: ModelMeta | dict, extra_tensors: dict | None = None) -> Path:
    """Save weights (+ optional train_state tensors) and metadata (a ModelMeta, or a dict of its JSON form,
    checked the same way); returns the .safetensors path."""
    from safetensors.torch import save  # as in state_dict_sha256

    path = Path(path)
    if not isinstance(meta, ModelMeta):
        meta = ModelMeta.from_dict(meta, path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for k, v in (extra_tensors or {}).items():
        tensors[TRAIN_STATE_PREFIX + k] = v.detach().cpu().contiguous()
    atomic_write_bytes(path, save(tensors, metadata={"handsign": meta.to_json()}))
    atomic_write_bytes(path.with_suffix(".json"), meta.to_json(indent=2).encode())
    return path


def load_tensors(path) -> dict:
    """All tensors of a safetensors file (safetensors never unpickles)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file  # as in state_dict_sha256

    p = resolve_checkpoint(path)
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{p}: corrupt or truncated safetensors file ({e})") from None


class LoadedModel:
    """A model in eval mode with what it needs to be used: labels, preprocessing spec, metadata."""

    def __init__(self, model, meta: ModelMeta, path: Path):
        self.model, self.meta, self.path = model, meta, path
        self.labels = list(meta.labels)
        self.preprocess = meta.preprocess

    def __repr__(self):
        return f"LoadedModel({self.meta.architecture['name']}, {len(self.labels)} labels, {self.path})"


def build_from_metadata(meta: ModelMeta, where: str = "checkpoint", device: str | None = None):
    """The model the metadata describes, untrained; device="meta" gives its shapes without any memory."""
    import torch  # torch, here and below: reading metadata (predict --backend onnx) needs none of it

    from handsign.models import create_model  # models imports torch

    arch = meta.architecture
    try:
        if meta.input == "image":
            check_spec(meta.preprocess)
        with torch.device(device or "cpu"):
            return create_model(arch["name"], num_classes=len(meta.labels), **arch.get("args", {}))
    except (HandsignError, ValueError, TypeError, KeyError, RuntimeError, OverflowError) as e:
        why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{where}: metadata does not describe a valid model ({why})") from None


def load_model(path, device: str = "cpu") -> LoadedModel:
    """Load any handsign checkpoint (file, sidecar or run folder); checks weights against metadata."""
    from handsign.models import num_outputs  # models imports torch

    p = resolve_checkpoint(path)
    meta = read_metadata(p)
    # shapes first, on the meta device: a hostile header may declare a model of any size, and only one
    # whose tensors are really in the file (so no bigger than it) is then built in memory
    skeleton = build_from_metadata(meta, str(p), device="meta")
    tensors = {k: v for k, v in load_tensors(p).items() if not k.startswith(TRAIN_STATE_PREFIX)}
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                 f"shape of {wrong[0]} is {tuple(tensors[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}"
                 if wrong else ""]
        raise CheckpointError(f"{p}: weights do not match the metadata's {meta.architecture['name']!r} model: "
                              + "; ".join(x for x in parts if x))
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()), None)
    if bad is not None:  # a model with NaN or infinite weights answers NaN for every image: refuse it
        raise CheckpointError(f"{p}: weights contain NaN or infinity (tensor {bad})")
    model = build_from_metadata(meta, str(p))
    model.load_state_dict(tensors, strict=True)
    import torch  # as in build_from_metadata

    with torch.no_grad():  # finite weights can still make NaN (a negative BatchNorm variance) or overflow
        probe = model.eval()(torch.zeros(1, *meta.input_shape))
    if not probe.isfinite().all():
        raise CheckpointError(f"{p}: the model gives NaN or infinite logits for a blank input (corrupt weights)")
    if num_outputs(model) != len(meta.labels):
        raise CheckpointError(f"{p}: model has {num_outputs(model)} outputs but {len(meta.labels)} labels")
    return LoadedModel(model.to(device).eval(), meta, p)


def load_train_state(path) -> tuple[dict, dict, ModelMeta]:
    """(model state, train_state tensors, metadata) of a resumable checkpoint."""
    p = resolve_checkpoint(path)
    meta = read_metadata(p)
    tensors = load_tensors(p)
    model_state = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_STATE_PREFIX)}
    state = {k[len(TRAIN_STATE_PREFIX):]: v for k, v in tensors.items() if k.startswith(TRAIN_STATE_PREFIX)}
    if meta.train_state is None:
        raise CheckpointError(f"{p}: not a resumable checkpoint (no training state)")
    return model_state, state, meta


def optimizer_state_to_tensors(optimizer) -> tuple[dict, dict]:
    """Split an optimizer state dict into safetensors-able tensors and JSON-able rest."""
    import torch  # as in build_from_metadata

    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optimizer.{idx}.{name}"] = v
            else:
                scalars[f"{idx}.{name}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_state_from_tensors(tensors: dict, info: dict) -> dict:
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("optimizer."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for key, v in info.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    return {"state": state, "param_groups": info["param_groups"]}
