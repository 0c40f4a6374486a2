"""Bundle a pixel model (MNIST digits, the Sign-MNIST CNN): its four files and its model card.

The card and the JSON record how the model was made (data, recipe, the training command, test
accuracy, preprocessing) from the checkpoint's own metadata, so nothing is typed in by hand.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

from handsign.files import atomic_write_bytes
from handsign.saved.checkpoint import LoadedModel, load_model, save_checkpoint
from handsign.train.config import TrainConfig, get_recipe
from handsign.infer.export import export
from handsign.saved.meta import ModelMeta

def train_command(cfg: dict, imported_from: str = "") -> str:
    """The `handsign train` command that reproduces a checkpoint's config (ModelMeta.config: recipe + changed
    settings); a model with no config but `imported_from` (ModelMeta.source) gets its import command."""
    if not cfg:
        src = imported_from
        return f"handsign import-course-model {shlex.quote(src)} OUT" if src else "(unknown: no config in metadata)"
    recipe = cfg.get("recipe", "")
    base = TrainConfig(recipe=recipe, **(get_recipe(recipe) if recipe else {})).to_dict()
    known = {k: v for k, v in cfg.items() if k in base}  # a field of an older handsign is left out
    command = " ".join(shlex.quote(p) for p in ["handsign", "train", *TrainConfig(**{**base, **known}).to_argv()])
    if cfg.get("model_args"):
        command += f"  # with model_args {json.dumps(cfg['model_args'])} (set in the config, no flag)"
    return command


def bundle_pixels(loaded: LoadedModel, name: str, out_dir, command: str | None = None) -> list[Path]:
    """Write the four files of pixel model `name` into out_dir; returns their paths."""
    meta = loaded.meta.replace(train_state=None, name=name, bundle={
        "command": command or train_command(loaded.meta.config, loaded.meta.source.get("imported_from", "")), "source_checkpoint": str(loaded.path),
        "source_sha256": _sha256(loaded.path)})
    out = Path(out_dir) / f"{name}.safetensors"
    save_checkpoint(out, loaded.model, meta)  # + NAME.json, a readable copy of the metadata
    onnx = export(load_model(out), out.with_suffix(".onnx"))
    card = out.with_suffix(".md")
    atomic_write_bytes(card, model_card(meta, onnx, out).encode())
    return [out, out.with_suffix(".json"), onnx["path"], card]


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _fraction_text(x) -> str:
    return f"{x:.2%}" if isinstance(x, (int, float)) else "not measured"


LIMITATIONS = {
    "sign_mnist": [
        "Knows the 24 static ASL letters of Sign Language MNIST: no J or Z (they need motion), no digits, "
        "no words.",
        "Trained on 28x28 gray crops of one hand filling the frame on a plain background, made from a small "
        "number of signers; photos with other framing, lighting, skin tones or backgrounds are out of "
        "distribution and will be less accurate than the test accuracy above.",
    ],
    "mnist": [
        "Knows single hand-written digits 0-9, centred, as in MNIST; letters, several digits or printed "
        "text in one image give meaningless answers.",
        "Dark-on-light pictures are inverted automatically (MNIST is light ink on dark); thin or faint strokes "
        "and busy backgrounds lower accuracy.",
    ],
}


def model_card(meta: ModelMeta, onnx: dict, out: Path) -> str:
    """Markdown model card from the metadata (what, how it was trained, how well, how to use, limits)."""
    m, data, spec = meta.metrics, meta.data, meta.preprocess
    arch = meta.architecture
    labels = meta.labels
    task = meta.task
    lines = [
        f"# Model card: {meta.name}",
        "",
        f"A `{arch['name']}` classifier of {len(labels)} classes ({', '.join(map(str, labels))}) made with "
        f"handsign {meta.versions.get('handsign', '?')}.",
        "",
        "## Use",
        "",
        "```bash",
        f"handsign predict --model {meta.name} photo.png        # ONNX Runtime if installed, else torch",
        f"handsign predict --model {meta.name} --json folder/    # one JSON object per image",
        "```",
        "",
        "## Data",
        "",
        f"- data set: `{data.get('dataset', task or '?')}` from `{data.get('source', '?')}`",
        f"- samples: {data.get('n_train', '?')} train, {data.get('n_valid', '?')} validation, "
        f"{data.get('n_test', '?')} test" + (" (validation = the test file, as the course did)"
                                             if data.get("valid_from_test") else ""),
        f"- training data fingerprint: `{data.get('train_fingerprint', '?')}`",
        "",
        "## Training",
        "",
        f"- recipe: `{meta.recipe or '(none)'}`",
        f"- command: `{meta.bundle['command']}`",
        f"- architecture: `{json.dumps(arch, sort_keys=True)}`",
        f"- best epoch: {m.get('epoch', '?')}; versions: `{json.dumps(meta.versions, sort_keys=True)}`",
        "",
        "## Accuracy",
        "",
        "| split | accuracy |",
        "|---|---|",
        f"| train | {_fraction_text(m.get('train_acc'))} |",
        f"| validation | {_fraction_text(m.get('valid_acc'))} |",
        f"| **test** | **{_fraction_text(m.get('test_acc'))}** |",
        "",
        "## Preprocessing",
        "",
        f"Any image (PNG, JPEG, BMP, GIF, WebP; EXIF rotation applied, transparency over white, first frame) "
        f"is made gray, fitted to a square by `{spec['fit']}`, resized to {spec['size']}x{spec['size']}, "
        f"inverted: `{spec['invert']}`, scaled to [0, 1] (`handsign/images/preprocess.py`, spec "
        f"`{json.dumps(spec, sort_keys=True)}`). The ONNX graph takes that array as `image` "
        f"[N, 1, {spec['size']}, {spec['size']}] float32 and returns `logits` [N, {len(labels)}].",
        "",
        "## Files",
        "",
        f"- `{out.name}` (weights + metadata), `{out.with_suffix('.json').name}` (readable metadata), "
        f"`{out.with_suffix('.onnx').name}` (opset {onnx['opset']}, metadata embedded; max |logit difference| vs "
        f"torch on {onnx['check_batch']} random images: {onnx['max_abs_diff']:.3g})",
        f"- trained checkpoint sha256: `{meta.bundle['source_sha256']}`",
        "",
        "## Limitations",
        "",
        *[f"- {x}" for x in LIMITATIONS.get(task, [])],
        "- The probability is the softmax of the logits: a confidence score, not a calibrated probability; "
        "an image of something else still gets one of the known labels.",
        "- Not for decisions that matter about people (e.g. accessibility tools without a human check).",
        "",
    ]
    return "\n".join(lines)
