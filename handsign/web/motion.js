// J and Z, the letters signed by moving, for the browser: per-frame static letter probabilities + the hand's
// landmarks -> probabilities over the static letters and j, z, for the decoder in spell.js. The same reader as
// handsign/spell/motion.py, operation for operation (IEEE doubles), tested against it on tests/fixtures/motion/;
// what it does and why is in motion.py's docstring. All times in milliseconds, never frames.
//
//   const model = await (await fetch(".../motion.json")).json();   // handsign/bundled/motion.json
//   const reader = new MotionReader(staticLabels, model);
//   const out = reader.push(tMs, points, left, probs);   // points: 21 [x, y, z] in pixels, or null: no hand
//   decoder.push(tMs, out, motion);                      // a StreamDecoder(reader.labels) from spell.js

export const MOTION_LETTERS = Object.freeze(["j", "z"]);
export const CLASSES = Object.freeze(["none", "j", "z"]);  // the motion model's outputs
const PALM = [0, 5, 9, 13, 17];  // the wrist and the knuckles: their mean is the palm's centre

export const DEFAULT_MOTION_SETTINGS = Object.freeze({
  reset_ms: 350.0,    // ms without a hand that forget the trajectory (a new word)
  evidence_top: 6,    // shape evidence: mean of this many largest resampled i (d) probabilities
  gate_low: 0.15,     // 0-1, shape evidence at or under which j (z) gets no share
  gate_high: 0.45,    // 0-1, shape evidence at or over which j (z) gets the motion model's full share
  // the static letters whose probabilities are the shape evidence (J is signed with I, Z with D)
  evidence: Object.freeze({ j: Object.freeze(["i", "y"]), z: Object.freeze(["d"]) }),
});

// Defaults with overrides; unknown keys and bad values are errors, as in MotionSettings.from_dict.
export function makeMotionSettings(overrides = {}) {
  const s = { ...DEFAULT_MOTION_SETTINGS, ...overrides };
  for (const [k, v] of Object.entries(s)) {
    if (!(k in DEFAULT_MOTION_SETTINGS)) throw new Error(`unknown motion setting: ${k}`);
    if (k === "evidence") continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new Error(`${k} must be a finite number >= 0, not ${v}`);
  }
  if (s.evidence_top < 1 || !Number.isInteger(s.evidence_top)) throw new Error("evidence_top must be a whole number >= 1");
  if (!(s.gate_low < s.gate_high && s.gate_high <= 1)) throw new Error("need gate_low < gate_high <= 1");
  const ev = s.evidence;
  const letters = (x) => typeof x === "string" || (Array.isArray(x) && x.every((y) => typeof y === "string"));
  if (ev === null || typeof ev !== "object" || Array.isArray(ev) || !Object.values(ev).every(letters)) {
    throw new Error('evidence must map motion letters to lists of letters, e.g. {"j": ["i"]}');
  }
  if (JSON.stringify(Object.keys(ev).sort()) !== JSON.stringify(MOTION_LETTERS)) {
    throw new Error("evidence needs letters for each of j, z");
  }
  const evidence = Object.fromEntries(Object.entries(ev).map(([m, x]) => [m, typeof x === "string" ? [x] : [...x]]));
  return Object.freeze({ ...s, evidence });
}

// A motion model's JSON (handsign/bundled/motion.json), checked as MotionModel.from_json checks it.
export function checkModel(m) {
  const bad = (why) => { throw new Error(`not a usable motion model: ${why}`); };
  if (m === null || typeof m !== "object" || m.format !== "handsign-motion-model" || m.version !== 1) bad("format");
  if (JSON.stringify(m.classes) !== JSON.stringify(CLASSES)) bad("classes");
  if (!(m.window_ms > 0) || !Number.isInteger(m.samples) || m.samples < 2) bad("window_ms / samples");
  if (!m.tips || !MOTION_LETTERS.every((x) => Number.isInteger(m.tips[x]) && m.tips[x] >= 0 && m.tips[x] < 21)) bad("tips");
  let n = 6 * m.samples;
  if (m.mean.length !== n || m.std.length !== n || !m.std.every((x) => x > 0)) bad("mean / std");
  for (const layer of m.layers) {
    if (layer.weight.length !== layer.bias.length || !layer.weight.every((row) => row.length === n)) bad("layers");
    if (![...layer.bias, ...layer.weight.flat()].every(Number.isFinite)) bad("weights");
    n = layer.bias.length;
  }
  if (n !== CLASSES.length) bad("outputs");
  return m;
}

