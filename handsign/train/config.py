"""The typed run configurations and the named recipes (plain data, no code paths).

Two model families train through the one loop (handsign.train.loop): pixel models (TrainConfig: the MLP and
the CNN on MNIST, Sign-MNIST or an image folder) and the landmark model (HandsConfig: hand landmarks of real
photos). Each recipe names its family; `make_config(recipe)` gives that family's config.

`handsign train`'s flags are generated from the two classes' fields (handsign.cli.add_config_flags): a new
field is one line here, `name: type = default  # help`, and becomes `--name` with that help and, if it
has one, its tuple of choices from CHOICES. `to_argv(config)` maps a config back to those flags.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from handsign.data.splits import (GROUP_SIMILARITY, LEGACY_GROUP_SIMILARITY, VALID_SPLITS,  # noqa: F401
                                   saved_group_similarity)
from handsign.data.sources import KNOWN, resolve_data_dir
from handsign.errors import HandsignError
from handsign.hands.photos import GROUP_PATTERN
from handsign.images.preprocess import PREPROCESS_PRESETS
from handsign.models.kernels import KERNELS

DATASETS = ("mnist", "sign_mnist", "folder")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine")
AUGMENTS = ("none", "course", "hands", "digits", "photo")  # presets in handsign.images.augment
PRECISIONS = ("fp32", "bf16", "auto")
# field -> its valid values (the flag's choices, the check's list)
CHOICES = {"dataset": DATASETS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "augment": AUGMENTS,
           "preprocess": PREPROCESS_PRESETS, "valid_split": VALID_SPLITS, "precision": PRECISIONS,
           "kernels": KERNELS}
# fields without a flag of their own: recipe is `--recipe` (the base the flags override); model_args is a
# dict of keyword arguments, set in Python or a recipe (as is any field whose type is not in FLAG_TYPES)
NO_FLAG = ("recipe", "model_args")


def _ints(text: str) -> tuple:
    """A flag's comma-separated integers: "256,256" -> (256, 256)."""
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"comma-separated integers, e.g. 256,256, not {text!r}") from None


_ints.__name__ = "integers"  # argparse names the type in its error message
FLAG_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "tuple": _ints}  # annotation -> flag type


