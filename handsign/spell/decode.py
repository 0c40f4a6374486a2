"""Fingerspelling decoder: a stream of per-frame letter probabilities -> letters, spaces and words.

Upstream (not here) turns each video frame into a timestamp (ms), a probability vector over `labels`
(or None: no hand in the frame) and `motion`, the hand's speed in palm sizes per second. The rules, all
in milliseconds (never frames), so 15, 30 and 60 fps give the same letters:

1. Smoothing: an exponential moving average per label with time constant `smooth_ms`, stepped by the
   real time since the last hand frame, so it does not depend on the frame rate.
2. A frame is *steady* when the smoothed argmax has probability >= `min_prob` and the hand is still
   (motion < `max_motion`; labels in `motion_labels`, j and z, are signed by moving and skip this test).
   A *hold* is a run of steady frames of one label; a hold of >= `hold_ms` is a letter, emitted once,
   however long it lasts, when the hold ends (so its end time and mean confidence are known).
3. A hold ends after `min_break_ms` of frames that do not continue it (motion burst, confidence dip,
   another label): a double letter is hold + bounce + hold. Shorter breaks are noise and do not split.
4. No hand for >= `gap_ms` ends the word: time *seen* without a hand, the frames without one, each
   counting for its share of time (at most `max_frame_ms`). Time with no frames at all (a busy browser,
   a stalled camera) is not a pause: the hand may well have been there. A space is emitted just before
   the next word's first letter, so there is never a leading, trailing or double space. A shorter
   dropout does not break a hold.
5. Each letter: start_ms/end_ms of its hold and its confidence (mean smoothed probability over its
   steady frames). A space is a Letter " " from the previous letter's end to the next one's start.
6. A motion letter starts from a still shape (J from I, Z from D: `motion_bases`; J from Y too, as the
   static model reads some people's I as Y, and no English word has "yj"), and its motion is
   recognised only part way through (handsign.spell.motion), so a hold of the base shape that runs into
   its motion letter is that letter's start, not a letter: once ended, a base hold waits (not emitted)
   until a hold of its motion letter closes as a letter (then one letter, from the base hold's start) or
   it cannot come any more: `motion_wait_ms` since the base hold ended with no hold of it under way, or
   another label held for hold_ms, or the word's end. Only then is the base letter emitted, so i and d
   come out a little later than other letters. Labels without their motion letter never wait.

The defaults were chosen on synthetic streams (tests/fixtures/spell/make_fixtures.py), not on recordings
of signers: max_motion above all needs checking against upstream's real motion numbers. At 15 fps one
frame (67 ms) is longer than min_break_ms, so there a single glitch frame inside a hold reads as a bounce.

handsign/web/spell.js is the same decoder in JavaScript, operation for operation (IEEE doubles, same
order), and tests/test_spell_decode.py checks both on the shared streams in tests/fixtures/spell/.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np


def letter_pairs(value, name: str) -> tuple[tuple[str, str], ...]:
    """{motion letter: [letters]} (a single letter may stand for its list) or ((motion letter, letter), ...)
    -> the pairs, checked: how motion_bases here and MotionSettings.evidence are given."""
    if isinstance(value, dict):
        pairs = [(k, x) for k, v in value.items() for x in ([v] if isinstance(v, str) else v)] \
            if all(isinstance(v, (str, list, tuple)) for v in value.values()) else [(None,)]
    elif isinstance(value, (tuple, list)) and all(isinstance(x, (tuple, list)) for x in value):
        pairs = [tuple(x) for x in value]
    else:
        pairs = [(None,)]
    if not all(len(x) == 2 and all(isinstance(y, str) for y in x) for x in pairs):
        raise ValueError(f"{name} must map motion letters to lists of letters, e.g. {{\"j\": [\"i\"]}}")
    return tuple(pairs)


def pairs_dict(pairs) -> dict[str, list[str]]:
    """The pairs as JSON: {motion letter: [letters]}."""
    out: dict[str, list[str]] = {}
    for m, x in pairs:
        out.setdefault(m, []).append(x)
    return out


def check_fields(settings, own_checks: dict) -> None:
    """A settings dataclass's fields, in order: each a finite number >= 0 (not a bool), but those named in
    `own_checks` ({name: check(value), or None: checked elsewhere}): how DecoderSettings and MotionSettings
    check theirs."""
    for f in fields(settings):
        v = getattr(settings, f.name)
        if f.name in own_checks:
            if own_checks[f.name] is not None:
                own_checks[f.name](v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{f.name} must be a finite number >= 0, not {v!r}")


def settings_from_dict(cls, d: dict, what: str):
    """cls (a settings dataclass) from a (partial) dict: missing keys keep their defaults, unknown keys are an
    error ("unknown WHAT settings: [...]")."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} settings: {sorted(unknown)}")
    return cls(**d)


def _strings(labels) -> None:
    if not all(isinstance(x, str) for x in labels):
        raise ValueError("motion_labels must be strings")


