"""Outermost ASGI layers: the body size cap and the answer to an unexpected exception.

``BodyLimitMiddleware`` answers 413 for a body over ``PURSER_MAX_BODY_BYTES``: when
``Content-Length`` says so before any of it is read, else as soon as the streamed
(chunked) body passes the cap, so no oversized body is ever buffered. Before answering it
reads and discards what the client is still sending, up to ``DRAIN_BYTES``: closing a
socket with unread data makes the kernel reset the connection, and the client would lose
the 413 with it. A body larger still gets its answer at once, and the connection closed.

``UnexpectedErrorMiddleware`` turns an exception no handler took into one problem+json
500 carrying the request id, and returns normally: the server then keeps the keep-alive
connection open (an exception escaping the app makes it drop the connection, and a client
that loses the line after a payment cannot tell whether it happened). The log gets one
record with the request id, the route and the traceback — never bytes of the request.

``FramingMiddleware`` refuses a request whose body framing is ambiguous (RFC 9112 §6.1):
both ``Content-Length`` and ``Transfer-Encoding``, or ``Transfer-Encoding`` in HTTP/1.0.
A proxy in front may have read such a body by the other header, so whatever follows it on
the connection may be a request the proxy never saw ("request smuggling"): the answer is
400 ``invalid_framing`` with ``Connection: close``, and the server then closes the
connection without running anything pipelined behind the request.
"""

import asyncio
import contextlib
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem
from app.api.request_context import request_id_var
from app.api.routing import StartTrackingSend, served_at

logger = logging.getLogger("purser.api")


#: Most bytes read and discarded to deliver a 413 reliably (see the module docstring), and
#: the longest that may take: a client that declares a large body and sends none of it gets
#: its answer after this, not never.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 2.0


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the cap."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # the server itself refuses a malformed length
                if declared > self.max_bytes:
                    if declared <= DRAIN_BYTES:
                        await _drain(receive, 0)
                    await self._too_large(scope, receive, send)
                    return
        received = 0
        tracked = StartTrackingSend(send)

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, counting_receive, tracked)
        except BodyTooLarge:
            if tracked.started:
                raise
            await _drain(receive, received)
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "body_too_large",
            f"The request body is larger than {self.max_bytes} bytes",
            title="Request body too large",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


async def _drain(receive: Receive, received: int) -> None:
    """Read and discard the rest of a request body, up to ``DRAIN_BYTES`` in all and for
    at most ``DRAIN_SECONDS``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            await _discard(receive, received)


async def _discard(receive: Receive, received: int) -> None:
    while received <= DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = StartTrackingSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception:
            logger.exception(
                "unhandled error request_id=%s %s %s",
                request_id_var.get(),
                scope["method"],
                _route_of(scope),
            )
            if tracked.started:
                # Part of a response is out: only dropping the connection tells the client.
                raise
            response = problem(
                500,
                "internal_error",
                "An internal error occurred. Quote the request_id when reporting it.",
                title="Internal server error",
            )
            await response(scope, receive, send)


class FramingMiddleware:
    """400 ``invalid_framing`` and ``Connection: close`` for a request with both
    ``Content-Length`` and ``Transfer-Encoding``, or with ``Transfer-Encoding`` in HTTP/1.0
    (RFC 9112 §6.1: such a message's framing is faulty, and the connection must be closed
    after responding). The server closes the connection on ``Connection: close``; requests
    already pipelined behind this one are dropped unread (tested with a real server in
    ``tests/api/test_framing.py``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in scope["headers"]}
        if b"transfer-encoding" in names and (
            b"content-length" in names or scope["http_version"] == "1.0"
        ):
            # The body is read (as the server framed it, up to DRAIN_BYTES) and discarded
            # so that closing the connection does not reset it and lose the answer.
            await _drain(receive, 0)
            detail = (
                "Transfer-Encoding is not allowed in an HTTP/1.0 request"
                if b"content-length" not in names
                else "A request may carry Content-Length or Transfer-Encoding, not both"
            )
            response = problem(
                400,
                "invalid_framing",
                detail,
                title="Invalid message framing",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _route_of(scope: Scope) -> str:
    """The route template a request reached, for the log: never the request's own path,
    which may carry bytes a client chose."""
    for template, methods in served_at(scope["app"], scope["path"]).items():
        if scope["method"] in methods:
            return template
    return "(no route)"
