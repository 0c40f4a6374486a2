"""Fingerspelled words read back from synthetic streams of real hand landmarks, each Massey person held out.

    python benchmarks/spell.py --data-dir ../shared/data [--seeds 0] [--people hand5] [--out benchmarks/results]

For each person P of the five (and each seed):
- the static letters: a landmark model trained without P (handsign.train.landmarks.fit, the hands-asl recipe);
- J and Z: a motion model (handsign.spell.motion_fit) trained on synthetic clips of the other four people;
- the test: every word of benchmarks/spell_words.txt (305 words: common ones, double letters, 59 with j or z)
  signed by P (handsign.spell.synth.stream, one stream per word, 30 frames/s): each letter a random photo's
  landmarks of P, held 150-600 ms with noise (1-3 % of the palm per point and frame) and slow drift,
  transitions of 60-200 ms (points interpolated), a bounce between double letters, no hand before and
  after the word, J and Z traced with P's own I and D shapes; read by the model, MotionReader and the
  decoder (the decoder's `motion` is hand_speed between hand frames);
- settings chosen on the training people only: decoder settings and the reader's settings (its gate, and
  whether y counts as evidence of the I shape) from a small grid, scored on streams of each training person
  Q read with a static model trained without both P and Q (so the static model is as unsure there as it is
  on P); never on P.
`--motion rules` puts template rules (benchmarks/spell_rules.py) in the MLP's place, their sigma chosen alike.
Scores: character error rate (edit distance / characters of the truth) and word accuracy, over all words and
over the words with j or z; errors by kind (a static letter read as another, dropped, added; j / z missed
or added); and the CER with the decoder's defaults (the chosen reader), and with every default as shipped
(MotionSettings(), DecoderSettings(): what the package does untuned). Prints a table and writes spell.json (and spell.md) into --out.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handsign.data.sources import KNOWN, resolve_data_dir  # noqa: E402
from handsign.files import atomic_write_bytes  # noqa: E402
from handsign.hands.features import hand_speed  # noqa: E402
from handsign.hands.photos import LandmarkSet, load_folder  # noqa: E402
from handsign.spell import DecoderSettings, StreamDecoder, motion_fit, synth  # noqa: E402
from handsign.spell.motion import MotionReader, MotionSettings  # noqa: E402
from handsign.train.config import make_config  # noqa: E402
from handsign.train.landmarks import fit, landmark_probs  # noqa: E402
from spell_rules import RuleModel  # noqa: E402

HERE = Path(__file__).resolve().parent
WORDS = HERE / "spell_words.txt"
# the grid settings are chosen from, on training people only
DECODER_GRID = {"smooth_ms": (30.0, 60.0, 100.0), "min_prob": (0.2, 0.3, 0.4, 0.5), "min_break_ms": (40.0, 70.0)}
I_ONLY = {"j": ["i"], "z": ["d"]}       # the shapes J and Z are signed with
I_OR_Y = {"j": ["i", "y"], "z": ["d"]}  # and y for J: some people's I reads as Y (the thumb loose)
READER_GRID = tuple({"evidence": e, **g} for g in ({}, {"gate_low": 0.05, "gate_high": 0.3}) for e in (I_ONLY, I_OR_Y))
RULES_GRID = tuple({"sigma": s, "evidence": e} for s in (0.1, 0.15, 0.2) for e in (I_ONLY, I_OR_Y))
TUNE_WORDS = 80  # words per training person in the tuning streams


def load_words(path) -> list[str]:
    words = [w.strip().lower() for w in Path(path).read_text().splitlines()]
    return [w for w in words if w and not w.startswith("#")]


def edit_ops(ref: str, hyp: str) -> list[tuple[str, str, str]]:
    """A minimal alignment: [(op, ref char, hyp char)], op in ok / sub / del / ins."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int64)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i, j in itertools.product(range(1, n + 1), range(1, m + 1)):
        d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    ops, i, j = [], n, m
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("ok" if ref[i - 1] == hyp[j - 1] else "sub", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            ops.append(("del", ref[i - 1], ""))
            i -= 1
        else:
            ops.append(("ins", "", hyp[j - 1]))
            j -= 1
    return ops[::-1]


def score(words: list[str], texts: list[str]) -> dict:
    """CER and word accuracy, all words and those with j / z, and the errors by kind."""
    def part(pairs):
        ops = [op for w, t in pairs for op in edit_ops(w, t)]
        chars = sum(len(w) for w, _ in pairs)
        errors = sum(op[0] != "ok" for op in ops)
        return {"words": len(pairs), "chars": chars, "cer": round(errors / max(chars, 1), 4),
                "word_acc": round(float(np.mean([w == t for w, t in pairs])), 4) if pairs else None}

    pairs = list(zip(words, texts))
    ops = [op for w, t in pairs for op in edit_ops(w, t)]
    motion = set(synth.TIPS)
    kinds = {"static_sub": 0, "static_del": 0, "static_ins": 0, "jz_missed": 0, "jz_added": 0, "jz_in_truth": 0}
    for op, r, h in ops:
        kinds["jz_in_truth"] += r in motion
        if op == "ok":
            continue
        if r in motion:
            kinds["jz_missed"] += 1
        if h in motion:
            kinds["jz_added"] += 1
        if r not in motion and h not in motion:
            kinds[{"sub": "static_sub", "del": "static_del", "ins": "static_ins"}[op]] += 1
    return {"all": part(pairs), "jz": part([p for p in pairs if set(p[0]) & motion]),
            "no_jz": part([p for p in pairs if not set(p[0]) & motion]), "errors": kinds}


def static_model(ls: LandmarkSet, without: tuple, seed: int, cache: Path | None):
    """The hands-asl landmark model trained on every person but `without` (cached by people and seed)."""
    import torch

    cfg = make_config("hands-asl", seed=seed)
    path = cache / f"static-{'-'.join(sorted(without))}-s{seed}.pt" if cache else None
    keep = np.flatnonzero(~np.isin(ls.groups, without))
    if path and path.is_file():
        from handsign.models import create_model
        from handsign.hands.features import N_FEATURES
        model = create_model("landmark_mlp", len(ls.classes), in_features=N_FEATURES, hidden=list(cfg.hidden),
                             dropout=cfg.dropout)
        model.load_state_dict(torch.load(path))
        return model.eval()
    model = fit(ls.subset(keep), len(ls.classes), cfg)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model


def make_streams(words, shapes, seed: int) -> list[synth.Stream]:
    rng = np.random.default_rng(seed)
    return [synth.stream([w], shapes, rng) for w in words]


def static_probs(model, streams) -> list[np.ndarray]:
    """Per stream, (hand frames, 24) probabilities of the static model, in one batch."""
    pts = np.concatenate([s.points[s.hand] for s in streams]).astype(np.float32)
    probs = landmark_probs(model, pts, np.concatenate([s.left[s.hand] for s in streams]))
    return np.split(probs, np.cumsum([int(s.hand.sum()) for s in streams])[:-1])


def reader_outputs(streams, probs, labels, motion_model, reader_settings) -> list[list]:
    """Per stream, per frame (t, probs over labels + j, z or None, motion): what the decoder is given."""
    out = []
    for s, p in zip(streams, probs):
        reader = MotionReader(labels, motion_model, reader_settings) if motion_model is not None else None
        frames, k, prev, t_prev = [], 0, None, 0.0
        for i, t in enumerate(s.t_ms.tolist()):
            if not s.hand[i]:
                if reader is not None:
                    reader.push(t, None, False, None)
                frames.append((t, None, None))
                prev = None
                continue
            q = reader.push(t, s.points[i], bool(s.left[i]), p[k]) if reader is not None else p[k]
            frames.append((t, q, 0.0 if prev is None else hand_speed(prev, s.points[i], t - t_prev)))
            prev, t_prev, k = s.points[i], t, k + 1
        out.append(frames)
    return out


def decode_all(frames_per_stream, labels, settings: DecoderSettings) -> list[str]:
    texts = []
    for frames in frames_per_stream:
        dec = StreamDecoder(labels, settings)
        for t, q, m in frames:
            dec.push(t, q, m)
        dec.finish()
        texts.append(dec.text)
    return texts


def decoder_grid():
    keys = list(DECODER_GRID)
    for values in itertools.product(*(DECODER_GRID[k] for k in keys)):
        yield dict(zip(keys, values))


def reader_variant(variant: dict, motion_model):
    """A grid point -> (the model or rules, MotionSettings, the decoder's motion_bases to match)."""
    v = dict(variant)
    model = RuleModel(sigma=v.pop("sigma")) if "sigma" in v else motion_model
    settings = MotionSettings(**v)
    return model, settings, {"motion_bases": settings.to_dict()["evidence"]}


def held_out(person, ls, shapes, words, seed, cache, log, motion="model", also=None) -> dict:
    """Train, tune on the others, then read `person`'s words; the result for this person and seed."""
    t0 = time.perf_counter()
    people = sorted(set(ls.groups))
    others = [q for q in people if q != person]
    labels = list(ls.classes)
    # the motion model: synthetic clips of the training people only
    motion_model = None
    if motion == "model":
        x, y = motion_fit.make_set(shapes, others, seed)
        motion_model = motion_fit.fit(x, y, seed=seed, info={"trained_on": others, "seed": seed})
    # tuning streams: each training person read by a static model that never saw them (nor the held-out one)
    tune_words = list(np.random.default_rng(seed + 1).choice(words, TUNE_WORDS, replace=False))
    tune = []
    for q in others:
        streams = make_streams(tune_words, shapes[q], seed + 100 + people.index(q))
        tune.append((streams, static_probs(static_model(ls, (person, q), seed, cache), streams)))
    best = None
    for variant in (READER_GRID if motion == "model" else RULES_GRID):
        model, reader_st, bases = reader_variant(variant, motion_model)
        frames = [reader_outputs(st, pr, labels, model, reader_st) for st, pr in tune]
        for dec in decoder_grid():
            texts = [t for f in frames for t in decode_all(f, labels + ["j", "z"], DecoderSettings(**dec, **bases))]
            cer = score(tune_words * len(others), texts)["all"]["cer"]
            if best is None or cer < best[0]:
                best = (cer, variant, dec)
    tune_cer, variant, dec = best
    log(f"  {person} seed {seed}: chosen on {', '.join(others)} (CER {100 * tune_cer:.2f} %): decoder {dec}, "
        f"reader {variant or 'defaults'}")
    # the test: the held-out person's words
    streams = make_streams(words, shapes[person], seed + 10_000)
    probs = static_probs(static_model(ls, (person,), seed, cache), streams)
    model, reader_st, bases = reader_variant(variant, motion_model)
    frames = reader_outputs(streams, probs, labels, model, reader_st)
    texts = decode_all(frames, labels + ["j", "z"], DecoderSettings(**dec, **bases))
    default_texts = decode_all(frames, labels + ["j", "z"], DecoderSettings(**bases))
    res = {"person": person, "seed": seed, "motion": motion,
           "chosen": {"decoder": dec, "reader": variant, "tune_cer": tune_cer},
           "tuned": score(words, texts), "decoder_defaults": score(words, default_texts),
           "static_photo_accuracy": None, "wrong": [(w, t) for w, t in zip(words, texts) if w != t],
           # what the package does untuned: MotionSettings() and DecoderSettings() as shipped
           "shipped_defaults": score(words, decode_all(reader_outputs(streams, probs, labels, model, MotionSettings())
                                                       if motion == "model" else frames,
                                                       labels + ["j", "z"], DecoderSettings())),
           "seconds": round(time.perf_counter() - t0, 1)}
    if also:  # fixed decoder settings (candidate defaults) with the chosen reader, scored beside the tuned ones
        res["also"] = {"settings": also, **score(words, decode_all(frames, labels + ["j", "z"],
                                                                   DecoderSettings(**also, **bases)))}
    held = np.isin(ls.groups, [person])
    p = landmark_probs(static_model(ls, (person,), seed, cache), ls.points[held], ls.left[held])
    res["static_photo_accuracy"] = round(float((p.argmax(1) == ls.labels[held]).mean()), 4)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--people", nargs="+", default=None, help="held-out people (default: all five)")
    ap.add_argument("--word-list", default=str(WORDS))
    ap.add_argument("--motion", choices=("model", "rules"), default="model",
                    help="J and Z by the motion MLP (handsign.spell.motion_fit) or by template rules")
    ap.add_argument("--cache", default="", help="a folder for the static models (reused across runs)")
    ap.add_argument("--also", type=json.loads, default=None, metavar="JSON",
                    help='decoder settings also scored as fixed defaults, e.g. \'{"min_prob": 0.4}\'')
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    root = resolve_data_dir(args.data_dir or None) / KNOWN["asl_photos"].folder
    ls = load_folder(root, progress=False).landmarks()
    shapes = motion_fit.shapes_by_person(ls.points, ls.left, ls.labels, ls.classes, ls.groups)
    words = load_words(args.word_list)
    people = args.people or sorted(shapes)
    cache = Path(args.cache) if args.cache else None
    t0 = time.perf_counter()
    runs = []
    for seed in args.seeds:
        for person in people:
            runs.append(held_out(person, ls, shapes, words, seed, cache, print, args.motion, args.also))
            r = runs[-1]
            print(f"  {person} seed {seed}: CER {100 * r['tuned']['all']['cer']:.2f} % (j/z words "
                  f"{100 * r['tuned']['jz']['cer']:.2f} %), words {100 * r['tuned']['all']['word_acc']:.1f} %; "
                  f"errors {r['tuned']['errors']}; {r['seconds']} s", flush=True)
    report = summarise(runs, words, args, time.perf_counter() - t0)
    out = Path(args.out)
    name = "spell" if args.motion == "model" else "spell-rules"
    atomic_write_bytes(out / f"{name}.json", (json.dumps(report, indent=1) + "\n").encode())
    atomic_write_bytes(out / f"{name}.md", table(report).encode())
    print(table(report))


def summarise(runs, words, args, seconds) -> dict:
    def mean(key, part, which="tuned"):
        return round(float(np.mean([r[which][part][key] for r in runs])), 4)

    return {"benchmark": "spell", "motion": args.motion, "command": "python benchmarks/spell.py " + " ".join(sys.argv[1:]),
            "seeds": args.seeds, "words": len(words), "word_list": os.path.relpath(args.word_list, HERE.parent),
            "jz_words": sum(bool(set(w) & set(synth.TIPS)) for w in words),
            "mean": {"cer": mean("cer", "all"), "word_acc": mean("word_acc", "all"), "jz_cer": mean("cer", "jz"),
                     "jz_word_acc": mean("word_acc", "jz"), "no_jz_cer": mean("cer", "no_jz"),
                     "cer_decoder_defaults": mean("cer", "all", "decoder_defaults"),
                     "cer_shipped_defaults": mean("cer", "all", "shipped_defaults"),
                     "jz_cer_shipped_defaults": mean("cer", "jz", "shipped_defaults"),
                     **({"also_settings": args.also, "cer_also": mean("cer", "all", "also"),
                         "jz_cer_also": mean("cer", "jz", "also")} if args.also else {}),
                     "static_photo_accuracy": round(float(np.mean([r["static_photo_accuracy"] for r in runs])), 4)},
            "runs": runs, "seconds": round(seconds, 1), "cpus": os.cpu_count()}


def table(report) -> str:
    lines = ["| held out | seed | photos right (static) | CER | word acc | CER j/z words | word acc j/z | "
             "j/z missed / added (of) | CER, chosen reader + decoder defaults | CER (j/z words), all defaults | "
             "chosen decoder, reader |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        t, e = r["tuned"], r["tuned"]["errors"]
        lines.append(f"| {r['person']} | {r['seed']} | {100 * r['static_photo_accuracy']:.1f} % | "
                     f"{100 * t['all']['cer']:.2f} % | {100 * t['all']['word_acc']:.1f} % | {100 * t['jz']['cer']:.2f} % | "
                     f"{100 * t['jz']['word_acc']:.1f} % | {e['jz_missed']} / {e['jz_added']} ({e['jz_in_truth']}) | "
                     f"{100 * r['decoder_defaults']['all']['cer']:.2f} % | "
                     f"{100 * r['shipped_defaults']['all']['cer']:.2f} % ({100 * r['shipped_defaults']['jz']['cer']:.2f} %) | "
                     f"{r['chosen']['decoder']}, "
                     f"{r['chosen']['reader'] or 'defaults'} |")
    m = report["mean"]
    lines.append(f"| **mean** | | {100 * m['static_photo_accuracy']:.1f} % | **{100 * m['cer']:.2f} %** | "
                 f"{100 * m['word_acc']:.1f} % | {100 * m['jz_cer']:.2f} % | {100 * m['jz_word_acc']:.1f} % | | "
                 f"{100 * m['cer_decoder_defaults']:.2f} % | {100 * m['cer_shipped_defaults']:.2f} % "
                 f"({100 * m['jz_cer_shipped_defaults']:.2f} %) | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
