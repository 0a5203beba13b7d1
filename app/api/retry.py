"""Reruns a request whose transaction PostgreSQL chose as a deadlock or serialization
victim. The request transaction commits before the response starts, so a victim has sent
nothing yet and rolled everything back: running it again is safe and invisible."""

import asyncio
import logging
import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.routing import StartTrackingSend
from app.db import is_retryable

logger = logging.getLogger("purser.api")

ATTEMPTS = 5


class RetryOnConflictMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        for attempt in range(1, ATTEMPTS + 1):
            tracked = StartTrackingSend(send)

            async def replay_receive() -> Message:
                return {"type": "http.request", "body": body, "more_body": False}

            try:
                await self.app(dict(scope), replay_receive, tracked)
                return
            except Exception as error:
                if tracked.started or not is_retryable(error) or attempt == ATTEMPTS:
                    raise
                logger.warning("rerunning %s %s after %s", scope["method"], scope["path"], error)
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)
