"""ONNX export (checked against torch, metadata embedded, dynamic batch) and prediction without torch."""

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from deploy_helpers import ASL, REPO, make_checkpoint, no_torch_cmd, write_images
from handsign.cli import main
from handsign.errors import CheckpointError, HandsignError
from handsign.infer.export import export
from handsign.infer.onnx_runner import load_onnx
from handsign.infer.predict import Predictor


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    ckpt = make_checkpoint(folder / "tiny.safetensors", seed=1, name="tiny", metrics={"test_acc": 0.5})
    result = export(ckpt)  # default: beside the checkpoint, so --backend auto finds it
    return ckpt, result


def test_export_matches_torch_and_is_self_describing(exported):
    ckpt, r = exported
    assert r["path"] == ckpt.with_suffix(".onnx") and r["path"].is_file()
    assert r["max_abs_diff"] < 1e-4
    proto = onnx.load(str(r["path"]))
    assert proto.opset_import[0].version >= 17
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["handsign"])
    assert meta["labels"] == ASL and meta["name"] == "tiny" and meta["metrics"]["test_acc"] == 0.5
    assert meta["preprocess"]["size"] == 28 and meta["architecture"]["name"] == "cnn"


def test_onnx_has_dynamic_batch_and_named_io(exported):
    import torch

    from handsign.saved.checkpoint import load_model

    ckpt, r = exported
    session = ort.InferenceSession(str(r["path"]), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and out.name == "logits" and inp.type == "tensor(float)"
    assert inp.shape[1:] == [1, 28, 28] and not isinstance(inp.shape[0], int)
    net = load_model(ckpt).model
    for n in (1, 7, 33):
        x = np.random.default_rng(n).random((n, 1, 28, 28), dtype=np.float32)
        got = session.run(["logits"], {"image": x})[0]
        with torch.inference_mode():
            want = net(torch.from_numpy(x)).numpy()
        assert got.shape == (n, len(ASL)) and np.abs(got - want).max() < 1e-4


def test_onnx_and_torch_predict_alike(exported, tmp_path):
    ckpt, _ = exported
    paths = write_images(tmp_path, 6)
    a = Predictor.load(ckpt, backend="torch").predict_files(paths, top_k=3)
    b = Predictor.load(ckpt, backend="onnx").predict_files(paths, top_k=3)
    assert Predictor.load(ckpt, backend="auto").backend == "onnx"
    assert [r["label"] for r in a] == [r["label"] for r in b]
    assert max(abs(x["probability"] - y["probability"]) for x, y in zip(a, b)) < 1e-5


def test_cli_export_prints_the_difference(exported, tmp_path, capsys):
    ckpt, _ = exported
    assert main(["export", str(ckpt), "--format", "onnx", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    diff = float(out.split("random images: ")[1].split()[0])
    assert diff < 1e-4 and (tmp_path / "m.onnx").is_file()
    assert main(["export", str(ckpt), str(tmp_path / "m.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err


def test_onnx_backend_without_an_export_names_the_command_that_makes_one(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "fresh.safetensors", seed=2, name="fresh")
    with pytest.raises(CheckpointError, match="no such ONNX file") as e:
        Predictor.load(ckpt, backend="onnx")
    command = str(e.value).split("create it with '")[1].rstrip("'").split()
    assert command[:2] == ["handsign", "export"]
    assert main(command[1:]) == 0  # the hint runs as given
    assert Predictor.load(ckpt, backend="onnx").backend == "onnx"


def test_bad_onnx_files_are_refused(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07 not a model")
    with pytest.raises(CheckpointError, match="junk.onnx"):
        load_onnx(tmp_path / "junk.onnx")
    with pytest.raises(CheckpointError, match="no such ONNX file"):
        load_onnx(tmp_path / "missing.onnx")
    # a valid ONNX model without handsign metadata
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["logits"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, 28, 28])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "plain.onnx")
    with pytest.raises(CheckpointError, match="without handsign metadata"):
        load_onnx(tmp_path / "plain.onnx")
    with pytest.raises(HandsignError, match="--backend"):
        Predictor.load(tmp_path / "plain.onnx", backend="torch")


def test_light_modules_do_not_import_torch():
    code = ("import sys, handsign, handsign.cli, handsign.infer.predict, handsign.infer.onnx_runner, handsign.images.preprocess, "
            "handsign.saved.checkpoint; handsign.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_predict_without_torch_matches_torch(exported, tmp_path):
    ckpt, _ = exported
    paths = write_images(tmp_path, 4)
    r = subprocess.run(no_torch_cmd("predict", "--backend", "onnx", "--json", "--model", ckpt, *paths),
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    onnx_rows = [json.loads(line) for line in r.stdout.splitlines()]
    torch_rows = Predictor.load(ckpt, backend="torch").predict_files(paths, top_k=3)
    assert [x["label"] for x in onnx_rows] == [x["label"] for x in torch_rows]
    assert [x["path"] for x in onnx_rows] == [str(p) for p in paths]


def test_torch_commands_without_torch_say_what_to_install(exported, tmp_path):
    ckpt, _ = exported
    img = write_images(tmp_path, 1)[0]
    for args in (["predict", "--backend", "torch", "--model", ckpt, img], ["export", ckpt, tmp_path / "x.onnx"],
                 ["train", "--recipe", "course-asl-cnn", "--out", tmp_path / "run"]):
        r = subprocess.run(no_torch_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip().splitlines() == [r.stderr.strip()]
        assert "pip install 'handsign[train]'" in r.stderr
    assert not (tmp_path / "x.onnx").exists()
