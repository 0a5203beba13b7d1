"""The error hierarchy every domain raises from.

Domain code raises an ``AppError`` subclass with a stable snake_case ``code`` and an HTTP
``status_code``; one handler in ``app.api.problems`` renders it as RFC 9457 problem details.
This module imports nothing from FastAPI so that domain packages can use it freely.
"""

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every expected, typed failure."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    #: Response headers every instance carries (for example ``WWW-Authenticate``).
    default_headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str, *, param: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.param = param
        self.extra = extra
        self.headers: dict[str, str] = dict(self.default_headers)


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"
    title = "Invalid request"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    title = "Service unavailable"
