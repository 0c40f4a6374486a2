"""Bundle a hand-landmark model: the landmark MLP + the pixel CNN it is fused with.

    bundle("runs/hands-asl", "asl", "handsign/bundled", pixel_model="asl-pixels", pixel_weight=0.2)

writes NAME.safetensors (the landmark model; its metadata names the pixel model beside it and the
fusion weight), NAME.json, NAME.onnx and NAME.md (model card with the leave-one-person-out figures).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shlex
import json
from pathlib import Path

from handsign.files import atomic_write_bytes
from handsign.saved.checkpoint import LoadedModel, load_model, save_checkpoint
from handsign.errors import HandsignError
from handsign.infer.export import export
from handsign.train.config import HandsConfig
from handsign.saved.meta import ModelMeta

MASSEY_CITATION = ("A. L. C. Barczak, N. H. Reyes, M. Abastillas, A. Piccio and T. Susnjak, \"A New 2D Static Hand "
                   "Gesture Colour Image Dataset for ASL Gestures\", Research Letters in the Information and "
                   "Mathematical Sciences 15 (2011), Massey University")


def hands_command(cfg: dict) -> str:
    """The `handsign train` command that reproduces a landmark run's config (flags generated from HandsConfig).
    A config saved before a field existed reads as that field's default."""
    known = {f.name for f in dataclasses.fields(HandsConfig)}
    config = HandsConfig.from_dict({k: v for k, v in cfg.items() if k in known and k != "out"})
    return " ".join(shlex.quote(p) for p in ["handsign", "train", *config.to_argv()])


def bundle_hands(loaded: LoadedModel, name: str, out_dir, pixel_model: str | None, pixel_weight: float = 0.0,
                 command: str | None = None, lopo_report: dict | None = None) -> list[Path]:
    """Write NAME.{safetensors,json,onnx,md}; pixel_model is a bundled pixel model's file stem in out_dir;
    lopo_report: summarise_lopo's rows for the card."""
    out_dir = Path(out_dir)
    if pixel_model and not (out_dir / f"{pixel_model}.safetensors").is_file():
        raise HandsignError(f"--pixel-model {pixel_model!r}: no {pixel_model}.safetensors in {out_dir}")
    if not 0 <= pixel_weight <= 1:
        raise HandsignError(f"--pixel-weight must be in 0..1, got {pixel_weight}")
    meta = loaded.meta.replace(
        train_state=None, name=name,
        fusion={"pixel_model": pixel_model, "pixel_weight": pixel_weight} if pixel_model else loaded.meta.fusion,
        bundle={"command": command or hands_command(loaded.meta.config), "source_checkpoint": str(loaded.path),
                "source_sha256": hashlib.sha256(loaded.path.read_bytes()).hexdigest()},
        metrics={**loaded.meta.metrics, "fusion_leave_one_person_out": lopo_report} if lopo_report
        else loaded.meta.metrics)
    out = out_dir / f"{name}.safetensors"
    save_checkpoint(out, loaded.model, meta)
    onnx = export(load_model(out), out.with_suffix(".onnx"))
    card = out.with_suffix(".md")
    atomic_write_bytes(card, model_card(meta, onnx, out).encode())
    return [out, out.with_suffix(".json"), onnx["path"], card]


def summarise_lopo(doc: dict, source: str) -> dict:
    """benchmarks/hands_lopo.py's JSON -> the rows of the model card's table (every seed, + pixels only)."""
    rows = [{"name": "pixel CNN alone (bundled pixel model)", "per_person": doc["pixels_only"]["per_person"],
             "mean": doc["pixels_only"]["mean"]}]
    w = doc.get("chosen_pixel_weight", 0.0)
    for run in doc["runs"]:
        s = run["fusion"]["0.0"]["strict"]
        rows.append({"name": f"landmarks, seed {run['seed']}", "per_person": s["per_person"], "mean": s["mean"]})
        if w:
            f = run["fusion"][str(w)]["strict"]
            rows.append({"name": f"fused w={w}, seed {run['seed']}", "per_person": f["per_person"], "mean": f["mean"]})
    return {"source": source, "seeds": doc["seeds"], "rows": rows, "chosen_pixel_weight": w,
            "fusion_mean_over_seeds": doc.get("fusion_mean_over_seeds")}


def _fusion_text(fusion: dict | None) -> str:
    if not fusion:
        return "A photo where no hand is found gets the error \"no hand found\"."
    w, pixels = fusion["pixel_weight"], fusion["pixel_model"]
    how = (f"Where a hand is found its probabilities are fused with the pixel CNN `{pixels}` beside it: p = "
           f"{1 - w:g} x landmarks + {w:g} x pixels." if w else
           f"Where a hand is found the landmark model answers alone: fusing it with the pixel CNN `{pixels}` gained "
           f"nothing measurable when one person was left out (below), so the fusion weight is 0.")
    return (how + f" A photo where no hand is found, or a gray picture like Sign-MNIST's frames, is read by "
                  f"`{pixels}` alone.")


def _pct(x) -> str:
    return f"{100 * x:.1f} %" if isinstance(x, (int, float)) else "not measured"


