"""The app: `create_app` wires the served models, the limits, the error answers and the routes (the page,
`GET /models`, `POST /predict` for image files, and the v2 protocol from `v2.py`); `serve` runs it."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from handsign import __version__
from handsign.images import preprocess as pp
from handsign.errors import HandsignError
from handsign.infer.predict import Predictor, check_min_confidence
from handsign.serve.browser import add_browser_routes, browser_entry, model_weights
from handsign.serve.limits import Limits, add_limits, uvicorn_options
from handsign.serve.models import DEFAULT_MODELS, backend_name, load_models, pick
from handsign.serve.responses import documented, error_response
from handsign.serve.v2 import add_v2_routes

log = logging.getLogger("handsign.serve")
WEB_DIR = Path(__file__).parent.parent / "web"
RAW_IMAGE_TYPES = ("application/octet-stream",)  # besides image/*
MAX_FORM_FIELDS = 8  # non-file fields a /predict form may have (more -> 400 before they are read)


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
                         responses=documented(400, 408, 413))  # any route: the body limit and timeout middlewares
    app.state.models, app.state.limits = models, limits
    add_limits(app, limits)

    @app.exception_handler(HTTPException)
    async def _http_error(request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(HandsignError)
    async def _handsign_error(request, exc: HandsignError):
        return error_response(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "body"))
        return error_response(422, f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(Exception)
    async def _server_error(request, exc: Exception):  # a bug, not the client's fault: log it, say little
        log.exception("error serving %s %s", request.method, request.url.path)
        return error_response(500, f"internal server error ({type(exc).__name__})")

    # --- the page -------------------------------------------------------------------------------
    # CSP: everything from this server only (the machine may be offline; nothing is fetched elsewhere);
    # 'wasm-unsafe-eval' lets the in-browser route compile MediaPipe's WebAssembly (and nothing else: no eval)
    page_headers = {"Content-Security-Policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
                    "img-src 'self' blob: data:; "
                    "media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'",
                    "X-Content-Type-Options": "nosniff"}

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(WEB_DIR / "index.html", headers=page_headers)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    weights = model_weights(models)  # what the page can run itself (browser.py), made once
    add_browser_routes(app, models, weights)

    @app.get("/models", summary="Served models with their labels and preprocessing")
    async def list_models():
        # browser: URL of the weights the page runs itself (live spelling), or null and browser_note saying why
        return [{"name": n, "task": p.meta.task or None, "labels": p.labels, "backend": backend_name(p),
                 "preprocess": p.spec, "default": n == default_model, **browser_entry(n, weights)}
                for n, p in models.items()]

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
              responses=documented(404, 415, 422, 503))
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
        _, predictor = pick(models, model)
        return await run_in_threadpool(_predict_bytes, predictor, data, name, top_k, limits.max_pixels)

    add_v2_routes(app, models, limits)
    return app


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


def serve(models=DEFAULT_MODELS, host: str = "127.0.0.1", port: int = 8000, backend: str = "auto",
          limits: Limits | None = None, log_level: str = "info", min_confidence: float | None = None,
          access_log: bool = False) -> None:
    """Load the models (errors surface here, before the port opens), then run uvicorn until stopped.

    min_confidence overrides every model's "not sure" floor (else each model's own, or 0.5)."""
    import uvicorn  # only when serving: create_app (and the tests' TestClient) run without uvicorn

    app = create_app(models, limits, backend)
    if min_confidence is not None:
        for predictor in app.state.models.values():
            predictor.min_confidence = check_min_confidence(min_confidence)
    names = ", ".join(f"{n} ({backend_name(p)})" for n, p in app.state.models.items())
    shown = f"[{host}]" if ":" in host else host
    print(f"handsign: serving {names} at http://{shown}:{port}/  (API: /openapi.json, /docs, /v2)", flush=True)
    # no access log by default: a line per request costs ~10 % of throughput on a small machine
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log,
                **uvicorn_options(app.state.limits))

