"""J and Z: the motion reader, handsign/spell/motion.py, and its JavaScript twin handsign/web/motion.js, with the
bundled motion model (handsign/bundled/motion.json), feeding the decoder.

- the shared streams in tests/fixtures/motion/ (drawn hands, made-up static probabilities; make_fixtures.py
  there) read to their expected text in both languages, and both give the same probabilities frame by frame;
- the generator's paths are J and Z, and a traced fingertip follows them exactly;
- real hands (realdata): J and Z traced with the I and D shapes of Massey's hand5, the person the bundled
  motion model was not trained on, read as j and z through the bundled `asl` model + MotionReader + decoder;
  an I or a D held still stays i or d; an I or a D moved sideways is no j or z; the J and Z paths traced with
  other handshapes are no j or z; 15, 30 and 60 frames/s read the same.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's handsign, even where an editable install points elsewhere

from _twin_helpers import check_fixtures_regenerate, node_json, node_test  # noqa: E402
from conftest import skip_or_fail  # noqa: E402
from handsign.hands.features import hand_speed  # noqa: E402
from handsign.spell import StreamDecoder, synth  # noqa: E402
from handsign.spell.motion import (BUNDLED_MODEL, MOTION_LETTERS, MotionModel, MotionReader,  # noqa: E402
                                   MotionSettings)

FIXTURES = REPO / "tests" / "fixtures" / "motion"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
STATIC24 = list("abcdefghiklmnopqrstuvwxy")
HELD_OUT = "hand5"  # the person the bundled motion model was not trained on (its info says so)


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def read(frames, labels=STATIC24, reader=None) -> tuple[list, str]:
    """frames [(t, points or None, left, probs or None)] -> (the reader's outputs, the decoded text). The
    decoder's motion is hand_speed between hand frames, 0 on a word's first."""
    reader = reader or MotionReader(labels)
    dec, outs, prev = StreamDecoder(reader.labels), [], None
    for t, points, left, probs in frames:
        out = reader.push(t, points, left, probs)
        outs.append(out)
        motion = None if points is None else 0.0 if prev is None else hand_speed(prev[1], points, t - prev[0])
        prev = None if points is None else (t, points)
        dec.push(t, out, motion)
    dec.finish()
    return outs, dec.text


def test_fixtures_are_there():
    assert set(NAMES) >= {"j", "z", "jazz", "jazz_15", "jazz_60", "right_hand", "i_still", "d_still", "i_sideways",
                          "d_sideways", "b_traced", "words"}


@pytest.mark.parametrize("name", NAMES)
def test_fixture_text(name):
    fx = load(name)
    outs, text = read(fx["frames"], fx["labels"])
    assert text == fx["expected_text"], fx["description"]
    for (t, points, _, _), out in zip(fx["frames"], outs):
        assert (out is None) == (points is None)
        if out is not None:
            assert out.shape == (26,) and (out >= 0).all() and out.sum() == pytest.approx(1.0, abs=1e-12)


def test_frame_rate_invariance_on_fixtures():
    assert {read(load(n)["frames"])[1] for n in ("jazz_15", "jazz", "jazz_60")} == {"jazz"}


def test_still_and_sideways_give_no_motion_letter():
    for name in ("i_still", "d_still", "i_sideways", "d_sideways", "b_traced", "words"):
        outs, _ = read(load(name)["frames"])
        assert max(float(o[-2:].max()) for o in outs if o is not None) < 0.2, name


def test_synthetic_paths_are_j_and_z():
    """The generator's J goes down, hooks toward the thumb (-x in the signer's frame) and comes back up; its Z
    goes right, down-left, right; the fingertip follows the path exactly, mirrored in the image for a left hand."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        j = synth.letter_path("j", rng)
        xy = j.at(np.linspace(0, j.ms, 200))
        bottom = int(np.argmax(xy[:, 1]))
        assert xy[bottom, 1] > 0.5 and xy[-1, 0] < -0.3 and xy[-1, 1] < xy[bottom, 1] - 0.1
        z = synth.letter_path("z", rng)
        (x1, _), (x2, y2), (x3, y3) = z.at(z.onsets[1:]).tolist() + z.at([z.ms]).tolist()  # as strokes 2, 3 begin; end
        assert x1 > 0.4 and x2 < x1 - 0.3 and y2 > 0.2 and x3 > x2 + 0.3 and y3 > 0.4
    shape = np.random.default_rng(0).uniform(0, 100, (21, 3))
    t = np.linspace(0, j.ms, 30)
    for left in (False, True):
        pts = synth.trace(shape, left, "j", t, j, palm_px=80.0, yaw=0.8, roll=0.3)
        want = j.at(t) * 80.0 * [(-1.0 if left else 1.0), 1.0]
        np.testing.assert_allclose(pts[:, synth.TIPS["j"], :2] - shape[synth.TIPS["j"], :2], want, atol=1e-9)


