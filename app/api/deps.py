"""Request-scoped dependencies."""

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.domain.apikey import service as apikey_service
from app.domain.apikey.schemas import Principal, Scope
from app.errors import AppError
from app.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, Page
from app.kit.rate_limit import RateLimiter


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed *before* the response is sent.

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


async def get_principal(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key_header)],
) -> Principal:
    """Authenticate the API key, then count the request against the key's budget."""
    settings: Settings = request.app.state.settings
    presented = api_key or (bearer.credentials if bearer else None)
    principal = await apikey_service.authenticate(session, presented, settings.mode)
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
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


def scoped(scope: Scope, *alternatives: Scope) -> Any:
    """A dependency: the caller's principal, if its key holds ``scope`` or one of the
    ``alternatives`` (else 403)."""

    async def dependency(principal: PrincipalDep) -> Principal:
        if not principal.scopes & {*alternatives}:
            apikey_service.require_scope(principal, scope)
        return principal

    return Depends(dependency)


#: Reads of payments, holds and refunds: owner keys (payments:read), and agent keys for
#: their own agent (wallet:read; the services check which agent).
PaymentReaderDep = Annotated[Principal, scoped(Scope.payments_read, Scope.wallet_read)]


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
