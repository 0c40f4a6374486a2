"""The fingerspelling decoder, handsign/spell/decode.py and its JavaScript twin handsign/web/spell.js, on the
shared streams in tests/fixtures/spell/ (made by make_fixtures.py there): each decodes to its expected
text in both languages, and both give the same letters with the same times and confidences."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's handsign, even where an editable install points elsewhere

from _twin_helpers import check_fixtures_regenerate, node_json, node_test  # noqa: E402
from handsign.spell import DecoderSettings, Letter, StreamDecoder, decode  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "spell"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
LETTERS24 = list("abcdefghiklmnopqrstuvwxy")


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def run_decode(fx: dict, settings=None) -> dict:
    return decode(fx["frames"], fx["labels"], fx.get("settings", {}) if settings is None else settings)


def test_this_checkout_and_every_fixture():
    import handsign.spell
    assert Path(handsign.spell.__file__).resolve().is_relative_to(REPO), handsign.spell.__file__
    assert set(NAMES) >= {"single_word", "several_words", "double_letters", "double_dip", "rate_15", "rate_30",
                          "rate_60", "long_hold", "flicker", "dropouts", "jitter", "jz", "bases", "settings"}


@pytest.mark.parametrize("name", NAMES)
def test_fixture_text(name):
    fx = load(name)
    assert run_decode(fx)["text"] == fx["expected_text"], fx["description"]


@pytest.mark.parametrize("name", NAMES)
def test_push_matches_decode_and_letters_are_well_formed(name):
    fx = load(name)
    st = DecoderSettings.from_dict(fx.get("settings", {}))
    dec, pushed = StreamDecoder(fx["labels"], st), []
    for t, probs, motion in fx["frames"]:
        new = dec.push(t, probs, motion)
        assert all(x.end_ms <= t for x in new)  # only letters this frame completed
        pushed += new
    pushed += dec.finish()
    res = run_decode(fx)
    assert [vars(x) for x in pushed] == res["letters"] and dec.text == res["text"]
    text = res["text"]
    assert text == text.strip() and "  " not in text  # no leading, trailing or double space
    assert " ".join(w["word"] for w in res["words"]) == text
    end = -math.inf
    for x in res["letters"]:
        assert x["start_ms"] >= end and x["end_ms"] >= x["start_ms"]
        end = x["end_ms"]
        if x["letter"] != " ":
            assert x["end_ms"] - x["start_ms"] >= st.hold_ms and st.min_prob <= x["confidence"] <= 1


def test_frame_rate_invariance():
    """The same signing at 15, 30 and 60 fps: the same letters, held at about the same times."""
    res = {fps: run_decode(load(f"rate_{fps}")) for fps in (15, 30, 60)}
    assert res[15]["text"] == res[30]["text"] == res[60]["text"] == load("rate_30")["expected_text"]
    for fps in (15, 60):
        for a, b in zip(res[fps]["letters"], res[30]["letters"]):
            assert abs(a["start_ms"] - b["start_ms"]) < 140 and abs(a["end_ms"] - b["end_ms"]) < 140, (fps, a, b)


def _stream(fps, segments, labels=LETTERS24):
    """Frames at fps for [(ms, letter or None, p, motion)]: the letter at p, the rest spread evenly."""
    frames, t0 = [], 0.0
    for ms, letter, p, motion in segments:
        for t in np.arange(t0, t0 + ms, 1000 / fps):
            if letter is None:
                frames.append((float(t), None, None))
            else:
                v = np.full(len(labels), (1 - p) / (len(labels) - 1))
                v[labels.index(letter)] = p
                frames.append((float(t), v.tolist(), motion))
        t0 += ms
    return frames


@pytest.mark.parametrize("fps", [15, 24, 30, 60, 120])
def test_time_rules_at_any_frame_rate(fps):
    # a 3 s hold is one letter; a 60 ms flicker none; a bounce (motion burst) splits; a 150 ms dropout does not
    res = decode(_stream(fps, [(300, None, 0, 0), (3000, "a", 0.8, 0.1), (500, None, 0, 0)]), LETTERS24)
    assert res["text"] == "a" and res["letters"][0]["confidence"] == pytest.approx(0.8, abs=1e-9)
    frame = 1000 / fps + 1e-6  # ms, and a little for np.arange's rounding
    assert 300 - frame <= res["letters"][0]["start_ms"] <= 300 < 3300 - frame <= res["letters"][0]["end_ms"] < 3300
    assert decode(_stream(fps, [(300, None, 0, 0), (60, "b", 0.9, 0.1), (500, None, 0, 0)]), LETTERS24)["text"] == ""
    bounce = [(300, None, 0, 0), (300, "l", 0.8, 0.1), (100, "l", 0.7, 3.0), (300, "l", 0.8, 0.1), (500, None, 0, 0)]
    assert decode(_stream(fps, bounce), LETTERS24)["text"] == "ll"
    drop = [(300, None, 0, 0), (300, "l", 0.8, 0.1), (150, None, 0, 0), (300, "l", 0.8, 0.1), (500, None, 0, 0)]
    assert decode(_stream(fps, drop), LETTERS24)["text"] == "l"


@pytest.mark.parametrize("fps", [15, 30, 60, 240])
def test_ema_step_response(fps):
    """After a step from p0 to p1, the smoothed value is p1 + (p0 - p1) exp(-t / smooth_ms) whatever the fps."""
    dec, tau = StreamDecoder(["a", "b"]), DecoderSettings().smooth_ms
    dec.push(0.0, [0.9, 0.1])
    for t in np.arange(1, fps // 5 + 1) * 1000 / fps:  # about 200 ms
        dec.push(float(t), [0.2, 0.8])
    assert dec.smoothed[0] == pytest.approx(0.2 + 0.7 * math.exp(-float(t) / tau), abs=1e-9)


@pytest.mark.parametrize("fps", [60, 120, 240])
def test_smoothing_is_in_time_not_frames(fps):
    """A 45 ms dip to 0.35 inside a hold: the EMA (30 ms) keeps the smoothed a above min_prob (0.4) at any frame
    rate (0.35 + 0.5 exp(-45/30) = 0.46), so the hold does not split; unsmoothed it would (45 > 40 ms)."""
    dip = [(300, None, 0, 0), (300, "a", 0.85, 0.1), (45, "a", 0.35, 0.1), (300, "a", 0.85, 0.1), (500, None, 0, 0)]
    assert DecoderSettings().min_prob == 0.4
    assert decode(_stream(fps, dip), LETTERS24)["text"] == "a"
    assert decode(_stream(fps, dip), LETTERS24, {"smooth_ms": 0})["text"] == "aa"


def test_labels_are_an_input():
    """Reordered and renamed labels (probabilities permuted to match) read the same letters."""
    fx = load("double_letters")
    order = list(reversed(range(len(fx["labels"]))))
    labels = [fx["labels"][i].upper() for i in order]
    frames = [(t, None if p is None else [p[i] for i in order], m) for t, p, m in fx["frames"]]
    st = {"motion_labels": ["J", "Z"]}
    assert decode(frames, labels, st)["text"] == fx["expected_text"].upper()


def test_motion_missing_is_still():
    fx = load("single_word")
    still = [(t, p) for t, p, _ in fx["frames"]]  # no motion at all: treated as 0
    expected = decode([(t, p, 0.0) for t, p in still], fx["labels"])
    assert decode(still, fx["labels"]) == expected
    assert decode([(t, p, None) for t, p in still], fx["labels"]) == expected


def test_settings_round_trip_and_checks():
    st = DecoderSettings(hold_ms=120.0, motion_labels=["j"])
    assert st.motion_labels == ("j",)
    assert DecoderSettings.from_dict(json.loads(json.dumps(st.to_dict()))) == st
    assert DecoderSettings.from_dict({}) == DecoderSettings()
    assert DecoderSettings.from_dict({"gap_ms": 600}).gap_ms == 600
    for bad in ({"hold_mss": 1}, {"hold_ms": -1}, {"min_prob": 1.5}, {"gap_ms": float("nan")}, {"gap_ms": "1"},
                {"motion_labels": [1]}):
        with pytest.raises(ValueError):
            DecoderSettings.from_dict(bad)
    # the settings in a fixture matter: with the defaults, its 450 ms pause inside "yes" is a space
    assert run_decode(load("settings"), settings={})["text"] == "y es no"
    assert DecoderSettings(motion_bases={"j": "i"}).to_dict()["motion_bases"] == {"j": ["i"]}
    assert DecoderSettings(motion_bases={"j": ["i", "y"]}).motion_bases == (("j", "i"), ("j", "y"))
    for bad in ({"motion_bases": ["ji"]}, {"motion_bases": {"j": 1}}, {"motion_bases": "ji"}, {"motion_bases": 3}):
        with pytest.raises(ValueError):
            DecoderSettings.from_dict(bad)


LETTERS26 = list("abcdefghijklmnopqrstuvwxyz")


def test_motion_bases_rule_matters():
    """Without motion_bases, the still I before the J and the D before the Z are letters of their own."""
    assert run_decode(load("bases"))["text"] == "jig zap dizzy hi"
    assert run_decode(load("bases"), settings={"motion_bases": {}})["text"] == "ijig dzap dizzy hi"


@pytest.mark.parametrize("fps", [15, 30, 60])
def test_a_base_waits_only_motion_wait_ms(fps):
    # an i held, then moving (not steady) for 500 ms, then a j: one j from the i's start
    merged = decode(_stream(fps, [(300, None, 0, 0), (300, "i", 0.8, 0.1), (500, "i", 0.8, 3.0), (300, "j", 0.8, 3.0),
                                  (500, None, 0, 0)], LETTERS26), LETTERS26)
    assert merged["text"] == "j" and merged["letters"][0]["start_ms"] < 300
    # the same with the j coming 1000 ms after the i ended (> motion_wait_ms 800): the i is a letter
    late = [(300, None, 0, 0), (300, "i", 0.8, 0.1), (1000, "i", 0.8, 3.0), (300, "j", 0.8, 3.0), (500, None, 0, 0)]
    assert decode(_stream(fps, late, LETTERS26), LETTERS26)["text"] == "ij"
    # a letter held between them: i, then o, then j
    between = [(300, None, 0, 0), (300, "i", 0.8, 0.1), (300, "o", 0.8, 0.1), (300, "j", 0.8, 3.0), (500, None, 0, 0)]
    assert decode(_stream(fps, between, LETTERS26), LETTERS26)["text"] == "ioj"
    # y is a base of j too (the static model reads some people's I as Y), unless motion_bases says otherwise
    y = [(300, None, 0, 0), (300, "y", 0.8, 0.1), (300, "y", 0.8, 3.0), (300, "j", 0.8, 3.0), (500, None, 0, 0)]
    assert decode(_stream(fps, y, LETTERS26), LETTERS26)["text"] == "j"
    assert decode(_stream(fps, y, LETTERS26), LETTERS26, {"motion_bases": {"j": ["i"]}})["text"] == "yj"
    # a waiting i is emitted when the next letter has been held hold_ms, not only when that letter ends
    dec, got = StreamDecoder(LETTERS26), []
    for t, p, m in _stream(fps, [(300, "i", 0.8, 0.1), (600, "o", 0.8, 0.1)], LETTERS26):
        got += [(x.letter, t) for x in dec.push(t, p, m)]
    assert [x for x, _ in got] == ["i"] and got[0][1] < 300 + 300
    # with nothing held after it, a waiting i comes out motion_wait_ms after it ended, not at the word's end
    dec, got = StreamDecoder(LETTERS26), []
    for t, p, m in _stream(fps, [(300, "i", 0.8, 0.1), (1500, "i", 0.8, 3.0)], LETTERS26):
        got += [(x.letter, t) for x in dec.push(t, p, m)]
    assert [x for x, _ in got] == ["i"] and got[0][1] <= 300 + DecoderSettings().motion_wait_ms + 1000 / fps


def test_bad_frames():
    dec = StreamDecoder(["a", "b"])
    with pytest.raises(ValueError):
        dec.push(0, [0.5, 0.3, 0.2])
    with pytest.raises(ValueError):
        dec.push(0, [float("nan"), 0.5])
    dec.push(10, [0.9, 0.1])
    with pytest.raises(ValueError):
        dec.push(5, [0.9, 0.1])


def test_fixtures_are_what_the_generator_makes(tmp_path):
    check_fixtures_regenerate(FIXTURES, NAMES, tmp_path)


# ---------- JavaScript: handsign/web/spell.js ----------

UNTESTED = "the JavaScript decoder (handsign/web/spell.js)"  # without node


def test_js_suite():
    r = node_test("tests/js/spell.test.mjs", UNTESTED)
    assert r.returncode == 0, r.stdout + r.stderr


# Prints {"defaults": DEFAULT_SETTINGS, "results": {name: decode(...)}} for every fixture.
JS_DECODE_ALL = """
const [spell, dir] = process.argv.slice(1);
const mod = await load(spell);
const results = {};
for (const f of fs.readdirSync(dir).filter((x) => x.endsWith(".json"))) {
  const fx = JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8"));
  results[fx.name] = mod.decode(fx.frames, fx.labels, fx.settings ?? {});
}
console.log(JSON.stringify({ defaults: mod.DEFAULT_SETTINGS, results }));
"""


def test_js_matches_python():
    out = node_json(JS_DECODE_ALL, [REPO / "handsign" / "web" / "spell.js", FIXTURES], UNTESTED)
    assert out["defaults"] == DecoderSettings().to_dict()
    assert sorted(out["results"]) == NAMES
    for name in NAMES:
        py, js = run_decode(load(name)), out["results"][name]
        assert js["text"] == py["text"], name
        assert [x["letter"] for x in js["letters"]] == [x["letter"] for x in py["letters"]], name
        assert [w["word"] for w in js["words"]] == [w["word"] for w in py["words"]], name
        for a, b in zip(js["letters"] + js["words"], py["letters"] + py["words"]):
            for k in ("start_ms", "end_ms", "confidence"):
                if k in b:
                    assert a[k] == pytest.approx(b[k], abs=1e-6), (name, k, a, b)


def test_letter_is_a_dataclass():
    x = Letter("a", 1.0, 2.0, 0.9)
    assert vars(x) == {"letter": "a", "start_ms": 1.0, "end_ms": 2.0, "confidence": 0.9}
