"""The web service: a page to try the models, `POST /predict` for image files, and the Open Inference
Protocol v2 (KServe / Triton HTTP/REST) for tensors.

    handsign serve --model asl --model mnist          # http://127.0.0.1:8000/
    create_app(["asl", "mnist"])                       # the FastAPI app, for tests or another server

Every answer that is not a success is JSON `{"error": "one line"}` with a 4xx status for a client's
mistake (the v2 protocol's error object, used everywhere). Bodies are capped before they are read
(Content-Length, then counted while streaming), images are checked for their declared pixel count
before decoding. Model work runs in the thread pool so the event loop keeps answering health checks.
Abuse limits: a body must arrive within `body_timeout` seconds (408, connection closed), a connection
must send its request headers within `header_timeout` seconds (closed), and past `max_concurrency`
inference requests in flight the answer is an immediate 503 with Retry-After (no unbounded queue).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from handsign import __version__
from handsign import preprocess as pp
from handsign.errors import HandsignError
from handsign.predict import Predictor, check_min_confidence, softmax

log = logging.getLogger("handsign.serve")
WEB_DIR = Path(__file__).parent / "web"
DEFAULT_MODELS = ("asl", "mnist")
INPUT_NAME = "input"  # the v2 tensor names
OUTPUT_NAMES = ("logits", "probabilities")
MODEL_VERSION = "1"  # one version per served model; /versions/1/ paths are accepted
V2_DTYPES = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}  # input types accepted (binary: little-endian)
RAW_IMAGE_TYPES = ("application/octet-stream",)  # besides image/*
MAX_FORM_FIELDS = 8  # non-file fields a /predict form may have (more -> 400 before they are read)
DRAIN_BYTES = 64 * 2**20  # of an oversized body, read and discarded so the client sees the 413


class ErrorBody(BaseModel):
    """Every answer that is not a success: one line saying what is wrong."""
    error: str


class ServerLive(BaseModel):  # the Open Inference Protocol's health responses
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


# the statuses the server answers besides 200, so that /openapi.json says what the server does
# (schemathesis --checks all holds the server to it: tests/test_openapi_contract.py)
ERROR_STATUSES = {
    400: "Bad input: an undecodable image, a malformed tensor or request, a bad Content-Length",
    404: "Unknown model, or a version other than 1",
    408: "The request body did not arrive within the body timeout (the connection is closed)",
    413: "The request body is over the upload limit",
    415: "Unsupported content type or content encoding",
    422: "A parameter out of range or of the wrong type",
    503: "Too many inference requests in flight: retry after Retry-After seconds",
}


def _errors(*statuses: int) -> dict:
    return {s: {"model": ErrorBody, "description": ERROR_STATUSES[s]} for s in statuses}


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 10 * 2**20  # any request body, bytes; more -> 413 before it is read
    max_pixels: int = 25_000_000  # width x height an image may declare; more -> 400 before decoding
    max_batch: int = 256  # images in one /v2 infer request
    max_top_k: int = 100
    max_concurrency: int = 64  # inference requests in flight (reading, decoding, model); more -> 503 at once
    body_timeout: float = 30.0  # seconds a request body may take to arrive; slower -> 408, connection closed
    header_timeout: float = 10.0  # seconds a connection may take to send its request headers; slower -> closed

    def __post_init__(self):
        for name in ("max_upload_bytes", "max_pixels", "max_batch", "max_top_k", "max_concurrency"):
            if getattr(self, name) < 1:
                raise HandsignError(f"serve: {name} must be at least 1")
        for name in ("body_timeout", "header_timeout"):
            if not getattr(self, name) > 0:
                raise HandsignError(f"serve: {name} must be a positive number of seconds")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):  # close: the rest of the body stays unread
        super().__init__(413, f"request body is over the limit of {limit:,} bytes", {"Connection": "close"})


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float):
        super().__init__(408, f"request body did not arrive within {seconds:g} s", {"Connection": "close"})


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _call_or_answer(app, scope, receive, send, error: type[HTTPException]):
    """Run `app`; if it raises `error` where no exception handler saw it (in a middleware, e.g. while
    draining) and no response has started, answer with the error's status, message and headers."""
    started = False

    async def watched_send(message):
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, watched_send)
    except error as e:
        if started:
            raise
        await _error(e.status_code, str(e.detail), e.headers)(scope, receive, send)


