"""Import a model the course saved with `torch.save(model, "model.pth")`, without running its pickle.

    import_course_model("model.pth", "course.safetensors")

A whole-model pickle can run any code when loaded. Here it is read by torch's weights-only
unpickler (torch.load(weights_only=True)), which builds nothing but tensors, plain containers and
the globals we allow: the torch.nn layers the course used, and a stand-in for the course's
`__main__.MyConvBlock`. Anything else (os.system, eval, subprocess...) is refused before loading.
The layers are then read into handsign's CNN or MLP (same state-dict layout), and the new model is
checked against the loaded course model on random images.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from handsign import __version__
from handsign.saved.checkpoint import save_checkpoint
from handsign.data.readers import ASL_LETTERS
from handsign.errors import CheckpointError
from handsign.saved.meta import ModelMeta
from handsign.models import count_parameters, create_model
from handsign.images.preprocess import default_spec

COURSE_LAYERS = (nn.Sequential, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Dropout, nn.MaxPool2d, nn.Flatten, nn.Linear)
BLOCK_CLASS = "MyConvBlock"  # the course defined it in its notebook, so it is pickled as __main__.MyConvBlock
CHECK_BATCH = 64
TOLERANCE = 1e-5


class CourseConvBlock(nn.Module):
    """Stand-in for the course's MyConvBlock: the unpickler restores its `model` Sequential into it."""

    def forward(self, x):
        return self.model(x)


def _name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def read_course_model(path) -> nn.Module:
    """The nn.Sequential saved in `path`, loaded with the weights-only unpickler and our allow-list."""
    p = Path(path)
    if p.is_dir():
        raise CheckpointError(f"{p}: a folder, not a torch.save file")
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file")
    allowed = {_name(c) for c in COURSE_LAYERS}
    try:  # a static scan of the pickle's globals: nothing is run; gives a precise message for a hostile file
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(p))
    except Exception:  # noqa: BLE001 - legacy (non-zip) format, or opcodes the scanner does not know:
        found = []  # the scan only words the message; the weights-only unpickler below is the guard
    blocks = sorted({g for g in found if g.rsplit(".", 1)[-1] == BLOCK_CLASS}) or [f"__main__.{BLOCK_CLASS}"]
    bad = [g for g in found if g not in allowed and g not in blocks]
    if bad:
        raise _refused(p, bad[0])
    safe = [*COURSE_LAYERS, *((CourseConvBlock, g) for g in blocks)]
    try:
        with torch.serialization.safe_globals(safe), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "pickle protocol 4": the error below says what matters
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL (\S+)", str(e))
        if m:
            raise _refused(p, m.group(1)) from None
        why = (str(e).split("WeightsUnpickler error:")[-1].strip().splitlines() or [type(e).__name__])[0][:150]
        raise CheckpointError(f"{p}: not a torch.save file of a course model (the safe unpickler stopped: "
                              f"{why})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, SafetensorError,
            KeyError, IndexError, TypeError, AttributeError) as e:
        # torch.load hands a *.safetensors name to safetensors, whose errors are not RuntimeErrors; text or
        # junk read as a legacy pickle stream fails inside the unpickler (an unknown memo key, an empty stack)
        raise CheckpointError(f"{p}: not a torch.save file ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(obj, nn.Sequential):
        raise CheckpointError(f"{p}: holds a {type(obj).__name__}, not the course's nn.Sequential model "
                              f"(save it with torch.save(model, path))")
    return obj.eval()


def _refused(p: Path, name: str) -> CheckpointError:
    return CheckpointError(f"{p}: refused: the file asks to run {name}, which is not one of the course's layers "
                           f"(it may be malicious); nothing was run")


def _leaves(module: nn.Module) -> list[nn.Module]:
    """Layers in forward order, Sequentials and MyConvBlocks opened up; unknown layer types refused."""
    if type(module) is nn.Sequential:
        return [leaf for child in module for leaf in _leaves(child)]
    if type(module) is CourseConvBlock:
        inner = module._modules.get("model")
        if type(inner) is not nn.Sequential:
            raise CheckpointError(f"{BLOCK_CLASS} has no 'model' Sequential")
        return _leaves(inner)
    if type(module) not in COURSE_LAYERS:
        raise CheckpointError(f"unsupported layer {type(module).__name__}")
    return [module]


def describe_layers(layers: list[nn.Module]) -> tuple[str, dict]:
    """Course layer sequence -> (handsign model name, its arguments); CheckpointError if it is another model.

    CNN: [Conv2d(3x3, pad 1) BatchNorm2d ReLU (Dropout) MaxPool2d(2)] x n, Flatten, Linear, (Dropout), ReLU, Linear
    MLP: Flatten, [Linear ReLU] x n, Linear
    """
    kinds = [type(m).__name__ for m in layers]
    seq = " ".join(kinds)

    def fail(why: str):
        raise CheckpointError(f"not the course's MLP or CNN ({why}): {seq}")

    i, channels, dropouts = 0, [], []
    while i < len(layers) and isinstance(layers[i], nn.Conv2d):
        conv, bn = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups, conv.padding_mode) != \
                ((3, 3), (1, 1), (1, 1), (1, 1), 1, "zeros") or conv.bias is None:
            fail(f"conv {len(channels) + 1} is not 3x3, stride 1, padding 1 with bias")
        if not isinstance(bn, nn.BatchNorm2d) or not (bn.affine and bn.track_running_stats and bn.eps == 1e-5):
            fail(f"conv {len(channels) + 1} is not followed by a default BatchNorm2d")
        i += 2
        if i >= len(layers) or not isinstance(layers[i], nn.ReLU):
            fail(f"block {len(channels) + 1} has no ReLU after BatchNorm2d")
        i += 1
        p = 0.0
        if i < len(layers) and isinstance(layers[i], nn.Dropout):
            p, i = float(layers[i].p), i + 1
        pool = layers[i] if i < len(layers) else None
        if not isinstance(pool, nn.MaxPool2d) or (_pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding),
                                                  _pair(pool.dilation), pool.ceil_mode) != ((2, 2), (2, 2), (0, 0),
                                                                                            (1, 1), False):
            fail(f"block {len(channels) + 1} does not end in MaxPool2d(2, stride=2)")
        i += 1
        channels.append(conv.out_channels)
        dropouts.append(p)
    if i >= len(layers) or not isinstance(layers[i], nn.Flatten):
        fail("no Flatten before the dense layers")
    head = layers[i + 1:]
    linears = [m for m in head if isinstance(m, nn.Linear)]
    if not linears or any(m.bias is None for m in linears):
        fail("no dense layers with bias")
    first_in = linears[0].in_features
    if channels:
        in_channels = layers[0].in_channels
        kinds_head = [type(m).__name__ for m in head]
        if kinds_head not in (["Linear", "Dropout", "ReLU", "Linear"], ["Linear", "ReLU", "Linear"]):
            fail("the head is not Linear, Dropout, ReLU, Linear")
        side2 = first_in // channels[-1]
        side = round(side2 ** 0.5)
        if side * side * channels[-1] != first_in:
            fail(f"the first Linear takes {first_in} inputs, not {channels[-1]} x side x side")
        n = len(channels)
        image_size = 28 if 28 // 2 ** n == side else side * 2 ** n
        head_dropout = float(head[1].p) if isinstance(head[1], nn.Dropout) else 0.0
        return "cnn", {"in_channels": in_channels, "image_size": image_size, "channels": channels,
                       "dropouts": dropouts, "hidden": linears[0].out_features, "head_dropout": head_dropout}
    if [type(m) for m in head] != [nn.Linear, nn.ReLU] * (len(linears) - 1) + [nn.Linear]:
        fail("the dense layers are not [Linear, ReLU] x n, Linear")
    side = round(first_in ** 0.5)
    if side * side != first_in:
        fail(f"the first Linear takes {first_in} inputs, not a square 1-channel image")
    return "mlp", {"in_channels": 1, "image_size": side, "hidden": [m.out_features for m in linears[:-1]]}


