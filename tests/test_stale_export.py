"""An exported .onnx is tied to the weights it came from: after a retrain or resume, the .onnx beside the
checkpoint is stale, and predict/serve either use torch with a warning (backend auto) or refuse (onnx).
Never a silent disagreement between the backends."""

import json
import subprocess

import onnx
import pytest

from conftest import REPO, make_sign_mnist, run_cli
from deploy_helpers import make_checkpoint, no_torch_cmd, write_images
from handsign.saved.checkpoint import load_model, save_checkpoint, state_dict_sha256, weights_sha256
from handsign.train.config import make_config
from handsign.errors import CheckpointError
from handsign.infer.export import export
from handsign.infer.predict import BUNDLED, BUNDLED_DIR, Predictor
from handsign.train.loop import train

QUIET = {"show_progress": False, "log": lambda *a: None}


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """(run folder, images, torch labels before, onnx labels before): trained 1 epoch, exported, then
    resumed to 3 epochs, so best.onnx was made from other weights than best.safetensors now holds."""
    base = tmp_path_factory.mktemp("stale")
    root = make_sign_mnist(base / "data")
    run = base / "run"
    train(make_config("course-asl-cnn", epochs=1, data_dir=str(root), out=str(run), batch_size=16), **QUIET)
    export(run / "best.safetensors")
    images = write_images(base / "img", 6)
    before = {b: [r["label"] for r in Predictor.load(run, b).predict_files(images)] for b in ("torch", "onnx")}
    old_hash = weights_sha256(run / "best.safetensors")
    train(resume=run, epochs=3, **QUIET)
    assert weights_sha256(run / "best.safetensors") != old_hash  # the resume did replace the best weights
    return run, images, before


def labels(predictor, images):
    return [r["label"] for r in predictor.predict_files(images)]


def test_weights_hash_is_the_tensors_only(tmp_path):
    a = make_checkpoint(tmp_path / "a.safetensors", seed=3)
    model = load_model(a).model
    # same weights, other metadata and a training state: same identity
    b = save_checkpoint(tmp_path / "b.safetensors", model, {**json.loads(a.with_suffix(".json").read_text()),
                                                          "name": "other"},
                        extra_tensors={"optimizer.0.exp_avg": next(iter(model.state_dict().values())) * 0})
    assert weights_sha256(a) == weights_sha256(b) == state_dict_sha256(model.state_dict())
    c = make_checkpoint(tmp_path / "c.safetensors", seed=4)
    assert weights_sha256(c) != weights_sha256(a)
    (tmp_path / "cut.safetensors").write_bytes(a.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="cut.safetensors: corrupt or truncated"):
        weights_sha256(tmp_path / "cut.safetensors")


