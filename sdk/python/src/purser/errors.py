"""Typed exceptions, chosen by the response's ``code`` (then its status), never its text."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class PurserError(Exception):
    """Base of every error the SDK raises.

    ``status`` is the HTTP status (``None`` when no response arrived), ``code`` the API's
    stable snake_case code, ``detail`` its human-readable text, ``param`` the offending
    field (validation errors), ``request_id`` the server's request id, ``tx_id`` the failed
    transaction a refused payment recorded, ``body`` the whole problem document.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        tx_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.param = param
        self.request_id = request_id
        self.tx_id = tx_id
        self.body: dict[str, Any] = body or {}

    def __str__(self) -> str:
        parts = [self.detail]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.param:
            parts.append(f"param={self.param}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class APIConnectionError(PurserError):
    """No response: the network failed on every attempt. ``request_sent`` is ``False``
    when the request never left (the connection could not be made), ``True`` when it may
    have reached the server and only its answer was lost."""

    def __init__(self, detail: str, *, request_sent: bool = True) -> None:
        super().__init__(detail)
        self.request_sent = request_sent


class APIStatusError(PurserError):
    """The server answered with an error status."""


class BadRequestError(APIStatusError):
    """400 not covered by a more specific class."""


class AuthenticationError(APIStatusError):
    """401: missing, malformed, unknown, revoked or expired key."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this (or policy refused a payment)."""


class NotFoundError(APIStatusError):
    """404: no such object for this key's owner and mode."""


class ConflictError(APIStatusError):
    """409: the object's state forbids the operation."""


class ValidationError(APIStatusError):
    """422: a field is invalid; ``param`` names it."""


class RateLimitError(APIStatusError):
    """429; ``retry_after`` is the server's ``Retry-After`` in seconds."""

    retry_after: float | None = None


class InternalServerError(APIStatusError):
    """5xx."""


class PaymentRefusedError(BadRequestError):
    """A payment refused by policy and recorded as a failed transaction (``tx_id``)."""


class InsufficientFundsError(PaymentRefusedError):
    """``insufficient_funds``."""


class LimitExceededError(PaymentRefusedError):
    """``limit_exceeded``: a per-transaction, total or window limit."""


class AgentFlaggedError(PermissionDeniedError):
    """``agent_flagged``: the agent is flagged and moves no money."""


class WalletFrozenError(PermissionDeniedError):
    """``wallet_frozen``: the agent (or every agent of its owner) is frozen and its wallet
    moves no money until an owner key unfreezes it. The refused attempt is recorded as a
    failed transaction (``tx_id``) where the call makes one."""


class IdempotencyConflictError(ConflictError):
    """``idempotency_key_reused`` (same key, other request) or ``idempotency_key_in_use``
    (still in use after every retry)."""


class WebhookVerificationError(PurserError):
    """A webhook's signature, id or timestamp did not verify."""


_BY_CODE: dict[str, type[APIStatusError]] = {
    "insufficient_funds": InsufficientFundsError,
    "limit_exceeded": LimitExceededError,
    "agent_flagged": AgentFlaggedError,
    "wallet_frozen": WalletFrozenError,
    "idempotency_key_reused": IdempotencyConflictError,
    "idempotency_key_in_use": IdempotencyConflictError,
}

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The typed exception for an error response."""
    try:
        parsed: Any = response.json()
    except ValueError:
        parsed = None
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    code = _text(body.get("code"))
    status = response.status_code
    detail = _text(body.get("detail")) or _text(body.get("error")) or response.reason_phrase
    if code in _BY_CODE:
        cls = _BY_CODE[code]
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = InternalServerError
    else:
        cls = APIStatusError
    error = cls(
        detail or f"HTTP {status}",
        status=status,
        code=code,
        param=_text(body.get("param")),
        request_id=_text(body.get("request_id")) or response.headers.get("Request-Id"),
        tx_id=_text(body.get("tx_id")),
        body=body,
    )
    if isinstance(error, RateLimitError):
        error.retry_after = _retry_after(response)
    return error


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:  # the HTTP-date form
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