@dataclass(frozen=True)
class DecoderSettings:
    smooth_ms: float = 30.0   # ms, EMA time constant: damps one-frame noise, lags a change by about as much
    # 0-1, smoothed probability the argmax needs. 0.4: benchmarks/spell.py, seed 0, people held out, CER 3.68 %
    # against 4.36 % at 0.5 (a new person's letters often come at 0.3-0.5); lower (0.2, 0.3) reads a double
    # letter signed as a mere dip in confidence (the zz of jazz) as one letter: fixtures double_dip, jz, bases
    min_prob: float = 0.4
    max_motion: float = 1.0   # palm sizes/s: faster is moving between shapes (a guess: calibrate on recordings)
    motion_labels: tuple[str, ...] = ("j", "z")  # labels signed by moving: max_motion does not apply
    hold_ms: float = 100.0    # ms steady to count as a letter: people hold 150-600; transitions are shorter
    min_break_ms: float = 40.0  # ms of unsteady frames that end a hold (a bounce is 80-150; glitches less)
    gap_ms: float = 350.0     # ms seen without a hand that ends a word (pauses between words are longer)
    max_frame_ms: float = 100.0  # ms a frame counts for at most: a stalled camera must not make a hold
    # motion letter -> the shapes it starts from ({"j": ["i", "y"], "z": ["d"]} in to_dict / JSON): a hold of a
    # base that runs into its motion letter is part of that letter (rule 6); y: some people's I reads as Y
    motion_bases: tuple[tuple[str, str], ...] = (("j", "i"), ("j", "y"), ("z", "d"))
    motion_wait_ms: float = 800.0  # ms an ended base hold waits for its motion letter (J / Z are read ~60 % in)

    def __post_init__(self):
        object.__setattr__(self, "motion_labels", tuple(self.motion_labels))
        pairs = letter_pairs(self.motion_bases, "motion_bases")
        object.__setattr__(self, "motion_bases", pairs)
        check_fields(self, {"motion_labels": _strings, "motion_bases": None})
        if self.min_prob > 1:
            raise ValueError(f"min_prob must be <= 1, not {self.min_prob!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["motion_labels"] = list(self.motion_labels)
        d["motion_bases"] = pairs_dict(self.motion_bases)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DecoderSettings":
        """Settings from a (partial) dict: missing keys keep their defaults, unknown keys are an error."""
        return settings_from_dict(cls, d, "decoder")


@dataclass
class Letter:
    letter: str
    start_ms: float
    end_ms: float
    confidence: float


class _Hold:
    """A run of steady frames of one label: label index, start/end (ms), sum of confidences, frames.
    It starts when the frame before its first steady frame was seen (at most max_frame_ms before), so
    end - start is how long it has been held, short breaks and dropouts inside it included."""

    def __init__(self, label: int, t: float, dt: float, conf: float):
        self.label, self.start, self.end, self.conf_sum, self.n = label, t - dt, t, conf, 1

    def extend(self, t: float, conf: float):
        self.end = t
        self.conf_sum += conf
        self.n += 1


class StreamDecoder:
    """Incremental decoder for live use: push() each frame, finish() at the end."""

    def __init__(self, labels, settings: DecoderSettings | dict = DecoderSettings()):
        if isinstance(settings, dict):  # a (partial) dict, as in a fixture or spell.js
            settings = DecoderSettings.from_dict(settings)
        self.labels = [str(x) for x in labels]
        self.settings = settings
        self._moving = {i for i, x in enumerate(self.labels) if x in settings.motion_labels}
        index = {x: i for i, x in reversed(list(enumerate(self.labels)))}  # the first of equal labels
        # base label index -> its motion letter's index, for the pairs whose labels are both here
        self._base_of = {index[b]: index[m] for m, b in settings.motion_bases if m in index and b in index}
        self._pending = None     # an ended base hold waiting for its motion letter (rule 6)
        self._s = None           # smoothed probabilities; None until the word's first hand frame
        self._t_prev = None      # ms, previous frame (hand or not)
        self._t_hand = None      # ms, last hand frame of the current word; None once the word ended
        self._away = 0.0         # ms seen without a hand since the last hand frame (rule 4)
        self._hold = None        # the current hold (maybe in a break shorter than min_break_ms)
        self._next = None        # a hold of another label that began during the current hold's break
        self._brk = 0.0          # ms of frames since the current hold's last steady frame
        self._word_letters = 0   # letters emitted in the current word
        self._space = False      # a word ended: put a space before the next letter
        self.letters: list[Letter] = []

    @property
    def text(self) -> str:
        return "".join(x.letter for x in self.letters)

    @property
    def smoothed(self) -> np.ndarray | None:
        """The smoothed probabilities now (a copy; None when no hand in this word), e.g. for a live view."""
        return None if self._s is None else self._s.copy()

    def push(self, t_ms: float, probs, motion: float | None = 0.0) -> list[Letter]:
        """One frame: probs over the labels, or None when no hand. Returns the letters this frame completed."""
        st, out, t = self.settings, [], float(t_ms)
        if self._t_prev is not None and t < self._t_prev:
            raise ValueError(f"timestamps must not decrease: {t} after {self._t_prev}")
        dt = 0.0 if self._t_prev is None else min(t - self._t_prev, st.max_frame_ms)  # this frame's share
        self._t_prev = t
        if probs is None:
            if self._t_hand is not None:
                self._away += dt
                if self._away >= st.gap_ms:
                    self._end_word(out)
            self._wait(t, out)
            return out  # a dropout shorter than gap_ms: the hold stays open, its break does not grow
        p = np.asarray(probs, dtype=np.float64)
        if p.shape != (len(self.labels),) or not np.isfinite(p).all():
            raise ValueError(f"probs must be {len(self.labels)} finite numbers, one per label")
        if self._s is None:
            self._s = p.copy()  # first frame of a word: nothing to smooth with
        else:  # EMA over the real time since the last hand frame: the same decay at any frame rate
            a = 1.0 if st.smooth_ms <= 0 else 1.0 - math.exp(-(t - self._t_hand) / st.smooth_ms)
            self._s = self._s + a * (p - self._s)
        self._t_hand, self._away = t, 0.0
        k = int(np.argmax(self._s))  # first of equal maxima, as in spell.js
        conf = float(self._s[k])
        still = (0.0 if motion is None else float(motion)) < st.max_motion or k in self._moving
        steady = conf >= st.min_prob and still
        h = self._hold
        if h is not None and steady and k == h.label:  # the hold goes on: a short break was noise
            h.extend(t, conf)
            self._brk, self._next = 0.0, None
            self._wait(t, out)
            return out
        if h is not None:
            self._brk += dt
        if steady:  # another label, or no hold yet: a new hold, current once the old one has ended
            if self._next is not None and self._next.label == k:
                self._next.extend(t, conf)
            else:
                self._next = _Hold(k, t, dt, conf)
        else:
            self._next = None
        if h is None or self._brk >= st.min_break_ms:
            self._close(h, out)
            self._hold, self._next, self._brk = self._next, None, 0.0
        self._wait(t, out)
        return out

    def finish(self) -> list[Letter]:
        """End of stream: emit the letter still held; a pending space is dropped (no trailing space)."""
        out = []
        self._end_word(out)
        self._space = False
        return out

    def _end_word(self, out: list):
        self._close(self._hold, out)
        self._close(self._next, out)
        if self._pending is not None:  # the word ended: its motion letter cannot come
            self._emit(self._pending, out)
        self._hold = self._next = self._s = self._t_hand = self._pending = None
        self._brk = self._away = 0.0
        if self._word_letters:
            self._space, self._word_letters = True, 0

    def _wait(self, t: float, out: list):
        """Emit the waiting base hold once its motion letter cannot come (rule 6)."""
        p = self._pending
        if p is None:
            return
        live = [x for x in (self._hold, self._next) if x is not None]
        if any(x.label == self._base_of[p.label] for x in live):
            return  # its motion letter is being held: _close decides
        if t - p.end >= self.settings.motion_wait_ms or any(x.end - x.start >= self.settings.hold_ms for x in live):
            self._pending = None
            self._emit(p, out)

    def _close(self, h: _Hold | None, out: list):
        if h is None or h.end - h.start < self.settings.hold_ms:
            return  # no hold, or too short: a transition or a flicker
        p = self._pending
        if p is not None:
            self._pending = None
            if h.label == self._base_of[p.label] and h.start - p.end <= self.settings.motion_wait_ms:
                h.start = p.start  # the base shape held before the motion: the motion letter's start
            else:
                self._emit(p, out)
        if h.label in self._base_of:  # a base shape: it waits for its motion letter
            self._pending = h
            return
        self._emit(h, out)

    def _emit(self, h: _Hold, out: list):
        new = [Letter(self.labels[h.label], h.start, h.end, h.conf_sum / h.n)]
        if self._space:  # the word before has ended: a space from its last letter to this one
            new.insert(0, Letter(" ", self.letters[-1].end_ms, h.start, 1.0))
            self._space = False
        self._word_letters += 1
        self.letters += new
        out += new


def decode(frames, labels, settings: DecoderSettings | dict = DecoderSettings()) -> dict:
    """Decode a whole stream. frames: iterable of (t_ms, probs_or_None[, motion]); settings: a
    DecoderSettings or a (partial) dict of them. Returns {"text", "letters": [dict], "words": [dict]}."""
    dec = StreamDecoder(labels, settings)
    for frame in frames:
        dec.push(frame[0], frame[1], frame[2] if len(frame) > 2 else 0.0)
    dec.finish()
    letters = [asdict(x) for x in dec.letters]
    words, new_word = [], True
    for x in letters:
        if x["letter"] == " ":
            new_word = True
        elif new_word:
            words.append({"word": x["letter"], "start_ms": x["start_ms"], "end_ms": x["end_ms"]})
            new_word = False
        else:
            words[-1]["word"] += x["letter"]
            words[-1]["end_ms"] = x["end_ms"]
    return {"text": dec.text, "letters": letters, "words": words}
