"""The web service: a page to try the models, `POST /predict` for image files, and the Open Inference
Protocol v2 (KServe / Triton HTTP/REST) for tensors.

    handsign serve --model asl --model mnist          # http://127.0.0.1:8000/
    create_app(["asl", "mnist"])                       # the FastAPI app, for tests or another server

Every answer that is not a success is JSON `{"error": "one line"}` with a 4xx status for a client's
mistake. Bodies are capped before they are read (Content-Length, then counted while streaming), images
are checked for their declared pixel count before decoding. Model work runs in the thread pool so the
event loop keeps answering health checks. Abuse limits: see `limits.py`.

By concern: `app.py` (create_app: wiring, error answers, the page, /models, /predict; serve) ·
`models.py` (loading, naming and picking the served models) · `limits.py` (Limits, the ASGI
middlewares, uvicorn's header timeout) · `v2.py` (the v2 protocol) · `responses.py` (the error shape) ·
`browser.py` (the files of the page's in-browser live route: MediaPipe's, the hand model, a model's weights).
"""

from handsign.serve.app import WEB_DIR, create_app, serve
from handsign.serve.limits import (BodyLimit, ConcurrencyLimit, Limits, ReceiveTimeout, header_timeout_protocol,
                                   uvicorn_options)
from handsign.serve.models import DEFAULT_MODELS, load_models
from handsign.serve.responses import ErrorBody

__all__ = ["BodyLimit", "ConcurrencyLimit", "DEFAULT_MODELS", "ErrorBody", "Limits", "ReceiveTimeout", "WEB_DIR",
           "create_app", "header_timeout_protocol", "load_models", "serve", "uvicorn_options"]
