"""The route class of every API route: what reaches a handler is text Purser can store
and JSON it can read one way only.

Before FastAPI parses anything, ``EdgeRoute`` refuses with a 422 naming the parameter:

- a NUL character (U+0000) in a path or query parameter (PostgreSQL text cannot hold it);
- a body sent to a POST, PUT or PATCH route that reads none (``unexpected_body``;
  nothing, or ``{}``, is fine);
- a header that decides who asks or what happens (``SINGLE_HEADERS``: the key, the
  idempotency key, a dry run, the body's type) sent more than once (400
  ``repeated_header``): which copy would count is a guess — two ``Authorization`` headers
  with two keys could act for the wrong owner;
- a JSON body that is not strict JSON (RFC 8259): a syntax error names its line and
  column; an object with a repeated member (``"amount"`` twice: which one would be
  money?), ``NaN``/``Infinity``, integers beyond 4,300 digits and nesting deeper than
  Python's parser allows are refused too.

The strictly parsed body is left on the request, so FastAPI validates it without parsing
again. Bodies are already bounded in size by ``app.api.body_limit``.
"""

import functools
import json
from collections.abc import Callable, Coroutine
from email.message import Message as HeaderMessage
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import compile_path
from starlette.types import Message, Send

from app.errors import AppError, ValidationFailed
from app.kit.schemas import storable_text_error


class InvalidJson(ValidationFailed):
    code = "invalid_json"


class RepeatedMember(ValidationFailed):
    code = "repeated_member"


class UnstorableText(ValidationFailed):
    code = "invalid_text"


class RepeatedHeader(ValidationFailed):
    status_code = 400
    code = "repeated_header"


#: Headers a request may carry at most once (lower case).
SINGLE_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "idempotency-key",
        "x-idempotency-key",
        "dry-run",
        "content-type",
    }
)


def _check_headers(request: Request) -> None:
    seen: set[str] = set()
    for raw_name, _ in request.headers.raw:
        name = raw_name.decode("latin-1").lower()
        if name in SINGLE_HEADERS:
            if name in seen:
                raise RepeatedHeader(
                    f"{name}: the header appears more than once; send it once", param=name
                )
            seen.add(name)


class _Repeated(ValueError):
    def __init__(self, member: str) -> None:
        super().__init__(member)
        self.member = member


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Repeated(key)
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    # Python's parser accepts NaN and Infinity; JSON (RFC 8259 §6) does not.
    raise ValueError(f"{name} is not a JSON value")


def decode_json_body(body: bytes) -> Any:
    """Parse a request body as strict JSON; raise ``InvalidJson`` (line and column) or
    ``RepeatedMember`` (naming the member), both 422."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJson(
            f"body: not UTF-8 (byte {error.start}); JSON must be UTF-8 (RFC 8259 §8.1)",
            param="body",
        ) from None
    try:
        return json.loads(
            text, object_pairs_hook=_object_without_repeats, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as error:
        raise InvalidJson(
            f"body: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
            param="body",
        ) from None
    except _Repeated as error:
        raise RepeatedMember(
            f"{error.member}: the member appears more than once in the JSON object",
            param=error.member,
        ) from None
    except RecursionError:
        raise InvalidJson("body: JSON nested too deeply", param="body") from None
    except ValueError as error:
        # NaN/Infinity, or an integer longer than Python converts (4,300 digits).
        raise InvalidJson(f"body: invalid JSON: {error}", param="body") from None


@functools.lru_cache(maxsize=64)
def _json_media_type(content_type: str) -> tuple[bool, bool]:
    """``(is JSON, in UTF-8)`` for a Content-Type value, parsed once per distinct value
    (clients send the same few): ``application/json`` or ``+json``, and a charset that is
    absent or UTF-8 (RFC 8259 §8.1)."""
    message = HeaderMessage()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    is_json = message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
    charset = message.get_param("charset")
    return is_json, charset is None or str(charset).lower() in ("utf-8", "utf8")


def _is_json(content_type: str | None) -> bool:
    return bool(content_type) and _json_media_type(content_type or "")[0]


class UnexpectedBody(ValidationFailed):
    code = "unexpected_body"


async def _refuse_body(request: Request) -> None:
    """A POST, PUT or PATCH route that reads no body refuses one (422
    ``unexpected_body``) rather than drop what the caller meant (``{"release_holds":
    true}`` sent to an unfreeze). Nothing, or an empty JSON object, is no body."""
    body = await request.body()
    if not body.strip():
        return
    # The edge parsed a JSON body already (``request._json``): an empty object is no body.
    if _is_json(request.headers.get("content-type")) and getattr(request, "_json", None) == {}:
        return
    raise UnexpectedBody("body: this route takes no request body", param="body")


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


async def _check_media_type(request: Request) -> None:
    """A route that reads a JSON body takes one only as ``application/json`` (or
    ``+json``) in UTF-8 (RFC 8259 §8.1): 415 ``unsupported_media_type`` naming
    ``Content-Type`` otherwise, rather than a validation error that names no field."""
    if not (await request.body()).strip():
        return
    content_type = request.headers.get("content-type")
    if content_type is None or _json_media_type(content_type) != (True, True):
        raise UnsupportedMediaType(
            f"Content-Type: send the body as application/json in UTF-8, not {content_type!r}",
            param="Content-Type",
        )


def _check_parameters(request: Request) -> None:
    for where, params in (("path", request.path_params), ("query", request.query_params)):
        for name, value in params.items():
            for text in (name, value):
                if isinstance(text, str) and (reason := storable_text_error(text)):
                    raise UnstorableText(f"{name}: the {where} parameter {reason}", param=name)


class EdgeRoute(APIRoute):
    """An ``APIRoute`` that checks parameters and parses JSON bodies strictly first."""

    def check_request(self, request: Request) -> None:
        """A subclass's own checks of every request, after the edge's and before any
        dependency runs (raise an ``AppError`` to refuse)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        takes_body = self.body_field is not None

        async def edge_handler(request: Request) -> Response:
            _check_headers(request)
            _check_parameters(request)
            if request.method not in ("GET", "HEAD", "DELETE", "OPTIONS") and _is_json(
                request.headers.get("content-type")
            ):
                body = await request.body()
                if body:
                    # FastAPI reads ``request.json()``, which returns this cached value.
                    request._json = decode_json_body(body)
            if not takes_body and request.method in ("POST", "PUT", "PATCH"):
                await _refuse_body(request)
            elif takes_body:
                await _check_media_type(request)
            self.check_request(request)
            return await handler(request)

        return edge_handler


def served_at(app: Any, path: str) -> dict[str, set[str]]:
    """The route templates serving ``path``, with their methods. Where a fixed path and a
    template both match (``/payments/holds`` and ``/payments/{tx_id}``), the fixed one is
    the resource, as OpenAPI reads paths: only the templates with the fewest parameters
    are kept."""
    served: dict[str, set[str]] = {}
    for context in iter_route_contexts(app.routes):
        template = context.path
        if template is not None and compile_path(template)[0].match(path):
            served.setdefault(template, set()).update(context.methods or ())
    if not served:
        return {}
    fewest = min(template.count("{") for template in served)
    return {t: m for t, m in served.items() if t.count("{") == fewest}


class StartTrackingSend:
    """A ``send`` that remembers whether the response has started: past that point an
    error can no longer be answered, only the connection dropped."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