// The motion MLP: (x - mean) / std, dense layers with ReLU between, softmax over CLASSES.
export function runModel(m, x) {
  let h = x.map((v, i) => (v - m.mean[i]) / m.std[i]);
  m.layers.forEach((layer, l) => {
    h = layer.weight.map((row, o) => {
      let acc = 0.0;
      for (let i = 0; i < row.length; i++) acc += h[i] * row[i];
      acc += layer.bias[o];
      return l < m.layers.length - 1 ? Math.max(acc, 0.0) : acc;
    });
  });
  const top = Math.max(...h);
  const e = h.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0.0);
  return e.map((v) => v / sum);
}

// Palm size in pixels: the mean wrist -> index, middle and pinky knuckle distance in 3-D (hands/features.py).
export function palmSize(points) {
  const d = (j) => Math.hypot(points[j][0] - points[0][0], points[j][1] - points[0][1], points[j][2] - points[0][2]);
  return (d(5) + d(9) + d(17)) / 3;
}

// How fast the hand moves between two frames, in palm sizes per second (hand_speed in hands/features.py): the
// displacement of the mean of its 21 points in the image plane over the two frames' mean palm size. The
// decoder's `motion`; 0 when dtMs <= 0.
export function handSpeed(prev, points, dtMs) {
  if (dtMs <= 0) return 0.0;
  let ax = 0.0, ay = 0.0, bx = 0.0, by = 0.0;
  for (let j = 0; j < 21; j++) {
    ax += prev[j][0];
    ay += prev[j][1];
    bx += points[j][0];
    by += points[j][1];
  }
  const shift = Math.hypot(bx / 21 - ax / 21, by / 21 - ay / 21);
  const palm = Math.max(0.5 * (palmSize(prev) + palmSize(points)), 1e-6);
  return shift / palm / (dtMs / 1000.0);
}

// np.interp: linear between the rows around t, the first / last value outside them.
function interp(t, ts, vs) {
  if (t < ts[0]) return vs[0];
  if (t >= ts[ts.length - 1]) return vs[vs.length - 1];
  let j = 0;
  while (ts[j + 1] <= t) j++;
  const slope = (vs[j + 1] - vs[j]) / (ts[j + 1] - ts[j]);
  return slope * (t - ts[j]) + vs[j];
}

// The last window of the two fingertips and the palm's centre, palm sizes and shape evidence (Trajectory in
// motion.py), and its fixed-time resampling.
export class Trajectory {
  constructor(windowMs, samples, tips) {
    this.windowMs = windowMs;
    this.samples = samples;
    this.tips = [tips.j, tips.z];
    this.rows = [];  // [t, jx, jy, zx, zy, cx, cy, palm, e_j, e_z], oldest first
  }

  clear() {
    this.rows = [];
  }

  add(t, points, eJ, eZ) {
    const [a, b] = this.tips;
    let cx = 0.0, cy = 0.0;
    for (const j of PALM) {
      cx += points[j][0];
      cy += points[j][1];
    }
    const row = [t, points[a][0], points[a][1], points[b][0], points[b][1], cx / PALM.length, cy / PALM.length,
      palmSize(points), eJ, eZ];
    if (this.rows.length && this.rows[this.rows.length - 1][0] === t) this.rows[this.rows.length - 1] = row;
    else this.rows.push(row);
    const start = t - this.windowMs;  // keep one row at or before the window's start, for interpolation
    while (this.rows.length > 1 && this.rows[1][0] <= start) this.rows.shift();
  }

