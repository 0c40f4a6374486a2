"""What the service answers when it does not succeed: JSON `{"error": "one line"}` (the Open Inference
Protocol v2's error object, used everywhere), and the statuses that /openapi.json documents."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every answer that is not a success: one line saying what is wrong."""
    error: str



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



def documented(*statuses: int) -> dict:
    """`responses=` for a route: these statuses, each with ErrorBody and its description."""
    return {s: {"model": ErrorBody, "description": ERROR_STATUSES[s]} for s in statuses}


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
