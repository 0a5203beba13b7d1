"""Every error leaves as RFC 9457 problem details (``application/problem+json``), with
the ``detail`` member API clients already read and a stable snake_case ``code``."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.request_context import request_id_var
from app.api.routing import served_at
from app.errors import AppError

logger = logging.getLogger("purser.api")

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response carries them."""

    type: str = Field(examples=["https://purser.dev/problems/agent_not_found"])
    title: str
    status: int
    detail: str = Field(examples=["Agent agent_xyz not found"])
    code: str = Field(description="Stable, machine-readable snake_case code.")
    param: str | None = Field(default=None, description="The request field at fault.")
    request_id: str | None = None


def problem_members(error: AppError) -> dict[str, Any]:
    """The problem-details members of ``error``, for bodies that carry them beside others."""
    members: dict[str, Any] = {
        "type": f"https://purser.dev/problems/{error.code}",
        "title": error.title,
        "status": error.status_code,
        "detail": error.detail,
        "code": error.code,
        "request_id": request_id_var.get(),
    }
    if error.param is not None:
        members["param"] = error.param
    return members


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
    **members: Any,
) -> JSONResponse:
    request_id = request_id_var.get()
    body: dict[str, Any] = {
        "type": f"https://purser.dev/problems/{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update({key: value for key, value in members.items() if value is not None})
    body["request_id"] = request_id
    all_headers = dict(headers or {})
    if request_id:
        all_headers["Request-Id"] = request_id
    if request is not None:
        for name, value in getattr(request.state, "rate_limit_headers", {}).items():
            all_headers.setdefault(name, value)
    return JSONResponse(
        body, status_code=status, media_type=media_type_for(request), headers=all_headers
    )


#: Paths of the seed's Sequence gateway (``/api/pods``…, not ``/api/v1``): its clients read
#: ``detail`` only from responses whose content type starts with ``application/json``.
SEED_GATEWAY_PREFIX = "/api/"


def media_type_for(request: Request | None) -> str:
    """``application/problem+json``, or plain ``application/json`` on the seed gateway's
    own paths (the body is the same problem details: ``detail`` is what they read)."""
    if request is not None:
        path = request.url.path
        if path.startswith(SEED_GATEWAY_PREFIX) and not path.startswith("/api/v1/"):
            return "application/json"
    return PROBLEM_JSON


#: Error responses documented on routes that need an API key.
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid, revoked or expired API key"},
    403: {"model": Problem, "description": "The key lacks the scope"},
    422: {"model": Problem, "description": "Invalid request; `param` names the field"},
    429: {"model": Problem, "description": "Rate limit exceeded"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Not found (or another owner's)"}
}


async def _app_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AppError)
    return problem(
        error.status_code,
        error.code,
        error.detail,
        title=error.title,
        param=error.param,
        headers=error.headers,
        request=request,
    )


def _field_of(error: Any) -> str | None:
    location = []
    for part in error.get("loc", ()):
        if part in ("body", "query", "path"):
            continue
        if isinstance(part, str) and ("[" in part or part in ("none", "null")):
            # A union's branch (``function-before[…]``, ``none``): not a field of the request.
            break
        location.append(str(part))
    return ".".join(location) or None


def _message_of(error: Any) -> str:
    message = str(error.get("msg", "Invalid request"))
    # A validator's ValueError reads "Value error, <reason>": the reason is the message.
    return message.removeprefix("Value error, ")


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = list(error.errors())
    unknown = [_field_of(e) for e in errors if e.get("type") == "extra_forbidden"]
    if unknown:
        # Named together, as Stripe does: a misspelt field must never be silently ignored.
        param = unknown[0]
        detail = f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(map(str, unknown))}"
    elif errors and errors[0].get("type") == "json_invalid":
        param = "body"
        detail = "body: invalid JSON"
    else:
        first = errors[0] if errors else {}
        param = _field_of(first)
        message = _message_of(first)
        detail = f"{param}: {message}" if param else message
    return problem(
        422,
        "validation_error",
        detail,
        title="Invalid request",
        param=param,
        request=request,
        errors=[{"loc": list(e.get("loc", ())), "msg": _message_of(e)} for e in errors],
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = HTTPStatus(error.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    headers = dict(error.headers or {})
    if error.status_code == 405:
        # The router names only the first route of the path; ``Allow`` lists the methods
        # of every route serving it (RFC 9110 §15.5.6).
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem(error.status_code, code, str(error.detail), headers=headers, request=request)


def _allowed_methods(request: Request) -> list[str]:
    """The methods of the resource at the request's path (``served_at``)."""
    methods = set().union(*served_at(request.app, request.url.path).values())
    order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    return [method for method in order if method in methods]


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Anything else is answered by ``app.api.edge.UnexpectedErrorMiddleware``.
