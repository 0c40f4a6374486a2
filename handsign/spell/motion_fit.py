"""Train the motion model of handsign.spell.motion on synthetic J and Z clips made from real hand shapes.

    python -m handsign.spell.motion_fit --data-dir ../shared/data --holdout hand5 --out handsign/bundled/motion.json

The clips (handsign.spell.synth): the Massey photos' I and D shapes of the training people moved along J and
Z paths, inside streams of random letter sequences (holds, transitions, bounces, pauses) signed at 15-60
frames/s, plus shapes moved along paths that are neither (straight moves, arcs, shakes). Each hand frame's
trajectory features (MotionReader's own Trajectory) get that frame's target: j or z from 60 % into the path
until the hand leaves the end pose, none elsewhere, no target just before and after (see synth.StreamSettings).
A small MLP (torch, the only part that needs it) learns them; it is written as plain JSON weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from handsign.spell import synth
from handsign.spell.motion import MotionModel, MotionSettings, Trajectory

LETTERS = "abcdefghijklmnopqrstuvwxyz"
WINDOW_MS, SAMPLES = 1200.0, 24  # ms of trajectory read, and the fixed times it is resampled at


def shapes_by_person(points, left, labels, classes, groups) -> dict:
    """Landmark arrays -> {person: {letter: [(points (21, 3), left), ...]}}."""
    out = {}
    for i, g in enumerate(groups):
        out.setdefault(g, {}).setdefault(classes[labels[i]], []).append((points[i], bool(left[i])))
    return out


def random_words(rng, n: int, motion_share: float = 0.25) -> list[str]:
    """n letter sequences of 1-6 letters (a few doubled), j and z drawn with probability motion_share each
    letter: contexts for the clips, not English."""
    p = np.full(26, (1 - motion_share) / 24)
    p[LETTERS.index("j")] = p[LETTERS.index("z")] = motion_share / 2
    words = []
    for _ in range(n):
        w = list(rng.choice(list(LETTERS), size=int(rng.integers(1, 7)), p=p))
        for k in range(1, len(w)):
            if rng.random() < 0.1:
                w[k] = w[k - 1]
        words.append("".join(w))
    return words


def frame_features(s: synth.Stream, window_ms: float = WINDOW_MS, samples: int = SAMPLES,
                   reset_ms: float = MotionSettings().reset_ms) -> tuple[np.ndarray, np.ndarray]:
    """A stream's hand frames -> ((n, 6 samples) trajectory features, (n,) targets), as MotionReader sees them."""
    track = Trajectory(window_ms, samples, synth.TIPS)
    xs, ys, t_hand = [], [], None
    for k in np.flatnonzero(s.hand):
        t = float(s.t_ms[k])
        if t_hand is not None and t - t_hand >= reset_ms:
            track.clear()
        t_hand = t
        track.add(t, s.points[k], 0.0, 0.0)
        xs.append(track.features(bool(s.left[k]))[0])
        ys.append(s.target[k])
    return np.array(xs, dtype=np.float32).reshape(-1, 6 * samples), np.array(ys, dtype=np.int64)


def make_set(shapes: dict, people: list[str], seed: int, words_per_person: int = 400,
             moves_per_person: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Training features and targets from synthetic streams of `people` at random frame rates (15-60/s)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for person in people:
        sh = shapes[person]
        for chunk in range(words_per_person // 40):
            fps = float(rng.choice([15, 20, 24, 30, 30, 60]))
            st = synth.StreamSettings(fps=fps, frame_jitter=float(rng.uniform(0, 0.3)))
            moves = [str(rng.choice(["i", "d", str(rng.choice(list("abcefghklmnopqrstuvwxy")))]))
                     for _ in range(moves_per_person * 40 // words_per_person)]
            s = synth.stream(random_words(rng, 40), sh, rng, st, moves=moves)
            x, y = frame_features(s)
            xs.append(x)
            ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = y != synth.IGNORE
    return x[keep], y[keep]


def fit(x: np.ndarray, y: np.ndarray, hidden=(32,), epochs: int = 30, lr: float = 3e-3, seed: int = 0,
        batch_size: int = 256, info: dict | None = None) -> MotionModel:
    """A small MLP on standardised features (torch, one thread), as a MotionModel (float32 weights)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    mean = x.mean(0)
    std = np.maximum(x.std(0), 1e-3)  # the first sample is always 0: a constant input must not divide by 0
    sizes = [x.shape[1], *hidden, 3]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    xt = torch.from_numpy((x - mean) / std).float()
    yt = torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    try:
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=g).split(batch_size):
                loss = F.cross_entropy(net(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    finally:
        torch.set_num_threads(threads)
    dense = [m for m in net if isinstance(m, torch.nn.Linear)]
    layers = [(_short(m.weight.detach().numpy()), _short(m.bias.detach().numpy())) for m in dense]
    return MotionModel(WINDOW_MS, SAMPLES, dict(synth.TIPS), _short(mean), _short(std), layers, info or {})


def _short(a) -> np.ndarray:
    """Numbers rounded to 6 significant digits: the JSON is short, and the model is exactly those numbers, read
    alike by Python and JavaScript."""
    a = np.asarray(a, dtype=np.float64)
    return np.array([float(f"{v:.6g}") for v in a.ravel()]).reshape(a.shape)


def frame_accuracy(model: MotionModel, x: np.ndarray, y: np.ndarray) -> dict:
    """Per-class recall of the argmax on frames with a target."""
    pred = model(x).argmax(1)
    return {c: round(float((pred[y == k] == k).mean()), 4) for k, c in enumerate(("none", "j", "z")) if (y == k).any()}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m handsign.spell.motion_fit", description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="", help="data root ($HANDSIGN_DATA or ./data)")
    ap.add_argument("--holdout", default="hand5", help="a person left out (tests read them); '' for none")
    ap.add_argument("--out", required=True, help="the model's JSON file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--words", type=int, default=400, help="random letter sequences per training person")
    args = ap.parse_args(argv)
    from handsign.data.sources import KNOWN, resolve_data_dir
    from handsign.files import atomic_write_bytes
    from handsign.hands.photos import load_folder

    root = resolve_data_dir(args.data_dir or None) / KNOWN["asl_photos"].folder
    ls = load_folder(root).landmarks()
    shapes = shapes_by_person(ls.points, ls.left, ls.labels, ls.classes, ls.groups)
    people = [p for p in sorted(shapes) if p != args.holdout]
    t0 = time.perf_counter()
    x, y = make_set(shapes, people, args.seed, args.words)
    checked = [args.holdout] if args.holdout else people  # a person never trained on, if any
    xv, yv = make_set(shapes, checked, args.seed + 1000, max(40, args.words // 4))
    info = {"command": "python -m handsign.spell.motion_fit " + " ".join(sys.argv[1:] if argv is None else argv),
            "trained_on": people, "held_out": args.holdout, "seed": args.seed, "frames": int(len(y)),
            "data": "synthetic J / Z clips: real I and D shapes of the Massey photos moved along J and Z paths"}
    model = fit(x, y, seed=args.seed, info=info)
    model.info["frame_recall"] = {"people": checked, "seed": args.seed + 1000, **frame_accuracy(model, xv, yv)}
    model.info["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_bytes(args.out, (json.dumps(model.to_json(), separators=(",", ":")) + "\n").encode())
    print(f"{args.out}: {len(y)} frames from {people}; per-frame recall on clips of {checked}: "
          f"{model.info['frame_recall']}")


if __name__ == "__main__":
    main()
