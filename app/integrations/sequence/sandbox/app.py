"""The sandbox's HTTP surface: the Platform API's accounts and transfers routes under
``/platform/v1`` and the control routes under ``/_fake`` (the package docstring lists
both). A bare ASGI application on Starlette's request and response objects: routing is
done here so that an unknown path *and* an unsupported method get the plain-text 404 of
§3 rather than a framework's 405 or JSON.
"""

import asyncio
import fnmatch
import itertools
import json
import math
import re
import secrets
import string
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, Final, TypeGuard

import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from app.integrations.sequence.sandbox.seed import seed_accounts, seed_transfers, seeded_id
from app.integrations.sequence.sandbox.state import (
    AccountRecord,
    IdempotencyRecord,
    Organization,
    Timings,
    TransferRecord,
    wire_time,
)
from app.integrations.sequence.schemas import (
    ACCOUNT_ROLES,
    ACCOUNT_TYPES,
    DIRECTIONS,
    EXECUTION_MODE_FILTERS,
    ORIGIN_FILTERS,
    TRANSFER_STATUSES,
)
from app.kit.time import Clock, utc_now

#: API keys of the sandbox: each distinct one is its own organisation.
SANDBOX_KEY: Final = re.compile(r"sk_sandbox_[A-Za-z0-9_-]{1,64}")
#: Kinds of fault ``POST /_fake/faults`` queues (§13.7).
FAULT_KINDS: Final = frozenset(
    {
        "500",
        "502",
        "503",
        "504",
        "429",
        "timeout_before_commit",
        "timeout_after_commit",
        "in_flight",
        "malformed_json",
    }
)
# Faults answered in front of the API, as a gateway would: before routing and auth.
_GATEWAY_FAULTS: Final = frozenset(
    {"500", "502", "503", "504", "429", "timeout_before_commit", "malformed_json"}
)
# How long a fault holds a request when the fault gives no ``seconds``: a timeout longer
# than any sane client's (the hold ends as soon as the client hangs up), and an in-flight
# window long enough for a retry to meet it.
_DEFAULT_HOLD_SECONDS: Final = 30.0
_DEFAULT_IN_FLIGHT_SECONDS: Final = 2.0

# §13.8, written out here rather than shared with the client: the fake must not inherit a
# mistake of the adapter it tests.
_IDEMPOTENCY_KEY: Final = re.compile(r"[A-Za-z0-9._:/|-]{1,36}")
_DESCRIPTION: Final = re.compile(r"[a-zA-Z0-9 ]{0,10}")
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
_MIN_AMOUNT: Final = 100
_MAX_PAGE_SIZE: Final = 100
_ALPHANUMERIC: Final = string.ascii_letters + string.digits
_GATEWAY_PAGE: Final = (
    "<html><head><title>{status} {reason}</title></head><body>"
    "<center><h1>{status} {reason}</h1></center><hr><center>gateway</center></body></html>"
)
_REASONS: Final = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(frozen=True)
class SandboxOptions:
    """How the sandbox behaves. Durations are seconds of the sandbox clock.

    - ``settle_seconds``: a transfer between pods/income source goes ``PROCESSING`` →
      ``PENDING`` at half of it and ``COMPLETE`` at the end (a shortfall: ``INCOMPLETE``
      at half);
    - ``ach_settle_seconds``: the same for a transfer to or from an external account
      (seconds here, where Sequence takes banking days, §8.1);
    - ``simulation_seconds``: until a simulated transfer is final;
    - ``read_after_write_delay``: a new transfer answers 404 to reads and is left out of
      lists for this long (§8.4);
    - ``rate_limit_per_minute``: requests per key per calendar minute (§5, §13.6 mode A);
    - ``idempotency_retention_seconds``: how long a key replays (24 h, §7);
    - ``keep_failed_idempotency_keys``: a create that fails after claiming its key (unknown
      source or destination) stores its 400 for replay instead of freeing the key
      (§13.4 step 10, unsettled in the real API);
    - ``clock``: the time before any ``/_fake/clock`` advance (UTC, aware).
    """

    settle_seconds: float = 2.0
    ach_settle_seconds: float = 4.0
    simulation_seconds: float = 0.2
    read_after_write_delay: float = 0.3
    rate_limit_per_minute: int = 100
    idempotency_retention_seconds: float = 24 * 3600.0
    keep_failed_idempotency_keys: bool = False
    clock: Clock = utc_now


