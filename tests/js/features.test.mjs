// The page's features (handsign/web/features.js) and landmark model (landmark_model.js) against what Python computes
// on the same real landmarks (tests/fixtures/hands/features.json, made by make_fixture.py there):
// `node --test tests/js/features.test.mjs`; tests/test_web_features.py runs it too, with HANDSIGN_WEIGHTS set to
// the bundled asl model's browser weights (GET /models/asl/weights), which the model tests need.
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const web = (name) => fileURLToPath(new URL(`../../handsign/web/${name}`, import.meta.url));
// A Node too old to see ES module syntax in a .js file (before 20.19 / 22.7) gets it from a data: URL.
const load = (path) => import(pathToFileURL(path)).catch(() =>
  import("data:text/javascript;base64," + fs.readFileSync(path).toString("base64")));
const { BLOCKS, FEATURES_VERSION, N_FEATURES, handFeatures, handSpeed, palmSize } = await load(web("features.js"));
const { LandmarkModel, parseSafetensors } = await load(web("landmark_model.js"));
const { largestHand, solutionsHandedness } = await load(web("hands.js"));
const fx = JSON.parse(fs.readFileSync(fileURLToPath(new URL("../fixtures/hands/features.json", import.meta.url)), "utf8"));

const maxDiff = (a, b) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));

test("the fixture and the layout", () => {
  assert.equal(FEATURES_VERSION, fx.features_version);
  assert.equal(N_FEATURES, 102);
  assert.deepEqual(Object.values(BLOCKS), [60, 10, 12, 15, 2, 3]);
  assert.ok(fx.hands.length >= 26);
});

for (const h of fx.hands) {
  test(`features of ${h.name} match Python's`, () => {
    const f = handFeatures(h.points, h.left);
    assert.ok(f instanceof Float32Array && f.length === 102);
    assert.ok(maxDiff(f, h.features) < 1e-6, `max |JS - Python| = ${maxDiff(f, h.features)}`);
  });
}

test("hand speed between consecutive hands matches Python's", () => {
  fx.speeds.forEach((want, i) => {
    const got = handSpeed(fx.hands[i].points, fx.hands[i + 1].points, fx.dt_ms);
    assert.ok(Math.abs(got - want) < 1e-9 * Math.max(1, want), `${i}: ${got} != ${want}`);
  });
  const p = fx.hands[0].points;
  assert.equal(handSpeed(p, p, 33), 0);
  assert.equal(handSpeed(p, p.map(([x, y, z]) => [x + 10, y, z]), 0), 0);  // dt <= 0: 0
  const shifted = p.map(([x, y, z]) => [x + palmSize(p), y, z]);  // one palm size in 500 ms: 2 palm sizes/s
  assert.ok(Math.abs(handSpeed(p, shifted, 500) - 2) < 1e-9);
});

test("bad points are refused", () => {
  assert.throws(() => handFeatures(fx.hands[0].points.slice(1), false), /21/);
  assert.throws(() => handFeatures(fx.hands[0].points.map(() => [0, NaN, 0]), false), /finite/);
});

const weights = process.env.HANDSIGN_WEIGHTS;
test("the landmark model gives Python's probabilities", { skip: !weights && "HANDSIGN_WEIGHTS not set" }, () => {
  const buf = fs.readFileSync(weights);
  const model = new LandmarkModel(parseSafetensors(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)));
  assert.deepEqual(model.labels, fx.labels);
  for (const h of fx.hands) {
    const p = model.probs(handFeatures(h.points, h.left));
    assert.ok(maxDiff(p, h.probs) < 1e-5, `${h.name}: max |JS - Python| = ${maxDiff(p, h.probs)}`);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  }
});

test("a file that is not the weights is refused", () => {
  assert.throws(() => parseSafetensors(new ArrayBuffer(4)), /too short/);
  const junk = new Uint8Array(64).fill(0xff);
  assert.throws(() => parseSafetensors(junk.buffer), /not a safetensors/);
});

test("hands.js: the largest hand, in pixels, named as mediapipe.solutions names it", () => {
  const hand = (x0, size) => Array.from({ length: 21 }, (_, j) => ({ x: x0 + (size * (j % 5)) / 4, y: 0.2 + (size * Math.floor(j / 5)) / 4, z: 0.01 * j }));
  const result = { landmarks: [hand(0.1, 0.1), hand(0.5, 0.3)],
                   handedness: [[{ categoryName: "Left", score: 0.8 }], [{ categoryName: "Right", score: 0.9 }]] };
  const h = largestHand(result, 640, 480);
  assert.equal(h.hands, 2);
  assert.equal(h.handedness, "Left");  // the Tasks API's "Right" (the real hand) is solutions' "Left"
  assert.equal(h.left, true);
  assert.equal(h.score, 0.9);
  assert.deepEqual(h.points[1], [(0.5 + 0.3 / 4) * 640, 0.2 * 480, 0.01 * 640]);  // z in x's pixels
  assert.equal(solutionsHandedness("Left"), "Right");
  assert.equal(largestHand({ landmarks: [], handedness: [] }, 640, 480), null);
});
