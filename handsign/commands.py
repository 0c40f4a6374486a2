"""What each `handsign` command runs: a few lines over the Python API of the same name.

The parsers (flags, help) are in handsign.cli; `a` is the parsed argparse namespace. A module that imports
torch or fastapi is imported inside its command (the comment names which), so that `handsign --help`,
`handsign data` and `predict --backend onnx` (the torch-free deploy install) never load them.
"""

from __future__ import annotations

import json
import sys

from handsign.train.config import RECIPES, flag_fields, make_config
from handsign.data.sources import format_status, status
from handsign.errors import HandsignError
from handsign.infer.export import TOLERANCE, export
from handsign.data.fetch import fetch
from handsign.infer.predict import iter_predict


# what --resume takes besides the run folder: the run's own config.json decides everything else
_RESUME_FLAGS = ("resume", "epochs", "quiet", "nproc")


def _flags_given_except(a, taken) -> list[str]:
    """The flags given on the command line (not left at their default) other than `taken`, as --names."""
    return [f"--{k.replace('_', '-')}" for k, v in vars(a).items()
            if v not in (None, False, "") and k not in (*taken, "func", "parser", "command")]


def cmd_train(a) -> int:
    """Every recipe, pixel or landmark, the same way: its config from the flags, then train() (or torchrun)."""
    if a.resume:  # a flag given beside --resume would be silently ignored: say so instead
        ignored = _flags_given_except(a, _RESUME_FLAGS)
        if ignored:
            raise HandsignError(f"{', '.join(ignored)}: --resume continues {a.resume} with the settings in its "
                                f"config.json; only --epochs (to train further) applies")
    config = None if a.resume else config_from_args(a)  # a bad flag fails here once, not in every rank
    from handsign.train import distributed  # torch
    from handsign.train.loop import train  # torch

    if a.nproc is not None and not distributed.launched():  # this process starts N copies under torchrun
        return distributed.train_multiprocess(config, a.nproc, resume=a.resume, epochs=a.epochs if a.resume else None,
                                              show_progress=not a.quiet)
    train(config, resume=a.resume, epochs=a.epochs if a.resume else None, show_progress=not a.quiet)
    return 0


def config_from_args(a):
    """The config of `train`'s parsed flags: the recipe's family's config, its settings with the flags given on
    top; a flag that is not a setting of that family is refused (make_config names it)."""
    return make_config(a.recipe, **{f.name: getattr(a, f.name) for f in flag_fields()})


def cmd_evaluate(a) -> int:
    from handsign.infer.evaluate import evaluate, format_report  # torch

    result = evaluate(a.checkpoint, split=a.split, data_dir=a.data_dir, out=a.out, device=a.device)
    for note in result["notes"]:
        print(note, file=sys.stderr)
    print(json.dumps(result) if a.json else format_report(result))
    return 0


def cmd_recipes(a) -> int:
    width = max(map(len, RECIPES))
    for name, r in RECIPES.items():
        print(f"{name:<{width}}  {r['description']}")
    return 0


def cmd_augment_preview(a) -> int:
    from handsign.train.preview import augment_preview  # torch

    path = augment_preview(recipe=a.recipe, dataset=a.dataset, n=a.n, copies=a.copies, seed=a.seed,
                           data_dir=a.data_dir, out=a.out, per_batch=a.per_batch, augment=a.augment)
    print(f"wrote {path}")
    return 0


def cmd_predict(a) -> int:
    failed, done = [], 0

    def skip(name, error):  # a bad image among many: report it, predict the others, exit 2 at the end
        failed.append(name)
        print(f"handsign: error: {error}", file=sys.stderr)

    for r in iter_predict(a.inputs, a.model, top_k=a.top_k, backend=a.backend, min_confidence=a.min_confidence,
                          batch_size=a.batch_size, on_error=skip):
        done += 1
        if a.json:
            print(json.dumps(r))
        else:
            top = ", ".join(f"{lbl} {p:.1%}" for lbl, p in r["top"])
            answer = f"{r['label']} ({r['probability']:.1%})" if r["confident"] else \
                f"not sure (best guess {r['label']}, {r['probability']:.1%})"
            # the route is shown for a hand-landmark model: its answers come via landmarks, or via pixels
            # with a reason (a pixel model's answers are all via pixels and say nothing more)
            routed = r["via"] == "landmarks" or r.get("reason")
            via = f"  via {r['via']}" + (f" ({r['reason']})" if r.get("reason") else "") if routed else ""
            print(f"{r['path']}: {answer}  top: {top}{via}")
    if failed:
        if done + len(failed) > 1:  # one image: its own error line says it all
            print(f"handsign: error: {len(failed)} of {done + len(failed)} images could not be read",
                  file=sys.stderr)
        return 2
    return 0


