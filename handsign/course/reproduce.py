"""Reproduce the five stages of NVIDIA's "Fundamentals of Deep Learning" course and report them.

    reproduce("report-out", quick=True) -> the report document (also report.json + report.html)

Stages: 1 MNIST MLP, 2 ASL MLP, 3 ASL CNN, 4 ASL CNN with augmentation, 5 deployment of the
stage-4 model on new images; then any `fast-*` recipes beside the course's numbers. Every number
the HTML shows is taken from report.json (handsign.course.report_html renders the one from the other).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import time
from pathlib import Path

import torch

from handsign import __version__
from handsign.images import preprocess as pp
from handsign.files import atomic_write_bytes
from handsign.train.config import RECIPES, make_config
from handsign.course.lessons import deploy_line, lessons, next_steps, summary_line
from handsign.course.real_photos import real_photos
from handsign.course.report_html import render
from handsign.course.stages import COURSE_FIGURES, deploy, deploy_bundled, run_stage
from handsign.data.readers import load_dataset
from handsign.data.sources import KNOWN, missing_files, resolve_data_dir
from handsign.errors import HandsignError
from handsign.infer.predict import expand_inputs
from handsign.train.machine import select_device
from handsign.train.preview import augment_preview

QUICK_BANNER = "QUICK MODE: subsets and fewer epochs, numbers are not the course's"
# per recipe: the first `limit` training samples (0 = all) and `epochs`, chosen so that in ~2.5 min on 2 idle
# cores each lesson points the way it does at full size where it can (benchmarks/quick_settings.py; every
# seed tried is in benchmarks/results/quick-settings.json). The MLP needs all the data for 5 epochs to reach
# the >90 % train accuracy that makes its overfitting visible; fast-asl runs all 8 of its epochs (768 steps
# of 256: since round seven that is the whole recipe, at about 1.7x the cost per step of the 12-epoch one
# these 8 were cut from); augmentation (stage 4) stays below the plain CNN in every quick budget tried, and
# the report says so.
QUICK = {
    "course-mnist-mlp": {"limit": 8000, "epochs": 2},
    "course-asl-mlp": {"limit": 0, "epochs": 5},
    "course-asl-cnn": {"limit": 8000, "epochs": 4},
    "course-asl-cnn-aug": {"limit": 8000, "epochs": 4},
    "fast-asl": {"limit": 0, "epochs": 8},
    "fast-mnist": {"limit": 8000, "epochs": 2},
}
QUICK_OTHER = {"limit": 8000, "epochs": 4}  # a fast-* recipe not listed above
COURSE_STAGES = ["course-mnist-mlp", "course-asl-mlp", "course-asl-cnn", "course-asl-cnn-aug"]

STAGE_TEXT = {
    "course-mnist-mlp": ("Digits with a multilayer perceptron",
                         "The classic first model: every 28x28 image is flattened into a list of 784 pixel "
                         "values and fed through two fully connected layers of 512 units. Handwritten digits are "
                         "centred and size-normalised, so even this simple model does well."),
    "course-asl-mlp": ("ASL letters with the same perceptron",
                       "The same kind of model on photos of hands spelling 24 letters (j and z need motion and are "
                       "left out). Hands vary in position, size and lighting much more than digits, and a flat "
                       "list of pixels cannot tell that a shifted hand is the same hand: the model memorises "
                       "the training images."),
    "course-asl-cnn": ("ASL letters with a convolutional network",
                       "Convolutions look at small neighbourhoods of pixels and share their weights across "
                       "the whole picture, so a pattern learned in one place is recognised anywhere. Pooling "
                       "and batch normalisation make the model smaller and training steadier."),
    "course-asl-cnn-aug": ("The CNN with data augmentation",
                           "Each training image is shown with a small random rotation, crop, mirror flip and "
                           "brightness/contrast change, so the model sees a new variant every epoch and cannot "
                           "simply memorise pixels. The grid below shows what the model was trained on."),
}


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HandsignError(f"--out {out}: exists and is not an empty folder; choose a new folder for the report")


def _dataset(recipe: str) -> str:
    return RECIPES[recipe]["settings"].get("dataset", "sign_mnist")


def _check_data(recipes: list[str], data_dir) -> dict:
    """Load every split of the data sets that are there now (a bad file stops the run before any training);
    returns {name: what is missing and how to get it} for the ones that are not there."""
    root, missing = resolve_data_dir(data_dir), {}
    for name in sorted({_dataset(r) for r in recipes}, reverse=True):
        lacking = missing_files(KNOWN[name], root)
        if lacking:
            ds = KNOWN[name]
            missing[name] = {"dataset": name, "title": ds.title, "where": str(root / ds.folder),
                             "lacking": lacking, "how": ds.how,
                             "text": f"needs data: {ds.title} ({root / ds.folder} lacks {', '.join(lacking)}); "
                                     f"get it: {ds.how}"}
            continue
        for split in ("train", "test"):
            load_dataset(name, split, data_dir)
    return missing


def _needs_data_stage(recipe: str, need: dict) -> dict:
    """A stage that could not run: what it would have shown and how to get its data."""
    return {"recipe": recipe, "description": RECIPES[recipe]["description"], "needs_data": need,
            "course": COURSE_FIGURES.get(recipe)}


def _check_images(images) -> list[Path]:
    paths = expand_inputs([str(i) for i in images])
    for p in paths:
        pp.decode_image(p)  # a broken file fails now, not after an hour of training
    return paths


def differences(valid_fraction: float) -> list[dict]:
    """What handsign does differently from the course, in plain words for a learner."""
    vf = round(100 * valid_fraction)
    return [
        {"topic": "Which data is used for validation",
         "course": "The course passes the test file as its validation data, so the 'validation accuracy' it "
                   "prints each epoch is measured on the test images.",
         "handsign": f"handsign sets aside {vf} % of each letter of the training file (seeded) as validation data "
                     f"to pick the best epoch, and evaluates on the test file once, at the end.",
         "why": "Any choice made by looking at a score (which epoch to keep, which learning rate, which model) "
                "makes that score optimistic. The test file stays an honest estimate only if nothing was chosen "
                "with it. To compare with the course, read handsign's test column next to the course's "
                "validation figure: both are measured on the same test file."},
        {"topic": "Why the validation numbers on ASL look too good",
         "course": "Not discussed.",
         "handsign": "The validation accuracy on the ASL stages is reported, but the test accuracy is the one "
                     "to trust. To choose settings, `--valid-split groups` holds out whole groups of near-copies "
                     "instead, so validation images are as far from the training images as the test file's.",
         "why": "Sign-MNIST's training file is not thousands of independent photos: it was made from a small set "
                "of photos of a few people's hands, each turned into many slightly changed copies (crops, "
                "brightness, small rotations). A random validation split from it contains near-copies of "
                "training images, so its accuracy is close to the training accuracy. The test file comes from "
                "other photos, so the test accuracy is the honest number and is usually lower."},
        {"topic": "Random augmentation per image",
         "course": "The course applies its random transforms to the whole batch tensor at once, so all images of "
                   "a batch share one rotation, crop, flip and colour change.",
         "handsign": "handsign draws new random values for every image (the setting augment_per_batch "
                     "reproduces the course's behaviour).",
         "why": "More different variants per training step give the model more to learn from at the same cost."},
        {"topic": "Best epoch, not only the last",
         "course": "The course keeps the model as it is after the last epoch.",
         "handsign": "handsign saves the epoch with the best validation accuracy (best.safetensors) and the last "
                     "one, and reports the test accuracy of both.",
         "why": "Validation accuracy can go down again in later epochs; keeping the best one is cheap insurance."},
        {"topic": "Saving and loading the model",
         "course": "The course saves the whole model object with torch.save (Python pickle) and re-creates the "
                   "letter list by hand when predicting.",
         "handsign": "handsign saves the weights as safetensors with a JSON description (architecture, letters, "
                     "preprocessing, metrics); loading never runs pickled code.",
         "why": "A pickle file can run arbitrary code when loaded, and a model without its labels and "
                "preprocessing is easy to misuse."},
        {"topic": "Preparing a new photo",
         "course": "The course resizes a new photo straight to 28x28 gray, which squashes a photo that is not "
                   "square.",
         "handsign": "handsign pads a non-square photo to a square with its border colour before resizing, with "
                     "the preprocessing stored in the model file.",
         "why": "The hand keeps its shape, and training, evaluation, prediction and the web app all prepare "
                "images the same way."},
    ]


def _machine(device: str) -> dict:


    return {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "device": str(select_device(device)), "cpu_threads": torch.get_num_threads(), "handsign": __version__}


def reproduce(out, quick: bool = False, data_dir=None, images=None, *, seed: int = 0, device: str = "auto",
              threads: int = 0, limit: int | None = None, epochs: int | None = None, n_samples: int = 6,
              top_k: int = 3, log=print, show_progress: bool = False) -> dict:
    """Run the course's stages (+ fast-* recipes), write out/report.json and out/report.html.

    quick: each stage trains on QUICK[recipe]'s subset for its epochs.
    limit, epochs: explicit overrides for every stage (for tests); they also mark the run as quick.
    images: files/folders/globs to predict in stage 5; None renders a few Sign-MNIST test images.
    A stage whose data set is missing is skipped and marked "needs data" (with how to get it); stage 5
    then runs on the bundled models, so a machine with no data still gets a report (and exit 0).
    """
    t_start = time.perf_counter()
    out = Path(out)
    fast = [name for name in RECIPES if name.startswith("fast-")]
    explicit = {k: v for k, v in (("limit", limit), ("epochs", epochs)) if v is not None}
    quick = quick or bool(explicit)

    def overrides(recipe: str) -> dict:
        return {**(QUICK.get(recipe, QUICK_OTHER) if quick else {}), **explicit}

    _check_out(out)
    image_paths = _check_images(images) if images else []
    missing = _check_data(COURSE_STAGES + fast, data_dir)
    out.mkdir(parents=True, exist_ok=True)

    doc = {"title": "Reproducing NVIDIA's Fundamentals of Deep Learning with handsign",
           "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "quick": quick, "quick_banner": QUICK_BANNER if quick else "",
           "quick_settings": {r: overrides(r) for r in COURSE_STAGES + fast} if quick else {},
           "machine": _machine(device), "seed": seed, "stages": [], "needs_data": list(missing.values())}
    for m in missing.values():
        log(m["text"])
    if missing:
        log("running what needs no data; the report marks the other stages 'needs data'")
    n_total = len(COURSE_STAGES) + 1

    def stage_or_skip(recipe: str, asl: bool, number=None) -> dict:
        if _dataset(recipe) in missing:
            stage = _needs_data_stage(recipe, missing[_dataset(recipe)])
        else:
            log(f"== {f'stage {number}/{n_total}' if number else 'fast recipe'}: {recipe} (training; its log: "
                f"{out / 'runs' / recipe / 'train.log'})")
            stage = run_stage(recipe, out, data_dir=data_dir, overrides=overrides(recipe), seed=seed, device=device,
                              threads=threads, asl=asl, log=_run_log(out, recipe), show_progress=show_progress)
        log(summary_line(number, n_total, stage))
        return stage

    for number, recipe in enumerate(COURSE_STAGES, 1):
        stage = stage_or_skip(recipe, recipe != "course-mnist-mlp", number)
        stage["number"] = number
        stage["title"], stage["intro"] = STAGE_TEXT[recipe]
        if recipe == "course-asl-cnn-aug" and "needs_data" not in stage:
            augment_preview(recipe, data_dir=data_dir, seed=seed, out=out / "augment-preview.png")
            stage["images"]["augment"] = "augment-preview.png"
        doc["stages"].append(stage)

    model_path = out / "runs" / COURSE_STAGES[-1] / "best.safetensors"
    if model_path.is_file():
        dep = deploy(model_path, out, image_paths, data_dir, n_samples, top_k, seed)
    else:
        dep = deploy_bundled(out, image_paths, top_k)
    doc["deploy"] = {"number": n_total, **dep}
    log(deploy_line(n_total, doc["deploy"]))
    if model_path.is_file():
        # quick: every 3rd photo of the four training people (MediaPipe on ~520 photos, not ~1,555, the first time)
        doc["deploy"]["real"] = real_photos(model_path, out, data_dir, epochs=60 if quick else 150, seed=seed,
                                            every=3 if quick else 1, log=log)
    else:
        doc["deploy"]["real"] = {"skipped": "needs the stage-4 model, which needs Sign Language MNIST"}

    runs = []
    for recipe in fast:
        runs.append(stage_or_skip(recipe, False))
    aug = doc["stages"][-1]
    doc["fast"] = {"recipes": runs, "course_recipe": aug["recipe"], "course": COURSE_FIGURES[aug["recipe"]],
                   "note": "" if fast else "No fast-* recipe is defined in this version of handsign "
                                           "(handsign.train.config.RECIPES), so there is nothing to compare yet."}
    doc["lessons"] = lessons(doc)
    doc["differences"] = differences(make_config(COURSE_STAGES[0]).valid_fraction)
    doc["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    atomic_write_bytes(out / "report.json", json.dumps(doc, indent=2).encode())
    atomic_write_bytes(out / "report.html", render(doc).encode())
    for lesson in doc["lessons"]:
        if lesson["holds"] is not None:
            log(f"lesson: {lesson['lesson']}: {lesson['note']} ({lesson['numbers']})")
    if all(x["holds"] is None for x in doc["lessons"]):
        log("lessons: not checked (their stages need data)")
    log(f"wrote {out / 'report.html'} and {out / 'report.json'} ({doc['wall_seconds']:.0f} s)")
    log("next:\n" + "\n".join(f"  {step}" for step in next_steps(doc, out)))
    return doc


def _run_log(out: Path, recipe: str):
    """train()'s own lines (config, each epoch) go to runs/<recipe>/train.log, not the terminal."""
    path = out / "runs" / recipe / "train.log"

    def log(*parts):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            print(*parts, file=f)
    return log