class ApiError(Exception):
    """An answer in the error envelope: ``status``, Sequence's ``code``, a ``message``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETERS", message)


def _control_error(message: str, status: int = 400) -> ApiError:
    return ApiError(status, "INVALID_CONTROL" if status == 400 else "CONTROL_CONFLICT", message)


def _request_id() -> str:
    """A fresh ``req_`` + 12 alphanumerics for every response, errors included (§13.3)."""
    return "req_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(12))


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({**payload, "requestId": _request_id()}, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _ok(data: Any, status: int = 200) -> Response:
    return _json(status, {"data": data})


def _error(error: ApiError) -> Response:
    payload = {"error": {"code": error.code, "message": error.message}}
    return _json(error.status, payload, error.headers)


def _plain_not_found() -> Response:
    """What §3 says a path or method Sequence does not serve gets: a plain-text 404."""
    return PlainTextResponse("Not Found", status_code=404)


def _page(items: list[dict[str, Any]], page: int, size: int) -> dict[str, Any]:
    start = (page - 1) * size
    return {
        "items": items[start : start + size],
        "pagination": {"page": page, "pageSize": size, "hasNextPage": start + size < len(items)},
    }


async def _hold(receive: Receive, seconds: float) -> bool:
    """Keep a request unanswered until its client hangs up or ``seconds`` pass; return
    whether the client hung up (then nothing is sent)."""

    async def hung_up() -> None:
        # Once the body is read, the server's next message is the disconnect.
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(hung_up(), seconds)
    except TimeoutError:
        return False
    return True


class _Query:
    """The query string, read as §13.8 says: one value per filter, enums exact."""

    def __init__(self, request: Request) -> None:
        self._items = request.query_params.multi_items()

    def values(self, name: str) -> list[str]:
        return [value for key, value in self._items if key == name]

    def one(self, name: str) -> str | None:
        values = self.values(name)
        if len(values) > 1:
            raise _invalid(f"{name} takes one value")
        return values[0] if values else None

    def choice(self, name: str, allowed: frozenset[str]) -> str | None:
        value = self.one(name)
        if value is not None and value not in allowed:
            raise _invalid(f"{name} must be one of {', '.join(sorted(allowed))}")
        return value

    def moment(self, name: str) -> datetime | None:
        value = self.one(name)
        if value is None:
            return None
        if not _RFC3339.fullmatch(value):
            raise _invalid(f"{name} must be an RFC 3339 date-time with an offset")
        try:
            return datetime.fromisoformat(value.upper())
        except ValueError:
            raise _invalid(f"{name} must be an RFC 3339 date-time with an offset") from None

    def page(self) -> tuple[int, int]:
        page = self._integer("page", 1)
        size = self._integer("pageSize", 10)
        if page < 1:
            raise _invalid("page must be at least 1")
        if not 1 <= size <= _MAX_PAGE_SIZE:
            raise _invalid(f"pageSize must be from 1 to {_MAX_PAGE_SIZE}")
        return page, size

    def _integer(self, name: str, default: int) -> int:
        value = self.one(name)
        if value is None:
            return default
        if not value.isdigit():
            raise _invalid(f"{name} must be an integer")
        return int(value)


@dataclass
class _Call:
    """One authenticated API request on its way through the handlers."""

    request: Request
    org: Organization
    params: dict[str, str]
    query: _Query
    now: datetime
    in_flight_seconds: float | None


@dataclass
class Fault:
    """A queued fault (§13.7): the next ``count`` requests whose method and path match
    get ``kind``. ``path`` is an ``fnmatch`` pattern on the path without query."""

    id: int
    kind: str
    method: str = "*"
    path: str = "*"
    count: int = 1
    retry_after: str | None = None
    seconds: float | None = None

    def matches(self, method: str, path: str) -> bool:
        method_matches = self.method == "*" or self.method.upper() == method
        return method_matches and fnmatch.fnmatchcase(path, self.path)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "count": self.count,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
        }


_Handler = Callable[[_Call], Awaitable[Response]]
_ControlHandler = Callable[[Request, dict[str, str]], Awaitable[Response]]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: _Handler
    #: Whether the route commits a write (an ``in_flight`` fault then delays the commit).
    commits: bool = False


@dataclass(frozen=True)
class _ControlRoute:
    method: str
    pattern: re.Pattern[str]
    handler: _ControlHandler


def _path(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template))


class SandboxApp:
    """The ASGI application of a fake Sequence; all state lives in this object."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.timings = Timings(
            settle_seconds=options.settle_seconds,
            ach_settle_seconds=options.ach_settle_seconds,
            simulation_seconds=options.simulation_seconds,
            read_after_write_delay=options.read_after_write_delay,
        )
        self.rate_limit_per_minute = options.rate_limit_per_minute
        self._offset = timedelta()
        self._orgs: dict[str, Organization] = {}
        self._faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        prefix = "/platform/v1"
        self._routes = [
            _Route("GET", _path(f"{prefix}/accounts"), self._list_accounts),
            _Route("GET", _path(f"{prefix}/accounts/{{id}}"), self._get_account),
            _Route("GET", _path(f"{prefix}/accounts/{{id}}/transfers"), self._account_transfers),
            _Route("GET", _path(f"{prefix}/transfers"), self._list_transfers),
            _Route("GET", _path(f"{prefix}/transfers/{{id}}"), self._get_transfer),
            _Route("POST", _path(f"{prefix}/transfers"), self._create_transfer, commits=True),
        ]
        self._control = [
            _ControlRoute("GET", _path("/_fake/faults"), self._faults_list),
            _ControlRoute("POST", _path("/_fake/faults"), self._faults_add),
            _ControlRoute("DELETE", _path("/_fake/faults"), self._faults_clear),
            _ControlRoute("GET", _path("/_fake/clock"), self._clock_read),
            _ControlRoute("POST", _path("/_fake/clock"), self._clock_advance),
            _ControlRoute("POST", _path("/_fake/transfers/{id}"), self._force_transfer),
            _ControlRoute("POST", _path("/_fake/rate_limit"), self._set_rate_limit),
            _ControlRoute("GET", _path("/_fake/state"), self._state),
            _ControlRoute("POST", _path("/_fake/accounts"), self._add_accounts),
        ]

    # --- Time and organisations -------------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox clock: ``options.clock`` plus every ``/_fake/clock`` advance, cut to
        the millisecond the wire shows, so a ``createdAt`` read back as ``from`` matches."""
        now = self.options.clock() + self._offset
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def organization(self, key: str) -> Organization:
        """The organisation of ``key``, seeded on first use (``seed``)."""
        org = self._orgs.get(key)
        if org is None:
            now = self.now()
            accounts = seed_accounts(key, now)
            org = self._orgs[key] = Organization(key, accounts, seed_transfers(key, accounts, now))
        return org

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path
        response: Response | None
        if path == "/_fake" or path.startswith("/_fake/"):
            response = await self._control_request(request)
        else:
            response = await self._api_request(request, receive)
        if response is not None:
            await response(scope, receive, send)

    async def _api_request(self, request: Request, receive: Receive) -> Response | None:
        """One API request in the order of §13.4; ``None`` when a fault hung it up."""
        method, path = request.method, request.url.path
        fault = self._take_fault(method, path)
        if fault is not None and fault.kind in _GATEWAY_FAULTS:
            return await self._gateway_fault(fault, receive)
        route, params = None, {}
        for candidate in self._routes:
            match = candidate.pattern.fullmatch(path)
            if match and candidate.method == method:
                route, params = candidate, match.groupdict()
                break
        if route is None:
            return _plain_not_found()
        in_flight = None
        if fault is not None and fault.kind == "in_flight":
            in_flight = fault.seconds if fault.seconds is not None else _DEFAULT_IN_FLIGHT_SECONDS
            if not route.commits:
                await asyncio.sleep(in_flight)
        try:
            call = self._authenticate(request, params, in_flight)
            response = await route.handler(call)
        except ApiError as error:
            response = _error(error)
        if fault is not None and fault.kind == "timeout_after_commit":
            seconds = fault.seconds if fault.seconds is not None else _DEFAULT_HOLD_SECONDS
            if await _hold(receive, seconds):
                return None
        return response

    def _authenticate(
        self, request: Request, params: dict[str, str], in_flight: float | None
    ) -> _Call:
        """Steps 2 and 3 of §13.4: the bearer key (401), then its rate limit (429). The
        organisation is brought up to date before the handler reads it."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not SANDBOX_KEY.fullmatch(token):
            raise ApiError(401, "UNAUTHORIZED", "Unauthorized")
        org = self.organization(token)
        now = self.now()
        limit = org.rate_limit or self.rate_limit_per_minute
        retry_after = org.spend_request(now, limit)
        if retry_after is not None:
            raise ApiError(
                429,
                "RATE_LIMIT_EXCEEDED",
                f"Rate limit exceeded. Maximum {limit} requests per minute per token.",
                {"Retry-After": str(retry_after)},
            )
        org.advance(now)
        return _Call(request, org, params, _Query(request), now, in_flight)

    # --- Faults -----------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _gateway_fault(self, fault: Fault, receive: Receive) -> Response | None:
        if fault.kind == "500":
            return _error(ApiError(500, "UNEXPECTED_ERROR", "An unexpected error occurred."))
        if fault.kind == "429":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            message = "Rate limit exceeded. Maximum 100 requests per minute per token."
            return _error(ApiError(429, "RATE_LIMIT_EXCEEDED", message, headers))
        if fault.kind == "malformed_json":
            # A 200 cut short, as a dropped connection behind a proxy leaves it.
            return Response('{"data":{"id":"', media_type="application/json")
        status = int(fault.kind) if fault.kind.isdigit() else 504
        if fault.kind == "timeout_before_commit":
            seconds = fault.seconds if fault.seconds is not None else _DEFAULT_HOLD_SECONDS
            if await _hold(receive, seconds):
                return None
        page = _GATEWAY_PAGE.format(status=status, reason=_REASONS[status])
        return HTMLResponse(page, status_code=status)

    # --- Accounts (§11.1, §11.2) -------------------------------------------------------------

    async def _list_accounts(self, call: _Call) -> Response:
        kind = call.query.choice("type", ACCOUNT_TYPES)
        state = call.query.choice("state", frozenset({"ACTIVE", "ALL"})) or "ACTIVE"
        page, size = call.query.page()
        items = [
            account.summary()
            for account in call.org.accounts.values()
            if (kind is None or account.type == kind)
            and (state == "ALL" or account.deleted_at is None)
        ]
        return _ok(_page(items, page, size))

    async def _get_account(self, call: _Call) -> Response:
        return _ok(self._account(call).detail())

    def _account(self, call: _Call) -> AccountRecord:
        # A malformed id is just an id no account has: the entity's 404 (§13.3).
        account = call.org.accounts.get(call.params["id"])
        if account is None:
            raise ApiError(404, "ACCOUNT_NOT_FOUND", "Account does not exist")
        return account

    # --- Transfers (§11.3-§11.6) -------------------------------------------------------------

    def _transfer_filter(self, query: _Query) -> Callable[[TransferRecord], bool]:
        """The filters both transfer lists share (§11.3), as one predicate."""
        status = query.choice("status", TRANSFER_STATUSES)
        direction = query.choice("direction", DIRECTIONS)
        origin = query.choice("origin", ORIGIN_FILTERS)
        mode = query.choice("executionMode", EXECUTION_MODE_FILTERS) or "LIVE"
        start, end = query.moment("from"), query.moment("to")
        execution = query.one("rule_execution_id")
        if start is not None and end is not None and start > end:
            raise _invalid("from must not be after to")

        def keep(transfer: TransferRecord) -> bool:
            return (
                (status is None or transfer.status == status)
                and (direction is None or transfer.direction == direction)
                and (origin is None or transfer.origin == origin)
                and (mode == "ALL" or transfer.execution_mode == mode)
                and (start is None or transfer.created_at >= start)
                and (end is None or transfer.created_at <= end)
                and (execution is None or transfer.rule_execution_id == execution)
            )

        return keep

    async def _account_transfers(self, call: _Call) -> Response:
        role = call.query.choice("accountRole", ACCOUNT_ROLES) or "either"
        keep = self._transfer_filter(call.query)
        page, size = call.query.page()
        account_id = self._account(call).id

        def plays_role(transfer: TransferRecord) -> bool:
            source = transfer.source is not None and transfer.source.id == account_id
            destination = transfer.destination is not None and transfer.destination.id == account_id
            if role == "source":
                return source
            if role == "destination":
                return destination
            return source or destination

        items = [
            transfer.wire()
            for transfer in call.org.visible_transfers(call.now)
            if plays_role(transfer) and keep(transfer)
        ]
        return _ok(_page(items, page, size))

    async def _list_transfers(self, call: _Call) -> Response:
        # Bracket notation is what the spec asks for; the plain repeated key is accepted.
        ids = set(call.query.values("accountIds[]") + call.query.values("accountIds"))
        if not ids:
            raise _invalid("accountIds is required: accountIds[]=<id>, at least one")
        keep = self._transfer_filter(call.query)
        page, size = call.query.page()
        items = [
            transfer.wire()
            for transfer in call.org.visible_transfers(call.now)
            if keep(transfer)
            and (
                (transfer.source is not None and transfer.source.id in ids)
                or (transfer.destination is not None and transfer.destination.id in ids)
            )
        ]
        return _ok(_page(items, page, size))

    async def _get_transfer(self, call: _Call) -> Response:
        transfer = call.org.transfers.get(call.params["id"])
        if transfer is None or transfer.visible_at > call.now:
            raise ApiError(404, "TRANSFER_NOT_FOUND", "Transfer does not exist")
        return _ok(transfer.wire())

    async def _create_transfer(self, call: _Call) -> Response:
        """§11.6 through steps 5-10 of §13.4."""
        org = call.org
        key = call.request.headers.get("idempotency-key")
        if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
            raise _invalid("idempotency-key must be 1 to 36 characters of [A-Za-z0-9._:/|-]")
        body = _transfer_body(await call.request.body())
        record: IdempotencyRecord | None = None
        if key is not None:
            fingerprint = json.dumps(body, sort_keys=True, separators=(",", ":"))
            record = org.idempotency.get(key)
            if record is not None and record.expires_at <= call.now:
                record = None  # past retention: the key starts a new operation (§7)
            if record is not None:
                if record.state == "in_flight":
                    raise ApiError(
                        409,
                        "TRANSFER_IN_PROGRESS",
                        "A transfer with the same idempotency key is already in progress. "
                        "Retry shortly.",
                    )
                if record.fingerprint != fingerprint:
                    raise ApiError(
                        400,
                        "IDEMPOTENCY_KEY_MISMATCH",
                        "Idempotency-Key was already used with a different request body. "
                        "Use a fresh key for new operations.",
                    )
                return _json(record.status, record.payload)
            retention = timedelta(seconds=self.options.idempotency_retention_seconds)
            record = org.idempotency[key] = IdempotencyRecord(fingerprint, call.now + retention)
        try:
            if call.in_flight_seconds is not None:
                await asyncio.sleep(call.in_flight_seconds)
            now = self.now()
            org.advance(now)
            transfer = self._commit(org, body, key, now)
        except ApiError as error:
            if key is not None and record is not None:
                if self.options.keep_failed_idempotency_keys:
                    record.state, record.status = "done", error.status
                    record.payload = {"error": {"code": error.code, "message": error.message}}
                else:
                    org.idempotency.pop(key, None)
            raise
        except BaseException:
            if key is not None:
                org.idempotency.pop(key, None)
            raise
        payload = {"data": transfer.wire()}
        if record is not None:
            # The replay is this snapshot (PROCESSING), "the original response" of §7.
            record.state, record.status, record.payload = "done", 201, payload
        return _json(201, payload)

    def _commit(
        self, org: Organization, body: dict[str, Any], key: str | None, now: datetime
    ) -> TransferRecord:
        """Steps 7 and 10 of §13.4: the accounts must exist (deleted ones do not), then the
        transfer is accepted. Permissions (step 8) are not modelled: a sandbox key may move
        any of its organisation's money."""
        source = org.active_account(body["sourceAccountId"])
        if source is None:
            raise ApiError(400, "TRANSFER_SOURCE_NOT_FOUND", "Source account not found")
        destination = org.active_account(body["destinationAccountId"])
        if destination is None:
            raise ApiError(400, "TRANSFER_DESTINATION_NOT_FOUND", "Destination account not found")
        try:
            return org.accept(
                transfer_id=str(uuid.uuid4()),
                source=source,
                destination=destination,
                amount_in_cents=body["amountInCents"],
                description=body.get("description"),
                simulation=body.get("simulation", False),
                idempotency_key=key,
                now=now,
                timings=self.timings,
            )
        except ValueError as error:
            raise _invalid(str(error)) from None

    # --- Control (/_fake) --------------------------------------------------------------------

    async def _control_request(self, request: Request) -> Response:
        for route in self._control:
            match = route.pattern.fullmatch(request.url.path)
            if match and route.method == request.method:
                try:
                    return await route.handler(request, match.groupdict())
                except ApiError as error:
                    return _error(error)
        return _plain_not_found()

    async def _faults_list(self, request: Request, params: dict[str, str]) -> Response:
        return _ok([fault.wire() for fault in self._faults])

    async def _faults_add(self, request: Request, params: dict[str, str]) -> Response:
        body = await _control_body(request)
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            raise _control_error(f"kind must be one of {', '.join(sorted(FAULT_KINDS))}")
        method, path = body.get("method", "*"), body.get("path", "*")
        count = body.get("count", 1)
        retry_after, seconds = body.get("retry_after"), body.get("seconds")
        if not isinstance(method, str) or not isinstance(path, str):
            raise _control_error("method and path must be strings")
        if type(count) is not int or count < 1:
            raise _control_error("count must be a positive integer")
        if retry_after is not None and not isinstance(retry_after, str | int | float):
            raise _control_error("retry_after must be a number or a string")
        if seconds is not None and (not _is_number(seconds) or seconds < 0):
            raise _control_error("seconds must be a number of seconds, at least 0")
        fault = Fault(
            id=next(self._fault_ids),
            kind=kind,
            method=method,
            path=path,
            count=count,
            retry_after=None if retry_after is None else str(retry_after),
            seconds=None if seconds is None else float(seconds),
        )
        self._faults.append(fault)
        return _ok(fault.wire(), 201)

    async def _faults_clear(self, request: Request, params: dict[str, str]) -> Response:
        cleared, self._faults = len(self._faults), []
        return _ok({"cleared": cleared})

    async def _clock_read(self, request: Request, params: dict[str, str]) -> Response:
        return _ok({"now": wire_time(self.now())})

    async def _clock_advance(self, request: Request, params: dict[str, str]) -> Response:
        seconds = (await _control_body(request)).get("advance_seconds")
        if not _is_number(seconds) or seconds < 0 or not math.isfinite(seconds):
            raise _control_error("advance_seconds must be a number of seconds, at least 0")
        self._offset += timedelta(seconds=seconds)
        return _ok({"now": wire_time(self.now())})

    async def _force_transfer(self, request: Request, params: dict[str, str]) -> Response:
        body = await _control_body(request)
        status, error_code = body.get("status"), body.get("error_code")
        if status not in TRANSFER_STATUSES:
            raise _control_error(f"status must be one of {', '.join(sorted(TRANSFER_STATUSES))}")
        if error_code is not None and not isinstance(error_code, str):
            raise _control_error("error_code must be a string")
        for org in self._orgs.values():
            transfer = org.transfers.get(params["id"])
            if transfer is not None:
                now = self.now()
                org.advance(now)
                try:
                    org.force(transfer, status, error_code, now)
                except ValueError as error:
                    raise _control_error(str(error), 409) from None
                return _ok(transfer.internal())
        raise ApiError(404, "TRANSFER_NOT_FOUND", "No transfer has this id")

    async def _set_rate_limit(self, request: Request, params: dict[str, str]) -> Response:
        body = await _control_body(request)
        per_minute, key = body.get("per_minute"), body.get("key")
        if type(per_minute) is not int or per_minute < 1:
            raise _control_error("per_minute must be a positive integer")
        if key is None:
            self.rate_limit_per_minute = per_minute
        else:
            self.organization(_control_key(key)).rate_limit = per_minute
        return _ok({"per_minute": per_minute, "key": key})

    async def _state(self, request: Request, params: dict[str, str]) -> Response:
        org = self.organization(_control_key(request.query_params.get("key")))
        now = self.now()
        org.advance(now)
        transfers = sorted(org.transfers.values(), key=lambda t: (t.created_at, t.id), reverse=True)
        return _ok(
            {
                "now": wire_time(now),
                "accounts": [account.detail() for account in org.accounts.values()],
                "transfers": [transfer.internal() for transfer in transfers],
                "idempotencyKeys": [
                    {"key": key, "state": record.state, "expiresAt": wire_time(record.expires_at)}
                    for key, record in org.idempotency.items()
                ],
            }
        )

    async def _add_accounts(self, request: Request, params: dict[str, str]) -> Response:
        body = await _control_body(request)
        org = self.organization(_control_key(body.get("key")))
        wanted = body.get("accounts")
        if not isinstance(wanted, list) or not all(isinstance(item, dict) for item in wanted):
            raise _control_error("accounts must be a list of objects")
        now = self.now()
        created: list[AccountRecord] = []
        for item in wanted:
            name, kind = item.get("name"), item.get("type", "POD")
            balance = item.get("balanceInCents", 0)
            external = item.get("externalAccountType")
            if not isinstance(name, str) or not name or kind not in ACCOUNT_TYPES:
                raise _control_error(
                    "each account needs a name and a type of " + "/".join(sorted(ACCOUNT_TYPES))
                )
            if type(balance) is not int:
                raise _control_error("balanceInCents must be an integer")
            account_id = seeded_id(org.key, name)
            if account_id in org.accounts or any(a.id == account_id for a in created):
                raise _control_error(f"an account named {name!r} exists", 409)
            created.append(
                AccountRecord(
                    id=account_id,
                    name=name,
                    type=kind,
                    created_at=now,
                    external_account_type=external if kind == "EXTERNAL_ACCOUNT" else None,
                    balance_in_cents=balance,
                    available_in_cents=balance,
                    balance_updated_at=now,
                )
            )
        org.accounts.update((account.id, account) for account in created)
        return _ok([account.detail() for account in created], 201)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _transfer_body(raw: bytes) -> dict[str, Any]:
    """The body of ``POST /transfers`` checked as §13.8 says (400 ``INVALID_PARAMETERS``
    naming the field). Extra fields are ignored: the schema does not forbid them (§11.6)."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    for name in ("sourceAccountId", "destinationAccountId"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise _invalid(f"{name} is required and must be a string")
    amount = body.get("amountInCents")
    if type(amount) is not int:
        raise _invalid("amountInCents is required and must be an integer")
    if amount < _MIN_AMOUNT:
        raise _invalid(f"amountInCents must be at least {_MIN_AMOUNT}")
    if "description" in body:
        description = body["description"]
        if not isinstance(description, str) or not _DESCRIPTION.fullmatch(description):
            raise _invalid("description must be at most 10 characters matching ^[a-zA-Z0-9 ]*$")
    if "simulation" in body and not isinstance(body["simulation"], bool):
        raise _invalid("simulation must be a boolean")
    # Unsettled in the real API (§11.6); refused here, as the adapter refuses it too.
    if body["sourceAccountId"] == body["destinationAccountId"]:
        raise _invalid("destinationAccountId must differ from sourceAccountId")
    return body


async def _control_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _control_error("the body must be a JSON object")
    return body


def _control_key(key: Any) -> str:
    if not isinstance(key, str) or not SANDBOX_KEY.fullmatch(key):
        raise _control_error("key must be a sandbox API key: sk_sandbox_<1-64 of A-Za-z0-9_->")
    return key


def create_sandbox_app(options: SandboxOptions | None = None, **overrides: Any) -> SandboxApp:
    """A fresh sandbox (no organisation yet) with ``options``, any field of
    ``SandboxOptions`` overridden by keyword: ``create_sandbox_app(settle_seconds=0.5)``.
    An unknown keyword raises ``TypeError``."""
    known = {option.name for option in fields(SandboxOptions)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown sandbox options: {', '.join(sorted(unknown))}")
    return SandboxApp(replace(options or SandboxOptions(), **overrides))


def run_sandbox(host: str = "127.0.0.1", port: int = 8800, **options: Any) -> None:
    """Serve ``create_sandbox_app(**options)`` with uvicorn on ``host:port`` until stopped.
    A request held by a fault does not keep shutdown waiting more than 2 s."""
    uvicorn.run(
        create_sandbox_app(**options),
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=2,
    )
