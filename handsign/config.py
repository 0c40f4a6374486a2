"""The typed run configuration and the named recipes (plain data, no code paths).

`handsign train`'s flags are generated from TrainConfig's fields (handsign.cli.add_config_flags): a new
field is one line here, `name: type = default  # help`, and becomes `--name` with that help and, if it
has one, its tuple of choices from CHOICES. `TrainConfig.to_argv()` maps a config back to those flags.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from dataclasses import dataclass, field

from handsign.errors import HandsignError
from handsign.preprocess import PREPROCESS_PRESETS

DATASETS = ("mnist", "sign_mnist", "folder")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine")
AUGMENTS = ("none", "course", "hands", "digits", "photo")  # presets in handsign.transforms
VALID_SPLITS = ("random", "groups")  # handsign.groups explains "groups"
PRECISIONS = ("fp32", "bf16", "auto")
# --valid-split groups: cosine similarity above which two images are near-copies (handsign.groups says why
# 0.99), and the threshold of runs saved before it was a field (here, not in groups.py: config imports no torch)
GROUP_SIMILARITY = 0.99
LEGACY_GROUP_SIMILARITY = 0.95
# field -> its valid values (the flag's choices, the check's list)
CHOICES = {"dataset": DATASETS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "augment": AUGMENTS,
           "preprocess": PREPROCESS_PRESETS, "valid_split": VALID_SPLITS, "precision": PRECISIONS}
# fields without a flag of their own: recipe is `--recipe` (the base the flags override); model_args is a
# dict of keyword arguments, set in Python or a recipe (as is any field whose type is not in FLAG_TYPES)
NO_FLAG = ("recipe", "model_args")
FLAG_TYPES = {"bool": bool, "int": int, "float": float, "str": str}  # a field's annotation -> its flag's type


@dataclass
class TrainConfig:
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
    augment: str = "none"            # none | course | hands | digits | photo (handsign.transforms)
    augment_per_batch: bool = False  # course behaviour: one random draw shared by a whole batch
    preprocess: str = ""             # "" = the data set's spec | photo (+ hand crop, brightness match)
    valid_fraction: float = 0.1      # share of train carved out (seeded, stratified) as valid
    valid_from_test: bool = False    # course behaviour: use the test file as validation
    valid_split: str = "random"      # random | groups (hold out whole groups of near-copies: handsign.groups)
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
        if not isinstance(self.epochs, int) or self.epochs < 1:
            bad("epochs", f"must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            bad("batch-size", f"must be a positive integer, got {self.batch_size!r}")
        if not self.lr > 0:
            bad("lr", f"must be positive, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if self.augment not in AUGMENTS:
            bad("augment", f"unknown augmentation {self.augment!r}; choose from {', '.join(AUGMENTS)}")
        if self.valid_split not in VALID_SPLITS:
            bad("valid-split", f"unknown split {self.valid_split!r}; choose from {', '.join(VALID_SPLITS)}")
        if self.precision not in PRECISIONS:
            bad("precision", f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if self.preprocess not in PREPROCESS_PRESETS:
            bad("preprocess", f"unknown preprocessing {self.preprocess!r}; choose from "
                f"{', '.join(repr(p) for p in PREPROCESS_PRESETS)}")
        if not 0 <= self.label_smoothing < 1:
            bad("label-smoothing", f"must be in [0, 1), got {self.label_smoothing!r}")
        if not 0 <= self.ema < 1:
            bad("ema", f"must be in [0, 1) (a decay per step; 0 = off), got {self.ema!r}")
        if self.weight_decay < 0:
            bad("weight-decay", f"must be >= 0, got {self.weight_decay!r}")
        if not 0 < self.group_similarity < 1:
            bad("group-similarity", f"must be in (0, 1), got {self.group_similarity!r}")
        if not self.valid_from_test and not 0 < self.valid_fraction < 1:
            bad("valid-fraction", f"must be in (0, 1), got {self.valid_fraction!r}")
        if self.limit < 0:
            bad("limit", f"must be >= 0, got {self.limit!r}")
        if self.threads < 0:
            bad("threads", f"must be >= 0, got {self.threads!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise HandsignError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**{**d, "group_similarity": saved_group_similarity(d)})

    def to_argv(self) -> list[str]:
        """The `handsign train` flags that rebuild this config: --recipe and every flag field that differs
        from the recipe's value (in field order). model_args has no flag and is left out."""
        base = TrainConfig(recipe=self.recipe, **(get_recipe(self.recipe) if self.recipe else {}))
        argv = ["--recipe", self.recipe] if self.recipe else []
        for f in flag_fields():
            value = getattr(self, f.name)
            if value != getattr(base, f.name):
                flag = "--" + f.name.replace("_", "-")
                argv += ([flag] if value else ["--no-" + flag[2:]]) if isinstance(value, bool) else [flag, str(value)]
        return argv

    def describe(self) -> str:
        """Aligned 'name = value' lines, printed at the start of a run."""
        d = self.to_dict()
        width = max(map(len, d))
        return "\n".join(f"  {k:<{width}} = {json.dumps(v)}" for k, v in d.items())


# name -> description and the settings it changes from TrainConfig's defaults
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
}


def saved_group_similarity(saved: dict) -> float:
    """The grouped split's threshold of a saved run config (a config.json dict): its own, or, for a grouped run
    saved before the field existed, the threshold it was split at then."""
    legacy = saved.get("valid_split") == "groups"
    return saved.get("group_similarity", LEGACY_GROUP_SIMILARITY if legacy else GROUP_SIMILARITY)


def flag_fields() -> list[dataclasses.Field]:
    """TrainConfig's fields that are `handsign train` flags, in declaration order."""
    return [f for f in dataclasses.fields(TrainConfig) if f.name not in NO_FLAG and str(f.type) in FLAG_TYPES]


def field_help() -> dict[str, str]:
    """Each TrainConfig field's help: the comment on its line (read from this file's source)."""
    try:
        source = inspect.getsource(TrainConfig)
    except (OSError, TypeError):  # no source (a frozen app): flags without help
        return {}
    return dict(re.findall(r"^    (\w+): [^#\n]*#\s*(.+)$", source, re.MULTILINE))


def get_recipe(name: str) -> dict:
    """Settings of a named recipe; an unknown name lists the valid ones."""
    if name not in RECIPES:
        raise HandsignError(f"unknown recipe {name!r}; choose from: {', '.join(RECIPES)} (and hands-asl, the "
                            f"hand-landmark model, which only 'handsign train --recipe hands-asl' takes)")
    return dict(RECIPES[name]["settings"])


def make_config(recipe: str = "", **overrides) -> TrainConfig:
    """A recipe's settings with explicit overrides on top (None values are ignored)."""
    settings = get_recipe(recipe) if recipe else {}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(recipe=recipe, **settings)
