"""Command line: the parsers of the commands in handsign.commands, a thin layer over the Python API.

`train`'s flags are generated from TrainConfig (add_config_flags). A user's mistake (bad flag, missing
file, bad data, hostile model) prints one line `handsign: error: ...` and exits 2; a stopped training run
exits 128 + the signal number.
"""

from __future__ import annotations

import argparse
import sys

from handsign import __version__, commands
from handsign.train.config import CHOICES, CONFIGS, FLAG_TYPES, field_help, flag_fields
from handsign.errors import HandsignError


def add_config_flags(p) -> None:
    """One flag per field of the families' configs (handsign.train.config.flag_fields): `--kebab-name`, its type,
    its help (the field's comment, naming the family when only one has it) and its choices (config.CHOICES).
    Every default is None: only what is given overrides the recipe. A bool field is `--name` / `--no-name`."""
    helps = field_help()
    for f in flag_fields():
        flag = "--" + f.name.replace("_", "-")
        owners = [family for family, cls in CONFIGS.items() if f.name in {g.name for g in flag_fields(cls)}]
        only = f"({owners[0].rstrip('s')} recipes) " if len(owners) < len(CONFIGS) else ""
        text = (only + helps.get(f.name, "")).replace("%", "%%")
        if FLAG_TYPES[f.type] is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            p.add_argument(flag, type=FLAG_TYPES[f.type], choices=CHOICES.get(f.name), default=None, help=text)


def _add_train(sub):
    p = sub.add_parser("train", help="train a model from a recipe", description="Train a model. "
                       "Start from a named recipe (see 'handsign recipes') and override any setting.")
    p.add_argument("--recipe", default="", help="named recipe, e.g. course-asl-cnn")
    p.add_argument("--resume", metavar="RUN", help="continue the stopped run in folder RUN")
    add_config_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, metavar="N", help="train with N processes (DistributedDataParallel: "
                   "one per GPU with --device cuda, else on CPU); --batch-size is per process")
    p.set_defaults(func=commands.cmd_train)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="accuracy, per-class table, confusion matrix, worst mistakes")
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN")
    p.add_argument("--split", choices=["test", "valid"], default="test")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="folder for confusion.png and mistakes.png")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=commands.cmd_evaluate)


def _add_recipes(sub):
    p = sub.add_parser("recipes", help="list the named recipes")
    p.set_defaults(func=commands.cmd_recipes)


def _add_augment_preview(sub):
    p = sub.add_parser("augment-preview", help="PNG grid of training images and augmented copies")
    p.add_argument("--recipe", default="course-asl-cnn-aug")
    p.add_argument("--dataset", choices=["mnist", "sign_mnist"])
    p.add_argument("--augment", choices=["course", "photo"], default="course")
    p.add_argument("--per-batch", action="store_true", help="one draw for all copies, as the course did")
    p.add_argument("--n", type=int, default=8, help="number of training images (rows)")
    p.add_argument("--copies", type=int, default=7, help="augmented copies per image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--out", default="augment-preview.png")
    p.set_defaults(func=commands.cmd_augment_preview)


def _add_predict(sub):
    p = sub.add_parser("predict", help="predict the label of image files")
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR|GLOB")
    p.add_argument("--model", default="asl", help="bundled name (asl, mnist) or a checkpoint/run/.onnx path")
    p.add_argument("--top-k", type=int, default=3, help="how many labels to list per image (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per image, one per line")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="auto: ONNX Runtime when the model's .onnx file exists and onnxruntime is installed, "
                   "else torch")
    p.add_argument("--batch-size", type=int, default=64, help="images decoded and predicted together")
    p.add_argument("--min-confidence", type=float, metavar="P", help="answer 'not sure' when the top "
                   "probability is below P (default: the model's own, else 0.5; 0 = always answer)")
    p.set_defaults(func=commands.cmd_predict)


def _add_spell(sub):
    p = sub.add_parser("spell", help="read fingerspelled words from a video or a folder of frames",
                       description="Read fingerspelled words: each frame's hand through a hand-landmark model, "
                       "then the decoder (letters held still, words split by pauses without a hand). Prints "
                       "the text. No hand in any frame: an empty text, the reason on stderr, exit 0.")
    p.add_argument("source", metavar="VIDEO_OR_FOLDER", help="a video file (mp4, webm, avi, mov, ...) or a "
                   "folder of frames (image files, in name order)")
    p.add_argument("--model", default="asl", help="a hand-landmark model: bundled name (asl) or a "
                   "checkpoint/run/.onnx path")
    p.add_argument("--json", action="store_true", help="print one JSON object: text, letters and words with "
                   "their times (ms), frame counts, speed")
    p.add_argument("--fps", type=float, metavar="N", help="frames per second of a folder of frames (default 30); "
                   "for a video, used only when its container names no frame rate")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto", help="as predict's")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=commands.cmd_spell)


