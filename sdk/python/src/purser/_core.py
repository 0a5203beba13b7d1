"""What the sync and async clients share: requests as data, money, paging, retries."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import TypeAdapter
from tenacity import RetryCallState, wait_random_exponential

from purser.errors import (
    APIConnectionError,
    IdempotencyConflictError,
    InternalServerError,
    PurserError,
    RateLimitError,
)

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
#: Longest pause between attempts, whatever ``Retry-After`` asks.
MAX_WAIT_SECONDS = 30.0

Money = Decimal | int | str


class Unset:
    """The type of ``UNSET``: an argument not given (unlike ``None``, which clears)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


def money(value: Money) -> str:
    """A decimal string for the wire: never a float, never an exponent. Text is sent as
    given: the server holds the one grammar of amounts and answers a ``ValidationError``
    naming the field (no silent trimming or rewriting here)."""
    if isinstance(value, bool | float):
        raise TypeError("amounts must be Decimal, int or str, never a float or a bool")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"not a finite decimal amount: {value!r}")
    return format(value, "f")


def money_or_none(value: Money | None) -> str | None:
    return None if value is None else money(value)


def resolve_settings(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    key = api_key if api_key is not None else os.environ.get("PURSER_API_KEY")
    if not key:
        raise PurserError("no API key: pass api_key= or set PURSER_API_KEY")
    url = base_url or os.environ.get("PURSER_BASE_URL") or DEFAULT_BASE_URL
    return key, url.rstrip("/")


def clean(params: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` members (the API's defaults apply)."""
    return {k: v for k, v in params.items() if v is not None}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: method, path, body, and how to read the answer."""

    method: str
    path: str
    adapter: TypeAdapter[T] | None
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    idempotency_key: str | None = None

    @property
    def mutating(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")

    def parse(self, response: httpx.Response) -> T:
        if self.adapter is None or response.status_code == 204 or not response.content:
            return None  # type: ignore[return-value]
        return self.adapter.validate_json(response.content)


def call(
    method: str,
    path: str,
    model: type[T],
    *,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    idempotency_key: str | None = None,
) -> Call[T]:
    adapter: TypeAdapter[T] | None = None
    if model is not type(None):
        adapter = TypeAdapter(model)
    return Call(method, path, adapter, clean(params or {}), json, idempotency_key)


@dataclass(frozen=True)
class Pager(Generic[T]):
    """How a list continues: ``offset``, ``after`` (the last item's id in ``param``) or
    ``envelope`` (``{data, next_cursor}``, ``cursor`` param)."""

    call: Call[list[T]] | Call[Any]
    kind: Literal["offset", "after", "envelope"]
    page_size: int
    param: str = "cursor"
    id_attr: str = ""

    def first(self) -> Call[Any]:
        return self.with_params({"limit": self.page_size})

    def with_params(self, extra: Mapping[str, Any]) -> Call[Any]:
        c = self.call
        return Call(c.method, c.path, c.adapter, {**c.params, **extra}, c.json, None)

    def items(self, page: Any) -> list[T]:
        return list(page.data) if self.kind == "envelope" else list(page)

    def next(self, current: Call[Any], page: Any) -> Call[Any] | None:
        if self.kind == "envelope":
            cursor = page.next_cursor
            return None if not cursor else self.with_params({**current.params, "cursor": cursor})
        items = list(page)
        if len(items) < self.page_size:
            return None
        if self.kind == "offset":
            offset = int(current.params.get("offset", 0)) + len(items)
            return self.with_params({**current.params, "offset": offset})
        return self.with_params({**current.params, self.param: getattr(items[-1], self.id_attr)})


def headers_for(call: Call[Any], api_key: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    if call.mutating:
        # One key per logical call, the same on every retry: a retry can never pay twice.
        headers["Idempotency-Key"] = call.idempotency_key or str(uuid.uuid4())
    return headers


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, APIConnectionError | RateLimitError | InternalServerError):
        return True
    return isinstance(error, IdempotencyConflictError) and error.code == "idempotency_key_in_use"


_backoff = wait_random_exponential(multiplier=0.25, max=MAX_WAIT_SECONDS)


def wait_for(state: RetryCallState) -> float:
    """``Retry-After`` when the server gave one, else exponential backoff with jitter."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        return min(error.retry_after, MAX_WAIT_SECONDS)
    return float(_backoff(state))


def connection_error(error: httpx.TransportError) -> APIConnectionError:
    return APIConnectionError(f"{type(error).__name__}: {error}")
