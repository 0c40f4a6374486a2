"""handsign: train, evaluate and deploy small classifiers for MNIST digits and ASL letters.

The package's folders are its layers, each importing only the ones above it in this list:

    errors.py, files.py     one error type per kind of user mistake; atomic writes and the cache folder
    images/                 the one preprocessing definition (preprocess, crop) and batched augmentation
    data/                   data sets: where they live and their checksums (sources), downloads (fetch),
                            readers into tensors (readers), near-copy groups and validation splits
    models/                 the MLP, the CNN and its conv block, the landmark MLP; kernels/: optional C kernels
    saved/                  ModelMeta (the typed description of a saved model) and safetensors checkpoints
    hands/                  the landmark route's parts: MediaPipe landmarks, features, their cache, photo sets
    train/                  TrainConfig and the recipes, the one training loop, distributed, diagnosis, plots
    infer/                  running a saved model (torch or ONNX Runtime), predict, export, evaluate
    bundle/ serve/ course/  the apps: bundled models, the web server, the course's reproduction and report
    cli.py, commands.py     the command line, a thin layer over the same Python API

The Python API mirrors the CLI verbs: ``handsign.train.train``, ``handsign.infer.evaluate.evaluate``,
``handsign.infer.predict.predict``, ``handsign.infer.export.export``, ``handsign.course.reproduce.reproduce``,
``handsign.serve.serve``, ``handsign.data.sources.status`` (`handsign data`), ``handsign.data.fetch.fetch``
(`handsign data fetch`). Heavy modules (torch) are imported lazily so that ``import handsign`` stays cheap and the
deploy path (ONNX Runtime + Pillow + NumPy) never imports torch.
"""

import importlib.abc
import importlib.util
import sys
from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it; resolved on first access (PEP 562)
_API = {
    "TrainConfig": "handsign.train.config",
    "RECIPES": "handsign.train.config",
    "get_recipe": "handsign.train.config",
    "make_config": "handsign.train.config",
    "load_model": "handsign.saved.checkpoint",
    "save_checkpoint": "handsign.saved.checkpoint",
    "ModelMeta": "handsign.saved.meta",
    "create_model": "handsign.models",
    "load_dataset": "handsign.data.readers",
    "HandsignError": "handsign.errors",
    "Predictor": "handsign.infer.predict",
    "import_course_model": "handsign.course.course_import",
}

# the module paths of handsign before its core became folders (0.1.0's flat layout) -> where each lives now.
# `from handsign.config import make_config` and every other documented import keep working: the old name is
# the new module itself (one module object, so a monkeypatch or an isinstance check sees the same thing)
MOVED = {
    "handsign.config": "handsign.train.config",
    "handsign.distributed": "handsign.train.distributed",
    "handsign.diagnosis": "handsign.train.diagnosis",
    "handsign.plots": "handsign.train.plots",
    "handsign.runtime": "handsign.train.machine",
    "handsign.datasets": "handsign.data.sources",
    "handsign.fetch": "handsign.data.fetch",
    "handsign.groups": "handsign.data.groups",
    "handsign.preprocess": "handsign.images.preprocess",
    "handsign.crop": "handsign.images.crop",
    "handsign.transforms": "handsign.images.augment",
    "handsign.fused": "handsign.models.kernels.fused",
    "handsign.native": "handsign.models.kernels.native",
    "handsign.meta": "handsign.saved.meta",
    "handsign.checkpoint": "handsign.saved.checkpoint",
    "handsign.runners": "handsign.infer.torch_runner",
    "handsign.onnx_runtime": "handsign.infer.onnx_runner",
    "handsign.predict": "handsign.infer.predict",
    "handsign.export": "handsign.infer.export",
    "handsign.evaluate": "handsign.infer.evaluate",
    "handsign.atomic": "handsign.files",
    "handsign.hands.route": "handsign.infer.hand_route",
    "handsign.hands.train": "handsign.train.landmarks",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path (MOVED) as the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass  # already executed under its new name


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'handsign' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
