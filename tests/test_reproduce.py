"""`handsign reproduce`: the course's five stages on tiny synthetic data -> report.json + report.html.

One reproduce run (module fixture, ~15-30 s on 2 busy CPU cores; one torch thread is fastest there) is shared by the tests below; the data
are made here (MNIST IDX files and Sign-MNIST CSVs of random-ish images), never the real ones.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import import_or_skip_or_fail, skip_or_fail
from handsign.train.config import RECIPES
from handsign.course.report_html import render
from handsign.course.reproduce import QUICK_BANNER, reproduce
from handsign.course.stages import _course_comparison, deploy
from handsign.errors import HandsignError, ImageError

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def _class_images(labels, rng) -> np.ndarray:
    """(N, 28, 28) uint8: a bright square whose place depends on the label, plus noise (learnable)."""
    x = rng.integers(0, 60, size=(len(labels), 28, 28)).astype(np.uint8)
    for i, y in enumerate(labels):
        r, c = divmod(int(y) % 25, 5)
        x[i, 2 + 5 * r:6 + 5 * r, 2 + 5 * c:6 + 5 * c] = 230
    return x


def _write_idx(path: Path, arr: np.ndarray, magic: int):
    path.write_bytes(struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def make_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n, (img, lbl) in [("train", 200, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
                                 ("test", 60, ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))]:
        y = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(raw / img, _class_images(y, rng), 0x803)
        _write_idx(raw / lbl, y, 0x801)
    sign = root / "sign_mnist"
    sign.mkdir()
    kaggle = np.array([i for i in range(25) if i != 9])  # Kaggle labels: 0..24 without 9 (j)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    for split, per_class in [("train", 10), ("test", 3)]:
        y = np.tile(kaggle, per_class)
        x = _class_images(y, rng).reshape(len(y), -1)
        rows = [",".join(map(str, [int(lbl), *px])) for lbl, px in zip(y, x)]
        (sign / f"sign_mnist_{split}.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = make_data(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("report") / "rq"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HANDSIGN_CACHE", str(tmp_path_factory.mktemp("cache")))
        # a fast-* recipe, so the data-driven comparison section has something to show
        mp.setitem(RECIPES, "fast-tiny-test", {"description": "test-only fast recipe",
                                               "settings": {"dataset": "sign_mnist", "model": "cnn",
                                                            "schedule": "onecycle", "lr": 3e-3}})
        doc = reproduce(out, quick=True, data_dir=data, epochs=1, n_samples=3, threads=1, log=lambda *a: None)
    return {"out": out, "doc": doc, "data": data}


class _Text(HTMLParser):
    """Visible text of a page (no <style>, <script> or attributes)."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    p = _Text()
    p.feed(html)
    return " ".join(p.parts)


def json_numbers(doc) -> set[float]:
    """Every number in the document: numeric values, and numbers written inside its strings."""
    found = set()

    def walk(v):
        if isinstance(v, bool):
            return
        if isinstance(v, (int, float)):
            found.add(float(v))
        elif isinstance(v, str):
            found.update(float(t.replace(",", "")) for t in NUMBER.findall(v))
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    return found


def test_report_files_and_structure(run):
    out, doc = run["out"], run["doc"]
    assert (out / "report.html").is_file() and (out / "report.json").is_file()
    assert json.loads((out / "report.json").read_text()) == doc
    assert [s["recipe"] for s in doc["stages"]] == ["course-mnist-mlp", "course-asl-mlp", "course-asl-cnn",
                                                    "course-asl-cnn-aug"]
    assert doc["quick"] and doc["quick_banner"] == QUICK_BANNER
    for s in doc["stages"]:
        assert s["epochs_run"] == 1 and s["config"]["epochs"] == 1
        best = json.loads((out / s["run_dir"] / "metrics.json").read_text())["best"]  # what the run recorded
        for split in ("train", "valid", "test"):
            assert s["accuracy"][split] == round(100 * best[f"{split}_acc"], 2)
        assert s["diagnosis"]["text"]
        assert s["course"]["valid"]
        assert (out / s["images"]["curves"]).is_file()
    for s in doc["stages"][1:]:  # the ASL stages: confusion, mistakes, most confused pairs
        assert (out / s["images"]["confusion"]).is_file()
        assert isinstance(s["most_confused"], list) and isinstance(s["worst_mistakes"], list)
        assert set(s["per_class"]) == set("abcdefghiklmnopqrstuvwxy")
    assert (out / doc["stages"][3]["images"]["augment"]).is_file()
    dep = doc["deploy"]
    assert dep["source"] == "rendered" and dep["n_images"] == 3 and dep["top_k"] == 3
    for p in dep["predictions"]:
        assert len(p["top"]) == 3 and p["label"] == p["top"][0]["label"]
        assert p["true"] in "abcdefghiklmnopqrstuvwxy" and p["correct"] == (p["label"] == p["true"])
        with Image.open(out / p["image"]) as im:
            assert im.size == (186, 184) and im.mode == "RGBA"
    # every fast-* recipe of handsign.train.config.RECIPES is run; the test adds one (it was inserted last)
    assert [r["recipe"] for r in doc["fast"]["recipes"]] == \
        [n for n in RECIPES if n.startswith("fast-")] + ["fast-tiny-test"]
    assert not doc["fast"]["note"]


