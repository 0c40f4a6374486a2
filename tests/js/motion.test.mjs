// The JavaScript motion reader (handsign/web/motion.js) with the bundled model, feeding the decoder (spell.js), on
// the shared streams in tests/fixtures/motion/: run with `node --test tests/js/motion.test.mjs`
// (tests/test_spell_motion.py runs it too, and checks it against the Python reader frame by frame).
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const path = (p) => fileURLToPath(new URL(p, import.meta.url));
// A Node too old to see ES module syntax in a .js file (before 20.19 / 22.7) gets it from a data: URL.
const load = (f) => import(pathToFileURL(f)).catch(() =>
  import("data:text/javascript;base64," + fs.readFileSync(f).toString("base64")));
const { DEFAULT_MOTION_SETTINGS, MotionReader, checkModel, handSpeed, makeMotionSettings } =
  await load(path("../../handsign/web/motion.js"));
const { StreamDecoder } = await load(path("../../handsign/web/spell.js"));
const MODEL = JSON.parse(fs.readFileSync(path("../../handsign/bundled/motion.json"), "utf8"));
const FIXTURES = path("../fixtures/motion/");
const fixtures = fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).sort()
  .map((f) => JSON.parse(fs.readFileSync(FIXTURES + f, "utf8")));
const STATIC24 = [..."abcdefghiklmnopqrstuvwxy"];

// frames -> {outs, text}: the reader's outputs and the decoder's text (motion: handSpeed between hand frames)
function read(frames, labels = STATIC24) {
  const reader = new MotionReader(labels, MODEL);
  const dec = new StreamDecoder(reader.labels);
  const outs = [];
  let prev = null;
  for (const [t, points, left, probs] of frames) {
    const out = reader.push(t, points, left, probs);
    outs.push(out);
    dec.push(t, out, points === null ? null : prev === null ? 0.0 : handSpeed(prev[1], points, t - prev[0]));
    prev = points === null ? null : [t, points];
  }
  dec.finish();
  return { outs, text: dec.text };
}

test("there are fixtures", () => assert.ok(fixtures.length >= 12));

for (const fx of fixtures) {
  test(`fixture ${fx.name}: ${fx.expected_text}`, () => {
    const { outs, text } = read(fx.frames, fx.labels);
    assert.equal(text, fx.expected_text, fx.description);
    fx.frames.forEach(([, points], k) => {
      assert.equal(outs[k] === null, points === null);
      if (outs[k] !== null) {
        assert.equal(outs[k].length, 26);
        assert.ok(Math.abs(outs[k].reduce((a, b) => a + b, 0) - 1) < 1e-12);
      }
    });
  });
}

test("15, 30 and 60 frames/s read the same", () => {
  const texts = ["jazz_15", "jazz", "jazz_60"].map((n) => read(fixtures.find((f) => f.name === n).frames).text);
  assert.deepEqual(texts, ["jazz", "jazz", "jazz"]);
});

test("settings: defaults, overrides, and errors", () => {
  assert.ok(Object.isFrozen(DEFAULT_MOTION_SETTINGS));
  assert.equal(makeMotionSettings({ reset_ms: 500 }).reset_ms, 500);
  assert.throws(() => makeMotionSettings({ nope: 1 }), /unknown/);
  assert.throws(() => makeMotionSettings({ gate_low: 0.5, gate_high: 0.4 }));
  assert.throws(() => makeMotionSettings({ evidence_top: 0 }));
  assert.throws(() => makeMotionSettings({ reset_ms: -1 }));
  assert.throws(() => makeMotionSettings({ evidence: { j: ["i"] } }), /evidence/);
  assert.throws(() => makeMotionSettings({ evidence: { j: 1, z: "d" } }), /evidence/);
  assert.deepEqual(makeMotionSettings({ evidence: { j: "i", z: ["d"] } }).evidence, { j: ["i"], z: ["d"] });
  assert.throws(() => new MotionReader(STATIC24.filter((x) => x !== "y"), MODEL), /must hold y/);
  new MotionReader(STATIC24.filter((x) => x !== "y"), MODEL, { evidence: { j: ["i"], z: ["d"] } });
});

test("the reader checks its labels, its model and its frames", () => {
  assert.throws(() => new MotionReader([...STATIC24, "j"], MODEL), /already/);
  assert.throws(() => new MotionReader(STATIC24.filter((x) => x !== "i"), MODEL), /must hold i/);
  for (const breakage of [(m) => { m.format = "pickle"; }, (m) => { m.classes = ["none", "z", "j"]; },
    (m) => { m.layers[0].bias.pop(); }, (m) => { m.std[0] = 0; }, (m) => { delete m.tips.z; },
    (m) => { m.layers.pop(); }]) {
    const bad = JSON.parse(JSON.stringify(MODEL));
    breakage(bad);
    assert.throws(() => checkModel(bad), /motion model/);
  }
  const reader = new MotionReader(STATIC24, MODEL);
  const [, points, , probs] = fixtures.find((f) => f.name === "j").frames[20];
  assert.throws(() => reader.push(100, points.slice(1), true, probs), /21/);
  assert.throws(() => reader.push(100, points, true, null), /probabilities/);
  assert.throws(() => reader.push(100, points, true, probs.slice(1)), /24/);
  assert.throws(() => reader.push(100, points, true, probs.map(() => 0)), /0/);
  assert.equal(reader.push(100, null, true, null), null);
  assert.throws(() => reader.push(50, null, true, null), /decrease/);
});
