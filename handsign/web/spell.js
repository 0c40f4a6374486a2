// Fingerspelling decoder for the browser: per-frame letter probabilities -> letters, spaces and words.
// The same decoder as handsign/spell/decode.py, operation for operation (IEEE doubles in the same order),
// so both read the same settings and give the same letters on tests/fixtures/spell/*.json; the rules and
// the reasons for the defaults are in decode.py's docstring. All times in milliseconds, never frames.
// A frame: tMs, probs (an array over labels, or null: no hand) and motion (palm sizes per second, or null).

export const DEFAULT_SETTINGS = Object.freeze({
  smooth_ms: 30.0,      // ms, EMA time constant: damps one-frame noise, lags a change by about as much
  min_prob: 0.4,        // 0-1, smoothed probability the argmax needs to count as held (decode.py: why 0.4)
  max_motion: 1.0,      // palm sizes/s: faster is moving between shapes (a guess: calibrate on recordings)
  motion_labels: Object.freeze(["j", "z"]),  // labels signed by moving: max_motion does not apply
  hold_ms: 100.0,       // ms steady to count as a letter
  min_break_ms: 40.0,   // ms of unsteady frames that end a hold (a double letter's bounce)
  gap_ms: 350.0,        // ms seen without a hand (frames without one) that ends a word
  max_frame_ms: 100.0,  // ms a frame counts for at most (a stalled camera must not make a hold)
  // motion letter -> the shape it starts from: a hold of the base that runs into it is part of it (rule 6)
  motion_bases: Object.freeze({ j: Object.freeze(["i", "y"]), z: Object.freeze(["d"]) }),
  motion_wait_ms: 800.0,  // ms an ended base hold waits for its motion letter (J / Z are read ~60 % in)
});

// Defaults with overrides; unknown keys and bad values are errors, as in DecoderSettings.from_dict.
export function makeSettings(overrides = {}) {
  const s = { ...DEFAULT_SETTINGS, ...overrides };
  for (const [k, v] of Object.entries(s)) {
    if (!(k in DEFAULT_SETTINGS)) throw new Error(`unknown decoder setting: ${k}`);
    if (k === "motion_labels") {
      if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
        throw new Error("motion_labels must be strings");
      }
    } else if (k === "motion_bases") {
      const letters = (x) => typeof x === "string" || (Array.isArray(x) && x.every((y) => typeof y === "string"));
      if (v === null || typeof v !== "object" || Array.isArray(v) || !Object.values(v).every(letters)) {
        throw new Error('motion_bases must map motion letters to lists of letters, e.g. {"j": ["i"]}');
      }
    } else if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new Error(`${k} must be a finite number >= 0, not ${v}`);
    }
  }
  if (s.min_prob > 1) throw new Error(`min_prob must be <= 1, not ${s.min_prob}`);
  const bases = Object.fromEntries(Object.entries(s.motion_bases).map(([m, b]) => [m, typeof b === "string" ? [b] : [...b]]));
  return Object.freeze({ ...s, motion_labels: [...s.motion_labels], motion_bases: bases });
}

// A run of steady frames of one label: start/end (ms), sum of confidences, frames. It starts when the
// frame before its first steady frame was seen, so end - start is how long it has been held.
function newHold(label, t, dt, conf) {
  return { label, start: t - dt, end: t, confSum: conf, n: 1 };
}
function extendHold(h, t, conf) {
  h.end = t;
  h.confSum += conf;
  h.n += 1;
}

export class StreamDecoder {
  constructor(labels, settings = DEFAULT_SETTINGS) {
    this.labels = labels.map(String);
    this.settings = makeSettings(settings);
    this.moving = new Set(this.labels.flatMap((x, i) => (this.settings.motion_labels.includes(x) ? [i] : [])));
    // base label index -> its motion letter's index, for the pairs whose labels are both here
    this.baseOf = new Map();
    for (const [m, bases] of Object.entries(this.settings.motion_bases)) {
      for (const b of bases) {
        if (this.labels.includes(m) && this.labels.includes(b)) this.baseOf.set(this.labels.indexOf(b), this.labels.indexOf(m));
      }
    }
    this.pending = null;    // an ended base hold waiting for its motion letter (rule 6)
    this.s = null;          // smoothed probabilities; null until the word's first hand frame
    this.tPrev = null;      // ms, previous frame (hand or not)
    this.tHand = null;      // ms, last hand frame of the current word; null once the word ended
    this.away = 0.0;        // ms seen without a hand since the last hand frame (rule 4)
    this.hold = null;       // the current hold (maybe in a break shorter than min_break_ms)
    this.next = null;       // a hold of another label that began during the current hold's break
    this.brk = 0.0;         // ms of frames since the current hold's last steady frame
    this.wordLetters = 0;   // letters emitted in the current word
    this.space = false;     // a word ended: put a space before the next letter
    this.letters = [];      // every letter so far: {letter, start_ms, end_ms, confidence}
  }

  get text() {
    return this.letters.map((x) => x.letter).join("");
  }

  // The smoothed probabilities now (a copy; null when no hand in this word), e.g. for a live view.
  get smoothed() {
    return this.s === null ? null : [...this.s];
  }

