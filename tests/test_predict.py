"""Predict: decoding of every image format/mode, batching, --json, folders and globs, bad files."""

import json

import numpy as np
import pytest
from PIL import Image

from deploy_helpers import ASL, base_image, format_cases, make_checkpoint, write_images
from handsign.images import preprocess as pp
from handsign.cli import main
from handsign.errors import HandsignError, ImageError
from handsign.infer.predict import Predictor, expand_inputs, predict


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


SPEC = pp.default_spec("sign_mnist")


@pytest.mark.parametrize("name", list(format_cases(base_image(0))))
def test_every_format_and_mode_gives_the_same_input(name):
    a = base_image(0)
    data, lossless = format_cases(a)[name]
    x = pp.load_image(data, SPEC, name=name)
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    diff = np.abs(x[0] - a / 255.0).max()
    assert diff <= (1e-6 if lossless else 0.08), f"{name}: max difference {diff:.3f}"


def test_transparency_is_white_and_large_images_are_fitted():
    a = base_image(1, size=56)
    rgba = np.dstack([a, a, a, np.full_like(a, 255)])
    rgba[:, :28, 3] = 0  # left half transparent
    x = pp.load_image(_png(Image.fromarray(rgba, "RGBA")), SPEC)
    assert x.shape == (1, 28, 28)
    assert x[0, :, :12].min() > 0.99  # transparent -> white
    assert x[0, :, 16:].std() > 0.05  # the visible half is kept


def _png(img):
    from deploy_helpers import encode
    return encode(img, "PNG")


def test_bad_images_are_one_line_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    (tmp_path / "cut.png").write_bytes(_png(Image.fromarray(base_image(0)))[:60])
    for name in ("empty.png", "junk.png", "cut.png", "missing.png"):
        with pytest.raises(ImageError, match=name):
            pp.load_image(tmp_path / name, SPEC)


def test_api_json_fields_and_top_k(ckpt, tmp_path):
    paths = write_images(tmp_path, 3)
    out = predict(paths, model=ckpt, top_k=5, backend="torch")
    assert [r["path"] for r in out] == [str(p) for p in paths]
    for r in out:
        labels, probs = zip(*r["top"])
        assert len(r["top"]) == 5 and set(labels) <= set(ASL)
        assert r["label"] == labels[0] and r["probability"] == probs[0]
        assert list(probs) == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_batches_give_the_same_answers(ckpt, tmp_path):
    paths = write_images(tmp_path, 5)
    p = Predictor.load(ckpt, backend="torch")
    one = p.predict_files(paths, top_k=3, batch_size=64)
    assert p.predict_files(paths, top_k=3, batch_size=2) == one
    assert [p.predict_files([x], top_k=3)[0] for x in paths] == one  # each image alone: the same answer
    # the same image in PNG and BMP gives the same prediction, and predicting the array gives the same
    Image.open(paths[0]).save(tmp_path / "same.bmp")
    again = p.predict_files([tmp_path / "same.bmp"], top_k=3)[0]
    assert again["top"] == one[0]["top"]
    assert p.predict_arrays(pp.load_batch(paths[:1], p.spec), 3)[0]["top"] == one[0]["top"]


def test_cli_json_folder_and_glob(ckpt, tmp_path, capsys):
    paths = write_images(tmp_path / "imgs", 3)
    assert main(["predict", "--model", str(ckpt), "--backend", "torch", "--json", "--top-k", "2",
                 str(tmp_path / "imgs")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    assert all({"path", "label", "probability", "top"} <= set(r) and len(r["top"]) == 2 for r in rows)
    assert main(["predict", "--model", str(ckpt), "--backend", "torch", str(tmp_path / "imgs" / "img*.png")]) == 0
    text = capsys.readouterr().out.strip().splitlines()
    assert len(text) == 3 and text[0].startswith(str(paths[0])) and "top:" in text[0]


def test_cli_bad_file_among_good_ones(ckpt, tmp_path, capsys):
    write_images(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    assert main(["predict", "--model", str(ckpt), "--backend", "torch", "--json", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 2
    assert "broken.png" in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["predict", "--model", "nowhere.safetensors", "x.png"], "nowhere.safetensors"),
    (["predict", "--top-k", "0", "x.png"], "--top-k"),
    (["predict", "--backend", "torch", "missing-image.png"], "missing-image.png"),
])
def test_cli_user_mistakes_exit_2(args, message, ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path, 1)[0].rename(tmp_path / "x.png")
    if "--model" not in args:
        args = args[:1] + ["--model", str(ckpt)] + args[1:]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("handsign: error:") and message in err and len(err.strip().splitlines()) == 1


def test_bundled_names_resolve(ckpt, tmp_path, monkeypatch):
    import handsign.saved.checkpoint as hp

    monkeypatch.setattr(hp, "BUNDLED_DIR", tmp_path)
    with pytest.raises(HandsignError, match="bundled model 'asl' is missing"):
        Predictor.load("asl", backend="torch")
    (tmp_path / "asl.safetensors").write_bytes(ckpt.read_bytes())
    assert Predictor.load("asl", backend="torch").labels == ASL


def test_expand_inputs_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no images"):
        expand_inputs([str(tmp_path / "empty")])
    with pytest.raises(ImageError, match="matches no files"):
        expand_inputs([str(tmp_path / "*.png")])


def test_top_k_is_checked_the_same_by_the_api_and_the_cli(ckpt, tmp_path, capsys):
    """`--top-k 0` and predict(top_k=0) are one check: at least 1 (more than the labels lists them all)."""
    image = write_images(tmp_path, 1)[0]
    with pytest.raises(HandsignError) as e:
        predict(image, model=ckpt, top_k=0, backend="torch")
    assert main(["predict", "--model", str(ckpt), "--backend", "torch", "--top-k", "0", str(image)]) == 2
    assert capsys.readouterr().err.strip() == f"handsign: error: {e.value}"
    assert len(predict(image, model=ckpt, top_k=100, backend="torch")[0]["top"]) == len(ASL)
    assert main(["predict", "--model", str(ckpt), "--backend", "torch", "--json", "--top-k", "2", str(image)]) == 0
    assert [json.loads(capsys.readouterr().out)] == predict(image, model=ckpt, top_k=2, backend="torch")
