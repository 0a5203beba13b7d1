"""Request-scoped dependencies."""

import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import Depends, Header, Query, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.routing import EdgeRoute
from app.config import Settings
from app.domain.apikey import service as apikey_service
from app.domain.apikey.errors import InvalidApiKey
from app.domain.apikey.schemas import KeyKind, Principal, Scope
from app.domain.idempotency.errors import ConflictingIdempotencyKeys, InvalidIdempotencyKey
from app.domain.idempotency.service import KeyClaim
from app.errors import AppError, Forbidden
from app.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, Page
from app.kit.rate_limit import RateLimiter, client_bucket, failure_budget


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed *before* the response is sent (rolled back
    instead for a dry run: ``dry_run_requested``).

    Declared with ``scope="function"`` below: FastAPI then runs the code after ``yield``
    when the route returns and before it sends the response, so a failed commit becomes
    an error response instead of a 200 for money that never moved.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        if getattr(request.state, "dry_run", False):
            # A dry run ran the real call; it ends here, having written nothing.
            await session.rollback()
            return
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer sk_test_…`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="`X-API-Key: sk_test_…`"
)


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    title = "Too many requests"


class AuthenticationThrottled(RateLimited):
    """Too many failed authentications from this client address or for this key id."""

    code = "authentication_throttled"
    title = "Too many failed authentications"


# The key id part of a key, as ``app.domain.apikey.service`` writes keys
# (``sk_test_<16 hex>_<secret>``); only this prefix is read, whatever follows it.
_CLAIMED_KEY_ID = re.compile(r"sk_(?:test|live)_([0-9a-f]{16})_", re.ASCII)


def _claimed_key_id(presented: str | None) -> str | None:
    """``key_<16 hex>`` when the presented key's key id part is well-formed, else None."""
    match = _CLAIMED_KEY_ID.match(presented or "")
    return None if match is None else f"key_{match.group(1)}"


class ConflictingCredentials(AppError):
    status_code = 400
    code = "conflicting_credentials"
    title = "Bad request"


class DryRunNotSupported(AppError):
    status_code = 400
    code = "dry_run_not_supported"
    title = "Bad request"


class InvalidDryRun(AppError):
    status_code = 400
    code = "invalid_dry_run"
    title = "Bad request"


#: The header that asks for a dry run: the whole pipeline, then a rollback.
DRY_RUN_HEADER: Final = "Dry-Run"


def dry_run_requested(request: Request, *, supported: bool) -> bool:
    """Whether the request asks for a dry run: ``Dry-Run: true`` (``false`` or no header:
    a real call). Raises 400 ``invalid_dry_run`` for any other value (a dry run taken for a
    real call would move money), and 400 ``dry_run_not_supported`` on a route that offers
    none (``supported``: the route has ``SupportsDryRun``)."""
    value = request.headers.get(DRY_RUN_HEADER)
    if value is None or value == "false":
        return False
    if value != "true":
        raise InvalidDryRun('Dry-Run must be "true" or "false"', param=DRY_RUN_HEADER)
    if not supported:
        raise DryRunNotSupported(
            "this route has no dry run; it is offered on payments, holds, captures, "
            "payment-request pays, refunds, Sequence transfers and fundings",
            param=DRY_RUN_HEADER,
        )
    return True


class SupportsDryRun:
    """A dependency that marks a route as offering ``Dry-Run: true`` (and documents the
    header): ``_authenticate`` then sets ``request.state.dry_run``, the session rolls back
    instead of committing, the idempotency key is neither claimed nor stored, and
    ``app.api.outcomes.respond`` answers the dry run's report."""

    async def __call__(
        self,
        dry_run: Annotated[
            str | None,
            Header(
                alias=DRY_RUN_HEADER,
                description="`true`: run the whole pipeline (auth, state, risk, limits, "
                "fee, funds) and answer 200 with the decision, writing nothing.",
            ),
        ] = None,
    ) -> None:
        # The header is a parameter for the OpenAPI document; ``_authenticate`` reads it.
        del dry_run


#: Declares that a route offers a dry run (``dependencies=[DRY_RUN]``).
DRY_RUN: Final[Any] = Depends(SupportsDryRun())


def has_dependency(dependant: Dependant, kind: type) -> bool:
    """Whether a route's ``dependant`` has a dependency that is a ``kind`` (a marker such as
    ``SupportsDryRun`` or ``ClaimsIdempotencyKey``), at any depth."""
    pending = [dependant]
    while pending:
        current = pending.pop()
        if isinstance(current.call, kind):
            return True
        pending.extend(current.dependencies)
    return False


class ClaimsIdempotencyKey:
    """A dependency that claims the request's ``Idempotency-Key``: on its routes, the
    statement that reads the API key makes the claim too (``request.state.key_claim``)."""


def idempotency_header(request: Request) -> str | None:
    """The request's ``Idempotency-Key`` (or ``X-Idempotency-Key``), or None. Raises 400
    ``invalid_idempotency_key`` for an empty one (a key that was meant and lost: never a
    request without one) and 400 ``conflicting_idempotency_keys`` when the two differ
    (which one protects the request? Guessing could charge twice)."""
    key = request.headers.get("idempotency-key")
    alias = request.headers.get("x-idempotency-key")
    if key == "" or alias == "":
        raise InvalidIdempotencyKey(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            param="Idempotency-Key",
        )
    if key is not None and alias is not None and key != alias:
        raise ConflictingIdempotencyKeys(
            "Idempotency-Key and X-Idempotency-Key differ; send one of them",
            param="Idempotency-Key",
        )
    return key or alias


def presented_idempotency_key(request: Request) -> str | None:
    """``idempotency_header``, or None where it would refuse (the route's dependency
    refuses those requests after authentication)."""
    try:
        return idempotency_header(request)
    except (InvalidIdempotencyKey, ConflictingIdempotencyKeys):
        return None


async def _authenticate(
    request: Request, session: AsyncSession, presented: str | None
) -> Principal:
    """The principal of ``presented``; on a route that claims the request's idempotency
    key, the claim made by the same statement is left in ``request.state.key_claim``
    (``(KeyClaim, row)``) for that dependency."""
    settings: Settings = request.app.state.settings
    claim = None
    if getattr(request.state, "dry_run", False):
        pass  # a dry run claims no idempotency key (``AccessRoute.check_request``)
    elif getattr(request.scope.get("route"), "claims_idempotency_key", False):
        key = presented_idempotency_key(request)
        if key is not None:
            claim = KeyClaim(request.method, request.url.path, key)
    found = await apikey_service.authenticate_claiming(
        session,
        presented,
        settings.mode,
        cache_seconds=settings.auth_cache_seconds,
        claim=claim,
    )
    if claim is not None and found.claim is not None:
        request.state.key_claim = (claim, found.claim)
    return found.principal


async def get_principal(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key_header)],
) -> Principal:
    """Authenticate the API key, then count the request against the key's budget.

    Failed authentications (every 401) are counted per client address and per claimed key
    id (``RateLimiter.failed``); past ``PURSER_AUTH_FAILURES_PER_ADDRESS`` /
    ``PURSER_AUTH_FAILURES_PER_KEY_ID`` a minute, attempts are refused with 429
    ``authentication_throttled`` and ``Retry-After`` before the database is asked about the
    key (the rules: ``RateLimiter.refusal``). A malformed key never costs a query.
    """
    settings: Settings = request.app.state.settings
    if api_key is not None and bearer is not None and api_key != bearer.credentials:
        # Two keys in one request: serving either would guess whose request this is.
        raise ConflictingCredentials(
            "X-API-Key and Authorization name different keys; send one of them",
            param="Authorization",
        )
    if bearer is None and request.headers.get("authorization") is not None:
        # A header that names no key the way Purser reads keys (``Basic …``, empty) would
        # otherwise be dropped silently, and another credential serve in its place.
        raise InvalidApiKey(unreadable=True)
    presented = api_key or (bearer.credentials if bearer else None)
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return await _authenticate(request, session, presented)
    budget = failure_budget(settings.auth_failures_per_address, settings.auth_failures_per_key_id)
    address = client_bucket(request.client.host if request.client else None)
    claimed = _claimed_key_id(presented)
    wait = await limiter.refusal(address, claimed, budget)
    if wait is not None:
        throttled = AuthenticationThrottled(
            f"Too many failed authentications; retry after {wait} seconds"
        )
        throttled.headers["Retry-After"] = str(wait)
        raise throttled
    try:
        principal = await _authenticate(request, session, presented)
    except InvalidApiKey:
        await limiter.failed(address, claimed, budget)
        raise
    await limiter.succeeded(principal.key_id)
    decision = await limiter.hit(principal.key_id, principal.tier)
    request.state.rate_limit_headers = decision.headers()
    if not decision.allowed:
        error = RateLimited(
            f"Rate limit of {decision.limit} requests exceeded for this API key; "
            "retry after the reset time"
        )
        error.headers["Retry-After"] = str(max(decision.reset - int(time.time()), 1))
        raise error
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class AgentKeyNotAllowed(Forbidden):
    """An agent key called a route that only owner keys may call."""

    code = "agent_key_not_allowed"


#: Key kinds in the order the API documents them.
_KIND_ORDER: Final = (KeyKind.owner, KeyKind.agent)
_KIND_TEXT: Final = {KeyKind.owner: "owner keys", KeyKind.agent: "agent keys (their agent only)"}


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call a route: keys of one of ``kinds`` (none: the route needs no key) that
    hold one of ``scopes`` (none: any scope)."""

    kinds: frozenset[KeyKind]
    scopes: tuple[Scope, ...] = ()

    @property
    def key_kinds(self) -> list[str]:
        """``kinds`` in documentation order, as the ``x-key-kinds`` extension lists them."""
        return [kind.value for kind in _KIND_ORDER if kind in self.kinds]

    def describe(self) -> str:
        """One line for the operation's OpenAPI description, e.g. ``Keys: owner keys only;
        scope `agents:write`.``"""
        if not self.kinds:
            return "**Keys:** none needed."
        kinds = [_KIND_TEXT[kind] for kind in _KIND_ORDER if kind in self.kinds]
        who = kinds[0] + " only" if len(kinds) == 1 else " and ".join(kinds)
        if not self.scopes:
            return f"**Keys:** {who}; any scope."
        scopes = " or ".join(f"`{scope.value}`" for scope in self.scopes)
        return f"**Keys:** {who}; scope {scopes}."


class AccessRule:
    """A dependency that carries a route's ``Access``; ``access_of`` finds it on a route."""

    access: Access


class Authorize(AccessRule):
    """The caller's principal, if its key is of an allowed kind (else 403
    ``agent_key_not_allowed``) and holds one of the scopes (else 403 ``insufficient_scope``).

    The kind is checked first: whatever scopes an agent key holds (older keys may hold
    more than ``AGENT_SCOPES``), it never reaches a route that only owner keys may call.
    """

    def __init__(self, access: Access) -> None:
        self.access = access

    async def __call__(self, principal: PrincipalDep) -> Principal:
        if principal.kind not in self.access.kinds:
            raise AgentKeyNotAllowed(
                f"Only owner keys may call this route; this key is restricted to agent "
                f"{principal.agent_id}"
            )
        scopes = self.access.scopes
        if scopes and not principal.scopes & {*scopes}:
            apikey_service.require_scope(principal, scopes[0])
        return principal


class _NoKey(AccessRule):
    access = Access(kinds=frozenset())

    async def __call__(self) -> None:
        return None


#: Declares that a route needs no API key (``dependencies=[PUBLIC]``).
PUBLIC: Final[Any] = Depends(_NoKey())


def _kinds(agent_keys: bool) -> frozenset[KeyKind]:
    return frozenset(_KIND_ORDER if agent_keys else (KeyKind.owner,))


def scoped(scope: Scope, *alternatives: Scope, agent_keys: bool = False) -> Any:
    """A dependency: the caller's principal, if its key holds ``scope`` or one of the
    ``alternatives`` and is an owner key, or, with ``agent_keys``, an agent key too (else
    403). Agent keys are refused unless the route says otherwise: what an agent key may do
    is listed route by route, never inherited from its scopes."""
    return Depends(Authorize(Access(_kinds(agent_keys), (scope, *alternatives))))


def authenticated(*, agent_keys: bool = False) -> Any:
    """Like ``scoped``, for a route any scope may call."""
    return Depends(Authorize(Access(_kinds(agent_keys))))


def rules_of(dependant: Dependant) -> list[Access]:
    """Every access rule among the dependencies of a route's ``dependant`` (exactly one
    when the route declares who may call it)."""
    found: list[Access] = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        if isinstance(current.call, AccessRule):
            found.append(current.call.access)
        pending.extend(current.dependencies)
    return found


def access_of(dependant: Dependant) -> Access | None:
    """The access rule a route's ``dependant`` declares, or ``None`` if none or several."""
    rules = set(rules_of(dependant))
    return rules.pop() if len(rules) == 1 else None


class AccessRoute(EdgeRoute):
    """An ``EdgeRoute`` whose OpenAPI operation says which keys may call it, from the rule
    its dependencies declare: the ``x-key-kinds`` extension (``["owner"]``, ``["owner",
    "agent"]``, or ``[]`` for no key) and a last line of its description."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.claims_idempotency_key = has_dependency(self.dependant, ClaimsIdempotencyKey)
        self.supports_dry_run = has_dependency(self.dependant, SupportsDryRun)
        access = access_of(self.dependant)
        if access is None:
            return
        self.openapi_extra = {**(self.openapi_extra or {}), "x-key-kinds": access.key_kinds}
        line = access.describe()
        # Including a router may build the route again from this one's description.
        if line not in self.description:
            self.description = f"{self.description}\n\n{line}".strip()

    def check_request(self, request: Request) -> None:
        """``Dry-Run``, on every route: ``true`` marks the request a dry run where the
        route offers one (``dry_run_requested``; 400 otherwise)."""
        if dry_run_requested(request, supported=self.supports_dry_run):
            request.state.dry_run = True


#: Reads of payments, holds and refunds: owner keys (payments:read), and agent keys for
#: their own agent (wallet:read; the services check which agent).
PaymentReaderDep = Annotated[
    Principal, scoped(Scope.payments_read, Scope.wallet_read, agent_keys=True)
]


def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Max items to return")] = (
        DEFAULT_LIMIT
    ),
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(get_page)]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_of)]
