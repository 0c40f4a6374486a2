"""The public Python API survives the move of the core into folders: every documented import of the flat layout
still works, as the very module (or object) that now lives in its folder."""

import importlib
import subprocess
import sys

import pytest

import handsign

DOCUMENTED = [  # (module, name) pairs the README and docs named before the core became folders
    ("handsign.config", "make_config"), ("handsign.config", "RECIPES"), ("handsign.train", "train"),
    ("handsign.train", "train_one_epoch"), ("handsign.evaluate", "evaluate"), ("handsign.predict", "Predictor"),
    ("handsign.predict", "predict"), ("handsign.export", "export"), ("handsign.checkpoint", "weights_sha256"),
    ("handsign.distributed", "train_multiprocess"), ("handsign.models", "flops_per_image"),
    ("handsign.models", "for_inference"), ("handsign.onnx_runtime", "load_onnx"), ("handsign.course.reproduce", "reproduce"),
    ("handsign.serve", "create_app"), ("handsign.hands.features", "hand_features"), ("handsign.cli", "main"),
]


@pytest.mark.parametrize("module,name", DOCUMENTED)
def test_documented_imports_keep_working(module, name):
    assert callable(getattr(importlib.import_module(module), name)) or name == "RECIPES"


@pytest.mark.parametrize("old,new", sorted(handsign.MOVED.items()))
def test_an_old_module_path_is_the_new_module_itself(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_and_new_paths_share_one_module_object_for_monkeypatching():
    from handsign.config import TrainConfig as old
    from handsign.train.config import TrainConfig as new

    assert old is new
    assert "handsign.nonexistent" not in handsign.MOVED
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("handsign.nonexistent")


def test_the_command_line_and_the_configs_load_no_torch():
    """`handsign --help`, `handsign data` and the deploy install must not pay for torch (~1 s, ~300 MB)."""
    code = ("import sys, handsign.cli, handsign.config, handsign.train.config, handsign.models.kernels; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
