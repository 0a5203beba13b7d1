"""Every error leaves as RFC 9457 problem details (``application/problem+json``), with
the ``detail`` member API clients already read and a stable snake_case ``code``."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import AppError

logger = logging.getLogger("purser.api")

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, code: str, detail: str, *, title: str | None = None, **members: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://purser.dev/problems/{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update({key: value for key, value in members.items() if value is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


async def _app_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AppError)
    return problem(
        error.status_code, error.code, error.detail, title=error.title, param=error.param
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(location) or None
    message = first.get("msg", "Invalid request")
    detail = f"{param}: {message}" if param else message
    return problem(
        422,
        "validation_error",
        detail,
        title="Invalid request",
        param=param,
        errors=[{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors],
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = HTTPStatus(error.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    return problem(error.status_code, code, str(error.detail))


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    # The trace goes to the log, never to the client.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal_error", "An internal error occurred; nothing was committed.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