def cmd_spell(a) -> int:
    from handsign.spell import spell  # OpenCV and MediaPipe, when it runs

    r = spell(a.source, a.model, backend=a.backend, fps=a.fps, progress=not a.quiet)
    if "reason" in r:  # an empty text is an answer (nothing was signed), not an error: said on stderr, exit 0
        print(f"handsign: {a.source}: {r['reason']}", file=sys.stderr)
    if a.json:
        print(json.dumps(r))
    elif r["text"]:
        print(r["text"])
    return 0


def cmd_export(a) -> int:
    r = export(a.model, a.out, format=a.format)
    print(f"wrote {r['path']} (opset {r['opset']}, input {r['input']} -> logits)")
    print(f"check: max |logit difference| ONNX Runtime vs torch on {r['check_batch']} random images: "
          f"{r['max_abs_diff']:.3g} (logits up to {r['max_abs_logit']:.3g}; tolerance {TOLERANCE:g} x max(1, that))")
    return 0


def cmd_import_course_model(a) -> int:
    from handsign.course.course_import import import_course_model  # torch

    labels = [x.strip() for x in a.labels.split(",")] if a.labels else None
    r = import_course_model(a.pth, a.out, labels=labels)
    print(f"imported {a.pth}: {r['description']}")
    print(f"check: max |logit difference| vs the course model on {r['check_batch']} random images: "
          f"{r['max_abs_diff']:.3g}")
    print(f"wrote {r['path']}")
    return 0


def cmd_bundle(a) -> int:
    from handsign.bundle import bundle  # torch (the landmark model's recipe)

    paths = bundle(a.checkpoint, a.name, a.out, command=a.command, pixel_model=a.pixel_model,
                   pixel_weight=a.pixel_weight, lopo_report=a.lopo_report)
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_serve(a) -> int:
    from handsign.serve import DEFAULT_MODELS, Limits, serve  # fastapi

    if not 0 < a.port < 65536:
        raise HandsignError(f"--port must be in 1..65535, not {a.port}")
    limits = Limits(max_upload_bytes=int(a.max_upload_mb * 2**20), max_pixels=a.max_pixels,
                    max_concurrency=a.max_concurrency, body_timeout=a.body_timeout, header_timeout=a.header_timeout)
    serve(a.model or DEFAULT_MODELS, host=a.host, port=a.port, backend=a.backend, limits=limits,
          min_confidence=a.min_confidence, access_log=a.access_log)
    return 0


def cmd_reproduce(a) -> int:
    from handsign.course.reproduce import reproduce  # torch

    reproduce(a.out, quick=a.quick, data_dir=a.data_dir, images=a.images, seed=a.seed, device=a.device,
              threads=a.threads, show_progress=not a.quiet)
    return 0


def cmd_photo_eval(a) -> int:
    from handsign.course.photo_eval import PHOTO_SEED, format_photo_eval, photo_eval  # torch (the test split)

    r = photo_eval(a.models, n_per_class=a.n_per_class, seed=PHOTO_SEED if a.seed is None else a.seed,
                   data_dir=a.data_dir, preprocess=a.preprocess, backend=a.backend, save_images=a.save_images)
    print(json.dumps(r) if a.json else format_photo_eval(r))
    return 0


def cmd_data(a) -> int:
    rows = status(a.data_dir, verify=not a.no_verify)
    print(json.dumps(rows) if a.json else format_status(rows, a.data_dir))
    return 0


def cmd_data_fetch(a) -> int:
    fetch(a.names, a.data_dir, source=a.source, url=a.url, mirrors=a.mirror, progress=not a.quiet)
    return 0