class BodyLimit:
    """ASGI middleware: refuse bodies over `max_bytes` by Content-Length, else count them as they stream.

    A chunked upload that goes over raises BodyTooLarge from `receive`, inside whatever is reading it.
    Nothing over the limit is kept. The rest of an oversized body (up to DRAIN_BYTES) is read and thrown
    away before answering, because closing a socket with unread data makes the client's TCP stack see
    a reset instead of the 413; a client that sent `Expect: 100-continue` (curl does for big bodies)
    gets the 413 before it sends anything."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await _error(400, "Content-Length is not a number")(scope, receive, send)
            if int(length) > self.max_bytes:
                if headers.get(b"expect", b"").lower() != b"100-continue":
                    await _drain(receive, DRAIN_BYTES)
                return await _error(413, str(BodyTooLarge(self.max_bytes).detail),
                                    {"Connection": "close"})(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if message.get("more_body"):
                        await _drain(receive, DRAIN_BYTES)
                    raise BodyTooLarge(self.max_bytes)
            return message

        await _call_or_answer(self.app, scope, limited_receive, send, BodyTooLarge)


class ReceiveTimeout:
    """ASGI middleware: the whole request body must arrive within `seconds` of the request's start.

    A client that sends its headers and then trickles (or stops sending) the body would otherwise hold
    a connection and a task forever; uvicorn has no body timeout. `receive` raises BodyTimeout (408,
    `Connection: close`, so uvicorn drops the socket instead of reading the rest)."""

    def __init__(self, app, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False

        async def timed_receive():
            nonlocal body_done
            if body_done:  # after the body only http.disconnect can come: wait for it as long as it takes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except asyncio.TimeoutError:
                raise BodyTimeout(self.seconds) from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        await _call_or_answer(self.app, scope, timed_receive, send, BodyTimeout)


class ConcurrencyLimit:
    """ASGI middleware: at most `limit` inference requests in flight; the next one gets 503 + Retry-After
    at once, before its body is read, instead of waiting in an unbounded queue for the thread pool."""

    INFER = re.compile(r"^/(predict|v2/models/[^/]+(/versions/[^/]+)?/infer)/?$")

    def __init__(self, app, limit: int):
        self.app, self.limit, self.in_flight = app, limit, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not self.INFER.match(scope["path"]):
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:  # one event loop: the counter needs no lock
            return await _error(503, f"server busy: {self.limit} inference requests in flight; retry shortly",
                                {"Retry-After": "1"})(scope, receive, send)
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _drain(receive, budget: int) -> None:
    """Read and discard request body messages until the body ends or `budget` bytes went by."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body"):
            return


def _served_name(spec: str, predictor: Predictor) -> str:
    """URL-safe name: a bundled name as given; a run folder (or its best/last checkpoint) by the folder."""
    if spec in DEFAULT_MODELS:
        return spec
    name = predictor.meta.get("name") or predictor.name
    path = Path(spec)
    if path.is_dir():
        name = path.resolve().name
    elif name in ("best", "last", "model"):
        name = path.resolve().parent.name or name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"


def load_models(specs, backend: str = "auto") -> dict[str, Predictor]:
    """['asl', 'runs/x', 'digits=path.onnx'] -> {name: Predictor}; NAME=PATH picks the served name."""
    models: dict[str, Predictor] = {}
    for spec in specs:
        spec = str(spec)
        name, sep, path = spec.partition("=")
        if sep and re.fullmatch(r"[A-Za-z0-9_.-]+", name) and not Path(spec).exists():
            predictor = Predictor.load(path, backend, spin=False)  # share the CPU with the event loop
        else:
            predictor = Predictor.load(spec, backend)
            name = _served_name(spec, predictor)
        if name in models:
            raise HandsignError(f"--model: two models are served as {name!r}; name one with NAME=PATH")
        models[name] = predictor
    if not models:
        raise HandsignError("serve: no models given")
    return models