def _spelling_section(meta: ModelMeta) -> list[str]:
    """J and Z: what `handsign spell` and the page add to this model, where its labels have their shapes."""
    from handsign.spell.motion import reads_j_and_z  # spell sits above bundle only for this card's text

    if not reads_j_and_z(meta.labels):
        return []
    return [
        "## Spelling: 26 letters with J and Z",
        "",
        "`handsign spell VIDEO` and the page's live route read all 26 letters with this model: J and Z are "
        "motions (the I shape's little finger draws a hook; the index of the D shape draws a Z), read from the "
        "hand's trajectory over 1.2 s by the bundled motion model `motion.json` (a 144-32-3 MLP, gated by this "
        "model's I/Y and D), then the decoder puts the letters into words (docs/spell.md).",
        "",
        "- The motion model was trained on **synthetic clips**: the real I and D shapes of hand1-hand4 moved "
        "along J and Z paths with varied speed, size, tilt and noise (no recording of a J or Z exists here); "
        "every J/Z figure comes from such clips, held-out hand5's for the model's own frame recall.",
        "- Spelling streams of each held-out person's real landmarks (`python benchmarks/spell.py`, seeds 0 and "
        "1, 305 words, 59 with j or z): mean character error rate 3.55 %, 3.74 % on the J/Z words "
        "(`benchmarks/results/spell.json`).",
        "",
    ]


def model_card(meta: ModelMeta, onnx: dict, out: Path) -> str:
    m = meta.metrics
    det = m.get("detection", {}).get("overall", {})
    lopo = m.get("leave_one_person_out", {})
    fused = m.get("fusion_leave_one_person_out", {})
    fusion = meta.fusion
    people = sorted(lopo.get("per_person", {}))
    lines = [
        f"# Model card: {meta.name}",
        "",
        f"Reads the {len(meta.labels)} static ASL letters ({''.join(meta.labels)}) from a photo: MediaPipe "
        f"Hands finds the hand and its 21 landmarks, `handsign.hands.features` turns them into "
        f"{meta.architecture['args']['in_features']} numbers that ignore position, size and which hand, and a "
        f"small MLP (`{json.dumps(meta.architecture, sort_keys=True)}`) reads the letter.",
        _fusion_text(fusion),
        "",
        "## Use",
        "",
        "```bash",
        f"handsign predict --model {meta.name} photo.jpg          # the route is printed: via landmarks / pixels",
        f"handsign predict --model {meta.name} --json photo.jpg   # + the 21 points in the photo's pixels",
        "```",
        "",
        "## Data",
        "",
        f"- {meta.data.get('n_photos', '?')} real colour photos of "
        f"{len(meta.data.get('people', []))} people ({', '.join(meta.data.get('people', []))}), "
        f"the Massey University ASL hand-gesture set (24 static letters; `../shared/data/SOURCES.md`). Offered by "
        f"its authors for research use; cite: {MASSEY_CITATION}.",
        f"- hand found by MediaPipe in {det.get('found', '?')} of {det.get('photos', '?')} photos "
        f"({_pct(det.get('rate'))})",
        "",
        "## Training",
        "",
        f"- command: `{meta.bundle['command']}`",
        f"- recipe settings: `{json.dumps(meta.config, sort_keys=True)}`",
        f"- versions: `{json.dumps(meta.versions, sort_keys=True)}`",
        "",
        "## Accuracy: leave one person out",
        "",
        "Trained on four people, tested on the fifth, for each of the five; a photo where no hand is found counts "
        "as wrong. These are the only honest figures for new people: photos of one person are near-copies.",
        "",
        f"| held-out person | {' | '.join(people)} | mean |",
        f"|---|{'---|' * len(people)}---|",
        f"| landmark model (this run) | {' | '.join(_pct(lopo['per_person'][p]['accuracy']) for p in people)} | "
        f"**{_pct(lopo.get('mean_accuracy'))}** |",
    ]
    if fused:
        for row in fused.get("rows", []):
            lines.append(f"| {row['name']} | {' | '.join(_pct(row['per_person'].get(p)) for p in people)} | "
                         f"**{_pct(row['mean'])}** |")
        lines += ["", f"From `{fused.get('source', 'benchmarks/hands_lopo.py')}` (seeds {fused.get('seeds')})."]
    lines += [
        "",
        "## Files",
        "",
        f"- `{out.name}` (weights + metadata), `{out.with_suffix('.json').name}`, `{out.with_suffix('.onnx').name}` "
        f"(input `features` [N, {meta.architecture['args']['in_features']}] float32, opset {onnx['opset']}; max "
        f"|logit difference| vs torch {onnx['max_abs_diff']:.3g})" + (f", and the pixel model "
                                                                     f"`{fusion['pixel_model']}.*`" if fusion else ""),
        "",
    ] + _spelling_section(meta) + [
        "## Limitations",
        "",
        "- Trained on five people's right hands (left hands are mirrored first), photographed against black; "
        "other people, skin tones, lighting and camera angles are less certain than the figures above.",
        "- A photo is one still shape, so `predict` reads the 24 static letters only: j and z are motions, read "
        "when spelling (above). m/n/s/t/a and u/v/r differ by small finger "
        "positions that a landmark model can confuse when MediaPipe places a finger wrongly.",
        "- The probability is a confidence score, not a calibrated probability; below the floor "
        "(`--min-confidence`, 0.5) the answer is \"not sure\".",
        "",
    ]
    return "\n".join(lines)