def _add_export(sub):
    p = sub.add_parser("export", help="export a model to ONNX (checked against torch)",
                       description="Export a checkpoint to ONNX with a dynamic batch dimension and the model's "
                       "metadata embedded, then check ONNX Runtime against torch on a random batch.")
    p.add_argument("model", metavar="MODEL", help="checkpoint, run folder or bundled name")
    p.add_argument("out", metavar="OUT", help="output .onnx file; name it like the checkpoint (best.safetensors "
                   "-> best.onnx) so that 'predict --backend auto' finds it")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.set_defaults(func=commands.cmd_export)


def _add_import_course_model(sub):
    p = sub.add_parser("import-course-model", help="convert the course's torch.save(model) file, safely",
                       description="Read a model.pth the course saved with torch.save(model) without running "
                       "its pickle (allow-listed torch layers only) and write a handsign checkpoint.")
    p.add_argument("pth", metavar="MODEL_PTH")
    p.add_argument("out", metavar="OUT", help="output .safetensors file (or a folder: OUT/model.safetensors)")
    p.add_argument("--labels", help="comma-separated class names (default: ASL letters for 24 outputs, "
                   "digits for 10)")
    p.set_defaults(func=commands.cmd_import_course_model)


def _add_bundle(sub):
    p = sub.add_parser("bundle", help="package a trained model: .safetensors, .json, .onnx and a model card",
                       description="Write NAME.safetensors, NAME.json, NAME.onnx and NAME.md (model card) "
                       "for a trained checkpoint; `--out handsign/bundled` makes it a bundled model.")
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN")
    p.add_argument("name", metavar="NAME", help="model name, e.g. asl or mnist")
    p.add_argument("--out", default="bundle", help="output folder (default ./bundle)")
    p.add_argument("--command", help="the exact command that trained it (default: rebuilt from its config)")
    p.add_argument("--pixel-model", help="a hand-landmark model: the pixel model in --out it is fused with")
    p.add_argument("--pixel-weight", type=float, default=0.0, help="its weight in the fusion (0..1)")
    p.add_argument("--lopo-report", help="a hand-landmark model: benchmarks/hands_lopo.py's JSON for the model card")
    p.set_defaults(func=commands.cmd_bundle)


def _add_serve(sub):
    p = sub.add_parser("serve", help="web page, POST /predict and the Open Inference Protocol v2 over HTTP",
                       description="Serve models over HTTP: a page at /, POST /predict for image files, "
                       "/v2/... (KServe/Triton Open Inference Protocol) for tensors, /openapi.json.")
    p.add_argument("--model", action="append", metavar="NAME_OR_PATH",
                   help="bundled name, checkpoint/run/.onnx path, or SERVED_NAME=PATH; repeat for more "
                        "(default: asl and mnist; the first is the default model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body, MiB (413 above)")
    p.add_argument("--max-pixels", type=int, default=25_000_000, help="largest image, width x height")
    p.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs "
                   "throughput)")
    p.add_argument("--min-confidence", type=float, metavar="P", help="answer 'not sure' below this top "
                   "probability (default: each model's own, else 0.5)")
    p.add_argument("--max-concurrency", type=int, default=64, help="inference requests in flight; more get "
                   "503 with Retry-After at once (default 64)")
    p.add_argument("--body-timeout", type=float, default=30.0, help="seconds a request body may take to arrive "
                   "(408 and the connection closed after; default 30)")
    p.add_argument("--header-timeout", type=float, default=10.0, help="seconds a connection may take to send its "
                   "request headers before it is closed (default 10)")
    p.set_defaults(func=commands.cmd_serve)