def check_common(cfg) -> None:
    """The checks of the fields every family's config has (the loop reads them), naming the flag."""
    def bad(flag, msg):
        raise HandsignError(f"--{flag}: {msg}")

    if not isinstance(cfg.epochs, int) or cfg.epochs < 1:
        bad("epochs", f"must be a positive integer, got {cfg.epochs!r}")
    if not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        bad("batch-size", f"must be a positive integer, got {cfg.batch_size!r}")
    if not cfg.lr > 0:
        bad("lr", f"must be positive, got {cfg.lr!r}")
    if cfg.optimizer not in OPTIMIZERS:
        bad("optimizer", f"unknown optimizer {cfg.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if cfg.schedule not in SCHEDULES:
        bad("schedule", f"unknown schedule {cfg.schedule!r}; choose from {', '.join(SCHEDULES)}")
    if not 0 <= cfg.label_smoothing < 1:
        bad("label-smoothing", f"must be in [0, 1), got {cfg.label_smoothing!r}")
    if not 0 <= cfg.ema < 1:
        bad("ema", f"must be in [0, 1) (a decay per step; 0 = off), got {cfg.ema!r}")
    if cfg.weight_decay < 0:
        bad("weight-decay", f"must be >= 0, got {cfg.weight_decay!r}")
    if cfg.threads < 0:
        bad("threads", f"must be >= 0, got {cfg.threads!r}")


class _Config:
    """What both configs do alike: a dict, a dict back (an unknown field is an error), flags, a printout."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise HandsignError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**d)

    def to_argv(self) -> list[str]:
        """The `handsign train` flags that rebuild this config: --recipe and every flag field that differs
        from the recipe's value (in field order). A field without a flag (model_args) is left out."""
        base = make_config(self.recipe) if self.recipe else type(self)()
        argv = ["--recipe", self.recipe] if self.recipe else []
        for f in flag_fields(type(self)):
            value = getattr(self, f.name)
            if value != getattr(base, f.name):
                flag = "--" + f.name.replace("_", "-")
                if isinstance(value, bool):
                    argv += [flag] if value else ["--no-" + flag[2:]]
                else:
                    argv += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
        return argv

    def describe(self) -> str:
        """Aligned 'name = value' lines, printed at the start of a run."""
        d = self.to_dict()
        width = max(map(len, d))
        return "\n".join(f"  {k:<{width}} = {json.dumps(v)}" for k, v in d.items())


@dataclass
class TrainConfig(_Config):
    family: ClassVar[str] = "pixels"  # which trainer runs it (handsign.train.loop.FAMILIES)

    recipe: str = ""                 # name of the recipe these settings came from ("" = none)
    dataset: str = "sign_mnist"      # mnist | sign_mnist | folder
    image_folder: str = ""           # root/<class>/*.png, when dataset == "folder"
    model: str = "cnn"               # registry name in handsign.models.MODELS
    model_args: dict = field(default_factory=dict)  # extra keyword arguments for the model
    epochs: int = 20                 # full passes over the training split
    batch_size: int = 32             # images per optimizer step
    lr: float = 1e-3                 # peak learning rate
    optimizer: str = "adam"          # adam | adamw | sgd (momentum 0.9, nesterov)
    weight_decay: float = 0.0        # L2 (adam/sgd) or decoupled (adamw) weight decay
    schedule: str = "constant"       # constant | onecycle | cosine, stepped per batch
    label_smoothing: float = 0.0     # cross-entropy label smoothing, 0..1
    ema: float = 0.0                 # evaluate and save a moving average of the weights: its decay per step (0 = off)
    augment: str = "none"            # none | course | hands | digits | photo (handsign.images.augment)
    augment_per_batch: bool = False  # course behaviour: one random draw shared by a whole batch
    preprocess: str = ""             # "" = the data set's spec | photo (+ hand crop, brightness match)
    valid_fraction: float = 0.1      # share of train carved out (seeded, stratified) as valid
    valid_from_test: bool = False    # course behaviour: use the test file as validation
    valid_split: str = "random"      # random | groups (hold out whole groups of near-copies: handsign.data.groups)
    group_similarity: float = GROUP_SIMILARITY  # groups: cosine similarity above which two images are near-copies
    seed: int = 0                    # seeds weights, shuffling, dropout and augmentation
    limit: int = 0                   # use only the first N training samples (0 = all)
    data_dir: str = ""               # data root ("" = $HANDSIGN_DATA or ./data)
    out: str = ""                    # run directory ("" = runs/<recipe>-<time>)
    device: str = "auto"             # auto | cpu | cuda | cuda:N | mps
    threads: int = 0                 # torch CPU threads (0 = the cores free when training starts; 1 for a small model)
    channels_last: bool = False      # NHWC weights and activations: faster oneDNN convolutions on CPU
    precision: str = "fp32"          # fp32 | bf16 (autocast: convs and matmuls in bfloat16) | auto (bf16 if native)
    eval_batch_size: int = 1000      # images per forward pass when evaluating
    kernels: str = "auto"            # conv blocks on CPU: auto (C if a compiler is found) | native (C) | torch | unfused

    def __post_init__(self):
        def bad(flag, msg):
            raise HandsignError(f"--{flag}: {msg}")

        if self.dataset not in DATASETS:
            bad("dataset", f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        if self.dataset == "folder" and not self.image_folder:
            bad("image-folder", "needed when --dataset folder")
        if self.image_folder and self.dataset != "folder":  # else the pictures are silently not read
            bad("image-folder", f"is read only with --dataset folder, and this run's dataset is {self.dataset!r}: "
                "add --dataset folder")
        check_common(self)
        if self.augment not in AUGMENTS:
            bad("augment", f"unknown augmentation {self.augment!r}; choose from {', '.join(AUGMENTS)}")
        if self.valid_split not in VALID_SPLITS:
            bad("valid-split", f"unknown split {self.valid_split!r}; choose from {', '.join(VALID_SPLITS)}")
        if self.precision not in PRECISIONS:
            bad("precision", f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if self.kernels not in KERNELS:
            bad("kernels", f"unknown {self.kernels!r}; choose from {', '.join(KERNELS)}")
        if self.preprocess not in PREPROCESS_PRESETS:
            bad("preprocess", f"unknown preprocessing {self.preprocess!r}; choose from "
                f"{', '.join(repr(p) for p in PREPROCESS_PRESETS)}")
        if not 0 < self.group_similarity < 1:
            bad("group-similarity", f"must be in (0, 1), got {self.group_similarity!r}")
        if not self.valid_from_test and not 0 < self.valid_fraction < 1:
            bad("valid-fraction", f"must be in (0, 1), got {self.valid_fraction!r}")
        if self.limit < 0:
            bad("limit", f"must be >= 0, got {self.limit!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return super().from_dict({**d, "group_similarity": saved_group_similarity(d)})




@dataclass
class HandsConfig(_Config):
    """The landmark model's run: hand landmarks of real photos (handsign.hands) -> a small MLP. Its defaults
    were chosen by leave-one-person-out on the Massey photos (docs/hands.md)."""
    family: ClassVar[str] = "landmarks"

    recipe: str = "hands-asl"       # name of the recipe these settings came from
    photos: str = ""                # ROOT/<label>/*.jpg ("" = DATA/asl_photos/massey)
    data_dir: str = ""              # data root ("" = $HANDSIGN_DATA or ./data)
    group_pattern: str = GROUP_PATTERN  # regex naming the person in a file name (leave-one-person-out)
    holdout: str = ""               # a person never trained on (e.g. hand3): the run's test split
    lopo: bool = True               # first leave each person out once: accuracy on people the model never saw
    every: int = 1                  # use every Nth photo of each letter (1 = all; quick runs take fewer)
    valid_fraction: float = 0.1     # share of the training photos (seeded, stratified) kept for validation
    hidden: tuple = (256, 256)      # hidden layer widths of the landmark MLP, e.g. 256,256
    dropout: float = 0.2            # after each hidden layer
    epochs: int = 150               # full passes over the training split
    batch_size: int = 64            # feature vectors per optimizer step
    lr: float = 3e-3                # peak learning rate
    optimizer: str = "adamw"        # adam | adamw | sgd (momentum 0.9, nesterov)
    weight_decay: float = 1e-2      # L2 (adam/sgd) or decoupled (adamw) weight decay
    schedule: str = "cosine"        # constant | onecycle | cosine, stepped per batch
    label_smoothing: float = 0.1    # cross-entropy label smoothing, 0..1
    ema: float = 0.0                # evaluate and save a moving average of the weights: its decay per step (0 = off)
    rotate: float = 15.0            # degrees: random in-plane turn of the landmarks about the wrist
    stretch: float = 0.1            # random x/y aspect change (+-10 %): a camera a little to the side
    jitter: float = 0.03            # landmark noise, in palm sizes (MediaPipe's own wobble)
    mirror: float = 0.5             # share of samples read as the other hand: robustness to handedness errors
    seed: int = 0                   # seeds weights, shuffling, dropout and augmentation
    threads: int = 0                # torch CPU threads (0 = the cores free when training starts; 1 for a small model)
    device: str = "cpu"             # cpu | cuda | auto (a 100 x 256 x 256 MLP: the CPU is as fast)
    out: str = ""                   # run directory ("" = runs/<recipe>-<time>)

    def __post_init__(self):
        check_common(self)
        if not isinstance(self.every, int) or self.every < 1:
            raise HandsignError(f"--every: must be a positive integer, got {self.every!r}")
        if not 0 <= self.dropout < 1:
            raise HandsignError(f"--dropout: must be in [0, 1), got {self.dropout!r}")
        if not 0 < self.valid_fraction < 1:
            raise HandsignError(f"--valid-fraction: must be in (0, 1), got {self.valid_fraction!r}")
        for flag in ("rotate", "stretch", "jitter"):
            if getattr(self, flag) < 0:
                raise HandsignError(f"--{flag}: must be >= 0, got {getattr(self, flag)!r}")
        if not 0 <= self.mirror <= 1:
            raise HandsignError(f"--mirror: must be in [0, 1], got {self.mirror!r}")
        try:
            self.hidden = tuple(int(h) for h in self.hidden)
        except (TypeError, ValueError):
            raise HandsignError(f"--hidden: layer widths as integers, e.g. 256,256; got {self.hidden!r}") from None
        if not self.hidden or min(self.hidden) < 1:
            raise HandsignError(f"--hidden: at least one positive layer width, got {self.hidden!r}")

    def photos_root(self) -> Path:
        return Path(self.photos) if self.photos else resolve_data_dir(self.data_dir or None) / KNOWN["asl_photos"].folder

    def to_dict(self) -> dict:
        return {**super().to_dict(), "hidden": list(self.hidden)}


CONFIGS = {"pixels": TrainConfig, "landmarks": HandsConfig}  # family -> its config class


# name -> description, family (a CONFIGS key; "pixels" when not given) and the settings it changes from that
# family's config defaults
RECIPES: dict[str, dict] = {
    "course-mnist-mlp": {
        "description": "Course stage 1: MLP 784-512-512-10 on MNIST, Adam 1e-3, batch 32, 5 epochs",
        "settings": {"dataset": "mnist", "model": "mlp", "epochs": 5, "batch_size": 32, "lr": 1e-3},
    },
    "course-asl-mlp": {
        "description": "Course stage 2: the same MLP on ASL letters, 20 epochs; shows overfitting",
        "settings": {"dataset": "sign_mnist", "model": "mlp", "epochs": 20, "batch_size": 32, "lr": 1e-3},
    },
    "course-asl-cnn": {
        "description": "Course stage 3: 3 conv blocks (25-50-75 ch) + dense 512 on ASL, 20 epochs",
        "settings": {"dataset": "sign_mnist", "model": "cnn", "epochs": 20, "batch_size": 32, "lr": 1e-3},
    },
    "course-asl-cnn-aug": {
        "description": "Course stage 4: the CNN with the course's augmentation (rotate, crop, flip, jitter), 20 epochs",
        "settings": {"dataset": "sign_mnist", "model": "cnn", "epochs": 20, "batch_size": 32, "lr": 1e-3,
                     "augment": "course"},
    },
    # fast recipes: measured in docs/fast.md (benchmarks/run.py); settings chosen on the valid split
    "fast-asl": {
        "description": "A CNN of 20-40-60 channels, two convolutions at 14x14, and dense 384 that averages each "
                       "picture with its mirror image at test time, batch 256, AdamW one-cycle 6e-3, label "
                       "smoothing 0.1, 'photo' augmentation (the test file is other photos: strong warps "
                       "generalise), bf16 where the CPU has it; 8 epochs (settings chosen with --valid-split groups)",
        "settings": {"dataset": "sign_mnist", "model": "cnn", "epochs": 8, "batch_size": 256, "lr": 6e-3,
                     "optimizer": "adamw", "weight_decay": 5e-4, "schedule": "onecycle",
                     "label_smoothing": 0.1, "augment": "photo", "channels_last": True, "precision": "auto",
                     "model_args": {"channels": [20, 40, 60], "hidden": 384, "flip_average": True,
                                    "convs": [1, 2, 1]}},
    },
    "fast-mnist": {
        "description": "A narrower CNN (16-32-64 channels, dense 256) on digits, batch 256, one-cycle Adam 6e-3, "
                       "label smoothing 0.1, 'digits' augmentation (shifts, scale, 10 deg, no flip), bf16 where the "
                       "CPU has it; 5 epochs",
        "settings": {"dataset": "mnist", "model": "cnn", "epochs": 5, "batch_size": 256, "lr": 6e-3,
                     "schedule": "onecycle", "label_smoothing": 0.1, "augment": "digits",
                     "channels_last": True, "precision": "auto",
                     "model_args": {"channels": [16, 32, 64], "hidden": 256}},
    },
    "robust-asl": {
        "description": "The course CNN trained for webcam/phone photos: photo augmentation (perspective, "
                       "backgrounds, lighting, blur, noise), photo preprocessing (hand crop, brightness "
                       "match), AdamW one-cycle, batch 128, 14 epochs",
        "settings": {"dataset": "sign_mnist", "model": "cnn", "epochs": 14, "batch_size": 128, "lr": 2e-3,
                     "optimizer": "adamw", "weight_decay": 5e-4, "schedule": "onecycle",
                     "label_smoothing": 0.1, "augment": "photo", "preprocess": "photo"},
    },
    # the landmark model; its defaults (HandsConfig) were chosen by leave-one-person-out
    "hands-asl": {
        "description": "ASL letters from real photos: MediaPipe hand landmarks -> MLP, trained on the Massey photos "
                       "(5 people), evaluated leaving one person out",
        "family": "landmarks",
        "settings": {},
    },
}


def flag_fields(cls=None) -> list[dataclasses.Field]:
    """The fields of `cls` (else of every family's config, each name once) that are `handsign train` flags,
    in declaration order."""
    seen, out = set(), []
    for c in [cls] if cls else CONFIGS.values():
        for f in dataclasses.fields(c):
            if f.name not in NO_FLAG and str(f.type) in FLAG_TYPES and f.name not in seen:
                seen.add(f.name)
                out.append(f)
    return out


def field_help() -> dict[str, str]:
    """Each config field's help: the comment on its line (read from this file's source; the first class that
    declares a name gives its help)."""
    helps = {}
    for cls in CONFIGS.values():
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):  # no source (a frozen app): flags without help
            return {}
        for name, text in re.findall(r"^    (\w+): [^#\n]*#\s*(.+)$", source, re.MULTILINE):
            helps.setdefault(name, text)
    return helps


def get_recipe(name: str) -> dict:
    """Settings of a named recipe; an unknown name lists the valid ones."""
    if name not in RECIPES:
        raise HandsignError(f"unknown recipe {name!r}; choose from: {', '.join(RECIPES)}")
    return dict(RECIPES[name]["settings"])


def config_class(recipe: str = ""):
    """The config class of a recipe's family (TrainConfig for no recipe)."""
    if recipe and recipe not in RECIPES:
        get_recipe(recipe)  # the error that lists the recipes
    return CONFIGS[RECIPES[recipe].get("family", "pixels")] if recipe else TrainConfig


def make_config(recipe: str = "", **overrides) -> TrainConfig | HandsConfig:
    """A recipe's settings with explicit overrides on top (None values are ignored), as its family's config."""
    cls = config_class(recipe)
    settings = get_recipe(recipe) if recipe else {}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(cls)}
    foreign = [k for k in settings if k not in names]
    if foreign:
        raise HandsignError(f"{', '.join('--' + k.replace('_', '-') for k in foreign)}: not a setting of recipe "
                            f"{recipe or '(none)'}, a {cls.family.rstrip('s')} model (handsign train --help names "
                            f"the settings only one kind of model has)")
    return cls(recipe=recipe, **settings)


def config_from_dict(d: dict) -> TrainConfig | HandsConfig:
    """A saved config (config.json, a checkpoint's metadata) as its family's config class."""
    recipe = d.get("recipe", "")
    cls = config_class(recipe) if recipe in RECIPES else (HandsConfig if "photos" in d else TrainConfig)
    return cls.from_dict(d)