def test_every_number_shown_comes_from_the_json(run):
    html = (run["out"] / "report.html").read_text()
    doc = json.loads((run["out"] / "report.json").read_text())
    allowed = json_numbers(doc)
    shown = [t for t in NUMBER.findall(visible_text(html))]
    assert len(shown) > 100
    stray = sorted({t for t in shown if float(t.replace(",", "")) not in allowed})
    assert not stray, f"numbers in report.html that are not in report.json: {stray}"
    # and the key numbers are really on the page, as stored
    text = visible_text(html)
    for s in doc["stages"] + doc["fast"]["recipes"]:
        for split in ("train", "valid", "test"):
            assert f"{s['accuracy'][split]:.2f} %" in text
    for p in doc["deploy"]["predictions"]:
        for t in p["top"]:
            assert f"{t['probability']:.2f} %" in text


def test_quick_banner_on_every_section(run):
    html = (run["out"] / "report.html").read_text()
    sections = re.findall(r"<section\b.*?</section>", html, flags=re.S)
    assert len(sections) == 8  # summary, differences, 4 stages, deployment, fast recipes
    for sec in sections:
        assert QUICK_BANNER.replace("'", "&#x27;") in sec


def test_report_is_self_contained(run):
    out = run["out"]
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) >= 4 + 3 * 2 + 1 + 3 * 2  # curves, confusion+mistakes, augmentation, deploy pairs
    for src in srcs:
        assert not src.startswith("/") and ".." not in src
        assert (out / src).is_file(), src