  // -> {x: 6 * samples trajectory features, evidence: [samples][p_i, p_d]} (see motion.py)
  features(left) {
    const ts = this.rows.map((r) => r[0]);
    const tNow = ts[ts.length - 1];
    const step = this.windowMs / (this.samples - 1);
    const cols = [];
    for (let c = 1; c < 10; c++) {
      const vs = this.rows.map((r) => r[c]);
      const col = [];
      for (let k = 0; k < this.samples; k++) col.push(interp(tNow - this.windowMs + k * step, ts, vs));
      cols.push(col);
    }
    let palm = 0.0;
    for (const v of cols[6]) palm += v;
    palm = Math.max(palm / this.samples, 1e-6);
    const x = [];
    for (const [cx, cy] of [[0, 1], [2, 3], [4, 5]]) {
      for (let k = 0; k < this.samples; k++) {
        const dx = (cols[cx][k] - cols[cx][0]) / palm;
        x.push(left ? dx * -1.0 : dx, (cols[cy][k] - cols[cy][0]) / palm);
      }
    }
    return { x, evidence: cols[7].map((v, k) => [v, cols[8][k]]) };
  }
}

function gate(values, st) {
  const top = [...values].sort((a, b) => b - a).slice(0, st.evidence_top);
  let e = 0.0;
  for (const v of top) e += v;
  e /= top.length;
  return Math.min(Math.max((e - st.gate_low) / (st.gate_high - st.gate_low), 0.0), 1.0);
}

export class MotionReader {
  constructor(labels, model, settings = {}) {
    this.staticLabels = labels.map(String);
    for (const m of MOTION_LETTERS) {
      if (this.staticLabels.includes(m)) throw new Error(`labels already hold ${m}: the motion reader adds j and z`);
    }
    this.labels = [...this.staticLabels, ...MOTION_LETTERS];
    this.model = checkModel(model);
    this.settings = makeMotionSettings(settings);
    for (const x of Object.values(this.settings.evidence).flat()) {
      if (!this.staticLabels.includes(x)) throw new Error(`labels must hold ${x}: J and Z are read from I and D`);
    }
    // the labels summed into each motion letter's shape evidence
    this.evidence = MOTION_LETTERS.map((m) => this.settings.evidence[m].map((x) => this.staticLabels.indexOf(x)));
    this.track = new Trajectory(model.window_ms, model.samples, model.tips);
    this.tPrev = null;  // ms, previous frame
    this.tHand = null;  // ms, last hand frame
  }

  // One frame -> probabilities over this.labels (summing to 1), or null when there is no hand.
  push(tMs, points, left, probs) {
    const t = Number(tMs);
    if (this.tPrev !== null && t < this.tPrev) throw new Error(`timestamps must not decrease: ${t} after ${this.tPrev}`);
    this.tPrev = t;
    if (points === null || points === undefined) return null;
    if (points.length !== 21 || !points.every((p) => p.length === 3 && p.every(Number.isFinite))) {
      throw new Error("points must be 21 finite [x, y, z] points, in pixels");
    }
    if (probs === null || probs === undefined) throw new Error("a hand frame needs the static model's probabilities");
    if (probs.length !== this.staticLabels.length || !Array.from(probs).every((v) => Number.isFinite(v) && v >= 0)) {
      throw new Error(`probs must be ${this.staticLabels.length} finite numbers >= 0, one per label`);
    }
    let sum = 0.0;
    for (const v of probs) sum += v;
    if (!(sum > 0)) throw new Error("probs must not all be 0");
    const p = Array.from(probs, (v) => v / sum);
    if (this.tHand !== null && t - this.tHand >= this.settings.reset_ms) this.track.clear();  // a new word
    this.tHand = t;
    const [eJ, eZ] = this.evidence.map((idx) => idx.reduce((a, k) => a + p[k], 0.0));
    this.track.add(t, points, eJ, eZ);
    const { x, evidence } = this.track.features(Boolean(left));
    const q = runModel(this.model, x);
    const sJ = q[1] * gate(evidence.map((e) => e[0]), this.settings);
    const sZ = q[2] * gate(evidence.map((e) => e[1]), this.settings);
    return [...p.map((v) => v * (1.0 - sJ - sZ)), sJ, sZ];
  }
}