def _add_reproduce(sub):
    p = sub.add_parser("reproduce", help="run the course's five stages and write an HTML report",
                       description="Run the five stages of NVIDIA's Fundamentals of Deep Learning course (MNIST MLP, "
                       "ASL MLP, ASL CNN, ASL CNN with augmentation, deployment) plus any fast-* recipes, and "
                       "write OUT/report.html and OUT/report.json.")
    p.add_argument("--out", required=True, help="new (or empty) folder for the report and its runs")
    p.add_argument("--quick", action="store_true", help="a few minutes on a CPU: subsets and fewer epochs")
    p.add_argument("--data-dir", help="data root (default $HANDSIGN_DATA or ./data)")
    p.add_argument("--images", nargs="+", metavar="PATH", help="images/folders/globs for the deployment stage "
                   "(default: a few images rendered from the Sign-MNIST test file)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_reproduce)


def _add_photo_eval(sub):
    p = sub.add_parser("photo-eval", help="accuracy on synthetic webcam-like photos made from the ASL test split",
                       description="Stage Sign-MNIST test images as 200x200 colour JPEG 'photos' (backgrounds, "
                       "light, blur, noise; a separate seed from training) and report each model's accuracy on "
                       "them next to its plain test accuracy, with and without the photo preprocessing.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="checkpoint, run folder or bundled name (ASL)")
    p.add_argument("--n-per-class", type=int, default=40, help="pictures per letter (default 40: 960 in all)")
    p.add_argument("--seed", type=int, default=None, help="picture seed (default 8675309)")
    p.add_argument("--preprocess", choices=["both", "model", "plain", "photo"], default="both",
                   help="both: with the photo preprocessing off and on; model: each model's own spec")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="torch")
    p.add_argument("--save-images", metavar="DIR", help="also write the pictures as DIR/NNNNN-<letter>.jpg")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_photo_eval)


def _add_data(sub):
    p = sub.add_parser("data", help="the data sets: where handsign looks, verified or missing; 'data fetch' gets them",
                       description="Show every data set handsign knows (MNIST, Sign Language MNIST, the ASL photos): "
                       "where it is looked for, whether it is there and matches its published sha256, and how to "
                       "get it. 'handsign data fetch [NAME...]' downloads and verifies them.")
    p.add_argument("--data-dir", help="data root (default $HANDSIGN_DATA or ./data)")
    p.add_argument("--no-verify", action="store_true", help="only look for the files (skip the sha256 checks)")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=commands.cmd_data)
    fetch = p.add_subparsers(dest="data_command", metavar="fetch").add_parser(
        "fetch", help="download and verify data sets",
        description="Download data sets into DATA with a progress bar, verify each file's sha256 and only then "
        "rename it into place (a bad or truncated download is refused and removed). MNIST comes from "
        "torchvision's mirrors; Sign Language MNIST through kagglehub when it is installed and set up, or from "
        "--from/--url; the ASL photos from --from/--url. Without NAME: mnist and sign_mnist.")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="mnist, sign_mnist, asl_photos")
    # SUPPRESS: without it this parser's default would overwrite a --data-dir given before 'fetch'
    fetch.add_argument("--data-dir", default=argparse.SUPPRESS, help="data root (default $HANDSIGN_DATA or ./data)")
    fetch.add_argument("--from", dest="source", metavar="PATH", help="a zip, folder or file that holds the data set")
    fetch.add_argument("--url", help="download the data set (a zip or the file itself) from URL")
    fetch.add_argument("--mirror", action="append", metavar="URL", help="base URL for MNIST's files "
                       "(repeat; default: torchvision's mirrors)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.set_defaults(func=commands.cmd_data_fetch)


COMMANDS = [_add_data, _add_train, _add_evaluate, _add_predict, _add_spell, _add_recipes, _add_augment_preview,
            _add_reproduce, _add_export, _add_import_course_model, _add_bundle, _add_serve, _add_photo_eval]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="handsign", description="Train, evaluate and deploy small classifiers "
                                     "for MNIST digits and ASL letters.")
    parser.add_argument("--version", action="version", version=f"handsign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


# extra that provides a module a command may need: a missing one is a one-line hint, not a traceback
EXTRA_OF = {"torch": "train", "torchvision": "train", "matplotlib": "train", "onnx": "onnx",
            "onnxscript": "onnx", "onnxruntime": "deploy", "fastapi": "serve", "fastapi_offline": "serve", "uvicorn": "serve"}


_PATH_ERRORS = {FileExistsError: "a file is in the way where a folder is needed",
                NotADirectoryError: "a file is in the way where a folder is needed",
                IsADirectoryError: "a folder is in the way where a file is needed",
                PermissionError: "not allowed"}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except HandsignError as e:
        print(f"handsign: error: {e}", file=sys.stderr)
        signum = getattr(e, "signum", None)  # TrainingInterrupted; not imported here: it would import torch
        return 128 + signum if signum else 2
    except ModuleNotFoundError as e:
        root = (e.name or "").split(".")[0]
        if root not in EXTRA_OF:
            raise
        print(f"handsign: error: 'handsign {args.command}' needs {root}, which is not installed: "
              f"pip install 'handsign[{EXTRA_OF[root]}]'", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as e:
        # a path the user gave where a folder is a file, a file a folder, or one they may not write
        where = f"{e.filename}: " if e.filename else ""
        print(f"handsign: error: {where}{_PATH_ERRORS[type(e)]} ({e.strerror or e})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("handsign: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
