"""The Open Inference Protocol v2 (KServe / Triton HTTP/REST) over the served models: health, metadata
and `infer` for image tensors, with Triton's binary tensor data extension. `add_v2_routes(app, models,
limits)` registers the routes; below it, request parsing and response building, one job each."""

from __future__ import annotations

import json

import numpy as np
from fastapi import FastAPI, Path as PathParam, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from handsign import __version__
from handsign.infer.predict import Predictor
from handsign.infer.torch_runner import softmax
from handsign.serve.limits import Limits
from handsign.serve.models import MODEL_VERSION, backend_name, pick
from handsign.serve.responses import documented

INPUT_NAME = "input"  # the v2 tensor names
OUTPUT_NAMES = ("logits", "probabilities")
V2_DTYPES = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}  # input types accepted (binary: little-endian)


class ServerLive(BaseModel):  # the Open Inference Protocol's health responses
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


def add_v2_routes(app: FastAPI, models: dict[str, Predictor], limits: Limits) -> None:
    """The /v2 routes over `models` ({name: Predictor}) on `app`."""
    served_name = PathParam(examples=list(models))  # documents (and lets API testers find) the served names

    @app.get("/v2/health/live", tags=["v2"], response_model=ServerLive)
    async def v2_live():
        return {"live": True}

    @app.get("/v2/health/ready", tags=["v2"], response_model=ServerReady)
    async def v2_ready():
        return {"ready": True}  # models load before the app exists: live means ready

    @app.get("/v2", tags=["v2"])
    async def v2_server_metadata():
        return {"name": "handsign", "version": __version__, "extensions": ["binary_tensor_data"]}

    # 422 too: FastAPI documents it for every route with parameters; this gives it the real body
    @app.get("/v2/models/{name}", tags=["v2"], responses=documented(404, 422))
    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], responses=documented(404, 422))
    async def v2_model_metadata(name: str = served_name, version: str | None = None):
        name, p = pick(models, name, version)
        _needs_pixels(name, p)
        size, n_classes = p.spec["size"], len(p.labels)
        return {"name": name, "versions": [MODEL_VERSION],
                "platform": "onnx_onnxv1" if backend_name(p) == "onnx" else "pytorch_safetensors",
                "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 1, size, size]}],
                "outputs": [{"name": o, "datatype": "FP32", "shape": [-1, n_classes]} for o in OUTPUT_NAMES]}

    @app.get("/v2/models/{name}/ready", tags=["v2"], response_model=ModelReady, responses=documented(404, 422))
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], response_model=ModelReady,
             responses=documented(404, 422))
    async def v2_model_ready(name: str = served_name, version: str | None = None):
        name, _ = pick(models, name, version)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": _infer_request_schema(limits, _pixel_sizes(models))}}}},
        responses={200: {"description": "The outputs as JSON, or (binary_data requested) the JSON header then "
                                        "the raw tensors", "content": {"application/octet-stream": {
                                            "schema": {"type": "string", "format": "binary"}}}},
                   **documented(404, 415, 422, 503)})
    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], include_in_schema=False)
    async def v2_infer(request: Request, name: str = served_name, version: str | None = None):
        """Inference request JSON (+ Triton's binary tensor data extension) -> logits and probabilities."""
        name, p = pick(models, name, version)
        _needs_pixels(name, p)
        encoding = request.headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise HTTPException(415, f"Content-Encoding {encoding!r} is not supported; send the body uncompressed")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("", "application/json", "application/octet-stream"):
            raise HTTPException(415, f"content type {ctype!r} is not supported; send application/json")
        body = await request.body()
        req, binary = _split_binary(body, request.headers.get("inference-header-content-length"))
        x, outputs, request_id = _parse_infer_request(req, binary, p, limits)
        logits = (await run_in_threadpool(p.logits, x)).astype(np.float32)
        tensors = {"logits": logits, "probabilities": softmax(logits.astype(np.float64)).astype(np.float32)}
        return _infer_response(name, request_id, outputs, tensors)