def test_export_records_the_weights_hash(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.safetensors", seed=1)
    export(ckpt)
    meta = json.loads({p.key: p.value for p in onnx.load(str(ckpt.with_suffix(".onnx"))).metadata_props}["handsign"])
    assert meta["weights_sha256"] == weights_sha256(ckpt)


def test_fresh_export_is_used_and_agrees_with_torch(resumed_run):
    _, _, before = resumed_run
    assert before["onnx"] == before["torch"]


def test_stale_onnx_backend_onnx_refuses_in_one_line(resumed_run):
    run, images, _ = resumed_run
    with pytest.raises(CheckpointError) as e:
        Predictor.load(run, "onnx")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{run / 'best.onnx'}: stale ONNX file")
    assert f"handsign export {run / 'best.safetensors'} {run / 'best.onnx'}" in msg
    r = run_cli("predict", "--backend", "onnx", "--model", run, images[0])
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("handsign: error: ") and r.stderr.count("\n") == 1 and "stale ONNX file" in r.stderr


def test_stale_onnx_backend_auto_uses_torch_with_a_warning(resumed_run, capsys):
    run, images, _ = resumed_run
    expected = labels(Predictor.load(run, "torch"), images)
    capsys.readouterr()
    p = Predictor.load(run, "auto")
    err = capsys.readouterr().err
    assert p.backend == "torch" and p.source == run / "best.safetensors"
    assert err.startswith(f"handsign: warning: {run / 'best.onnx'}: stale ONNX file") and err.count("\n") == 1
    assert labels(p, images) == expected
    # the CLI: same answers as --backend torch, one warning line
    auto = run_cli("predict", "--json", "--model", run, *images)
    torch_ = run_cli("predict", "--json", "--backend", "torch", "--model", run, *images)
    assert auto.returncode == 0 == torch_.returncode, auto.stderr
    assert auto.stdout == torch_.stdout
    assert [json.loads(line)["label"] for line in auto.stdout.splitlines()] == expected
    assert auto.stderr.count("\n") == 1 and "stale ONNX file" in auto.stderr and torch_.stderr == ""


def test_stale_onnx_without_torch_refuses(resumed_run):
    """The deploy install (no torch) has nothing to fall back to: auto refuses too."""
    run, images, _ = resumed_run
    r = subprocess.run(no_torch_cmd("predict", "--model", run, images[0]), cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "stale ONNX file" in r.stderr, r.stderr


def test_serve_does_not_serve_a_stale_onnx(resumed_run):
    from handsign.serve import load_models

    run, _, _ = resumed_run
    assert load_models([str(run)])["run"].backend == "torch"
    with pytest.raises(CheckpointError, match="stale ONNX file"):
        load_models([str(run)], backend="onnx")


def test_reexport_makes_it_current_again(resumed_run, tmp_path):
    run, images, _ = resumed_run
    ckpt = tmp_path / "best.safetensors"
    ckpt.write_bytes((run / "best.safetensors").read_bytes())
    onnx_file = tmp_path / "best.onnx"
    onnx_file.write_bytes((run / "best.onnx").read_bytes())  # the stale one
    assert Predictor.load(ckpt, "auto").backend == "torch"
    export(ckpt)
    p = Predictor.load(ckpt, "auto")
    assert p.backend == "onnx" and labels(p, images) == labels(Predictor.load(ckpt, "torch"), images)


def test_onnx_without_a_weights_hash_beside_a_checkpoint_is_not_trusted(tmp_path):
    """An .onnx from an older handsign records no hash: it cannot be matched, so it counts as stale."""
    ckpt = make_checkpoint(tmp_path / "m.safetensors", seed=2)
    export(ckpt)
    proto = onnx.load(str(ckpt.with_suffix(".onnx")))
    meta = json.loads(proto.metadata_props[0].value)
    del meta["weights_sha256"]
    proto.metadata_props[0].value = json.dumps(meta)
    onnx.save(proto, str(ckpt.with_suffix(".onnx")))
    with pytest.raises(CheckpointError, match="records no weights hash"):
        Predictor.load(ckpt, "onnx")
    assert Predictor.load(ckpt, "auto").backend == "torch"
    # named directly, an .onnx file is used as it is, with a warning when the checkpoint beside it disagrees
    assert Predictor.load(ckpt.with_suffix(".onnx"), "auto").backend == "onnx"


def test_a_stale_onnx_named_directly_is_used_but_not_in_silence(resumed_run, tmp_path, capsys):
    run, images, _ = resumed_run
    capsys.readouterr()
    p = Predictor.load(run / "best.onnx", "auto")
    err = capsys.readouterr().err
    assert p.backend == "onnx" and err.count("\n") == 1
    assert "using it as named, but it is stale against best.safetensors" in err and "handsign export" in err
    alone = tmp_path / "alone.onnx"  # no checkpoint beside it: nothing to compare, nothing said
    alone.write_bytes((run / "best.onnx").read_bytes())
    assert Predictor.load(alone, "auto").backend == "onnx" and capsys.readouterr().err == ""


@pytest.mark.parametrize("name", [*BUNDLED, "asl-pixels"])
def test_bundled_onnx_matches_its_bundled_weights(name, capsys):
    model = name if name in BUNDLED else BUNDLED_DIR / f"{name}.safetensors"  # asl-pixels: asl's pixel model
    onnx_meta = Predictor.load(model, "onnx").meta
    assert onnx_meta.weights_sha256 == weights_sha256(BUNDLED_DIR / f"{name}.safetensors")
    assert Predictor.load(model, "auto").backend == "onnx" and capsys.readouterr().err == ""