def create_app(models=DEFAULT_MODELS, limits: Limits | None = None, backend: str = "auto") -> FastAPI:
    """The FastAPI app serving `models`: {name: Predictor}, or names/paths to load with `backend`."""
    limits = limits or Limits()
    if not isinstance(models, dict):
        models = load_models(models, backend)
    default_model = next(iter(models))
    # FastAPIOffline: a FastAPI whose /docs and /redoc load Swagger UI / ReDoc from the package, not a CDN
    app = FastAPIOffline(title="handsign", version=__version__,
                         description="Hand-written digits (MNIST) and ASL letters: image files in, labels out; "
                                     "tensors over the Open Inference Protocol v2 at /v2.",
                         responses=_errors(400, 408, 413))  # any route: the body limit and timeout middlewares
    app.state.models, app.state.limits = models, limits
    # add_middleware puts each one outside the previous: ConcurrencyLimit sees a request first, then the
    # body timeout, then the size limit (whose drain of an oversized body is itself under the timeout)
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)
    app.add_middleware(ReceiveTimeout, seconds=limits.body_timeout)
    app.add_middleware(ConcurrencyLimit, limit=limits.max_concurrency)

    @app.exception_handler(HTTPException)
    async def _http_error(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(HandsignError)
    async def _handsign_error(request, exc: HandsignError):
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "body"))
        return _error(422, f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(Exception)
    async def _server_error(request, exc: Exception):  # a bug, not the client's fault: log it, say little
        log.exception("error serving %s %s", request.method, request.url.path)
        return _error(500, f"internal server error ({type(exc).__name__})")

    served_name = PathParam(examples=list(models))  # documents (and lets API testers find) the served names

    def pick(name: str | None, version: str | None = None) -> tuple[str, Predictor]:
        name = name or default_model
        if name not in models:
            raise HTTPException(404, f"unknown model {name!r}; served models: {', '.join(models)}")
        if version is not None and version != MODEL_VERSION:
            raise HTTPException(404, f"model {name!r} has no version {version!r} (only {MODEL_VERSION!r})")
        return name, models[name]

    # --- the page -------------------------------------------------------------------------------
    # CSP: everything from this server only (the machine may be offline; nothing is fetched elsewhere)
    page_headers = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                    "media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'",
                    "X-Content-Type-Options": "nosniff"}

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(WEB_DIR / "index.html", headers=page_headers)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/models", summary="Served models with their labels and preprocessing")
    async def list_models():
        return [{"name": n, "task": p.meta.get("task"), "labels": p.labels, "backend": _backend(p),
                 "preprocess": p.spec, "default": n == default_model} for n, p in models.items()]

    # --- images --------------------------------------------------------------------------------
    @app.post("/predict", summary="Predict the label of one image (same JSON as `handsign predict --json`)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  # maxProperties: the form parser takes one file and at most MAX_FORM_FIELDS other fields
                  "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                                     "maxProperties": 1 + MAX_FORM_FIELDS,
                                                     "additionalProperties": {"type": "string"}, "properties": {
                      "file": {"type": "string", "format": "binary"}, "model": {"type": "string"},
                      "top_k": {"type": "integer", "minimum": 1, "maximum": limits.max_top_k}}},
                                          "encoding": {"file": {"contentType": "image/*"}}},
                  "image/*": {"schema": {"type": "string", "format": "binary"}}}}},
              responses=_errors(404, 415, 422, 503))
    async def predict_image(request: Request, model: str | None = None,
                            top_k: int | None = Query(None, ge=1, le=limits.max_top_k),
                            filename: str | None = None):
        """Multipart upload (field `file`) or the raw image bytes with an `image/*` content type.
        `model` and `top_k` come from the query or the form; `filename` names a raw upload."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=limits.max_upload_bytes)
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise HTTPException(400, "multipart form has no file field named 'file'")
            part_type = (upload.content_type or "").split(";")[0].lower()
            if part_type and not (part_type.startswith("image/") or part_type in RAW_IMAGE_TYPES):
                raise HTTPException(415, f"file: content type {part_type!r} is not an image")
            data, name = await upload.read(), upload.filename or "upload"
            model = model or _form_str(form, "model")
            form_top_k = _form_int(form, "top_k")
            if form_top_k is not None and not 1 <= form_top_k <= limits.max_top_k:  # even if the query has one
                raise HTTPException(422, f"top_k must be in 1..{limits.max_top_k}, not {form_top_k}")
            top_k = top_k if top_k is not None else form_top_k
        elif ctype.startswith("image/") or ctype in RAW_IMAGE_TYPES:
            data, name = await request.body(), filename or "upload"
        else:
            raise HTTPException(415, f"content type {ctype or '(none)'!r} is not supported; send multipart/"
                                     f"form-data with a 'file' field or raw bytes as image/*")
        top_k = 3 if top_k is None else top_k
        if not 1 <= top_k <= limits.max_top_k:
            raise HTTPException(422, f"top_k must be in 1..{limits.max_top_k}, not {top_k}")
        _, predictor = pick(model)
        return await run_in_threadpool(_predict_bytes, predictor, data, name, top_k, limits.max_pixels)

    # --- Open Inference Protocol v2 ------------------------------------------------------------------
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
    @app.get("/v2/models/{name}", tags=["v2"], responses=_errors(404, 422))
    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], responses=_errors(404, 422))
    async def v2_model_metadata(name: str = served_name, version: str | None = None):
        name, p = pick(name, version)
        _needs_pixels(name, p)
        size, n_classes = p.spec["size"], len(p.labels)
        return {"name": name, "versions": [MODEL_VERSION],
                "platform": "onnx_onnxv1" if _backend(p) == "onnx" else "pytorch_safetensors",
                "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 1, size, size]}],
                "outputs": [{"name": o, "datatype": "FP32", "shape": [-1, n_classes]} for o in OUTPUT_NAMES]}

    @app.get("/v2/models/{name}/ready", tags=["v2"], response_model=ModelReady, responses=_errors(404, 422))
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], response_model=ModelReady,
             responses=_errors(404, 422))
    async def v2_model_ready(name: str = served_name, version: str | None = None):
        name, _ = pick(name, version)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": _infer_request_schema(limits, _pixel_sizes(models))}}}},
        responses={200: {"description": "The outputs as JSON, or (binary_data requested) the JSON header then "
                                        "the raw tensors", "content": {"application/octet-stream": {
                                            "schema": {"type": "string", "format": "binary"}}}},
                   **_errors(404, 415, 422, 503)})
    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], include_in_schema=False)
    async def v2_infer(request: Request, name: str = served_name, version: str | None = None):
        """Inference request JSON (+ Triton's binary tensor data extension) -> logits and probabilities."""
        name, p = pick(name, version)
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

    return app


# --- helpers: one job each, no FastAPI objects below except in the response builder --------------------

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


def _backend(p: Predictor) -> str:
    return getattr(p, "backend", "torch")  # "torch" or "onnx"


def _form_str(form, key: str) -> str | None:
    v = form.get(key)
    if v is None or isinstance(v, str):
        return v or None
    raise HTTPException(422, f"form field {key!r} must be text, not a file")


def _form_int(form, key: str) -> int | None:
    v = _form_str(form, key)
    try:
        return None if v is None else int(v)
    except ValueError:
        raise HTTPException(422, f"form field {key!r} must be an integer, not {v!r}") from None


def _predict_bytes(predictor: Predictor, data: bytes, name: str, top_k: int, max_pixels: int) -> dict:
    """Image bytes -> {"path", "label", "probability", "top", "confident", "verdict"} exactly as
    `handsign predict --json`."""
    img = pp.decode_image(data, name=name, max_pixels=max_pixels)  # ImageError -> 400
    return {"path": name, **predictor.predict_image(img, top_k, name)}  # hand landmarks or pixels


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


def serve(models=DEFAULT_MODELS, host: str = "127.0.0.1", port: int = 8000, backend: str = "auto",
          limits: Limits | None = None, log_level: str = "info", min_confidence: float | None = None,
          access_log: bool = False) -> None:
    """Load the models (errors surface here, before the port opens), then run uvicorn until stopped.

    min_confidence overrides every model's "not sure" floor (else each model's own, or 0.5)."""
    import uvicorn

    app = create_app(models, limits, backend)
    if min_confidence is not None:
        for predictor in app.state.models.values():
            predictor.min_confidence = check_min_confidence(min_confidence)
    names = ", ".join(f"{n} ({_backend(p)})" for n, p in app.state.models.items())
    shown = f"[{host}]" if ":" in host else host
    print(f"handsign: serving {names} at http://{shown}:{port}/  (API: /openapi.json, /docs, /v2)", flush=True)
    # no access log by default: a line per request costs ~10 % of throughput on a small machine
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log,
                **uvicorn_options(app.state.limits))


def uvicorn_options(limits: Limits) -> dict:
    """uvicorn settings that go with `limits`: the header timeout is a protocol, set per connection."""
    return {"http": header_timeout_protocol(limits.header_timeout)}


def header_timeout_protocol(seconds: float):
    """uvicorn's h11 protocol, plus: close a connection that has no request in progress and has not sent
    complete request headers within `seconds` of connecting or of its last response. uvicorn itself
    waits forever for headers that trickle in (a "slowloris" holds the connection)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm_header_timer()

        def _arm_header_timer(self):
            self._waiting_cycle = self.cycle  # the cycle that was current when waiting for new headers began
            self._header_timer = self.loop.call_later(seconds, self._header_timeout)

        def _header_timeout(self):
            idle = self.cycle is self._waiting_cycle and (self.cycle is None or self.cycle.response_complete)
            if idle and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self):
            super().on_response_complete()
            self._header_timer.cancel()
            self._arm_header_timer()

        def connection_lost(self, exc):
            self._header_timer.cancel()
            super().connection_lost(exc)

    return HeaderTimeoutH11
