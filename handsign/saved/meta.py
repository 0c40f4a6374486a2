"""ModelMeta: the one typed description of a saved model, written and read only here.

Every handsign model file carries it as one JSON document: a checkpoint in its safetensors header
(`__metadata__["handsign"]`, with a readable copy in NAME.json), an exported .onnx file in its
metadata_props. `to_json` writes it, `from_json` / `from_dict` read it back and refuse anything
malformed or unknown with one line. The JSON keys are the field names, and a field left at its default
is not written, so files written before this class existed read unchanged (and new ones look the same).
No torch, no NumPy: the deploy install reads it too.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field

from handsign.errors import CheckpointError

FORMAT = "handsign-checkpoint"
FORMAT_VERSION = 1
INPUT_KINDS = ("image", "landmarks")  # what a model reads: a preprocessed picture, or hand-landmark features


@dataclass
class ModelMeta:
    architecture: dict               # {"name": a handsign.models.MODELS key, "args": its keyword arguments}
    labels: list                     # class names (str); output i of the model is labels[i]
    preprocess: dict                 # image: a handsign.images.preprocess spec; landmarks: {"kind": "hand-landmarks", ...}
    input: str = "image"             # "image": (N, 1, S, S) float32 in [0, 1] | "landmarks": (N, F) hand features
    task: str = ""                   # data set trained for: mnist | sign_mnist | folder | asl_photos
    name: str = ""                   # model name (bundle, export); "" = the file's stem
    recipe: str = ""                 # recipe of the training config ("" = none)
    config: dict = field(default_factory=dict)    # the training config (TrainConfig or HandsConfig, as a dict)
    metrics: dict = field(default_factory=dict)   # accuracies (fractions) and losses per split, best epoch
    data: dict = field(default_factory=dict)      # data set, source file, split sizes, training-data fingerprint
    versions: dict = field(default_factory=dict)  # handsign, torch, python, ... that made it
    created: str = ""                # ISO 8601 time of writing (UTC)
    source: dict = field(default_factory=dict)    # provenance of an imported model (import-course-model)
    bundle: dict = field(default_factory=dict)    # provenance of a bundled model: command, source checkpoint, sha256
    fusion: dict = field(default_factory=dict)    # landmark model: {"pixel_model": stem beside it, "pixel_weight": 0..1}
    weights_sha256: str = ""         # .onnx files: checkpoint.weights_sha256 of the weights exported (stale check)
    onnx: dict = field(default_factory=dict)      # .onnx files: opset, input and output names, check against torch
    # the model's own "not sure" floor (a probability, 0..1); None = predict.MIN_CONFIDENCE. No handsign
    # command writes it: set it in Python (dataclasses.replace + save_checkpoint) for a model that needs it
    min_confidence: float | None = None
    train_state: dict | None = None  # resumable checkpoints (last.safetensors): epoch, history, optimizer, threads

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape: (1, S, S) for a picture model, (F,) for a landmark model."""
        if self.input == "landmarks":
            return (int(self.architecture["args"]["in_features"]),)
        return (1, self.preprocess["size"], self.preprocess["size"])

    def replace(self, **changes) -> "ModelMeta":
        """A copy with some fields changed (validated again)."""
        return ModelMeta.from_dict({**self.to_dict(), **changes}, "metadata")

    def to_dict(self) -> dict:
        """The JSON form: format, version and every field not at its default."""
        d = {"format": FORMAT, "format_version": FORMAT_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _REQUIRED or value != _default(f):
                d[f.name] = copy.deepcopy(value)
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where) -> "ModelMeta":
        """Parse and check the JSON document of a model file at `where` (named in every error)."""
        try:
            d = json.loads(text)
        except ValueError:
            raise CheckpointError(f"{where}: handsign metadata is not valid JSON") from None
        return cls.from_dict(d, where)

    @classmethod
    def from_dict(cls, d, where) -> "ModelMeta":
        """Check a metadata dict (format, version, known fields, their types); `format` keys optional."""
        if not isinstance(d, dict) or d.get("format", FORMAT) != FORMAT:
            raise CheckpointError(f"{where}: metadata is not a {FORMAT}")
        version = d.get("format_version", FORMAT_VERSION)
        if isinstance(version, bool) or not isinstance(version, int):
            raise CheckpointError(f"{where}: metadata format_version {version!r} is not a number")
        if version > FORMAT_VERSION:
            raise CheckpointError(f"{where}: format version {version} is newer than this handsign reads "
                                  f"({FORMAT_VERSION}); upgrade handsign")
        d = {k: v for k, v in d.items() if k not in ("format", "format_version")}
        for key in _REQUIRED:
            if key not in d:
                raise CheckpointError(f"{where}: metadata has no {key!r}")
        unknown = sorted(set(d) - set(_TYPES))
        if unknown:
            raise CheckpointError(f"{where}: metadata has unknown field(s) {', '.join(map(repr, unknown))} "
                                  f"(written by a newer handsign?)")
        for key, value in d.items():
            types = _TYPES[key]
            if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
                raise CheckpointError(f"{where}: metadata {key!r} has the wrong type ({type(value).__name__})")
        arch = d["architecture"]
        if not isinstance(arch.get("name"), str) or not isinstance(arch.get("args", {}), dict):
            raise CheckpointError(f"{where}: metadata does not describe a valid model (architecture must be an "
                                  f"object with 'name' and 'args')")
        if not d["labels"] or not all(isinstance(x, str) for x in d["labels"]):
            raise CheckpointError(f"{where}: metadata labels must be a non-empty list of names")
        if d.get("input", "image") not in INPUT_KINDS:
            raise CheckpointError(f"{where}: metadata input {d['input']!r} is not one of {list(INPUT_KINDS)}")
        mc = d.get("min_confidence")
        if mc is not None and not 0 <= mc <= 1:
            raise CheckpointError(f"{where}: metadata min_confidence {mc!r} is not a probability in 0..1")
        return cls(**d)


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


_REQUIRED = ("architecture", "labels", "preprocess")
# JSON types of each field (checked on read); a float field also takes an int (JSON writes 1.0 as 1.0, but by hand 1)
_TYPES = {"architecture": (dict,), "labels": (list,), "preprocess": (dict,), "input": (str,), "task": (str,),
          "name": (str,), "recipe": (str,), "config": (dict,), "metrics": (dict,), "data": (dict,),
          "versions": (dict,), "created": (str,), "source": (dict,), "bundle": (dict,), "fusion": (dict,),
          "weights_sha256": (str,), "onnx": (dict,), "min_confidence": (int, float, type(None)),
          "train_state": (dict, type(None))}
assert set(_TYPES) == {f.name for f in dataclasses.fields(ModelMeta)}  # one entry per field
