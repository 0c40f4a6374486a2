"""handsign: train, evaluate and deploy small classifiers for MNIST digits and ASL letters.

The Python API mirrors the CLI verbs, one module each: ``handsign.train.train``,
``handsign.evaluate.evaluate``, ``handsign.predict.predict``, ``handsign.export.export``,
``handsign.course.reproduce.reproduce``, ``handsign.serve.serve``, ``handsign.datasets.status`` (`handsign data`),
``handsign.fetch.fetch`` (`handsign data fetch`). The names below are re-exported lazily
(verbs whose module has the same name are not, since ``import handsign.train`` would replace the
function by the module). Heavy modules (torch) are imported lazily so that ``import handsign`` stays cheap and the
deploy path (ONNX Runtime + Pillow + NumPy) never imports torch.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it; resolved on first access (PEP 562)
_API = {
    "TrainConfig": "handsign.config",
    "RECIPES": "handsign.config",
    "get_recipe": "handsign.config",
    "make_config": "handsign.config",
    "load_model": "handsign.checkpoint",
    "save_checkpoint": "handsign.checkpoint",
    "ModelMeta": "handsign.meta",
    "create_model": "handsign.models",
    "load_dataset": "handsign.data",
    "HandsignError": "handsign.errors",
    "Predictor": "handsign.predict",
    "import_course_model": "handsign.course.course_import",
}


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'handsign' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
