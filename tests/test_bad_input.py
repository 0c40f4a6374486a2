"""The bad-input battery: every broken, odd or hostile input through the CLI, the Python API and the server.

Each bad case must give one line naming the input and the problem, exit 2 (CLI) or a 4xx JSON answer
(server), and leave no output behind. Odd-but-valid images (16-bit, palette, CMYK, animated) must work.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_sign_mnist, sign_csv_text
from deploy_helpers import base_image, encode, make_checkpoint
from handsign.cli import main
from handsign.train.config import make_config
from handsign.errors import CheckpointError, DataError, HandsignError, ImageError
from handsign.infer.predict import Predictor, predict
from handsign.serve import create_app
from handsign.train.loop import train

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

QUIET = {"show_progress": False, "log": lambda *a: None}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="module")
def client(ckpt):
    return TestClient(create_app({"asl": Predictor.load(ckpt, "torch")}))


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str, *words: str):
    assert err.startswith("handsign: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def tree(folder: Path) -> dict:
    """Every file under `folder` with its bytes: to check that a failure changed nothing."""
    return {p: p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# --- images ------------------------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(w: int, h: int) -> bytes:
    """A PNG header declaring w x h 8-bit gray pixels with no pixel data: nothing big is ever allocated."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _png_chunk(b"IEND", b""))


def gif_declaring(w: int, h: int) -> bytes:
    """A GIF with a 2-colour table and one w x h frame of (almost) no data."""
    return (b"GIF89a" + struct.pack("<HH", w, h) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff" + b"\x2c"
            + struct.pack("<HHHH", 0, 0, w, h) + b"\x00" + b"\x02\x02\x44\x01\x00" + b";")