def _default_labels(n: int) -> tuple[list, str]:
    if n == len(ASL_LETTERS):
        return list(ASL_LETTERS), "sign_mnist"
    if n == 10:
        return [str(d) for d in range(10)], "mnist"
    raise CheckpointError(f"the model has {n} outputs: pass its class names with --labels a,b,c")


def import_course_model(pth, out, labels: list | None = None) -> dict:
    """Convert a course model.pth into a handsign checkpoint; returns path, check difference, description."""
    pth = Path(pth)
    course = read_course_model(pth)
    try:
        layers = _leaves(course)
        name, args = describe_layers(layers)
    except CheckpointError as e:
        raise CheckpointError(f"{pth}: {e}") from None
    n_classes = layers[-1].out_features
    default, task = _default_labels(n_classes) if labels is None else (labels, "sign_mnist")
    if len(default) != n_classes or len(set(default)) != n_classes:
        raise CheckpointError(f"--labels: {len(default)} distinct names given, the model has {n_classes} outputs")
    model = create_model(name, n_classes, **args).eval()
    # copy layer by layer: parameter-holding layers appear in the same order in both models
    ours = [m for m in _leaves_of(model) if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    theirs = [m for m in layers if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    try:
        for dst, src in zip(ours, theirs, strict=True):
            dst.load_state_dict(src.state_dict(), strict=True)
    except (RuntimeError, ValueError) as e:
        raise CheckpointError(f"{pth}: layer shapes do not chain like the course's {name}: "
                              f"{str(e).strip().splitlines()[-1][:200]}") from None

    size = args["image_size"]
    x = torch.rand(CHECK_BATCH, args["in_channels"], size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = float((model(x) - course(x)).abs().max())
    if not diff <= TOLERANCE:
        raise CheckpointError(f"{pth}: the imported model differs from the course model by {diff:.3g}; not written")

    out = Path(out)
    if out.suffix != ".safetensors":
        out = out / "model.safetensors"
    meta = ModelMeta(architecture={"name": name, "args": args}, labels=default, task=task,
                     preprocess=default_spec(task), name=out.stem if out.name != "model.safetensors" else pth.stem,
                     source={"imported_from": pth.name, "sha256": hashlib.sha256(pth.read_bytes()).hexdigest(),
                             "format": "course torch.save(model)", "max_abs_diff_vs_course": diff},
                     versions={"handsign": __version__, "torch": torch.__version__})
    save_checkpoint(out, model, meta)
    shape = "-".join(map(str, args.get("channels") or args.get("hidden")))
    return {"path": out, "max_abs_diff": diff, "check_batch": CHECK_BATCH,
            "description": f"{name} ({shape}), {n_classes} classes, {count_parameters(model):,} parameters"}


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _leaves_of(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]
