// The JavaScript fingerspelling decoder (handsign/web/spell.js) on the shared streams in tests/fixtures/spell/:
// run with `node --test tests/js/spell.test.mjs` (tests/test_spell_decode.py runs it too).
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const SPELL = fileURLToPath(new URL("../../handsign/web/spell.js", import.meta.url));
const FIXTURES = fileURLToPath(new URL("../fixtures/spell/", import.meta.url));
// A Node too old to see ES module syntax in a .js file (before 20.19 / 22.7) gets it from a data: URL.
const { DEFAULT_SETTINGS, StreamDecoder, decode, makeSettings } = await import(pathToFileURL(SPELL)).catch(() =>
  import("data:text/javascript;base64," + fs.readFileSync(SPELL).toString("base64")));

const fixtures = fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).sort()
  .map((f) => JSON.parse(fs.readFileSync(FIXTURES + f, "utf8")));

test("there are fixtures", () => assert.ok(fixtures.length >= 13));

for (const fx of fixtures) {
  test(`fixture ${fx.name}: ${fx.expected_text}`, () => {
    assert.equal(decode(fx.frames, fx.labels, fx.settings ?? {}).text, fx.expected_text, fx.description);
  });

  test(`fixture ${fx.name}: push() and finish() give what decode() gives`, () => {
    const dec = new StreamDecoder(fx.labels, fx.settings ?? {});
    const pushed = [];
    for (const [t, probs, motion] of fx.frames) {
      const added = dec.push(t, probs, motion);
      assert.ok(added.every((x) => x.end_ms <= t), "only letters this frame completed");
      pushed.push(...added);
    }
    pushed.push(...dec.finish());
    const res = decode(fx.frames, fx.labels, fx.settings ?? {});
    assert.deepEqual(pushed, res.letters);
    assert.equal(dec.text, res.text);
    assert.equal(res.text, res.text.trim());
    assert.ok(!res.text.includes("  "), "no double space");
    assert.equal(res.words.map((w) => w.word).join(" "), res.text);
  });
}

test("settings: defaults, overrides, and errors", () => {
  assert.ok(Object.isFrozen(DEFAULT_SETTINGS));
  assert.equal(makeSettings({ gap_ms: 600 }).gap_ms, 600);
  assert.equal(makeSettings().hold_ms, DEFAULT_SETTINGS.hold_ms);
  assert.throws(() => makeSettings({ hold_mss: 1 }), /unknown/);
  assert.throws(() => makeSettings({ hold_ms: -1 }));
  assert.throws(() => makeSettings({ min_prob: 1.5 }));
  assert.throws(() => makeSettings({ motion_labels: [1] }));
  const settings = fixtures.find((f) => f.name === "settings");
  assert.equal(decode(settings.frames, settings.labels).text, "y es no");  // its settings matter
  assert.throws(() => makeSettings({ motion_bases: ["ji"] }), /motion_bases/);
  assert.throws(() => makeSettings({ motion_bases: { j: 1 } }), /motion_bases/);
  const bases = fixtures.find((f) => f.name === "bases");  // rule 6 matters
  assert.equal(decode(bases.frames, bases.labels, { motion_bases: {} }).text, "ijig dzap dizzy hi");
});

test("bad frames are errors", () => {
  const dec = new StreamDecoder(["a", "b"]);
  assert.throws(() => dec.push(0, [0.5, 0.3, 0.2]));
  assert.throws(() => dec.push(0, [NaN, 0.5]));
  dec.push(10, [0.9, 0.1]);
  assert.throws(() => dec.push(5, [0.9, 0.1]), /decrease/);
});

test("the EMA is in time: a step decays as exp(-t / smooth_ms) at any frame rate", () => {
  for (const fps of [15, 30, 60, 240]) {
    const dec = new StreamDecoder(["a", "b"]);
    dec.push(0, [0.9, 0.1]);
    let t = 0;
    for (let i = 1; i <= Math.floor(fps / 5); i++) dec.push((t = (i * 1000) / fps), [0.2, 0.8]);
    const want = 0.2 + 0.7 * Math.exp(-t / DEFAULT_SETTINGS.smooth_ms);
    assert.ok(Math.abs(dec.smoothed[0] - want) < 1e-9, `${fps} fps: ${dec.smoothed[0]} != ${want}`);
  }
});

test("a base shape (i) waits for its motion letter at most motion_wait_ms, then comes out", () => {
  const labels = [..."abcdefghijklmnopqrstuvwxyz"];
  const frame = (letter) => labels.map((x) => (x === letter ? 0.8 : 0.2 / 25));
  const dec = new StreamDecoder(labels);
  const got = [];
  for (let t = 0; t < 1800; t += 1000 / 30) {
    for (const x of dec.push(t, frame("i"), t < 300 ? 0.1 : 3.0)) got.push([x.letter, t]);  // still, then moving
  }
  assert.deepEqual(got.map((x) => x[0]), ["i"]);
  assert.ok(got[0][1] <= 300 + DEFAULT_SETTINGS.motion_wait_ms + 1000 / 30, `came out at ${got[0][1]}`);
  // the same i running into a j: one j, from the i's start
  const merged = decode([[0, frame("i"), 0.1], [150, frame("i"), 0.1], [200, frame("i"), 3], [500, frame("i"), 3],
    ...Array.from({ length: 10 }, (_, k) => [530 + 33 * k, frame("j"), 3]), [1300, null, null]], labels);
  assert.equal(merged.text, "j");
  assert.equal(merged.letters[0].start_ms, 0);
});
