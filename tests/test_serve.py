"""The web service: every endpoint and every client error, through HTTP (TestClient, a live uvicorn,
tritonclient when installed) and the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from _serve_helpers import ASL_LABELS, DIGITS, LiveServer, synthetic_images
from conftest import import_or_skip_or_fail
from handsign.serve import Limits, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's "use httpx2" deprecation notice
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client(predictors):
    return TestClient(create_app(predictors))


def png(size=(64, 48), color=(200, 120, 40), mode="RGB") -> bytes:
    b = io.BytesIO()
    Image.new(mode, size, color).save(b, "PNG")
    return b.getvalue()


def digit_png() -> bytes:
    """A '1'-like stroke, dark ink on white paper."""
    img = Image.new("L", (120, 120), 255)
    img.paste(0, (55, 15, 68, 105))
    b = io.BytesIO()
    img.save(b, "PNG")
    return b.getvalue()


def assert_error(r, status: int, *words: str):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and "\n" not in body["error"]
    for w in words:
        assert w in body["error"], body["error"]


# --- page, models list, docs -------------------------------------------------------------------------

def test_page_and_static_files_are_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for path in ("/static/app.js", "/static/style.css"):
        assert client.get(path).status_code == 200
    for text in (r.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text  # offline machine: nothing from a CDN
    assert_error(client.get("/static/nope.js"), 404)


def test_models_lists_labels_and_default(client):
    models = client.get("/models").json()
    assert [m["name"] for m in models] == ["asl", "mnist"]
    assert models[0]["default"] and not models[1]["default"]
    assert models[0]["labels"] == ASL_LABELS and models[1]["labels"] == DIGITS
    assert models[1]["preprocess"]["fit"] == "digit"


def test_openapi_json_describes_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    for path in ("/predict", "/models", "/v2/models/{name}/infer", "/v2/health/ready"):
        assert path in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


# --- POST /predict -----------------------------------------------------------------------------------

def test_predict_multipart_matches_cli_json(client, model_paths, tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(png())
    r = client.post("/predict", files={"file": ("photo.png", image.read_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    got = r.json()
    cli = subprocess.run([sys.executable, "-m", "handsign", "predict", "--json", "--model", str(model_paths["asl"]),
                          "--backend", "torch", str(image)], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert got == {**expected, "path": "photo.png"}
    assert got["label"] in ASL_LABELS and len(got["top"]) == 3
    probs = [p for _, p in got["top"]]
    assert probs == sorted(probs, reverse=True) and got["probability"] == probs[0]


def test_predict_raw_bytes_model_and_top_k(client, predictors):
    r = client.post("/predict?model=mnist&top_k=5&filename=d.png", content=digit_png(),
                    headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["path"] == "d.png" and len(got["top"]) == 5 and got["label"] in DIGITS
    expected = predictors["mnist"].predict_files([digit_png()], top_k=5, names=["d.png"])[0]
    assert got == expected


def test_predict_form_fields_choose_model(client):
    r = client.post("/predict", files={"file": ("d.png", digit_png(), "image/png")},
                    data={"model": "mnist", "top_k": "2"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] in DIGITS and len(r.json()["top"]) == 2


def test_predictions_depend_on_the_image(client):
    """The test models are trained: different pictures give different answers (not a constant)."""
    x, y = synthetic_images(24, 24, seed=1)
    labels = set()
    for img in x[:12]:
        b = io.BytesIO()
        Image.fromarray((img[0] * 255).astype(np.uint8)).save(b, "PNG")
        r = client.post("/predict", content=b.getvalue(), headers={"content-type": "image/png"})
        labels.add(r.json()["label"])
    assert len(labels) >= 3


@pytest.mark.parametrize("request_kwargs, status, words", [
    ({"content": b"not an image", "headers": {"content-type": "image/png"}}, 400, ["not a readable image"]),
    ({"content": b"", "headers": {"content-type": "image/png"}}, 400, ["empty"]),
    ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, ["text/plain"]),
    ({"json": {"a": 1}}, 415, ["application/json"]),
    ({"files": {"file": ("a.txt", b"hello", "text/plain")}}, 415, ["not an image"]),
    ({"files": {"other": ("a.png", png(), "image/png")}}, 400, ["'file'"]),
    ({"files": {"file": ("a.png", png(), "image/png")}, "params": {"model": "nope"}}, 404, ["nope", "asl, mnist"]),
    ({"files": {"file": ("a.png", png(), "image/png")}, "params": {"top_k": 0}}, 422, ["top_k"]),
    ({"files": {"file": ("a.png", png(), "image/png")}, "params": {"top_k": "x"}}, 422, ["top_k"]),
    ({"files": {"file": ("a.png", png(), "image/png")}, "data": {"top_k": "x"}}, 422, ["top_k"]),
    ({"files": {"file": ("a.png", png(), "image/png")}, "params": {"top_k": 101}}, 422, ["top_k", "100"]),
    # a form's top_k out of range is refused even when the query has a valid one (it used to be ignored)
    ({"files": {"file": ("a.png", png(), "image/png")}, "params": {"top_k": 2}, "data": {"top_k": "101"}}, 422,
     ["top_k must be in 1..100, not 101"]),
])
def test_predict_client_errors(client, request_kwargs, status, words):
    assert_error(client.post("/predict", **request_kwargs), status, *words)


def test_body_over_limit_is_413_by_length_and_by_stream(predictors):
    small = TestClient(create_app(predictors, Limits(max_upload_bytes=1000)))
    big = png(size=(400, 400), color=None, mode="L") + b"\0" * 2000
    assert_error(small.post("/predict", content=big, headers={"content-type": "image/png"}), 413, "1,000 bytes")
    assert_error(small.post("/predict", files={"file": ("a.png", big, "image/png")}), 413)

    def chunks():  # no Content-Length: chunked transfer, counted as it arrives
        for _ in range(10):
            yield b"\0" * 500

    assert_error(small.post("/predict", content=chunks(), headers={"content-type": "image/png"}), 413)
    assert_error(small.post("/v2/models/asl/infer", content=chunks()), 413)
    assert small.post("/predict", content=png(), headers={"content-type": "image/png"}).status_code == 200


def test_decompression_bomb_is_refused_before_decoding(client, predictors):
    b = io.BytesIO()
    Image.new("1", (6000, 6000), 0).save(b, "PNG")  # 36 Mpx in a few KB
    assert len(b.getvalue()) < 100_000
    assert_error(client.post("/predict", content=b.getvalue(), headers={"content-type": "image/png"}),
                 400, "6000x6000", "limit")
    strict = TestClient(create_app(predictors, Limits(max_pixels=100 * 100)))
    assert_error(strict.post("/predict", content=png(size=(101, 100)), headers={"content-type": "image/png"}), 400)
    ok = strict.post("/predict", content=png(size=(100, 100)), headers={"content-type": "image/png"})
    assert ok.status_code == 200


def test_unknown_route_and_method_are_json_errors(client):
    assert_error(client.get("/nope"), 404)
    assert_error(client.get("/predict"), 405)
    assert_error(client.post("/predict", content=png(), headers={"content-type": "image/png",
                                                                   "content-length": "abc"}), 400)


# --- Open Inference Protocol v2 ------------------------------------------------------------------------

def infer_body(x: np.ndarray, **extra) -> dict:
    return {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}],
            **extra}


def test_v2_health_and_metadata(client):
    # the Open Inference Protocol's JSON health answers (status 200 is the answer; the body says it too)
    for path, body in (("/v2/health/live", {"live": True}), ("/v2/health/ready", {"ready": True}),
                       ("/v2/models/asl/ready", {"name": "asl", "ready": True}),
                       ("/v2/models/mnist/versions/1/ready", {"name": "mnist", "ready": True})):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json" and r.json() == body, path
    assert client.get("/v2").json() == {"name": "handsign", "version": __import__("handsign").__version__,
                                        "extensions": ["binary_tensor_data"]}
    meta = client.get("/v2/models/mnist").json()
    assert meta["name"] == "mnist" and meta["platform"] == "pytorch_safetensors"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert meta["outputs"] == [{"name": n, "datatype": "FP32", "shape": [-1, 10]} for n in ("logits", "probabilities")]
    assert client.get("/v2/models/asl/versions/1").json()["outputs"][0]["shape"] == [-1, 24]
    assert_error(client.get("/v2/models/nope"), 404, "nope")
    assert_error(client.get("/v2/models/nope/ready"), 404)
    assert_error(client.get("/v2/models/asl/versions/2"), 404, "version")


def test_v2_infer_matches_predictor(client, predictors):
    x, _ = synthetic_images(3, 24, seed=2)
    r = client.post("/v2/models/asl/infer", json=infer_body(x, id="req-1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "asl" and body["id"] == "req-1"
    assert [o["name"] for o in body["outputs"]] == ["logits", "probabilities"]
    logits = np.array(body["outputs"][0]["data"], dtype=np.float32).reshape(body["outputs"][0]["shape"])
    probs = np.array(body["outputs"][1]["data"]).reshape(body["outputs"][1]["shape"])
    assert logits.shape == probs.shape == (3, 24) and body["outputs"][1]["datatype"] == "FP32"
    np.testing.assert_allclose(logits, predictors["asl"].logits(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    top = [predictors["asl"].labels[i] for i in probs.argmax(1)]
    assert top == [r["label"] for r in predictors["asl"].predict_arrays(x)]


def test_v2_infer_nested_data_outputs_and_versions(client):
    x, _ = synthetic_images(2, 10, seed=3)
    flat = client.post("/v2/models/mnist/infer", json=infer_body(x)).json()
    assert "id" not in flat
    nested = {"inputs": [{"name": "input", "shape": [2, 1, 28, 28], "datatype": "FP32", "data": x.tolist()}],
              "outputs": [{"name": "probabilities"}]}
    r = client.post("/v2/models/mnist/versions/1/infer", json=nested)
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["probabilities"]
    assert r.json()["outputs"][0]["data"] == flat["outputs"][1]["data"]
    # JSON Schema's integers (the documented shape) include 2.0: the same request with whole floats
    whole = {**nested, "inputs": [{**nested["inputs"][0], "shape": [2.0, 1.0, 28.0, 28.0]}]}
    assert client.post("/v2/models/mnist/infer", json=whole).json()["outputs"] == r.json()["outputs"]


def test_v2_binary_tensor_extension(client, predictors):
    x, _ = synthetic_images(2, 10, seed=4)
    raw = x.astype("<f4").tobytes()
    head = json.dumps({"inputs": [{"name": "input", "shape": [2, 1, 28, 28], "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "outputs": [{"name": "logits", "parameters": {"binary_data": True}},
                                   {"name": "probabilities"}]}).encode()
    r = client.post("/v2/models/mnist/infer", content=head + raw,
                    headers={"content-type": "application/octet-stream",
                             "inference-header-content-length": str(len(head))})
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    meta = json.loads(r.content[:n])
    assert meta["outputs"][0]["parameters"] == {"binary_data_size": 2 * 10 * 4} and "data" not in meta["outputs"][0]
    logits = np.frombuffer(r.content[n:], dtype="<f4").reshape(2, 10)
    np.testing.assert_allclose(logits, predictors["mnist"].logits(x), rtol=1e-5, atol=1e-5)
    assert len(meta["outputs"][1]["data"]) == 20
    # binary_data_size that does not match the shape, and a header length past the body
    bad = head.replace(str(len(raw)).encode(), str(len(raw) - 4).encode())
    assert_error(client.post("/v2/models/mnist/infer", content=bad + raw[:-4],
                             headers={"inference-header-content-length": str(len(bad))}), 400, "binary_data_size")
    assert_error(client.post("/v2/models/mnist/infer", content=head,
                             headers={"inference-header-content-length": "999999"}), 400)


def _one(shape=(1, 1, 28, 28), **over):
    t = {"name": "input", "shape": list(shape), "datatype": "FP32", "data": [0.5] * int(np.prod(shape))}
    return {"inputs": [{**t, **over}]}


@pytest.mark.parametrize("body, words", [
    (_one(shape=(1, 28, 28)), ["shape"]),
    (_one(shape=(1, 1, 32, 32)), ["shape"]),
    (_one(shape=(0, 1, 28, 28)), ["shape"]),
    (_one(shape=(1.5, 1, 28, 28)), ["shape"]),
    (_one(data=[0.5] * 10), ["784"]),
    (_one(data=[[0.5] * 10, [0.5] * 3]), ["ragged"]),
    (_one(data=["a"] * 784), ["numbers"]),
    (_one(data=[255.0] * 784), ["[0, 1]", "255"]),
    (_one(datatype="UINT8"), ["datatype"]),
    (_one(name="x"), ["'x'", "'input'"]),
    ({"inputs": []}, ["inputs"]),
    ({"nothing": 1}, ["inputs"]),
    ([1, 2], ["object"]),
    ({**_one(), "outputs": [{"name": "nope"}]}, ["nope"]),
    ({**_one(), "id": 5}, ["id"]),
    ({**_one(), "outputs": [{"name": "logits", "parameters": {"classification": 3}}]}, ["classification"]),
])
def test_v2_infer_client_errors(client, body, words):
    assert_error(client.post("/v2/models/mnist/infer", json=body), 400, *words)


def test_v2_infer_bad_json_type_and_model(client):
    assert_error(client.post("/v2/models/mnist/infer", content=b"{not json"), 400, "JSON")
    assert_error(client.post("/v2/models/mnist/infer", content=b"x", headers={"content-type": "image/png"}), 415)
    assert_error(client.post("/v2/models/mnist/infer", content=b"{}", headers={"content-encoding": "gzip"}), 415)
    assert_error(client.post("/v2/models/nope/infer", json=_one()), 404, "nope")
    too_many = TestClient(create_app(client.app.state.models, Limits(max_batch=2)))
    assert_error(too_many.post("/v2/models/mnist/infer", json=_one(shape=(3, 1, 28, 28))), 400, "1..2")


# --- over a real socket: uvicorn, httpx, tritonclient ------------------------------------------------------

@pytest.fixture(scope="module")
def live(predictors):
    with LiveServer(create_app(predictors, Limits(max_upload_bytes=2**20))) as server:
        yield server


def test_live_server_predict_and_413(live):
    import httpx

    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/predict", files={"file": ("a.png", png(), "image/png")})
        assert r.status_code == 200 and r.json()["label"] in ASL_LABELS
        r = http.post("/predict", content=b"\0" * (2 * 2**20), headers={"content-type": "image/png"})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert http.get("/openapi.json").json()["info"]["title"] == "handsign"


def test_live_server_refuses_big_body_before_it_is_sent(live):
    """Expect: 100-continue (as curl sends for big uploads): the 413 comes back with no body sent."""
    import socket

    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Content-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):  # the server closes the connection after the 413
            reply += chunk
    reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413") and '"error"' in reply


def test_tritonclient_works_unchanged(live, predictors):
    http = import_or_skip_or_fail("tritonclient.http", "tritonclient[http] is not installed")
    from tritonclient.utils import InferenceServerException

    c = http.InferenceServerClient(url=live.url.removeprefix("http://"))
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("asl")
    assert not c.is_model_ready("nope")
    assert "binary_tensor_data" in c.get_server_metadata()["extensions"]
    assert c.get_model_metadata("mnist")["inputs"][0]["shape"] == [-1, 1, 28, 28]
    x, _ = synthetic_images(4, 10, seed=5)
    expected = predictors["mnist"].logits(x)
    for binary in (True, False):  # the client's default (binary tensors) and plain JSON
        inp = http.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        res = c.infer("mnist", [inp], request_id="r1")
        np.testing.assert_allclose(res.as_numpy("logits"), expected, rtol=1e-5, atol=1e-5)
        assert res.as_numpy("probabilities").shape == (4, 10) and res.get_response()["id"] == "r1"
        out = [http.InferRequestedOutput("probabilities", binary_data=binary)]
        res = c.infer("mnist", [inp], outputs=out, model_version="1")
        assert res.as_numpy("logits") is None
        np.testing.assert_allclose(res.as_numpy("probabilities").sum(1), 1, atol=1e-5)
    with pytest.raises(InferenceServerException, match="unknown model"):
        c.infer("nope", [inp])
    bad = http.InferInput("input", [1, 1, 28, 28], "FP32")
    bad.set_data_from_numpy(np.full((1, 1, 28, 28), 255, np.float32))
    with pytest.raises(InferenceServerException, match=r"\[0, 1\]"):
        c.infer("mnist", [bad])
    c.close()


# --- CLI -------------------------------------------------------------------------------------------------

def test_cli_serve_help_and_bad_model():
    r = subprocess.run([sys.executable, "-m", "handsign", "serve", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--model" in r.stdout and "--backend" in r.stdout
    r = subprocess.run([sys.executable, "-m", "handsign", "serve", "--model", "no/such/model.safetensors"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("handsign: error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_served_names_from_paths(model_paths, tmp_path):
    import shutil

    from handsign.serve import load_models

    models = load_models([str(model_paths["mnist"]), f"letters={model_paths['asl']}"], backend="torch")
    assert list(models) == ["mnist", "letters"]
    run = tmp_path / "run-7"
    run.mkdir()
    shutil.copy(model_paths["mnist"], run / "best.safetensors")
    assert list(load_models([str(run)], backend="torch")) == ["run-7"]
    assert list(load_models([str(run / "best.safetensors")], backend="torch")) == ["run-7"]
    with pytest.raises(Exception, match="two models"):
        load_models([str(model_paths["mnist"]), str(model_paths["mnist"])], backend="torch")


def test_a_server_bug_is_a_json_500_not_a_client_error(predictors):
    class Broken:  # the Predictor interface, failing the way a bug would
        labels, spec, meta, backend = predictors["mnist"].labels, predictors["mnist"].spec, {}, "torch"

        def logits(self, x):
            raise RuntimeError("boom")

        predict_arrays = None

    c = TestClient(create_app({"broken": Broken()}), raise_server_exceptions=False)
    assert_error(c.post("/v2/models/broken/infer", json=_one()), 500, "internal server error")
    assert_error(c.post("/predict", content=png(), headers={"content-type": "image/png"}), 500)