  // One frame; returns the letters it completed (a space is a letter " ").
  push(tMs, probs, motion = 0.0) {
    const st = this.settings, out = [], t = Number(tMs);
    if (this.tPrev !== null && t < this.tPrev) {
      throw new Error(`timestamps must not decrease: ${t} after ${this.tPrev}`);
    }
    const dt = this.tPrev === null ? 0.0 : Math.min(t - this.tPrev, st.max_frame_ms);  // this frame's share
    this.tPrev = t;
    if (probs === null || probs === undefined) {  // a short dropout: the hold stays open
      if (this.tHand !== null) {  // only time seen without a hand ends a word, never time without frames
        this.away += dt;
        if (this.away >= st.gap_ms) this.endWord(out);
      }
      this.wait(t, out);
      return out;
    }
    if (probs.length !== this.labels.length || !Array.from(probs).every(Number.isFinite)) {
      throw new Error(`probs must be ${this.labels.length} finite numbers, one per label`);
    }
    if (this.s === null) {
      this.s = Array.from(probs, Number);  // first frame of a word: nothing to smooth with
    } else {  // EMA over the real time since the last hand frame: the same decay at any frame rate
      const a = st.smooth_ms <= 0 ? 1.0 : 1.0 - Math.exp(-(t - this.tHand) / st.smooth_ms);
      for (let i = 0; i < this.s.length; i++) this.s[i] = this.s[i] + a * (probs[i] - this.s[i]);
    }
    this.tHand = t;
    this.away = 0.0;
    let k = 0;  // first of equal maxima, as numpy's argmax
    for (let i = 1; i < this.s.length; i++) if (this.s[i] > this.s[k]) k = i;
    const conf = this.s[k];
    const speed = motion === null || motion === undefined ? 0.0 : Number(motion);  // missing: still
    const still = speed < st.max_motion || this.moving.has(k);
    const steady = conf >= st.min_prob && still;
    const h = this.hold;
    if (h !== null && steady && k === h.label) {  // the hold goes on: a short break was noise
      extendHold(h, t, conf);
      this.brk = 0.0;
      this.next = null;
      this.wait(t, out);
      return out;
    }
    if (h !== null) this.brk += dt;
    if (steady) {  // another label, or no hold yet: a new hold, current once the old one has ended
      if (this.next !== null && this.next.label === k) extendHold(this.next, t, conf);
      else this.next = newHold(k, t, dt, conf);
    } else {
      this.next = null;
    }
    if (h === null || this.brk >= st.min_break_ms) {
      this.close(h, out);
      this.hold = this.next;
      this.next = null;
      this.brk = 0.0;
    }
    this.wait(t, out);
    return out;
  }

  // End of stream: emit the letter still held; a pending space is dropped (no trailing space).
  finish() {
    const out = [];
    this.endWord(out);
    this.space = false;
    return out;
  }

  endWord(out) {
    this.close(this.hold, out);
    this.close(this.next, out);
    if (this.pending !== null) this.emit(this.pending, out);  // the word ended: its motion letter cannot come
    this.hold = this.next = this.s = this.tHand = this.pending = null;
    this.brk = this.away = 0.0;
    if (this.wordLetters) {
      this.space = true;
      this.wordLetters = 0;
    }
  }

  // Emit the waiting base hold once its motion letter cannot come (rule 6).
  wait(t, out) {
    const p = this.pending;
    if (p === null) return;
    const live = [this.hold, this.next].filter((x) => x !== null);
    if (live.some((x) => x.label === this.baseOf.get(p.label))) return;  // its motion letter is being held
    if (t - p.end >= this.settings.motion_wait_ms || live.some((x) => x.end - x.start >= this.settings.hold_ms)) {
      this.pending = null;
      this.emit(p, out);
    }
  }

  close(h, out) {
    if (h === null || h.end - h.start < this.settings.hold_ms) return;  // too short: a transition or flicker
    const p = this.pending;
    if (p !== null) {
      this.pending = null;
      if (h.label === this.baseOf.get(p.label) && h.start - p.end <= this.settings.motion_wait_ms) {
        h.start = p.start;  // the base shape held before the motion: the motion letter's start
      } else {
        this.emit(p, out);
      }
    }
    if (this.baseOf.has(h.label)) {  // a base shape: it waits for its motion letter
      this.pending = h;
      return;
    }
    this.emit(h, out);
  }

  emit(h, out) {
    const added = [{ letter: this.labels[h.label], start_ms: h.start, end_ms: h.end, confidence: h.confSum / h.n }];
    if (this.space) {  // the word before has ended: a space from its last letter to this one
      const prevEnd = this.letters[this.letters.length - 1].end_ms;
      added.unshift({ letter: " ", start_ms: prevEnd, end_ms: h.start, confidence: 1.0 });
      this.space = false;
    }
    this.wordLetters += 1;
    this.letters.push(...added);
    out.push(...added);
  }
}

// Decode a whole stream: frames [[tMs, probs|null, motion?], ...] -> {text, letters, words}.
export function decode(frames, labels, settings = {}) {
  const dec = new StreamDecoder(labels, settings);
  for (const f of frames) dec.push(f[0], f[1], f.length > 2 ? f[2] : 0.0);
  dec.finish();
  const words = [];
  let newWord = true;
  for (const x of dec.letters) {
    if (x.letter === " ") newWord = true;
    else if (newWord) {
      words.push({ word: x.letter, start_ms: x.start_ms, end_ms: x.end_ms });
      newWord = false;
    } else {
      words[words.length - 1].word += x.letter;
      words[words.length - 1].end_ms = x.end_ms;
    }
  }
  return { text: dec.text, letters: dec.letters.map((x) => ({ ...x })), words };
}
