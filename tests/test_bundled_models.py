"""The bundled models, loaded by name as a user gets them (`--model asl`, `--model mnist`; nothing
patched), reproduce the test accuracy recorded in their metadata (handsign/bundled/NAME.json) on the
real test split, through both backends, image for image."""

import json

import numpy as np
import pytest

from handsign.data.readers import load_dataset
from handsign.infer.predict import BUNDLED_DIR, Predictor


@pytest.mark.realdata
@pytest.mark.parametrize("name, pixels, dataset", [("asl", "asl-pixels", "sign_mnist"), ("mnist", "mnist", "mnist")])
def test_bundled_model_reproduces_its_recorded_test_accuracy(real_data_dir, name, pixels, dataset):
    """`asl` is the hand-landmark model; its pixel model `asl-pixels` (loaded through `asl`) reads the
    Sign-MNIST test split."""
    meta = json.loads((BUNDLED_DIR / f"{pixels}.json").read_text())
    test = load_dataset(dataset, "test", real_data_dir)
    assert len(test) == meta["data"]["n_test"]
    expected_correct = round(meta["metrics"]["test_acc"] * len(test))  # asl 7172 of 7172, mnist 9950 of 10000
    # the test split's 28x28 pixels / 255: exactly what training's test evaluation fed the model
    x = test.images.numpy().astype(np.float32) / 255
    y = test.labels.numpy()
    predictions = {}
    for backend in ("torch", "onnx"):
        p = Predictor.load(name, backend)
        assert p.backend == backend and p.source == BUNDLED_DIR / f"{pixels}.{'onnx' if backend == 'onnx' else 'safetensors'}"
        assert p.labels == test.classes
        predictions[backend] = np.concatenate([p.logits(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
        assert int((predictions[backend] == y).sum()) == expected_correct, backend
    assert np.array_equal(predictions["torch"], predictions["onnx"])  # and the same image by image


@pytest.mark.realdata
def test_evaluate_takes_bundled_names(real_data_dir, monkeypatch):
    """`handsign evaluate mnist` finds its data through $HANDSIGN_DATA (the bundled model's recorded data
    folder is another machine's); `evaluate asl` says the landmark model is measured on photos instead."""
    from handsign.errors import HandsignError
    from handsign.infer.evaluate import evaluate

    monkeypatch.setenv("HANDSIGN_DATA", str(real_data_dir))
    meta = json.loads((BUNDLED_DIR / "mnist.json").read_text())
    assert evaluate("mnist")["accuracy"] == pytest.approx(meta["metrics"]["test_acc"], abs=1e-6)
    with pytest.raises(HandsignError, match="hand-landmark model.*asl-pixels"):
        evaluate("asl")