def test_reader_checks_its_input():
    with pytest.raises(ValueError, match="already"):
        MotionReader(STATIC24 + ["j"])
    with pytest.raises(ValueError, match="'i'"):
        MotionReader([x for x in STATIC24 if x != "i"])
    r = MotionReader(STATIC24)
    assert r.labels == STATIC24 + list(MOTION_LETTERS)
    hand = load("j")["frames"][20]
    assert hand[1] is not None
    for bad in (dict(points=np.zeros((20, 3))), dict(points=np.full((21, 3), np.nan)), dict(probs=None),
                dict(probs=[0.5] * 23), dict(probs=[0.0] * 24), dict(probs=[-1.0] + [0.1] * 23)):
        kw = {"points": hand[1], "probs": hand[3], **bad}
        with pytest.raises(ValueError):
            r.push(100.0, kw["points"], True, kw["probs"])
    assert r.push(100.0, None, True, None) is None
    with pytest.raises(ValueError, match="decrease"):
        r.push(50.0, None, True, None)
    for bad in ({"gate_low": 0.5, "gate_high": 0.4}, {"evidence_top": 0}, {"reset_ms": -1}, {"nope": 1},
                {"evidence": {"j": ["i"]}}, {"evidence": {"j": 1, "z": "d"}}, {"evidence": "id"}):
        with pytest.raises(ValueError):
            MotionSettings.from_dict(bad)
    st = MotionSettings.from_dict({"evidence": {"j": "i", "z": ["d"]}})
    assert st.to_dict()["evidence"] == {"j": ["i"], "z": ["d"]}
    assert MotionSettings.from_dict(json.loads(json.dumps(st.to_dict()))) == st
    with pytest.raises(ValueError, match="'y'"):
        MotionReader([x for x in STATIC24 if x != "y"])  # the default evidence for J: i and y
    MotionReader([x for x in STATIC24 if x != "y"], settings={"evidence": {"j": ["i"], "z": ["d"]}})


def test_model_file_checks():
    d = json.loads(BUNDLED_MODEL.read_text())
    m = MotionModel.from_json(d)
    assert m.info["held_out"] == HELD_OUT and HELD_OUT not in m.info["trained_on"] and "command" in m.info
    for breakage in (lambda x: x.update(format="pickle"), lambda x: x.update(classes=["none", "z", "j"]),
                     lambda x: x["layers"][0]["bias"].pop(), lambda x: x["std"].__setitem__(0, 0.0),
                     lambda x: x["tips"].pop("z"), lambda x: x["layers"].pop()):
        bad = json.loads(json.dumps(d))
        breakage(bad)
        with pytest.raises(ValueError):
            MotionModel.from_json(bad)


def test_fixtures_are_what_the_generator_makes(tmp_path):
    check_fixtures_regenerate(FIXTURES, NAMES, tmp_path)


# ---------- JavaScript: handsign/web/motion.js ----------

UNTESTED = "the JavaScript motion reader (handsign/web/motion.js)"  # without node


def test_js_suite():
    r = node_test("tests/js/motion.test.mjs", UNTESTED)
    assert r.returncode == 0, r.stdout + r.stderr


# Prints {"defaults", "results": {name: {"outs": [...], "text"}}} for every fixture, read by motion.js + spell.js
# as read() does.
JS_READ_ALL = """
const [motionJs, spellJs, modelPath, dir] = process.argv.slice(1);
const motion = await load(motionJs), spell = await load(spellJs);
const model = JSON.parse(fs.readFileSync(modelPath, "utf8"));
const results = {};
for (const f of fs.readdirSync(dir).filter((x) => x.endsWith(".json"))) {
  const fx = JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8"));
  const reader = new motion.MotionReader(fx.labels, model);
  const dec = new spell.StreamDecoder(reader.labels);
  const outs = [];
  let prev = null;
  for (const [t, points, left, probs] of fx.frames) {
    const out = reader.push(t, points, left, probs);
    outs.push(out);
    const m = points === null ? null : prev === null ? 0.0 : motion.handSpeed(prev[1], points, t - prev[0]);
    prev = points === null ? null : [t, points];
    dec.push(t, out, m);
  }
  dec.finish();
  results[fx.name] = { outs, text: dec.text };
}
console.log(JSON.stringify({ defaults: motion.DEFAULT_MOTION_SETTINGS, results }));
"""


