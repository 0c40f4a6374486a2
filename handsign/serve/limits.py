"""Abuse limits, enforced below the routes: `Limits` (the numbers), ASGI middlewares for the body size,
the body timeout and the requests in flight, and uvicorn's per-connection header timeout.

A body must arrive within `body_timeout` seconds (408, connection closed), a connection must send its
request headers within `header_timeout` seconds (closed), and past `max_concurrency` inference requests
in flight the answer is an immediate 503 with Retry-After (no unbounded queue)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException

from handsign.errors import HandsignError
from handsign.serve.responses import error_response

DRAIN_BYTES = 64 * 2**20  # of an oversized body, read and discarded so the client sees the 413


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


def add_limits(app, limits: Limits) -> None:
    """Wrap `app` in the three middlewares. add_middleware puts each one outside the previous:
    ConcurrencyLimit sees a request first, then the body timeout, then the size limit (whose drain of
    an oversized body is itself under the timeout)."""
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)
    app.add_middleware(ReceiveTimeout, seconds=limits.body_timeout)
    app.add_middleware(ConcurrencyLimit, limit=limits.max_concurrency)


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
        await error_response(e.status_code, str(e.detail), e.headers)(scope, receive, send)


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
                return await error_response(400, "Content-Length is not a number")(scope, receive, send)
            if int(length) > self.max_bytes:
                if headers.get(b"expect", b"").lower() != b"100-continue":
                    await _drain(receive, DRAIN_BYTES)
                return await error_response(413, str(BodyTooLarge(self.max_bytes).detail),
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
            busy = f"server busy: {self.limit} inference requests in flight; retry shortly"
            return await error_response(503, busy, {"Retry-After": "1"})(scope, receive, send)
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


def uvicorn_options(limits: Limits) -> dict:
    """uvicorn settings that go with `limits`: the header timeout is a protocol, set per connection."""
    return {"http": header_timeout_protocol(limits.header_timeout)}


def header_timeout_protocol(seconds: float):
    """uvicorn's h11 protocol, plus: close a connection that has no request in progress and has not sent
    complete request headers within `seconds` of connecting or of its last response. uvicorn itself
    waits forever for headers that trickle in (a "slowloris" holds the connection)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol  # only when serving: create_app runs without uvicorn

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