def _pixel_sizes(models: dict) -> list[int]:
    """Input sizes of the served pixel models (a landmark-only model takes no image tensor)."""
    return sorted({p.spec["size"] for p in models.values() if p.spec is not None}) or [28]


def _needs_pixels(name: str, p: Predictor) -> None:
    """The v2 protocol sends image tensors: a hand-landmark-only model has no pixel model to take them."""
    if p.spec is None:
        raise HTTPException(400, f"model {name!r} reads photos through hand landmarks only; send photos to "
                                 f"POST /predict")


def _infer_request_schema(limits: Limits, sizes: list[int]) -> dict:
    """JSON Schema of a v2 inference request as this server reads it. What JSON Schema cannot say is in
    the description: `data` holds prod(shape) values, and the shape is the model's own (GET /v2/models/NAME)."""
    size = {"type": "integer", "enum": sizes}
    return {
        "type": "object", "required": ["inputs"],
        "description": "One input tensor 'input' of shape [N, 1, S, S] (S: the model's input size) with N*S*S "
                       "gray levels in [0, 1], row-major in 'data' (or, with Triton's binary data extension, "
                       "raw little-endian bytes after the JSON, sized by parameters.binary_data_size).",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
            "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                "type": "object", "required": ["name", "shape", "datatype"], "properties": {
                    "name": {"type": "string", "enum": [INPUT_NAME]},
                    "shape": {"type": "array", "minItems": 4, "maxItems": 4, "prefixItems": [
                        {"type": "integer", "minimum": 1, "maximum": limits.max_batch},
                        {"type": "integer", "enum": [1]}, size, size]},
                    "datatype": {"type": "string", "enum": list(V2_DTYPES)},
                    "data": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
                    "parameters": {"type": "object", "properties": {
                        "binary_data_size": {"type": "integer", "minimum": 0}}}}}},
            "outputs": {"type": "array", "items": {
                "type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "enum": list(OUTPUT_NAMES)},
                    "parameters": {"type": "object", "properties": {
                        "binary_data": {"type": "boolean"},
                        "classification": {"type": "integer", "enum": [0]}}}}}},  # the extension is not served
        },
        "example": {"id": "1", "inputs": [{"name": INPUT_NAME, "shape": [1, 1, sizes[0], sizes[0]],
                                           "datatype": "FP32", "data": [0.0] * sizes[0] ** 2}],
                    "outputs": [{"name": "probabilities"}]},
    }



