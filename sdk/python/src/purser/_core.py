"""What the sync and async clients share: requests as data, money, paging, retries."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

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
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
#: Longest pause between attempts, whatever ``Retry-After`` asks.
MAX_WAIT_SECONDS = 30.0
#: The header that asks the server to run a call and roll it back (``as_dry_run``).
DRY_RUN_HEADER = "Dry-Run"

Money = Decimal | int | str


class Unset:
    """The type of ``UNSET``: an argument not given (unlike ``None``, which clears)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


#: One API operation as the OpenAPI document names it: (HTTP method, path under ``/api/v1``
#: with its ``{parameters}``), e.g. ``("GET", "/agents/{agent_id}")``.
Route = tuple[str, str]
_ROUTES_ATTR = "__purser_routes__"


def operation(*operations: str) -> Callable[[F], F]:
    """Declare which API operations a client method calls (``"GET /agents/{agent_id}"``).

    The table this builds (``route_table``) is what the test suite compares with the
    server's OpenAPI document: a route without a method, or a method that calls a route
    it did not declare, fails there."""
    routes = tuple(_parse_route(text) for text in operations)

    def mark(method: F) -> F:
        setattr(method, _ROUTES_ATTR, routes)
        return method

    return mark


def _parse_route(text: str) -> Route:
    verb, _, path = text.partition(" ")
    if not verb.isupper() or not path.startswith("/"):
        raise ValueError(f"not an operation: {text!r} (write 'GET /path')")
    return verb, path


def route_table(client: type) -> dict[str, tuple[Route, ...]]:
    """Every method of ``client`` (``PurserClient`` or ``AsyncPurserClient``) that calls the
    API, with the operations it calls."""
    return {
        name: getattr(member, _ROUTES_ATTR)
        for name, member in vars(client).items()
        if hasattr(member, _ROUTES_ATTR)
    }


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


def segment(value: str) -> str:
    """``value`` as one path segment: every reserved character escaped, so an id holding
    a ``/`` or a ``?`` can never reach another route."""
    return quote(value, safe="")


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
    #: Whether sending it again after a lost answer is harmless: reads, changes that
    #: set a state (PUT, PATCH, DELETE, flag, authorize), and the POSTs whose answer the
    #: server stores under the ``Idempotency-Key`` and replays. ``False`` for the POSTs it
    #: does not replay (a new key, a webhook subscription, a test or replayed delivery, a
    #: secret rotation, a test clock advance): a resend would do them twice.
    resendable: bool = True
    #: Sent with ``Dry-Run: true`` (``as_dry_run``): the server runs it and writes nothing.
    dry_run: bool = False

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
    resendable: bool = True,
) -> Call[T]:
    adapter: TypeAdapter[T] | None = None
    if model is not type(None):
        adapter = TypeAdapter(model)
    return Call(method, path, adapter, clean(params or {}), json, idempotency_key, resendable)


def as_dry_run(real: Call[Any], model: type[T]) -> Call[T]:
    """The dry run of ``real``: the same request with ``Dry-Run: true``, answered with
    ``model`` (the server's decision) instead of the real answer. It carries no
    ``Idempotency-Key`` (the server claims none for a dry run, and a key of yours stays
    free for the real call) and may be resent freely: it writes nothing."""
    return replace(
        real, adapter=TypeAdapter(model), idempotency_key=None, resendable=True, dry_run=True
    )


@dataclass(frozen=True)
class Pager(Generic[T]):
    """How a list continues: ``offset``; ``after`` (the last item's id in ``param``);
    ``envelope`` (``{data, next_cursor}``, ``cursor`` param); or ``connection`` (the
    Sequence gateway's ``{transfers, has_next_page, end_cursor}``, ``after`` param, page
    size in ``first``). ``items_attr`` names the list in an envelope or connection page."""

    call: Call[list[T]] | Call[Any]
    kind: Literal["offset", "after", "envelope", "connection"]
    page_size: int
    param: str = "cursor"
    id_attr: str = ""
    size_param: str = "limit"
    items_attr: str = "data"

    def first(self) -> Call[Any]:
        return self.with_params({self.size_param: self.page_size})

    def with_params(self, extra: Mapping[str, Any]) -> Call[Any]:
        return replace(self.call, params={**self.call.params, **extra}, idempotency_key=None)

    def items(self, page: Any) -> list[T]:
        if self.kind in ("envelope", "connection"):
            return list(getattr(page, self.items_attr))
        return list(page)

    def next(self, current: Call[Any], page: Any) -> Call[Any] | None:
        if self.kind == "envelope":
            cursor = page.next_cursor
            return None if not cursor else self.with_params({**current.params, "cursor": cursor})
        if self.kind == "connection":
            # A filtered page may be short and still have more after it: only the flag
            # tells the end.
            if not page.has_next_page or not page.end_cursor:
                return None
            return self.with_params({**current.params, self.param: page.end_cursor})
        items = list(page)
        if len(items) < self.page_size:
            return None
        if self.kind == "offset":
            offset = int(current.params.get("offset", 0)) + len(items)
            return self.with_params({**current.params, "offset": offset})
        return self.with_params({**current.params, self.param: getattr(items[-1], self.id_attr)})


def headers_for(call: Call[Any], api_key: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    if call.dry_run:
        # Writes nothing, so there is nothing a key would guard.
        headers[DRY_RUN_HEADER] = "true"
    elif call.mutating:
        # One key per logical call, the same on every retry: a retry can never pay twice.
        headers["Idempotency-Key"] = call.idempotency_key or str(uuid.uuid4())
    return headers


def is_retryable(error: BaseException, call: Call[Any] | None = None) -> bool:
    """Network errors, 429, 5xx and ``idempotency_key_in_use``. A call that is not
    ``resendable`` is retried only when it surely did not run: the connection could not be
    made, or 429 (refused before anything ran). A lost answer or a 5xx (which may come
    from a proxy that lost the answer) is raised instead of doing it twice."""
    resendable = call is None or call.resendable
    if isinstance(error, APIConnectionError):
        return resendable or not error.request_sent
    if isinstance(error, RateLimitError):
        return True
    if isinstance(error, InternalServerError):
        return resendable
    return isinstance(error, IdempotencyConflictError) and error.code == "idempotency_key_in_use"


_backoff = wait_random_exponential(multiplier=0.25, max=MAX_WAIT_SECONDS)


def wait_for(state: RetryCallState) -> float:
    """``Retry-After`` when the server gave one, else exponential backoff with jitter."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        return min(error.retry_after, MAX_WAIT_SECONDS)
    return float(_backoff(state))


#: Failures before a byte of the request left: resending cannot do anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def connection_error(error: httpx.TransportError) -> APIConnectionError:
    return APIConnectionError(
        f"{type(error).__name__}: {error}", request_sent=not isinstance(error, _NOT_SENT)
    )
