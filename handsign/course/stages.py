"""The course's stages, one function each: train and evaluate a recipe (`run_stage`), and deploy the
stage-4 model on new pictures (`deploy`, or `deploy_bundled` when there is no data). `reproduce.py` runs
them in order and writes the report.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from handsign.images import preprocess as pp
from handsign.saved.checkpoint import load_model, read_metadata
from handsign.train.config import RECIPES, make_config
from handsign.data.readers import load_dataset
from handsign.infer.evaluate import evaluate
from handsign.models import count_parameters
from handsign.infer.predict import Predictor, resolve_model
from handsign.train.loop import train

# what the course published for each stage, in %; the course measured "validation" on the test file
COURSE_FIGURES = {
    "course-mnist-mlp": {"valid": [97.4, 98.3], "train": None,
                         "text": "97.4-98.3 % validation accuracy (measured on the MNIST test file)"},
    "course-asl-mlp": {"valid": [81.0, 81.0], "train": [100.0, 100.0],
                       "text": "about 81 % validation accuracy with about 100 % training accuracy: overfitting"},
    "course-asl-cnn": {"valid": [97.0, 98.0], "train": None,
                       "text": "about 97-98 % validation accuracy (measured on the Sign-MNIST test file)"},
    "course-asl-cnn-aug": {"valid": [99.0, 99.0], "train": None,
                           "text": "about 99 % validation accuracy (measured on the Sign-MNIST test file)"},
}

def _to_percent(x):
    """fraction -> percent rounded to 2 decimals (the form the report shows); None stays None."""
    return None if x is None else round(100 * float(x), 2)


def _course_comparison(recipe: str, test_pct, quick: bool) -> str:
    fig = COURSE_FIGURES.get(recipe)
    if fig is None or test_pct is None:
        return ""
    if quick:
        return "Quick mode trains on a subset for fewer epochs, so this number is not comparable with the course's."
    lo, hi = fig["valid"]
    if lo - 1 <= test_pct <= hi + 1:
        return (f"handsign's test accuracy {test_pct:.2f} % matches the course's figure "
                f"({fig['text'].split(' (')[0]}) within 1 point.")
    side = "above" if test_pct > hi else "below"
    diff = round(test_pct - hi if test_pct > hi else lo - test_pct, 2)
    return f"handsign's test accuracy {test_pct:.2f} % is {diff:.2f} points {side} the course's figure."


def run_stage(recipe: str, out: Path, *, data_dir, overrides: dict, seed: int, device: str, threads: int,
              asl: bool, log, show_progress: bool) -> dict:
    """Train one recipe into out/runs/<recipe>; evaluate on test; the stage's part of report.json.
    `log` gets train's own lines (config, epochs); reproduce sends them to the run's train.log."""
    run_dir = out / "runs" / recipe
    cfg = make_config(recipe, data_dir=str(data_dir) if data_dir else None, out=str(run_dir), seed=seed,
                      device=device, threads=threads, **overrides)
    t0 = time.perf_counter()
    result = train(cfg, log=log, show_progress=show_progress)
    seconds = time.perf_counter() - t0
    best, last = result.metrics["best"], result.metrics["last"]
    data = read_metadata(result.best).data
    rel = lambda p: Path(p).relative_to(out).as_posix()  # noqa: E731 - paths in the report are relative
    stage = {
        "recipe": recipe, "description": RECIPES[recipe]["description"], "config": cfg.to_dict(),
        "run_dir": rel(run_dir), "seconds": round(seconds, 1), "epochs_run": len(result.history),
        "best_epoch": best["epoch"],
        "parameters": count_parameters(load_model(result.best).model),
        "sizes": {"train": data.get("n_train"), "valid": data.get("n_valid"), "test": data.get("n_test")},
        "accuracy": {"train": _to_percent(best["train_acc"]), "valid": _to_percent(best["valid_acc"]),
                     "test": _to_percent(best.get("test_acc"))},
        "last": {"epoch": last["epoch"], "train": _to_percent(last["train_acc"]), "valid": _to_percent(last["valid_acc"]),
                 "test": _to_percent(last.get("test_acc"))},
        "history": [{"epoch": h["epoch"], "train": _to_percent(h["train_acc"]), "valid": _to_percent(h["valid_acc"]),
                     "train_loss": round(h["train_loss"], 4), "valid_loss": round(h["valid_loss"], 4)}
                    for h in result.history],
        "diagnosis": dict(result.diagnosis),
        "images": {"curves": rel(run_dir / "curves.png")},
    }
    if recipe in COURSE_FIGURES:
        stage["course"] = COURSE_FIGURES[recipe]
        stage["comparison"] = _course_comparison(recipe, stage["accuracy"]["test"], bool(overrides))
    if asl:
        ev = evaluate(result.best, split="test", data_dir=data_dir, out=run_dir, device=device)
        stage["most_confused"] = ev["most_confused"]
        stage["worst_mistakes"] = [{**m, "probability": _to_percent(m["probability"])} for m in ev["worst_mistakes"]]
        stage["per_class"] = {k: _to_percent(v["accuracy"]) for k, v in ev["per_class"].items()}
        stage["images"]["confusion"] = rel(run_dir / "confusion.png")
        if (run_dir / "mistakes.png").is_file():
            stage["images"]["mistakes"] = rel(run_dir / "mistakes.png")
    return stage


def _rel(path: Path, root: Path) -> str:
    """`path` as the report shows it: relative to the report folder when inside it."""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:60] or "image"


def render_samples(out_dir: Path, data_dir, n: int, seed: int) -> list[dict]:
    """n test images of distinct letters, upscaled to 186x184 RGBA PNGs like the course's photos."""
    test = load_dataset("sign_mnist", "test", data_dir)
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed)).tolist()
    picked, seen = [], set()
    for i in order:
        letter = test.classes[int(test.labels[i])]
        if letter not in seen:
            seen.add(letter)
            picked.append((i, letter))
        if len(picked) == n:
            break
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for k, (i, letter) in enumerate(picked, 1):
        img = Image.fromarray(test.images[i, 0].numpy()).resize((186, 184), Image.Resampling.BICUBIC)
        path = out_dir / f"sample-{k}-{letter}.png"
        img.convert("RGBA").save(path)
        samples.append({"path": path, "true": letter, "test_index": i,
                        "source": f"test image {i} of sign_mnist_test.csv, upscaled to 186x184 RGBA"})
    return samples