def bmp_declaring(w: int, h: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


GOOD_PNG = encode(Image.fromarray(base_image(0), "L"), "PNG")
GOOD_JPG = encode(Image.fromarray(base_image(0), "L").convert("RGB"), "JPEG", quality=90)

# file name -> (bytes, words the one-line error must contain besides the name)
BAD_IMAGES = {
    "empty.png": (b"", ["file is empty"]),
    "truncated.png": (GOOD_PNG[:len(GOOD_PNG) // 2], ["not a readable image", "truncated"]),
    "header-only.png": (GOOD_PNG[:30], ["not a readable image", "PNG", "cut short"]),
    "truncated.jpg": (GOOD_JPG[:len(GOOD_JPG) // 2], ["not a readable image", "truncated"]),
    "header-only.jpg": (GOOD_JPG[:20], ["not a readable image"]),
    "text.png": (b"this is a text file, not a picture\n", ["not a readable image", "unknown format"]),
    "zero.png": (png_declaring(0, 0), ["PNG", "declares no pixels"]),
    "zero.gif": (gif_declaring(0, 0), ["GIF", "declares no pixels"]),
    "zero.bmp": (bmp_declaring(0, 0), ["BMP", "declares no pixels"]),
    "bomb.png": (png_declaring(100_000, 100_000), ["10,000,000,000 pixels", "decompression bomb"]),
    "bomb.gif": (gif_declaring(65535, 65535), ["4,294,836,225 pixels", "decompression bomb"]),
    "bomb-8k.gif": (gif_declaring(8000, 8000), ["8000x8000", "over the limit"]),
    "bomb-7k.png": (png_declaring(7000, 7000), ["7000x7000", "over the limit"]),
}


def test_crafted_headers_are_tiny():
    assert all(len(data) < 1000 for name, (data, _) in BAD_IMAGES.items() if "bomb" in name or "zero" in name)


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_image_cli_api_server(name, ckpt, client, tmp_path, capsys):
    data, words = BAD_IMAGES[name]
    path = tmp_path / name
    path.write_bytes(data)
    before = tree(tmp_path)

    code, out, err = cli(capsys, "predict", "--model", ckpt, "--backend", "torch", path)
    assert code == 2 and out == ""
    assert_one_line(err, str(path), *words)

    with pytest.raises(ImageError) as e:
        predict(path, model=ckpt, backend="torch")
    assert str(path) in str(e.value) and "\n" not in str(e.value)

    r = client.post("/predict", files={"file": (name, data, "image/png")})
    assert 400 <= r.status_code < 500 and set(r.json()) == {"error"}, r.text
    msg = r.json()["error"]
    assert msg.startswith(f"{name}: ") and "\n" not in msg and all(w in msg for w in words), msg
    r = client.post("/predict", content=data, headers={"content-type": "image/png"}, params={"filename": name})
    assert 400 <= r.status_code < 500 and r.json()["error"].startswith(f"{name}: ")
    assert tree(tmp_path) == before


def _odd_images() -> dict:
    a = base_image(2)
    g = Image.fromarray(a, "L")
    other = Image.fromarray(255 - a, "L")
    rgba = np.dstack([a, a, a, np.where(a > 100, 255, 0).astype(np.uint8)])
    pal = g.convert("P")
    pal.info["transparency"] = 0
    return {
        "gray16.png": encode(Image.fromarray(a.astype(np.uint16) * 257), "PNG"),
        "gray16.tif": encode(Image.fromarray(a.astype(np.uint16) * 257), "TIFF"),
        "float32.tif": encode(Image.fromarray(a.astype(np.float32)), "TIFF"),
        "palette.png": encode(g.convert("P"), "PNG"),
        "palette-transparent.png": encode(pal, "PNG"),
        "bilevel.png": encode(g.convert("1"), "PNG"),
        "rgba.png": encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "cmyk.jpg": encode(g.convert("CMYK"), "JPEG", quality=95),
        "cmyk.tif": encode(g.convert("CMYK"), "TIFF"),
        "animated.gif": encode(g, "GIF", save_all=True, append_images=[other], duration=50, loop=0),
        "animated.png": encode(g, "PNG", save_all=True, append_images=[other]),
        "animated.webp": encode(g.convert("RGB"), "WEBP", save_all=True, append_images=[other.convert("RGB")],
                                lossless=True),
        "big-rgb.jpg": encode(g.convert("RGB").resize((1200, 900)), "JPEG", quality=80),
    }


ODD_IMAGES = _odd_images()


@pytest.mark.parametrize("name", list(ODD_IMAGES))
def test_odd_but_valid_images_work_everywhere(name, ckpt, client, tmp_path, capsys):
    data = ODD_IMAGES[name]
    path = tmp_path / name
    path.write_bytes(data)
    code, out, err = cli(capsys, "predict", "--model", ckpt, "--backend", "torch", "--json", path)
    assert code == 0 and err == "", err
    row = json.loads(out)
    api = predict(path, model=ckpt, backend="torch")[0]
    r = client.post("/predict", files={"file": (name, data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert row == api == r.json() | {"path": str(path)}


def test_a_folder_without_images_and_paths_that_do_not_exist(ckpt, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "a" / "notes.txt").write_text("no pictures here")
    with pytest.raises(ImageError, match="folder has no images"):
        predict(empty / "a", model=ckpt, backend="torch")
    code, _, err = cli(capsys, "train", "--dataset", "folder", "--image-folder", empty, "--epochs", "1",
                       "--out", tmp_path / "run")
    assert code == 2
    assert_one_line(err, str(empty), "no images found")
    missing = tmp_path / "no" / "such"
    for args, words in [
        (["predict", "--model", ckpt, missing / "x.png"], [str(missing / "x.png"), "no such file"]),
        (["predict", "--model", missing, ckpt], [str(missing), "no such model"]),
        (["evaluate", missing], [str(missing), "no such file"]),
        (["export", missing, tmp_path / "o.onnx"], [str(missing)]),
        (["bundle", missing, "x", "--out", tmp_path / "bundle"], [str(missing)]),
        (["import-course-model", missing, tmp_path / "o.safetensors"], [str(missing), "no such file"]),
        (["train", "--resume", missing], [str(missing), "not a handsign run folder"]),
        (["train", "--dataset", "folder", "--image-folder", missing, "--out", tmp_path / "run"],
         [str(missing), "does not exist"]),
        (["train", "--data-dir", missing, "--out", tmp_path / "run"], [str(missing), "missing data: Sign Language MNIST"]),
        (["serve", "--model", missing], [str(missing)]),
    ]:
        code, _, err = cli(capsys, *args)
        assert code == 2, args
        assert_one_line(err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing written anywhere


# --- Sign-MNIST CSVs through `handsign train --data-dir` --------------------------------------------------

def _rows():  # Kaggle labels (24 present, 9 absent)
    return sign_csv_text([0, 24, 2, 3]).rstrip("\n").split("\n")


def _cell(row: int, col: int, value: str) -> str:
    lines = _rows()
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


BAD_CSVS = {
    "wrong header": ("label,pixel_1" + _rows()[0][12:] + "\n" + "\n".join(_rows()[1:]) + "\n", "wrong header"),
    "wrong column count": ("\n".join(_rows()[:3] + [_rows()[3] + ",7"]) + "\n", "row 3 has 786 columns"),
    "non-numeric pixel": (_cell(2, 40, "0x1f"), "row 2, column pixel40: '0x1f' is not a non-negative integer"),
    "pixel 300": (_cell(4, 784, "300"), "row 4, column pixel784: '300' is out of range 0..255"),
    "label outside the scheme": (_cell(1, 0, "26"), "row 1, column label: label 26 is unknown"),
    "label 9 (j)": (_cell(3, 0, "9"), "row 3, column label: label 9 is unknown"),
    "no rows": (_rows()[0] + "\n", "has a header but no data rows"),
    "empty file": ("", "file is empty"),
    "binary junk": ("\x00\x01\x02PK\x03\x04", "wrong header"),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_bad_csv_through_train(case, tmp_path, capsys):
    text, words = BAD_CSVS[case]
    root = make_sign_mnist(tmp_path / "data", n_train=48, n_test=24)
    csv = root / "sign_mnist" / "sign_mnist_train.csv"
    csv.write_text(text, encoding="latin-1")
    out = tmp_path / "run"
    code, stdout, err = cli(capsys, "train", "--recipe", "course-asl-mlp", "--epochs", "1", "--data-dir", root,
                            "--out", out, "--quiet")
    assert code == 2 and stdout == ""
    assert_one_line(err, str(csv), words)
    with pytest.raises(DataError, match="sign_mnist_train.csv"):
        train(make_config("course-asl-mlp", epochs=1, data_dir=str(root), out=str(out)), **QUIET)
    assert not out.exists()


# --- checkpoints and hostile model files ------------------------------------------------------------------

MODEL_COMMANDS = {  # command -> argv builder (model path, scratch folder)
    "predict": lambda m, t: ["predict", "--model", m, "--backend", "torch", t / "img.png"],
    "predict-auto": lambda m, t: ["predict", "--model", m, t / "img.png"],
    "evaluate": lambda m, t: ["evaluate", m, "--out", t / "eval"],
    "export": lambda m, t: ["export", m, t / "out.onnx"],
    "serve": lambda m, t: ["serve", "--model", m, "--port", "1"],
    "import-course-model": lambda m, t: ["import-course-model", m, t / "imported.safetensors"],
    "bundle": lambda m, t: ["bundle", m, "x", "--out", t / "bundle"],
    "train-resume": lambda m, t: ["train", "--resume", m.parent],
}


class Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _hostile(folder: Path, kind: str, marker: Path, data_dir: Path) -> Path:
    """A model file that would run `touch marker` if anything unpickled it."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "pickle":
        path = folder / "last.safetensors"
        path.write_bytes(pickle.dumps(Evil(marker), protocol=2))
    elif kind == "torch-zip":  # torch.save's zip format, with the pickle inside
        path = folder / "last.safetensors"
        torch.save({"w": torch.zeros(2), "hook": Evil(marker)}, path)
    elif kind == "pth":
        path = folder / "model.pth"
        torch.save(Evil(marker), path)
    else:  # "onnx": a pickle under an .onnx name
        path = folder / "model.onnx"
        path.write_bytes(pickle.dumps(Evil(marker)))
    (folder / "config.json").write_text(json.dumps(make_config("course-asl-mlp", epochs=1, data_dir=str(data_dir),
                                                               out=str(folder)).to_dict()))
    return path


# --resume reads RUN/last.safetensors only (without one the run starts at epoch 1): the kinds that take that name
HOSTILE_CASES = [(c, k) for c in MODEL_COMMANDS for k in ("pickle", "torch-zip", "pth", "onnx")
                 if c != "train-resume" or k in ("pickle", "torch-zip")]


@pytest.mark.parametrize("command, kind", HOSTILE_CASES)
def test_hostile_model_files_run_nothing(command, kind, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    model = _hostile(tmp_path / "m", kind, marker, make_sign_mnist(tmp_path / "data"))
    Image.fromarray(base_image(0)).save(tmp_path / "img.png")
    before = tree(tmp_path)
    code, _, err = cli(capsys, *MODEL_COMMANDS[command](model, tmp_path))
    assert code == 2
    assert_one_line(err, str(model))
    assert not marker.exists(), "the hostile file ran code"
    assert tree(tmp_path) == before  # no output, and the run folder (config.json) untouched


def _inconsistent_checkpoints(ckpt: Path, folder: Path) -> dict:
    """name -> (path, words): checkpoints whose metadata does not match their weights, or cut short."""
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    header_meta = json.loads(ckpt.with_suffix(".json").read_text())
    tensors = load_file(str(ckpt))
    cases = {}

    def write(name, meta, tensors=tensors):
        path = folder / f"{name}.safetensors"
        save_file(tensors, str(path), metadata={"handsign": json.dumps(meta)})
        return path

    cases["labels"] = (write("labels", {**header_meta, "labels": list("abc")}), ["weights do not match"])
    cases["architecture"] = (write("arch", {**header_meta, "architecture": {"name": "mlp", "args": {}}}),
                             ["weights do not match", "'mlp'"])
    cases["model-args"] = (write("args", {**header_meta, "architecture": {
        "name": "cnn", "args": {**header_meta["architecture"]["args"], "channels": [5, 8, 8]}}}),
        ["weights do not match"])
    cases["unknown-model"] = (write("unknown", {**header_meta, "architecture": {"name": "resnet", "args": {}}}),
                              ["does not describe a valid model", "resnet"])
    cases["bad-spec"] = (write("spec", {**header_meta, "preprocess": {**header_meta["preprocess"], "size": 10**6}}),
                         ["does not describe a valid model", "preprocess size"])
    cases["missing-tensor"] = (write("missing", header_meta, dict(list(tensors.items())[1:])), ["1 missing"])
    cases["not-json"] = (folder / "notjson.safetensors", ["not valid JSON"])
    save_file(tensors, str(cases["not-json"][0]), metadata={"handsign": "{not json"})
    cases["no-metadata"] = (folder / "plain.safetensors", ["without handsign metadata"])
    save_file(tensors, str(cases["no-metadata"][0]))
    data = ckpt.read_bytes()
    for cut in (4, 100, len(data) // 2, len(data) - 1):
        path = folder / f"cut{cut}.safetensors"
        path.write_bytes(data[:cut])
        cases[f"truncated-{cut}"] = (path, ["safetensors"])
    return cases


def test_inconsistent_or_truncated_checkpoints(ckpt, tmp_path, capsys):
    cases = _inconsistent_checkpoints(ckpt, tmp_path / "models")
    Image.fromarray(base_image(0)).save(tmp_path / "img.png")
    for name, (path, words) in cases.items():
        with pytest.raises(CheckpointError) as e:
            Predictor.load(path, "torch")
        assert str(path) in str(e.value) and "\n" not in str(e.value), name
        for command in ("predict", "evaluate", "export", "serve", "bundle"):
            before = tree(tmp_path)
            code, _, err = cli(capsys, *MODEL_COMMANDS[command](path, tmp_path))
            assert code == 2, (name, command)
            assert_one_line(err, str(path), *words)
            assert tree(tmp_path) == before, (name, command)


def test_a_sidecar_json_that_disagrees_is_not_trusted(ckpt, tmp_path):
    """The weights file's own header is the source of truth; an edited .json beside it changes nothing."""
    (tmp_path / "m.safetensors").write_bytes(ckpt.read_bytes())
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    (tmp_path / "m.json").write_text(json.dumps({**meta, "labels": list("abc")}))
    assert Predictor.load(tmp_path / "m.json", "torch").labels == meta["labels"]


# --- settings ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, words", [
    ({"epochs": 0}, "--epochs: must be a positive integer, got 0"),
    ({"epochs": -5}, "--epochs: must be a positive integer, got -5"),
    ({"batch_size": 0}, "--batch-size"),
    ({"lr": -1.0}, "--lr: must be positive"),
    ({"valid_fraction": 1.5}, "--valid-fraction"),
    ({"limit": -1}, "--limit"),
    ({"dataset": "cifar"}, "unknown dataset 'cifar'"),
])
def test_bad_settings_api(overrides, words):
    with pytest.raises(HandsignError, match=words.replace("(", r"\(")):
        make_config("course-asl-cnn", **overrides)


def test_unknown_names_and_negative_epochs_cli(ckpt, tmp_path, capsys):
    root = make_sign_mnist(tmp_path / "data")
    tiny_run = tmp_path / "run"
    train(make_config("course-asl-mlp", epochs=1, data_dir=str(root), out=str(tiny_run)), **QUIET)
    for args, words in [
        (["train", "--recipe", "course-asl-cnn-fast-typo"], ["unknown recipe 'course-asl-cnn-fast-typo'", "choose"]),
        (["augment-preview", "--recipe", "nope"], ["unknown recipe 'nope'"]),
        (["predict", "--model", "letters", ckpt], ["letters", "asl, mnist"]),
        (["export", "letters", tmp_path / "o.onnx"], ["letters"]),
        (["serve", "--model", "letters"], ["letters"]),
        (["train", "--resume", tiny_run, "--epochs", "0"], ["--epochs: must be a positive integer, got 0"]),
        (["train", "--resume", tiny_run, "--epochs", "-1"], ["--epochs: must be a positive integer, got -1"]),
        (["predict", "--model", ckpt, "--batch-size", "0", ckpt], ["--batch-size"]),
    ]:
        before = tree(tiny_run)
        code, _, err = cli(capsys, *args)
        assert code == 2, args
        assert_one_line(err, *words)
        assert tree(tiny_run) == before
    with pytest.raises(HandsignError, match="unknown model 'resnet'"):
        train(make_config("course-asl-cnn", model="resnet", data_dir=str(root), out=str(tmp_path / "r")), **QUIET)
    assert not (tmp_path / "r").exists()


def test_metadata_declaring_a_huge_or_impossible_model_allocates_nothing(ckpt, tmp_path, capsys):
    """A stranger's header may declare any architecture: 3 x 200,000 hidden units is ~80 billion parameters
    (320 GB); it is compared with the file's tensors on the meta device and refused without allocating."""
    import resource
    import time

    from safetensors.torch import load_file, save_file

    meta = json.loads(ckpt.with_suffix(".json").read_text())
    for args, words in [({"hidden": [200_000] * 3}, ["weights do not match", "expected (24, 200000)"]),
                        ({"hidden": [-5]}, ["does not describe a valid model", "negative dimension"]),
                        ({"image_size": 10**9}, ["does not describe a valid model", "overflow"])]:
        path = tmp_path / "huge.safetensors"
        save_file(load_file(str(ckpt)), str(path),
                  metadata={"handsign": json.dumps({**meta, "architecture": {"name": "mlp", "args": args}})})
        start, peak = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        code, _, err = cli(capsys, "predict", "--model", path, "--backend", "torch", path)
        assert code == 2
        assert_one_line(err, str(path), *words)
        assert time.perf_counter() - start < 5
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200 * 1024  # KiB: < 200 MB more


# --- round eight's new-user pass: paths in the way, flags that would be ignored, junk course files ------------

def test_output_paths_in_the_way_get_one_line(ckpt, tmp_path, capsys):
    root = make_sign_mnist(tmp_path / "data", n_train=48, n_test=24)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder.onnx").mkdir()
    (tmp_path / "a-folder.png").mkdir()
    for args, words in [
        (["train", "--recipe", "course-asl-mlp", "--out", tmp_path / "a-file"], ["a-file", "a file, not a folder"]),
        (["train", "--recipe", "course-asl-mlp", "--out", tmp_path / "a-file" / "run"],
         ["a-file is a file, not a folder"]),
        (["evaluate", ckpt, "--out", tmp_path / "a-file"], ["a-file", "a file, not a folder"]),
        (["export", ckpt, tmp_path / "a-folder.onnx"], ["a-folder.onnx", "a folder is in the way where a file is needed"]),
        (["augment-preview", "--data-dir", root, "--out", tmp_path / "a-folder.png"],
         ["a-folder.png", "a folder is in the way"]),
        (["augment-preview", "--data-dir", root, "--out", tmp_path / "grid.jpg"], ["grid.jpg", "ending in .png"]),
    ]:
        code, _, err = cli(capsys, *args)
        assert code == 2, args
        assert_one_line(err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a-folder.onnx", "a-folder.png", "data"]  # no temps
    assert not list((tmp_path / "a-folder.onnx").iterdir())


def test_junk_given_as_a_course_model_is_refused_in_one_line(tmp_path, capsys):
    for name, data in [("text.pth", b"hello world\n"), ("junk.pth", b"junk\n"), ("abc.pth", b"abc")]:
        (tmp_path / name).write_bytes(data)
        code, _, err = cli(capsys, "import-course-model", tmp_path / name, tmp_path / "out.safetensors")
        assert code == 2, name
        assert_one_line(err, name, "not a torch.save file")
    code, _, err = cli(capsys, "import-course-model", tmp_path, tmp_path / "out.safetensors")
    assert code == 2
    assert_one_line(err, str(tmp_path), "a folder, not a torch.save file")
    assert not (tmp_path / "out.safetensors").exists()


def test_an_image_folder_needs_the_folder_dataset_and_two_classes(tmp_path, capsys):
    folder = tmp_path / "pictures"
    (folder / "a").mkdir(parents=True)
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(folder / "a" / "one.png")
    code, _, err = cli(capsys, "train", "--recipe", "course-asl-mlp", "--image-folder", folder,
                       "--out", tmp_path / "run")
    assert code == 2
    assert_one_line(err, "--image-folder", "--dataset folder", "'sign_mnist'")
    code, _, err = cli(capsys, "train", "--recipe", "course-asl-mlp", "--dataset", "folder", "--image-folder", folder,
                       "--epochs", "1", "--out", tmp_path / "run")
    assert code == 2
    assert_one_line(err, str(folder), "1 class only", "at least 2")
    assert not (tmp_path / "run").exists()


def test_resume_refuses_flags_it_would_ignore_and_fewer_epochs_than_done(tmp_path, capsys):
    root = make_sign_mnist(tmp_path / "data")
    run = tmp_path / "run"
    code, _, _ = cli(capsys, "train", "--recipe", "course-asl-mlp", "--epochs", "2", "--data-dir", root,
                     "--out", run, "--quiet")
    assert code == 0
    saved = (run / "config.json").read_text()
    code, _, err = cli(capsys, "train", "--resume", run, "--lr", "0.5", "--recipe", "course-asl-cnn", "--epochs", "3")
    assert code == 2
    assert_one_line(err, "--recipe, --lr", "only --epochs")
    code, _, err = cli(capsys, "train", "--resume", run, "--epochs", "1", "--quiet")
    assert code == 2
    assert_one_line(err, "--epochs 1", "already trained 2 epochs")
    assert (run / "config.json").read_text() == saved  # the refused resume rewrote nothing
    code, out, _ = cli(capsys, "train", "--resume", run, "--quiet")  # all epochs done: says so, sums up again
    assert code == 0 and "already trained 2 epochs: nothing to train" in out
    # a landmark run written before both families shared the loop: a best checkpoint and no resumable state
    hands = tmp_path / "hands-run"
    hands.mkdir()
    (hands / "config.json").write_text(json.dumps({"recipe": "hands-asl", "photos": "", "holdout": ""}))
    (hands / "best.safetensors").write_bytes(b"")
    code, _, err = cli(capsys, "train", "--resume", hands)
    assert code == 2
    assert_one_line(err, "no resumable checkpoint", "--recipe hands-asl")


def test_evaluate_says_when_the_recorded_data_folder_is_not_here(tmp_path, capsys, monkeypatch):
    make_sign_mnist(tmp_path / "work" / "data")
    other = make_sign_mnist(tmp_path / "elsewhere", seed=1)
    monkeypatch.chdir(tmp_path / "work")
    code, _, _ = cli(capsys, "train", "--recipe", "course-asl-mlp", "--epochs", "1", "--data-dir", "data",
                     "--out", "run", "--quiet")  # a relative --data-dir is recorded as given
    assert code == 0
    code, _, err = cli(capsys, "evaluate", "run", "--json")
    assert code == 0 and err == ""
    monkeypatch.chdir(tmp_path)  # from here "data" is not a folder: another copy is used, and said
    monkeypatch.setenv("HANDSIGN_DATA", str(other))
    code, out, err = cli(capsys, "evaluate", "work/run", "--json")
    assert code == 0 and "NOTE: the data folder this model was trained with, 'data', is not here" in err
    assert str(other) in err and json.loads(out)["data"].startswith(str(other))
