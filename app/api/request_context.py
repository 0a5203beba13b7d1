"""Every response carries a ``Request-Id``, the caller's rate-limit headers and
``Cache-Control: no-store``: API answers are per caller and some carry secrets (a new
key, a webhook signing secret), so no shared or private cache may keep any of them."""

from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kit.ids import new_id

#: The current request's id; error bodies repeat it. Not reset after the request: each
#: request runs in its own task context, and the outermost error handler still needs it.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req", 12)
        request_id_var.set(request_id)
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Request-Id"] = request_id
                headers.setdefault("Cache-Control", "no-store")
                for name, value in state.get("rate_limit_headers", {}).items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