def _split_binary(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """Body -> (request JSON object, binary tensor bytes after it) per Triton's binary data extension."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise HTTPException(400, f"Inference-Header-Content-Length {header_length!r} does not fit a "
                                     f"{len(body)}-byte body")
        n = int(header_length)
        json_part, binary = body[:n], body[n:]
    try:
        req = json.loads(json_part)
    except (ValueError, UnicodeDecodeError) as e:
        raise HTTPException(400, f"inference request is not valid JSON ({e})") from None
    if not isinstance(req, dict):
        raise HTTPException(400, "inference request must be a JSON object")
    return req, binary


def _parse_infer_request(req: dict, binary: bytes, p: Predictor, limits: Limits):
    """-> (x (N, 1, S, S) float32 in [0, 1], [(output name, as binary?)], id or None)."""
    request_id = req.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise HTTPException(400, "'id' must be a string")
    params = req.get("parameters") or {}
    if not isinstance(params, dict):
        raise HTTPException(400, "'parameters' must be an object")
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise HTTPException(400, f"'inputs' must be a list of one tensor named {INPUT_NAME!r}")
    x = _input_tensor(inputs[0], binary, p.spec["size"], limits.max_batch)

    binary_default = params.get("binary_data_output", False) is True
    wanted = req.get("outputs")
    if wanted is None:
        outputs = [(o, binary_default) for o in OUTPUT_NAMES]
    else:
        if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
            raise HTTPException(400, "'outputs' must be a list of objects with a 'name'")
        outputs = []
        for o in wanted:
            if o.get("name") not in OUTPUT_NAMES:
                raise HTTPException(400, f"unknown output {o.get('name')!r}; outputs are {', '.join(OUTPUT_NAMES)}")
            oparams = o.get("parameters") or {}
            if not isinstance(oparams, dict):
                raise HTTPException(400, f"output {o['name']!r}: 'parameters' must be an object")
            if oparams.get("classification"):
                raise HTTPException(400, "the classification extension is not supported; request "
                                         "'probabilities' and map indices with GET /models")
            outputs.append((o["name"], bool(oparams.get("binary_data", binary_default))))
    return x, outputs, request_id


def _input_tensor(t: dict, binary: bytes, size: int, max_batch: int) -> np.ndarray:
    name = t.get("name")
    if name != INPUT_NAME:
        raise HTTPException(400, f"unexpected input {name!r}; the model's input is {INPUT_NAME!r}")
    dtype = V2_DTYPES.get(t["datatype"]) if isinstance(t.get("datatype"), str) else None  # a list is unhashable
    if dtype is None:
        raise HTTPException(400, f"input datatype {t.get('datatype')!r} is not supported; use FP32")
    shape = t.get("shape")
    if isinstance(shape, list):  # JSON Schema's integers include 202.0: take whole floats as integers
        shape = [int(d) if type(d) is float and d.is_integer() else d for d in shape]
    if (not isinstance(shape, list) or len(shape) != 4 or not all(type(d) is int for d in shape)
            or shape[1:] != [1, size, size] or not 1 <= shape[0] <= max_batch):
        raise HTTPException(400, f"input shape must be [N, 1, {size}, {size}] with N in 1..{max_batch}, "
                                 f"got {shape!r}")
    count = int(np.prod(shape))
    tparams = t.get("parameters") or {}
    nbytes = tparams.get("binary_data_size") if isinstance(tparams, dict) else None
    if nbytes is not None:
        if nbytes != count * dtype.itemsize or len(binary) != nbytes:
            raise HTTPException(400, f"binary_data_size {nbytes!r}: shape {shape} of {t['datatype']} needs "
                                     f"{count * dtype.itemsize} bytes; the body has {len(binary)} after the JSON")
        x = np.frombuffer(binary, dtype=dtype)
    else:
        if binary:
            raise HTTPException(400, "binary data after the JSON but no input has 'binary_data_size'")
        if "data" not in t:
            raise HTTPException(400, f"input {name!r} has no 'data'")
        try:
            x = np.asarray(t["data"])
        except ValueError:
            raise HTTPException(400, f"input {name!r}: 'data' is not a regular (non-ragged) array") from None
        if x.dtype.kind not in "fiu":
            raise HTTPException(400, f"input {name!r}: 'data' must hold numbers only")
        if x.size != count:
            raise HTTPException(400, f"input {name!r}: 'data' has {x.size} values, shape {shape} needs {count}")
    x = x.astype(np.float32).reshape(shape)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise HTTPException(400, f"input {name!r}: values must be gray levels in [0, 1] (pixel / 255), "
                                 f"got min {float(np.nanmin(x)):g}, max {float(np.nanmax(x)):g}")
    return x


def _infer_response(model: str, request_id: str | None, outputs, tensors: dict) -> Response:
    head: dict = {"model_name": model}
    if request_id is not None:
        head["id"] = request_id
    head["outputs"], blobs = [], []
    for name, as_binary in outputs:
        a = tensors[name]
        out = {"name": name, "shape": list(a.shape), "datatype": "FP32"}
        if as_binary:
            blob = a.astype("<f4").tobytes()
            out["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            out["data"] = a.ravel().tolist()
        head["outputs"].append(out)
    text = json.dumps(head).encode()
    if not blobs:
        return Response(text, media_type="application/json")
    return Response(text + b"".join(blobs), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(text))})
