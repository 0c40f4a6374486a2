"""Property and fuzz tests (hypothesis): random bytes, mutated images, CSVs, checkpoints and requests never
fail except with the documented error types (ImageError, DataError, CheckpointError: all HandsignError),
and the server never answers 5xx to them. Example counts are modest: the file runs in well under 30 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import REPO, sign_csv_text
from deploy_helpers import base_image, encode, make_checkpoint
from handsign.images import preprocess as pp
from handsign.saved.checkpoint import load_model
from handsign.data.readers import map_sign_labels, parse_sign_mnist_csv
from handsign.errors import CheckpointError, DataError, ImageError
from handsign.infer.predict import Predictor
from handsign.serve import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SCALE = float(os.environ.get("HANDSIGN_FUZZ_SCALE", "1"))  # e.g. 50 for a long hunt; 1 keeps the file < 30 s


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow on mutated TIFFs: expected

FUZZ = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
SPECS = [pp.default_spec("sign_mnist"), pp.default_spec("mnist")]


def _seeds() -> dict:
    a = base_image(3, size=20)
    g = Image.fromarray(a, "L")
    return {"png": encode(g, "PNG"), "jpeg": encode(g.convert("RGB"), "JPEG", quality=80),
            "gif": encode(g, "GIF", save_all=True, append_images=[g.rotate(90)]),
            "webp": encode(g.convert("RGB"), "WEBP", lossless=True), "bmp": encode(g, "BMP"),
            "tiff": encode(g, "TIFF"), "png16": encode(Image.fromarray(a.astype(np.uint16) * 257), "PNG")}


SEEDS = _seeds()


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """`seed` with a few bytes flipped, runs inserted or deleted, or cut short."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "overwrite-int"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "overwrite-int":  # sizes and lengths in headers are 2- or 4-byte integers
            data[pos:pos + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                                       b"\x00\x01\x00\x00"]))
    return bytes(data)


def check_image(data: bytes):
    """Either a valid model input or an ImageError; anything else fails the test."""
    for spec in SPECS:
        try:
            x = pp.load_image(data, spec, name="fuzz.img")
        except ImageError as e:
            assert str(e).startswith("fuzz.img: ") and "\n" not in str(e)
            return
        assert x.shape == (1, 28, 28) and x.dtype == np.float32
        assert np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_are_images_or_image_errors(data):
    check_image(data)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)).flatmap(lambda fmt: mutated(SEEDS[fmt])))
def test_mutated_images_are_images_or_image_errors(data):
    check_image(data)


@settings(max_examples=examples(25), deadline=None)
@given(st.sampled_from(sorted(SEEDS)).flatmap(lambda fmt: st.tuples(st.just(fmt), st.integers(0, 10**6))))
def test_every_prefix_of_a_valid_image_is_handled(case):
    fmt, cut = case
    data = SEEDS[fmt]
    check_image(data[:cut % (len(data) + 1)])


CSV = sign_csv_text([0, 24, 5, 13], seed=1).encode()


@st.composite
def mutated_csv(draw) -> bytes:
    data = bytearray(CSV)
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        char = draw(st.sampled_from(list(b",\n\r0123456789x-. \x00\xff")))
        if op == "replace" and data:
            data[pos] = char
        elif op == "insert":
            data[pos:pos] = bytes([char]) * draw(st.integers(1, 4))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


