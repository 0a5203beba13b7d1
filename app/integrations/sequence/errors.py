"""Typed failures of the GetSequence Platform API (spec §4, mapping of §12.2).

Every failure is a ``SequenceError`` carrying the HTTP ``status`` (``None`` when no
response came back, or when the client refused a request before sending it), Sequence's
``code`` (``None`` when the body was not the JSON error envelope, e.g. a gateway's HTML 502
or the plain-text 404 of an unsupported method, §3), a ``message`` and the ``request_id``
Sequence asks callers to quote in bug reports (§3).

``definite`` answers the one question a caller moving money needs: did Sequence give a
final answer? ``True`` means it answered and, for a write, did not perform it (or nothing
was sent at all); ``False`` means the operation may or may not have happened, so the
caller must reconcile (replay the same idempotency key within 24 h, §7, §12.8) rather than
assume a failure.
"""

from typing import Final

__all__ = [
    "SequenceAmbiguous",
    "SequenceAuthError",
    "SequenceError",
    "SequenceIdempotencyMismatch",
    "SequenceInvalid",
    "SequenceMaxAmountError",
    "SequenceNotFound",
    "SequencePermissionError",
    "SequenceRateLimited",
    "SequenceServerError",
    "SequenceUnavailable",
]

#: The ``code`` of a request the client refused before sending it (§4.1 uses the same).
INVALID_PARAMETERS: Final = "INVALID_PARAMETERS"


class SequenceError(Exception):
    """A failed call to Sequence. Also what a 4xx outside the mapped codes raises (for
    example 403 ``RULE_DEACTIVATED``); 409 ``TRANSFER_IN_PROGRESS`` raises it too while it
    is still being retried.

    ``definite`` is ``True`` for a 4xx other than 409 (Sequence answered and refused), and
    ``False`` otherwise (no answer, a 5xx, or a request still in progress).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    @property
    def definite(self) -> bool:
        """Whether Sequence answered definitively (and did not perform a write)."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 409

    def __str__(self) -> str:
        parts = [str(self.status) if self.status is not None else None, self.code]
        head = " ".join(part for part in parts if part)
        tail = f" (requestId {self.request_id})" if self.request_id else ""
        return f"{head}: {self.message}{tail}" if head else f"{self.message}{tail}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class SequenceAuthError(SequenceError):
    """401 ``UNAUTHORIZED``: no key, or a key Sequence does not recognise (§2.1)."""

    @property
    def definite(self) -> bool:
        return True


class SequencePermissionError(SequenceError):
    """403 ``ACCESS_DENIED``: the key lacks the permission, or the resource (for a
    transfer: the source/target pair) is outside it (§2.2, §2.3)."""

    @property
    def definite(self) -> bool:
        return True


class SequenceMaxAmountError(SequenceError):
    """403 ``MAXIMUM_AMOUNT_EXCEEDED``: the amount is above the key's ``max_amount`` for
    that source/target pair (§2.3)."""

    @property
    def definite(self) -> bool:
        return True


class SequenceNotFound(SequenceError):
    """404: ``ACCOUNT_NOT_FOUND``, ``TRANSFER_NOT_FOUND``…, or a plain-text 404 for a path or
    method Sequence does not serve (``code`` is then ``None``, §3). A
    ``TRANSFER_NOT_FOUND`` right after a create can be transient (§8.4); see
    ``SequenceClient.wait_for_transfer``."""

    @property
    def definite(self) -> bool:
        return True


class SequenceInvalid(SequenceError):
    """400 ``INVALID_PARAMETERS``, ``TRANSFER_SOURCE_NOT_FOUND`` or
    ``TRANSFER_DESTINATION_NOT_FOUND`` (§4.1); also raised by the client itself, with
    ``status=None`` and ``code="INVALID_PARAMETERS"``, for a request it refuses to send
    (§12.7.1), the message naming the field."""

    @property
    def definite(self) -> bool:
        return True


class SequenceIdempotencyMismatch(SequenceError):
    """400 ``IDEMPOTENCY_KEY_MISMATCH``: the idempotency key was used within 24 h with
    another body (§7). A bug on our side; never retried (§12.2)."""

    @property
    def definite(self) -> bool:
        return True


class SequenceRateLimited(SequenceError):
    """429 ``RATE_LIMIT_EXCEEDED`` still answered when the retries ran out (§5).

    ``retry_after`` is the ``Retry-After`` header in seconds, or ``None`` when it was
    missing, not a number or not positive.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)
        self.retry_after = retry_after

    @property
    def definite(self) -> bool:
        return True


class SequenceServerError(SequenceError):
    """A 5xx (``UNEXPECTED_ERROR``, or a gateway's non-JSON 502/503/504, §4.1 notes), or a
    2xx whose body could not be read, still answered when the retries ran out."""

    @property
    def definite(self) -> bool:
        return False


class SequenceUnavailable(SequenceError):
    """No answer at all when the retries ran out: a timeout or a transport error (refused
    connection, reset, DNS). ``status`` is ``None``."""

    @property
    def definite(self) -> bool:
        return False


class SequenceAmbiguous(SequenceError):
    """``POST /transfers`` ran out of retries without a definite answer (§12.8): the last
    attempt timed out, failed in transport, got a 5xx, a 429 or a 409
    ``TRANSFER_IN_PROGRESS``, and an earlier attempt may have created the transfer.

    The transfer is **unknown, not failed**. Settle it by calling ``create_transfer`` again
    with the same ``idempotency_key`` and the same arguments within 24 h (§7), which
    replays the original 201 if it was created; after that, reconcile by listing the
    source's transfers (§12.8). ``status``, ``code`` and ``request_id`` are those of the
    last attempt; ``__cause__`` is its error.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        idempotency_key: str,
        attempts: int,
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)
        self.idempotency_key = idempotency_key
        self.attempts = attempts

    @property
    def definite(self) -> bool:
        return False
