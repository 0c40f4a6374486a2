import json
import os
import pickle

import pytest
import torch

from handsign.saved.checkpoint import load_model, read_metadata, save_checkpoint
from handsign.errors import CheckpointError
from handsign.models import create_model
from handsign.images.preprocess import default_spec

META = {"architecture": {"name": "cnn", "args": {}}, "labels": list("abcdefghiklmnopqrstuvwxy"),
        "preprocess": default_spec("sign_mnist"), "metrics": {"test_acc": 0.5}}


def saved(tmp_path, meta=META):
    torch.manual_seed(0)
    model = create_model("cnn", 24).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, meta)
    return model, path


def test_save_load_gives_identical_logits(tmp_path):
    model, path = saved(tmp_path)
    x = torch.rand(4, 1, 28, 28)
    loaded = load_model(path)
    assert torch.equal(model(x), loaded.model(x))
    assert loaded.labels == META["labels"] and loaded.meta.metrics["test_acc"] == 0.5
    # the JSON sidecar is a readable copy and loads the same model
    assert json.loads((tmp_path / "m.json").read_text())["labels"] == META["labels"]
    assert torch.equal(load_model(tmp_path / "m.json").model(x), model(x))


def test_metadata_readable_without_weights(tmp_path):
    _, path = saved(tmp_path)
    meta = read_metadata(path)
    assert meta.to_dict()["format"] == "handsign-checkpoint" and meta.architecture["name"] == "cnn"


def test_metadata_that_does_not_match_the_weights(tmp_path):
    _, path = saved(tmp_path, {**META, "architecture": {"name": "mlp", "args": {}}})
    with pytest.raises(CheckpointError, match="weights do not match the metadata's 'mlp' model"):
        load_model(path)
    _, path = saved(tmp_path, {**META, "labels": list("abc")})
    with pytest.raises(CheckpointError, match="shape of 7.weight"):
        load_model(path)


def test_truncated_file(tmp_path):
    _, path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(path)


def test_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(path)
    assert not marker.exists()


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "nope.safetensors")


# --- ModelMeta: the one typed description of a saved model ---------------------------------------------------

@pytest.mark.parametrize("name", ["asl", "asl-pixels", "mnist"])
def test_bundled_metadata_reads_and_writes_back_unchanged(name):
    """Files written before ModelMeta existed read unchanged, and writing them again gives the same JSON."""
    from handsign.saved.meta import ModelMeta
    from handsign.infer.predict import BUNDLED_DIR

    raw = json.loads((BUNDLED_DIR / f"{name}.json").read_text())
    meta = ModelMeta.from_dict(raw, name)
    assert meta.to_dict() == raw and json.loads(meta.to_json()) == raw
    assert read_metadata(BUNDLED_DIR / f"{name}.safetensors") == meta


@pytest.mark.parametrize("change, words", [
    ({"colour": "red"}, "unknown field(s) 'colour'"),
    ({"labels": "abc"}, "'labels' has the wrong type"),
    ({"labels": [1, 2]}, "labels must be a non-empty list of names"),
    ({"input": "audio"}, "input 'audio' is not one of"),
    ({"architecture": {"args": {}}}, "does not describe a valid model"),
    ({"min_confidence": 2}, "min_confidence 2 is not a probability"),
    ({"format_version": 99}, "newer than this handsign reads"),
    ({"format": "other"}, "not a handsign-checkpoint"),
])
def test_malformed_metadata_is_one_clear_line(change, words):
    from handsign.saved.meta import ModelMeta

    with pytest.raises(CheckpointError) as e:
        ModelMeta.from_dict({**META, **change}, "m.safetensors")
    assert words in str(e.value) and str(e.value).startswith("m.safetensors: ") and "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="metadata has no 'preprocess'"):
        ModelMeta.from_dict({k: v for k, v in META.items() if k != "preprocess"}, "m.safetensors")


def test_a_models_own_min_confidence_is_its_default(tmp_path):
    from handsign.infer.predict import MIN_CONFIDENCE, Predictor

    _, path = saved(tmp_path)
    assert Predictor.load(path, "torch").min_confidence == MIN_CONFIDENCE  # not written: predict's own floor
    _, path = saved(tmp_path, {**META, "min_confidence": 0.9})
    assert read_metadata(path).min_confidence == 0.9 and Predictor.load(path, "torch").min_confidence == 0.9
