"""``Idempotency-Key`` (or ``X-Idempotency-Key``) on POSTs that create or move something.

A replay happens inside the route, after its dependencies: the route's own access rule
(key kind and scope) has already passed for this caller. The stored record also names who
made the first request, and a caller that could not have made it is refused
(``idempotency_key_forbidden``) before anything is read from the stored response.
"""

from datetime import timedelta
from typing import Annotated, Any, Final

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import (
    ClaimsIdempotencyKey,
    PrincipalDep,
    SessionDep,
    access_of,
    idempotency_header,
)
from app.config import Settings
from app.domain.apikey.schemas import Principal
from app.domain.idempotency import service as idempotency_service
from app.domain.idempotency.service import Authority, KeyClaim, StoredResponse
from app.kit.time import utc_now

REPLAYED_HEADER = "Idempotent-Replayed"


class Idempotency:
    """Replays a stored response, or stores the response this request produces."""

    def __init__(
        self, request: Request, session: AsyncSession, principal: Principal, key: str | None
    ) -> None:
        self.request = request
        self.session = session
        self.principal = principal
        self.key = key
        self._body = b""

    def _where(self) -> dict[str, str]:
        assert self.key is not None
        return {
            "owner_id": self.principal.owner_id,
            "method": self.request.method,
            "path": self.request.url.path,
            "key": self.key,
        }

    def _authority(self) -> Authority:
        """The caller's authority over this route: its key, its agent restriction, and
        the scopes of the route's rule it holds (all its scopes if the route declares no
        rule, so that a replay then needs every one of them)."""
        held = self.principal.scopes
        route = self.request.scope.get("route")
        access = access_of(route.dependant) if isinstance(route, APIRoute) else None
        scopes = held if access is None else held & {scope.value for scope in access.scopes}
        return Authority(self.principal.key_id, self.principal.agent_id, frozenset(scopes))

    def _claimed(self) -> Row[Any] | None:
        """The claim the API key's statement made for this very key, if it made one."""
        made: tuple[KeyClaim, Row[Any]] | None = getattr(self.request.state, "key_claim", None)
        if made is None:
            return None
        claim, row = made
        if (claim.method, claim.path, claim.key) != (
            self.request.method,
            self.request.url.path,
            self.key,
        ):
            return None
        return row

    async def replay(self) -> Response | None:
        if self.key is None:
            return None
        self._body = await self.request.body()
        stored = await idempotency_service.begin(
            self.session,
            **self._where(),
            body=self._body,
            authority=self._authority(),
            claim=self._claimed(),
        )
        if stored is None:
            return None
        return Response(
            content=stored.body,
            status_code=stored.status_code,
            media_type=stored.content_type,
            headers={REPLAYED_HEADER: "true"},
        )

    async def respond(
        self,
        content: BaseModel | dict[str, object],
        status_code: int = 200,
        media_type: str = "application/json",
    ) -> JSONResponse:
        body = content.model_dump(mode="json") if isinstance(content, BaseModel) else content
        response = JSONResponse(body, status_code=status_code, media_type=media_type)
        if self.key is not None:
            settings: Settings = self.request.app.state.settings
            await idempotency_service.complete(
                self.session,
                **self._where(),
                body=self._body,
                authority=self._authority(),
                response=StoredResponse(status_code, media_type, bytes(response.body)),
                now=utc_now(),
                retention=timedelta(days=settings.idempotency_retention_days),
            )
        return response


async def _documented_key_headers(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes the request safe to retry: the same key and body return the "
            "first request's transfer, never a second one.",
        ),
    ] = None,
    x_idempotency_key: Annotated[
        str | None, Header(alias="X-Idempotency-Key", description="Same as Idempotency-Key.")
    ] = None,
) -> None:
    # Parameters for the OpenAPI document only; ``idempotency_key_of`` reads the headers.
    del idempotency_key, x_idempotency_key


#: Documents the Idempotency-Key headers on a route that keeps its own record of the key
#: (``idempotency_key_of``): ``dependencies=[KEY_HEADERS]``.
KEY_HEADERS: Final[Any] = Depends(_documented_key_headers)


def idempotency_key_of(request: Request) -> str | None:
    """The request's ``Idempotency-Key`` for routes that keep their own record of it (the
    Sequence rail's transfers), checked as every route checks it (``idempotency_header``,
    then 1 to 255 printable ASCII: 400 ``invalid_idempotency_key``)."""
    key = idempotency_header(request)
    if key is not None:
        idempotency_service.check_key(key)
    return key


class _GetIdempotency(ClaimsIdempotencyKey):
    """The request's ``Idempotency`` (its key claimed with the API key's lookup)."""

    async def __call__(
        self,
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Makes the request safe to retry: the same key and body replay "
                "the first response (kept 7 days).",
            ),
        ] = None,
        x_idempotency_key: Annotated[
            str | None, Header(alias="X-Idempotency-Key", description="Same as Idempotency-Key.")
        ] = None,
    ) -> Idempotency:
        # The headers are parameters for the OpenAPI document; one reading checks them.
        del idempotency_key, x_idempotency_key
        key = idempotency_header(request)
        if getattr(request.state, "dry_run", False):
            # A dry run writes nothing and replays nothing: its key is not used.
            key = None
        return Idempotency(request, session, principal, key)


get_idempotency = _GetIdempotency()

IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
