"""Package a trained model for deployment: NAME.safetensors, NAME.json, NAME.onnx and NAME.md (model card).

    bundle("runs/asl-cnn", "asl", "handsign/bundled")   # -> the model `handsign predict --model asl` uses

`pixels.py` bundles a pixel model (the training command rebuilt from its config, the card); `hands.py` a
hand-landmark model, fused with a pixel model beside it, with the leave-one-person-out table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from handsign.bundle.hands import bundle_hands, summarise_lopo
from handsign.bundle.pixels import bundle_pixels, train_command
from handsign.saved.checkpoint import load_model
from handsign.errors import HandsignError
from handsign.saved.checkpoint import resolve_model

__all__ = ["bundle", "train_command"]


def bundle(checkpoint, name: str, out_dir="bundle", command: str | None = None, pixel_model: str | None = None,
           pixel_weight: float = 0.0, lopo_report=None) -> list[Path]:
    """Write the four files of model `name` into out_dir; returns their paths. command: the training command
    for the card (default: rebuilt from the config). A hand-landmark model takes pixel_model (a pixel model's
    stem in out_dir) with its fusion weight, and lopo_report (benchmarks/hands_lopo.py's JSON file)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise HandsignError(f"NAME {name!r}: use lower-case letters, digits, '-' and '_'")
    loaded = load_model(resolve_model(checkpoint))
    if loaded.meta.input == "image":
        if pixel_model or lopo_report:
            raise HandsignError("--pixel-model and --lopo-report are for hand-landmark models")
        return bundle_pixels(loaded, name, out_dir, command)
    report = None
    if lopo_report:
        try:
            report = summarise_lopo(json.loads(Path(lopo_report).read_text()), str(lopo_report))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise HandsignError(f"--lopo-report {lopo_report}: not a hands_lopo.py report ({e})") from None
    return bundle_hands(loaded, name, out_dir, pixel_model, pixel_weight, command=command, lopo_report=report)