@FUZZ
@given(mutated_csv())
def test_mutated_csvs_parse_or_raise_data_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csv") / "sign_mnist_train.csv"
    path.write_bytes(data)
    try:
        labels, pixels = parse_sign_mnist_csv(path)
        letters = map_sign_labels(labels, str(path))
    except DataError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert pixels.dtype == np.uint8 and pixels.shape == (len(labels), 784)
    assert letters.min() >= 0 and letters.max() < 24


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("fuzz") / "tiny.safetensors")


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_checkpoints_load_or_raise_checkpoint_error(ckpt, tmp_path_factory, data):
    raw = ckpt.read_bytes()
    header_end = 8 + int.from_bytes(raw[:8], "little")
    # mutate mostly the header (JSON metadata, tensor offsets), sometimes the weights
    region = data.draw(st.sampled_from(["header", "header", "anywhere"]))
    seed = raw[:header_end] if region == "header" else raw
    bad = data.draw(mutated(seed)) + (raw[header_end:] if region == "header" else b"")
    path = tmp_path_factory.mktemp("ck") / "m.safetensors"
    path.write_bytes(bad)
    try:
        loaded = load_model(path)
    except CheckpointError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    # what loads must also work: one logit per label for an image of the size its spec declares
    size = loaded.preprocess["size"]
    with torch.inference_mode():
        out = loaded.model(torch.zeros(1, 1, size, size))
    assert out.shape == (1, len(loaded.labels)) and torch.isfinite(out).all()


@pytest.fixture(scope="module")
def client(ckpt):
    return TestClient(create_app({"asl": Predictor.load(ckpt, "torch")}), raise_server_exceptions=False)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=512), st.sampled_from(sorted(SEEDS)).flatmap(lambda f: mutated(SEEDS[f]))),
       st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", "multipart"]))
def test_server_answers_any_upload_with_200_or_a_4xx_json_error(client, data, ctype):
    if ctype == "multipart":
        r = client.post("/predict", files={"file": ("x.png", data, "image/png")})
    else:
        r = client.post("/predict", content=data, headers={"content-type": ctype})
    assert r.status_code == 200 or (400 <= r.status_code < 500 and set(r.json()) == {"error"}), (r.status_code, r.text)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=20)


@st.composite
def infer_requests(draw):
    """v2 inference requests: well-formed ones with a few fields replaced by arbitrary JSON."""
    n = draw(st.integers(1, 3))
    x = np.linspace(0, 1, n * 784).tolist()
    body = {"id": "r", "inputs": [{"name": "input", "shape": [n, 1, 28, 28], "datatype": "FP32", "data": x}],
            "outputs": [{"name": "probabilities"}], "parameters": {}}
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["id", "inputs", "outputs", "parameters", "input.name", "input.shape",
                                      "input.datatype", "input.data", "input.parameters"]))
        value = draw(json_values)
        if where.startswith("input.") and isinstance(body["inputs"], list) and body["inputs"]:
            if isinstance(body["inputs"][0], dict):
                body["inputs"][0][where[6:]] = value
        else:
            body[where] = value
    return body


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(infer_requests())
def test_v2_infer_answers_any_json_with_200_or_a_4xx_json_error(client, body):
    r = client.post("/v2/models/asl/infer", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 200 or (400 <= r.status_code < 500 and set(r.json()) == {"error"}), (r.status_code, r.text)


# ---------------------------------------------------------------- crashes found by benchmarks/fuzz_parsers.py

FUZZ_REGRESSIONS = sorted((Path(__file__).parent / "fuzz_regressions").glob("*"))
BOUNDED = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))  # 1.5 GB of address space, no more
import numpy as np
from handsign.images import preprocess as pp
from handsign.errors import ImageError
specs = [json.load(open(f"handsign/bundled/{n}.json"))["preprocess"] for n in ("asl-pixels", "mnist")]
data = open(sys.argv[1], "rb").read()
for spec in specs + [pp.default_spec("sign_mnist")]:
    try:
        x = pp.load_image(data, spec)
    except ImageError as e:
        print("ImageError", e)
        continue
    assert x.shape == (1, 28, 28) and np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1
print("ok")
"""


@pytest.mark.parametrize("case", FUZZ_REGRESSIONS, ids=[p.name for p in FUZZ_REGRESSIONS])
def test_fuzz_crashes_stay_fixed(case):
    """image-oom-20x32796.jpg: a 499-byte JPEG of 20x32796 pixels made the pad step build a 32796-pixel
    square canvas (4.3 GB); now every spec handles it within 1.5 GB of address space."""
    r = subprocess.run([sys.executable, "-c", BOUNDED, str(case)], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
