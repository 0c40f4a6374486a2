"""The files of the page's in-browser route (live spelling with no frame leaving the device), all served by
handsign itself, never a CDN:

    GET /vendor/tasks-vision/vision_bundle.mjs, .../wasm/vision_wasm_internal.{js,wasm} (+ the no-SIMD pair)
        @mediapipe/tasks-vision, pinned in handsign/web/vendor/package-lock.json; `make install` puts it in
        handsign/web/vendor/node_modules (npm ci). Missing: 404, and the page falls back to the server route.
    GET /vendor/hand_landmarker.task   the hand model, made from the mediapipe wheel's own .tflite files
    GET /models/{name}/weights         a landmark model's weights for landmark_model.js (browser_model.py)

Which models the page can run itself is in GET /models (`browser`: the weights URL, or null and `browser_note`
saying why); the weights are made once, when the app is created.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from handsign.errors import HandsignError
from handsign.hands.tasks_bundle import hand_landmarker_task
from handsign.infer.browser_model import browser_weights
from handsign.serve.models import pick
from handsign.spell.motion import BUNDLED_MODEL
from handsign.serve.responses import documented

MOTION_MODEL = BUNDLED_MODEL  # handsign/bundled/motion.json
TASKS_VISION_DIR = Path(__file__).parent.parent / "web" / "vendor" / "node_modules" / "@mediapipe" / "tasks-vision"
# the only files of the npm package the page needs, with their content types (WebAssembly.instantiateStreaming
# wants application/wasm; the SIMD-less pair is for browsers without wasm SIMD)
TASKS_VISION_FILES = {"vision_bundle.mjs": "text/javascript",
                      "wasm/vision_wasm_internal.js": "text/javascript",
                      "wasm/vision_wasm_internal.wasm": "application/wasm",
                      "wasm/vision_wasm_nosimd_internal.js": "text/javascript",
                      "wasm/vision_wasm_nosimd_internal.wasm": "application/wasm"}
NO_VENDOR = ("@mediapipe/tasks-vision is not installed in handsign/web/vendor (run `make install`, or "
             "`npm ci --prefix handsign/web/vendor`): the page reads live frames on the server instead")
CACHE = {"Cache-Control": "public, max-age=86400"}  # ~17 MB the browser should not fetch again each visit


def model_weights(models: dict) -> dict[str, bytes | str]:
    """{served name: the browser weights, or the one-line reason this model runs only on the server}."""
    out = {}
    for name, predictor in models.items():
        try:
            out[name] = browser_weights(predictor)
        except HandsignError as e:
            out[name] = str(e)
    return out


def browser_entry(name: str, weights: dict) -> dict:
    """The `browser` fields of a GET /models entry."""
    w = weights.get(name)
    if isinstance(w, bytes):
        return {"browser": f"/models/{name}/weights", "browser_note": None}
    return {"browser": None, "browser_note": w}


def add_browser_routes(app: FastAPI, models: dict, weights: dict) -> None:
    @app.get("/vendor/tasks-vision/{path:path}", include_in_schema=False)
    async def tasks_vision(path: str):
        if path not in TASKS_VISION_FILES:
            raise HTTPException(404, f"/vendor/tasks-vision/{path}: not one of the page's files")
        file = TASKS_VISION_DIR / path
        if not file.is_file():
            raise HTTPException(404, NO_VENDOR)
        return FileResponse(file, media_type=TASKS_VISION_FILES[path], headers=CACHE)

    @app.get("/vendor/motion.json", include_in_schema=False)
    async def motion_model():  # the J/Z motion reader's weights (handsign/web/motion.js reads them)
        return FileResponse(MOTION_MODEL, media_type="application/json", headers=CACHE)

    @app.get("/vendor/hand_landmarker.task", include_in_schema=False)
    async def hand_task():
        try:
            data = await run_in_threadpool(hand_landmarker_task)  # ~8 MB read once, then cached
        except HandsignError as e:
            raise HTTPException(404, str(e)) from None
        return Response(data, media_type="application/octet-stream", headers=CACHE)

    @app.get("/models/{name}/weights", summary="A landmark model's weights for the page's in-browser route",
             response_class=Response, responses={
                 200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                       "description": "safetensors: mean, std, layers.i.weight/bias (float32); labels in metadata"},
                 **documented(404)})
    async def weights_of(name: str):
        pick(models, name)  # an unknown model: 404 naming the served ones
        w = weights.get(name)
        if not isinstance(w, bytes):
            raise HTTPException(404, f"model {name!r} runs only on the server: {w}")
        return Response(w, media_type="application/octet-stream")