def test_report_renders_in_headless_chromium(run):
    if not CHROMIUM.is_file():
        skip_or_fail("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    playwright = import_or_skip_or_fail("playwright.sync_api", "needs playwright (pip install playwright)")
    out = run["out"]
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            broken = page.evaluate("Array.from(document.images)"
                                   ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
            headings = page.locator("h2").all_inner_texts()
            page.screenshot(path=str(out / "screenshot.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert not broken, broken
    assert all(u.startswith("file://") for u in requests), requests
    assert any(h.startswith("Stage 5") for h in headings), headings
    with Image.open(out / "screenshot.png") as shot:
        assert shot.size[0] == 1200 and shot.size[1] > 3000
        assert len(np.unique(np.asarray(shot.convert("L").resize((64, 256))))) > 20  # not a blank page


def test_deploy_given_images(run, tmp_path):
    """--images: the given files are copied into the report folder and predicted, truth unknown."""
    photo = tmp_path / "my hand.jpg"
    Image.new("RGB", (300, 200), (200, 180, 160)).save(photo)
    out = tmp_path / "rep"
    out.mkdir()
    model = run["out"] / "runs" / "course-asl-cnn-aug" / "best.safetensors"
    dep = deploy(model, out, [photo], run["data"], n_samples=3, top_k=2, seed=0)
    assert dep["source"] == "given" and dep["n_images"] == 1 and dep["n_known"] == 0
    p = dep["predictions"][0]
    assert p["true"] is None and "correct" not in p and len(p["top"]) == 2
    assert (out / p["image"]).is_file() and (out / p["model_input"]).is_file()
    assert p["image"].startswith("deploy/") and " " not in p["image"]


def test_fast_section_without_fast_recipes(run):
    doc = json.loads(json.dumps(run["doc"]))
    doc["fast"] = {**doc["fast"], "recipes": [], "note": "No fast-* recipe here."}
    html = render(doc)
    assert "No fast-* recipe here." in html
    assert "fast-tiny-test" not in html


def test_full_mode_page_has_no_quick_banner_and_compares_with_the_course(run):
    doc = json.loads(json.dumps(run["doc"]))
    doc.update(quick=False, quick_banner="", quick_settings={})
    assert "QUICK MODE" not in render(doc)
    assert "matches the course's figure" in _course_comparison("course-asl-cnn-aug", 98.6, quick=False)
    assert "1.50 points below" in _course_comparison("course-asl-cnn", 95.5, quick=False)
    assert "above" in _course_comparison("course-asl-mlp", 90.0, quick=False)
    assert "not comparable" in _course_comparison("course-asl-mlp", 90.0, quick=True)


def test_bad_inputs_fail_before_training(run, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("x")
    with pytest.raises(HandsignError, match="not an empty folder"):
        reproduce(busy, quick=True, data_dir=run["data"])
    with pytest.raises(ImageError, match="no such file"):
        reproduce(tmp_path / "new", quick=True, data_dir=run["data"], images=[tmp_path / "missing.png"])
    assert not (tmp_path / "new").exists()


def test_cli_no_data_still_deploys_and_exits_0(tmp_path):
    """A fresh machine: no data at all. The deployment stage runs on the bundled digit model with digits it
    draws; the other stages are marked 'needs data' with how to get it, on the page and in the terminal."""
    empty = tmp_path / "nodata"
    empty.mkdir()
    out = tmp_path / "rq"
    r = subprocess.run([sys.executable, "-m", "handsign", "reproduce", "--quick", "--data-dir", str(empty),
                        "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert sum(line.startswith("needs data: ") for line in lines) == 2  # MNIST and Sign-MNIST, once each
    assert "handsign data fetch mnist" in r.stdout and "sign_mnist_train.csv" in r.stdout
    for n in range(1, 5):
        assert any(line.startswith(f"stage {n}/5 ") and "skipped: needs data" in line for line in lines)
    assert any(line.startswith("stage 5/5 deployment: bundled mnist model on 10 digits drawn here") for line in lines)
    assert lines[-3:] == [s for s in lines[-3:] if s.startswith("  handsign ")]  # three next steps
    doc = json.loads((out / "report.json").read_text())
    assert [s["needs_data"]["dataset"] for s in doc["stages"]] == ["mnist", "sign_mnist", "sign_mnist", "sign_mnist"]
    assert all("needs_data" in s for s in doc["fast"]["recipes"])
    dep = doc["deploy"]
    assert dep["source"] == "made" and dep["bundled"] == "mnist" and dep["n_images"] == dep["n_known"] == 10
    assert dep["n_correct"] >= 8  # the bundled digit model on digits in Pillow's font (9 of 10 when written)
    assert [p["true"] for p in dep["predictions"]] == list("0123456789")
    assert all(x["holds"] is None for x in doc["lessons"])
    html = (out / "report.html").read_text()
    text = visible_text(html)
    assert text.count("Needs data: Sign Language MNIST") == 3 and "Needs data: MNIST" in text
    stray = sorted({t for t in NUMBER.findall(text) if float(t.replace(",", "")) not in json_numbers(doc)})
    assert not stray, stray
    for src in re.findall(r'src="([^"]+)"', html):
        assert (out / src).is_file(), src


def test_bad_data_file_still_stops_before_training(tmp_path):
    root = make_data(tmp_path / "data")
    (root / "sign_mnist" / "sign_mnist_test.csv").write_text("label,pixel1\n1,2\n")
    with pytest.raises(HandsignError, match="sign_mnist_test.csv: wrong header"):
        reproduce(tmp_path / "rq", quick=True, data_dir=root, epochs=1, log=lambda *a: None)
    assert not (tmp_path / "rq").exists()


def test_cli_help_lists_reproduce():
    r = subprocess.run([sys.executable, "-m", "handsign", "reproduce", "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 0
    for flag in ("--quick", "--data-dir", "--images", "--out"):
        assert flag in r.stdout


def test_lessons_say_plainly_which_do_not_show():
    from handsign.course.lessons import lessons

    def stage(recipe, test, verdict="good-fit", train=99.0):
        return {"recipe": recipe, "accuracy": {"test": test}, "last": {"train": train, "test": test},
                "diagnosis": {"verdict": verdict}}

    doc = {"quick": True, "stages": [stage("course-asl-mlp", 72.0, "overfitting", 93.5), stage("course-asl-cnn", 97.0),
                                     stage("course-asl-cnn-aug", 93.0)],
           "fast": {"recipes": [stage("fast-asl", 98.0)]}}
    got = lessons(doc)
    assert [x["holds"] for x in got] == [True, True, False, True]
    assert got[0]["numbers"] == "last epoch: train 93.50 % vs test 72.00 %, overfitting"
    assert got[2]["numbers"] == "93.00 % vs 97.00 %" and got[2]["note"].startswith("does NOT show in this run: quick")
    assert "98.51 % vs 97.53 %" in got[2]["note"]
    doc["stages"][2] = {"recipe": "course-asl-cnn-aug", "needs_data": {}}
    got = lessons(doc)
    assert [x["holds"] for x in got] == [True, True, None, None] and "no data" in got[3]["note"]