def deploy(model_path: Path, out: Path, images, data_dir, n_samples: int, top_k: int, seed: int) -> dict:
    """Stage 5: load the saved stage-4 model and predict new image files, as the course's last notebook."""
    deploy_dir = out / "deploy"
    if images:
        items = []
        deploy_dir.mkdir(parents=True, exist_ok=True)
        for k, p in enumerate(images, 1):
            shown = deploy_dir / f"{k:02d}-{_safe_name(p.stem)}.png"
            img = pp.decode_image(p)
            img = img.convert("RGBA") if img.mode in ("RGBA", "LA", "P", "PA") else img.convert("RGB")
            img.thumbnail((256, 256))  # a copy inside the report folder: the report stays self-contained
            img.save(shown)
            items.append({"path": p, "shown": shown, "true": None, "source": f"given: {p.name}"})
    else:
        items = [{**s, "shown": s["path"]} for s in render_samples(deploy_dir, data_dir, n_samples, seed)]
    predictor = Predictor.load(model_path, backend="torch")
    preds = predictor.predict_files([it["path"] for it in items], top_k=top_k)
    rows = []
    for k, (it, pr) in enumerate(zip(items, preds), 1):
        levels = pp.preprocess_levels(pp.decode_image(it["path"]), predictor.spec)  # (1, 28, 28): what the model sees
        seen = Image.fromarray(levels[0]).resize((112, 112), Image.Resampling.NEAREST)
        seen_path = deploy_dir / f"input-{k:02d}.png"
        seen.save(seen_path)
        row = {"image": it["shown"].relative_to(out).as_posix(), "model_input": seen_path.relative_to(out).as_posix(),
               "source": it["source"], "true": it["true"], "label": pr["label"],
               "probability": _to_percent(pr["probability"]), "top": [{"label": lbl, "probability": _to_percent(p)}
                                                                for lbl, p in pr["top"]]}
        if it["true"] is not None:
            row["correct"] = pr["label"] == it["true"]
        rows.append(row)
    known = [r for r in rows if r["true"] is not None]
    return {"model": _rel(model_path, out), "top_k": top_k,
            "source": "given" if images else "rendered", "predictions": rows,
            "n_images": len(rows), "n_known": len(known), "n_correct": sum(r["correct"] for r in known)}


def draw_digits(out_dir: Path, digits: str = "0123456789") -> list[tuple[Path, str]]:
    """Digits drawn here (dark ink on white, 200x200, Pillow's own font): pictures for the bundled digit
    model when there is no data set to take test images from."""
    font = ImageFont.load_default(size=150)  # Pillow's bundled TrueType font: the same on every machine
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for d in digits:
        img = Image.new("L", (200, 200), 255)
        ImageDraw.Draw(img).text((100, 100), d, fill=0, font=font, anchor="mm", stroke_width=2, stroke_fill=0)
        path = out_dir / f"drawn-{d}.png"
        img.save(path)
        made.append((path, d))
    return made


def deploy_bundled(out: Path, image_paths: list[Path], top_k: int) -> dict:
    """Stage 5 with no trained stage-4 model (no data): the bundled models, on given images (asl) or on
    digits drawn here (mnist), through the same deploy() as a full run."""
    if image_paths:
        return {**deploy(resolve_model("asl"), out, image_paths, None, 0, top_k, 0), "bundled": "asl",
                "model": "handsign/bundled/asl.safetensors"}
    made = draw_digits(out / "deploy" / "drawn")
    dep = deploy(resolve_model("mnist"), out, [p for p, _ in made], None, 0, top_k, 0)
    dep["model"] = "handsign/bundled/mnist.safetensors"  # where it is in the package, not on this machine
    for row, (_, digit) in zip(dep["predictions"], made):  # deploy() saw them as given files: add the truth
        row.update(true=digit, correct=row["label"] == digit, source=f"the digit {digit}, drawn here in Pillow's font")
    known = dep["predictions"]
    return {**dep, "source": "made", "bundled": "mnist", "n_known": len(known),
            "n_correct": sum(r["correct"] for r in known)}
