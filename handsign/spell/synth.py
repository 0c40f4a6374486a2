"""Synthetic fingerspelling from real hand shapes: J and Z traced by moving a real I or D shape, and words
as held letter shapes joined by transitions, bounces and no-hand pauses. NumPy only.

No recording of J or Z exists here, so they are made: the I shape (for J) or the D shape (for Z) of a real
photo is moved along the letter's path, the moving fingertip leading (it follows the path exactly; the
hand is turned about it), with varied duration, size, tilt, hand (left hands mirror the path) and noise.

    path = letter_path("j", rng)                           # the path's submovements, in palm sizes
    pts = trace(shape, left, "j", t_ms, path, palm_px)     # (T, 21, 3) pixels: the hand along it
    s = stream(["jazz", "book"], shapes, rng)              # frames of whole words: Stream

Paths are in the *signer's frame* of handsign.spell.motion: image x mirrored for a hand MediaPipe calls
"Left" (as hand_features does), y down, in palm sizes. There a right-handed signer's Z goes right,
diagonally down-left, right, and the J goes down, hooks toward the thumb (-x) and comes up; a left
hand traces their mirror images, which the mirroring turns back into the same paths.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from handsign.hands.features import palm_size
from handsign.hands.landmarks import INDEX_TIP, PINKY_TIP, WRIST

TIPS = {"j": PINKY_TIP, "z": INDEX_TIP}  # the fingertip that draws each motion letter
BASES = {"j": "i", "z": "d"}  # the handshape each motion letter is signed with
NONE, J, Z, IGNORE = 0, 1, 2, -1  # per-frame targets of a stream (IGNORE: no loss there)
TARGET = {"j": J, "z": Z}


def min_jerk(u):
    """Position 0..1 of a minimum-jerk movement at time fraction u (clipped to 0..1): smooth start and stop."""
    u = np.clip(u, 0.0, 1.0)
    return u ** 3 * (10 - 15 * u + 6 * u * u)


@dataclass
class Path:
    """A movement as overlapping minimum-jerk submovements (strokes), the usual model of handwriting:
    stroke k moves by `strokes[k]` (palm sizes, signer's frame) from `onsets[k]` for `durations[k]` ms."""
    strokes: np.ndarray    # (S, 2) palm sizes
    onsets: np.ndarray     # (S,) ms from the start of the movement
    durations: np.ndarray  # (S,) ms

    @property
    def ms(self) -> float:
        return float((self.onsets + self.durations).max())

    def at(self, t_ms) -> np.ndarray:
        """(T,) ms from the movement's start -> (T, 2) positions in palm sizes (0 at the start)."""
        u = (np.asarray(t_ms, dtype=np.float64)[:, None] - self.onsets) / self.durations  # (T, S)
        return min_jerk(u) @ self.strokes

    def progress(self, t_ms, first: int = 0) -> np.ndarray:
        """(T,) share 0..1 of strokes first.. done: what turns the hand along the hook."""
        u = (np.asarray(t_ms, dtype=np.float64)[:, None] - self.onsets[first:]) / self.durations[first:]
        w = np.linalg.norm(self.strokes[first:], axis=1)
        return min_jerk(u) @ w / w.sum()


def _timed(strokes, rng, ms: float) -> Path:
    """Strokes -> a Path of `ms` in all: durations ~ sqrt(length), each overlapping the previous by 10-35 %."""
    strokes = np.asarray(strokes, dtype=np.float64)
    d = np.sqrt(np.linalg.norm(strokes, axis=1)) * rng.uniform(0.85, 1.15, len(strokes))
    onsets = np.concatenate([[0.0], np.cumsum(d[:-1] * (1 - rng.uniform(0.1, 0.35, len(d) - 1)))])
    k = ms / (onsets[-1] + d[-1])
    return Path(strokes, onsets * k, d * k)


def letter_path(letter: str, rng, ms: float | None = None, size: float | None = None) -> Path:
    """The path of j or z: random proportions, overall size x0.7-1.4 (`size`), 400-1000 ms (`ms`)."""
    ms = rng.uniform(400, 1000) if ms is None else ms
    size = rng.uniform(0.7, 1.4) if size is None else size
    if letter == "j":  # down, then the hook: toward the thumb (-x) and back up
        h, r = rng.uniform(0.8, 1.5), rng.uniform(0.35, 0.7)
        strokes = [(rng.uniform(-0.1, 0.1), h), (-r, r * rng.uniform(0.5, 0.9)),
                   (-r * rng.uniform(0.4, 0.9), -r * rng.uniform(0.4, 1.2))]
    elif letter == "z":  # right, diagonally down-left, right
        w, h = rng.uniform(0.8, 1.6), rng.uniform(0.6, 1.3)
        strokes = [(w, rng.uniform(-0.15, 0.15)), (-w * rng.uniform(0.8, 1.1), h),
                   (w * rng.uniform(0.8, 1.2), rng.uniform(-0.15, 0.15))]
    else:
        raise ValueError(f"no path for {letter!r}: the motion letters are {sorted(TIPS)}")
    return _timed(np.array(strokes) * size, rng, ms)


def other_path(rng, ms: float | None = None) -> Path:
    """A movement that is neither J nor Z: a straight move in any direction, an arc, or a shake to and fro."""
    ms = rng.uniform(250, 1000) if ms is None else ms
    a = rng.uniform(0, 2 * np.pi)
    d = np.array([np.cos(a), np.sin(a)])
    kind = rng.integers(3)
    if kind == 0:
        strokes = [d * rng.uniform(0.5, 2.5)]
    elif kind == 1:  # an arc: two strokes at an angle of 30-80 degrees
        b = a + rng.choice([-1, 1]) * np.deg2rad(rng.uniform(30, 80))
        strokes = [d * rng.uniform(0.4, 1.2), np.array([np.cos(b), np.sin(b)]) * rng.uniform(0.4, 1.2)]
    else:
        n, amp = int(rng.integers(2, 5)), rng.uniform(0.3, 1.0)
        strokes = [d * amp * (1 if i % 2 == 0 else -1) for i in range(n)]
    return _timed(strokes, rng, ms)


def _turn(p: np.ndarray, yaw, roll) -> np.ndarray:
    """(T, 21, 3) about the origin: yaw about the image's vertical axis, then roll in the image plane (rad)."""
    cy, sy, cr, sr = np.cos(yaw)[:, None], np.sin(yaw)[:, None], np.cos(roll)[:, None], np.sin(roll)[:, None]
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    x, z = cy * x + sy * z, -sy * x + cy * z
    return np.stack([cr * x - sr * y, sr * x + cr * y, z], -1)


def trace(shape, left: bool, letter: str, t_ms, path: Path, palm_px: float | None = None, tilt: float = 0.0,
          yaw: float = 0.0, roll: float = 0.0, tip: int | None = None) -> np.ndarray:
    """A hand shape (21, 3) pixels moved along `path` at times t_ms (ms from the movement's start): the
    fingertip of `letter` (or `tip`) follows the path exactly, the hand turned about it by up to `yaw` and
    `roll` radians as the path goes on (J's wrist twist), the path tilted by `tilt` radians in the image.
    Left hands draw the mirror image (the paths are in the signer's frame). -> (T, 21, 3) pixels."""
    shape = np.asarray(shape, dtype=np.float64)
    t_ms = np.asarray(t_ms, dtype=np.float64)
    palm = float(palm_size(shape)) if palm_px is None else palm_px
    tip = TIPS[letter] if tip is None else tip
    xy = path.at(t_ms)  # (T, 2) palm sizes, signer's frame
    c, s = np.cos(tilt), np.sin(tilt)
    xy = xy @ np.array([[c, s], [-s, c]])
    sign = -1.0 if left else 1.0
    move = np.stack([sign * xy[:, 0], xy[:, 1], np.zeros(len(xy))], -1) * palm  # (T, 3) pixels
    turn = path.progress(t_ms, first=1 if len(path.strokes) > 1 else 0)  # the hook (or the whole move)
    start = shape[tip]
    p = _turn(np.broadcast_to(shape - start, (len(t_ms), 21, 3)), sign * yaw * turn, sign * roll * turn)
    return p + start + move[:, None, :]


def place(points, left: bool, wrist_xy, palm_px: float, want_left: bool) -> np.ndarray:
    """A photo's landmarks (21, 3) -> the wrist at wrist_xy, palm size palm_px (z scaled alike), mirrored
    about the wrist when its hand is not `want_left` (the same hand features: mirror + the other hand)."""
    p = np.asarray(points, dtype=np.float64)
    p = (p - p[WRIST]) * (palm_px / float(palm_size(p)))
    if bool(left) != bool(want_left):
        p[:, 0] *= -1
    p[:, :2] += np.asarray(wrist_xy, dtype=np.float64)
    return p


@dataclass
class StreamSettings:
    """How words are signed in a synthetic stream; times in ms, sizes in palm sizes."""
    fps: float = 30.0                 # frames per second
    frame_jitter: float = 0.0         # each frame interval x (1 +- this)
    hold: tuple = (150.0, 600.0)      # ms a static letter is held
    transition: tuple = (60.0, 200.0)  # ms between two letter shapes (the points interpolated)
    bounce: tuple = (80.0, 150.0)     # ms of the bounce between a double static letter's holds
    bounce_size: tuple = (0.3, 0.6)   # palm sizes the hand bounces
    pause: tuple = (400.0, 900.0)     # ms without a hand between words
    motion: tuple = (400.0, 1000.0)   # ms a J or Z path takes
    settle: tuple = (0.0, 150.0)      # ms the shape is still before and after a J or Z path
    size: tuple = (0.7, 1.4)          # J / Z size factor
    tilt: float = 15.0                # degrees, J / Z path tilted in the image
    yaw_j: tuple = (20.0, 70.0)       # degrees the wrist twists along J's hook
    roll: float = 20.0                # degrees the hand rolls in the image along a path (+-)
    palm_px: tuple = (60.0, 140.0)    # the hand's palm size in the frame (distance from the camera), per word
    noise: tuple = (0.01, 0.03)       # per-point per-frame noise, palm sizes (a few % of the palm), per word
    drift: float = 0.1                # palm sizes: slow wandering of the whole hand
    mirror: float = 0.5               # share of words signed with the other hand (mirrored)
    target_from: float = 0.6          # a J / Z frame's target is the letter from this share of its path on
    target_tail: float = 100.0        # ms after a J / Z (and its settle) where the target is IGNORE


@dataclass
class Stream:
    """Frames of synthetic signing, with what was signed."""
    t_ms: np.ndarray    # (T,) frame times
    points: np.ndarray  # (T, 21, 3) pixels; NaN where no hand
    hand: np.ndarray    # (T,) bool: a hand in the frame
    left: np.ndarray    # (T,) bool: MediaPipe would call it "Left"
    target: np.ndarray  # (T,) int8: NONE, J, Z or IGNORE (the motion model's per-frame target)
    text: str           # the words signed, one space between words
    segments: list = field(default_factory=list)  # (kind, letter, start_ms, end_ms)


@dataclass
class _Seg:
    kind: str      # none, hold, trans, bounce, return, settle, path, settle_end, move
    letter: str
    start: float   # ms
    end: float     # ms
    fn: object     # (T,) ms since the segment's start -> (T, 21, 3) pixels; None: no hand
    left: bool
    palm: float    # px
    noise: float   # palm sizes


def _still(p):
    return lambda t: np.broadcast_to(p, (len(t), 21, 3))


def _lerp(a, b, ms):
    return lambda t: a + (b - a) * min_jerk(t / ms)[:, None, None]


def _bounce(p, offset, ms):
    return lambda t: p + offset * (np.sin(np.pi * np.clip(t / ms, 0, 1)) ** 2)[:, None, None]


def _traced(p, left, letter, path, palm, tilt, yaw, roll, tip=None):
    return lambda t: trace(p, left, letter, t, path, palm, tilt, yaw, roll, tip)


def stream(words, shapes: dict, rng, settings: StreamSettings | None = None, moves=()) -> Stream:
    """Fingerspell `words` with one signer's shapes: {letter: [(points (21, 3) pixels, left), ...]} of real
    photos of the static letters and of i and d (J and Z are traced with those). Each word: a no-hand pause,
    then per letter a transition (for a double letter a bounce, or for JJ / ZZ the stroke back to the
    start) and the letter held or traced. `moves`: letters whose shape is shown alone, between the words,
    moved along a path that is neither J nor Z (negatives for the motion model; no text)."""
    st = settings or StreamSettings()
    u = rng.uniform
    segs: list[_Seg] = []
    clock = [0.0]

    def add(kind, letter, ms, fn, props):
        segs.append(_Seg(kind, letter, clock[0], clock[0] + ms, fn, *props))
        clock[0] += ms

    def end_pose():
        s = segs[-1]
        return s.fn(np.array([s.end - s.start]))[0]

    items = [("word", w) for w in words] + [("move", m) for m in moves]
    for n in (rng.permutation(len(items)) if len(moves) else range(len(items))):
        kind, word = items[n]
        add("none", "", u(*st.pause), None, (False, 1.0, 0.0))
        left = not rng.random() < st.mirror  # this word's hand, as MediaPipe names it ("Left" or not)
        palm, wrist = u(*st.palm_px), np.array([u(250.0, 390.0), u(300.0, 380.0)])
        props = (left, palm, u(*st.noise))

        def shape_of(letter):
            pts, was_left = shapes[letter][int(rng.integers(len(shapes[letter])))]
            return place(pts, was_left, wrist, palm, left)

        if kind == "move":
            p = shape_of(word)
            path = other_path(rng)
            f = _traced(p, left, "j", path, palm, 0.0, 0.0, np.deg2rad(u(-1, 1) * st.roll),
                        tip=int(rng.choice([INDEX_TIP, PINKY_TIP])))
            add("hold", "", u(0, 300), _still(p), props)
            add("move", "", path.ms, f, props)
            add("hold", "", u(0, 300), _still(end_pose()), props)
            continue
        prev = None
        for ch in word:
            if ch in TIPS:
                path = letter_path(ch, rng, u(*st.motion), u(*st.size))
                yaw = u(*st.yaw_j) if ch == "j" else u(-10, 10)
                f = _traced(shape_of(BASES[ch]), left, ch, path, palm, np.deg2rad(u(-st.tilt, st.tilt)),
                            np.deg2rad(yaw), np.deg2rad(u(-1, 1) * st.roll))
                start = f(np.array([0.0]))[0]
                if prev is not None:  # a transition, or for JJ / ZZ the stroke back to the path's start
                    ms = u(*st.transition) * (1.5 if ch == prev else 1.0)
                    add("return" if ch == prev else "trans", ch, ms, _lerp(end_pose(), start, ms), props)
                add("settle", ch, u(*st.settle), _still(start), props)
                add("path", ch, path.ms, f, props)
                add("settle_end", ch, u(*st.settle), _still(end_pose()), props)
            else:
                if prev == ch:  # a double letter: the same shape bounces
                    a, ms = u(-np.pi, 0.0), u(*st.bounce)  # upwards and sideways
                    off = np.array([np.cos(a), np.sin(a), 0.0]) * u(*st.bounce_size) * palm
                    p = end_pose()
                    add("bounce", ch, ms, _bounce(p, off, ms), props)
                else:
                    p = shape_of(ch)
                    if prev is not None:
                        ms = u(*st.transition)
                        add("trans", ch, ms, _lerp(end_pose(), p, ms), props)
                add("hold", ch, u(*st.hold), _still(p), props)
            prev = ch
    add("none", "", u(*st.pause), None, (False, 1.0, 0.0))
    return _render(segs, rng, st, " ".join(words))


def _render(segs: list, rng, st: StreamSettings, text: str) -> Stream:
    """Sample the segments at st.fps: poses + slow drift + per-frame noise, and the per-frame targets."""
    end = segs[-1].end
    period = 1000.0 / st.fps
    steps = period * (1 + rng.uniform(-st.frame_jitter, st.frame_jitter, int(end / period * 1.5) + 10))
    t = np.concatenate([[0.0], np.cumsum(steps)])
    t = t[t < end]
    starts = np.array([s.start for s in segs])
    idx = np.searchsorted(starts, t, side="right") - 1
    points = np.full((len(t), 21, 3), np.nan)
    hand, left = np.zeros(len(t), bool), np.zeros(len(t), bool)
    # drift: three slow sines (0.1-0.5 Hz) per axis, palm sizes
    f, ph, amp = rng.uniform(0.1, 0.5, (3, 2)), rng.uniform(0, 2 * np.pi, (3, 2)), st.drift / 3
    drift = (amp * np.sin(2 * np.pi * f[None] * t[:, None, None] / 1000.0 + ph[None])).sum(1)  # (T, 2)
    for k in np.unique(idx):
        s, m = segs[k], idx == k
        if s.fn is None:
            continue
        p = np.array(s.fn(t[m] - s.start), dtype=np.float64)
        p[..., :2] += drift[m][:, None, :] * s.palm
        p += rng.normal(0.0, s.noise * s.palm, p.shape)
        points[m], hand[m], left[m] = p, True, s.left
    target = np.zeros(len(t), np.int8)
    for s in segs:  # IGNORE first, so a following letter's own frames win
        if s.kind == "path":
            target[(t >= s.start) & (t < s.end)] = IGNORE
        elif s.kind == "settle_end":
            target[(t >= s.end) & (t < s.end + st.target_tail)] = IGNORE
    for k, s in enumerate(segs):
        if s.kind == "path":
            end_ = segs[k + 1].end  # through the still end (settle_end)
            target[(t >= s.start + st.target_from * (s.end - s.start)) & (t < end_)] = TARGET[s.letter]
    return Stream(t, points, hand, left, target, text, [(s.kind, s.letter, s.start, s.end) for s in segs])