def test_js_matches_python():
    web = REPO / "handsign" / "web"
    out = node_json(JS_READ_ALL, [web / "motion.js", web / "spell.js", BUNDLED_MODEL, FIXTURES], UNTESTED)
    assert out["defaults"] == MotionSettings().to_dict()
    assert sorted(out["results"]) == NAMES
    for name in NAMES:
        outs, text = read(load(name)["frames"])
        js = out["results"][name]
        assert js["text"] == text, name
        assert len(js["outs"]) == len(outs)
        for k, (a, b) in enumerate(zip(js["outs"], outs)):
            assert (a is None) == (b is None), (name, k)
            if b is not None:
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, err_msg=f"{name} frame {k}")


# ---------- real hands: the Massey photos of the held-out person ----------

@pytest.fixture(scope="module")
def massey(real_data_dir):
    """The Massey photos, as tests/test_hands.py finds them (not imported from there: that module skips
    itself without MediaPipe, and the tests above need none)."""
    root = real_data_dir / "asl_photos" / "massey"
    if not root.is_dir():
        skip_or_fail(f"{root} not found")
    return root


@pytest.fixture(scope="module")
def signer(massey):
    """hand5's shapes {letter: [(points, left)]} and a function: stream -> (outputs, text) through the bundled
    `asl` landmark model (which was trained on all five people: only the motion model never saw hand5)."""
    from handsign.hands.landmarks import Hand
    from handsign.hands.photos import load_folder
    from handsign.infer.predict import Predictor

    ls = load_folder(massey, progress=False).landmarks()
    shapes = {}
    for k in np.flatnonzero(np.array(ls.groups) == HELD_OUT):
        shapes.setdefault(ls.classes[ls.labels[k]], []).append((ls.points[k], bool(ls.left[k])))
    route = Predictor.load("asl", backend="torch").hands
    assert route.labels == STATIC24

    def run(s: synth.Stream):
        hands = [Hand(p.astype(np.float32), "Left" if left else "Right", 1.0)
                 for p, left in zip(s.points[s.hand], s.left[s.hand])]
        probs = iter(route.probs(hands))
        frames = [(t, s.points[i] if s.hand[i] else None, bool(s.left[i]), next(probs) if s.hand[i] else None)
                  for i, t in enumerate(s.t_ms.tolist())]
        return read(frames)

    return shapes, run


@pytest.mark.parametrize("seed", range(4))
def test_real_j_and_z_read_as_j_and_z(signer, seed):
    shapes, run = signer
    for letter in MOTION_LETTERS:
        s = synth.stream([letter], shapes, np.random.default_rng(seed))
        outs, text = run(s)
        assert text == letter, (letter, seed, text)


def test_real_i_and_d_held_still_stay_i_and_d(signer):
    shapes, run = signer
    st = synth.StreamSettings(hold=(1500.0, 1500.0))
    for letter in ("i", "d"):
        for seed in range(3):
            outs, text = run(synth.stream([letter], shapes, np.random.default_rng(seed), st))
            assert text == letter, (letter, seed, text)
            assert max(float(o[-2:].max()) for o in outs if o is not None) < 0.2


def test_real_hand_moved_sideways_is_no_j_or_z(signer):
    """I and D shapes moved along straight lines (sideways and other directions) and shaken: no j, no z."""
    shapes, run = signer
    rng = np.random.default_rng(0)
    for _ in range(6):
        s = synth.stream([], shapes, rng, moves=["i", "d"])
        outs, text = run(s)
        assert not set(text) & set(MOTION_LETTERS), text


def test_real_j_and_z_paths_need_their_handshapes(signer):
    """The J and Z paths traced with B, A and L shapes: the static model sees no I or D, so no j and no z."""
    shapes, run = signer
    for k, other in enumerate("bal"):
        s = synth.stream(["jz"], {**shapes, "i": shapes[other], "d": shapes[other]}, np.random.default_rng(k))
        outs, text = run(s)
        assert not set(text) & set(MOTION_LETTERS) and max(float(o[-2:].max()) for o in outs if o is not None) < 0.2


@pytest.mark.parametrize("word", ["jazz", "zoo", "enjoy"])
def test_real_frame_rate_invariance(signer, word):
    shapes, run = signer
    texts = {fps: run(synth.stream([word], shapes, np.random.default_rng(7), synth.StreamSettings(fps=fps)))[1]
             for fps in (15, 30, 60)}
    assert set(texts.values()) == {word}, texts
