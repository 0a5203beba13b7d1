"""The freeze ladder: one agent, or every agent of the owner (``app.domain.freeze``)."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import AccessRoute, SessionDep, scoped
from app.api.idempotency import IdempotencyDep
from app.api.outcomes import call_context
from app.api.problems import AUTH_ERRORS, NOT_FOUND
from app.domain.apikey.schemas import Principal, Scope
from app.domain.freeze import service as freeze_service
from app.domain.freeze.schemas import FreezeCreate, FreezeRead

router = APIRouter(tags=["freeze"], responses=AUTH_ERRORS, route_class=AccessRoute)
#: A brake any key of the agent may pull: an agent key freezes its own agent.
Freezer = Annotated[Principal, scoped(Scope.agents_write, Scope.payments_write, agent_keys=True)]
#: Releasing a brake, or pulling the owner's: the owner's decision, never an agent's.
OwnerOnly = Annotated[Principal, scoped(Scope.agents_write)]


@router.post("/agents/{agent_id}/freeze", response_model=FreezeRead, responses=NOT_FOUND)
async def freeze_agent(
    agent_id: str,
    principal: Freezer,
    session: SessionDep,
    idempotency: IdempotencyDep,
    request: Request,
    payload: FreezeCreate | None = None,
) -> Response:
    """Freeze an agent: its wallet moves no money until an owner key unfreezes it.
    `release_holds: true` also voids its pending holds. Effective for the next request in
    every process: a payment, hold, capture, payment-request pay or funding that had not
    taken the wallet's lock when the freeze committed is refused with 403 `wallet_frozen`
    and recorded as a failed attempt. Event `agent.frozen`, audit `agent_frozen` naming the
    key; freezing a frozen agent changes nothing (`changed: false`)."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    result = await freeze_service.set_agent(
        session,
        agent_id,
        call_context(request, principal),
        frozen=True,
        release_holds=(payload or FreezeCreate()).release_holds,
    )
    return await idempotency.respond(result)


@router.post("/agents/{agent_id}/unfreeze", response_model=FreezeRead, responses=NOT_FOUND)
async def unfreeze_agent(
    agent_id: str,
    principal: OwnerOnly,
    session: SessionDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Unfreeze an agent frozen on its own (an owner-wide freeze stays until
    `POST /unfreeze`). Owner keys only: an agent key may freeze its agent, never unfreeze
    it. Event `agent.unfrozen`."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    result = await freeze_service.set_agent(
        session, agent_id, call_context(request, principal), frozen=False
    )
    return await idempotency.respond(result)


@router.post("/freeze", response_model=FreezeRead)
async def freeze_owner(
    principal: OwnerOnly,
    session: SessionDep,
    idempotency: IdempotencyDep,
    request: Request,
    payload: FreezeCreate | None = None,
) -> Response:
    """Freeze every agent of the key's owner, and every agent created until
    `POST /unfreeze`, as `POST /agents/{agent_id}/freeze` freezes one (403 `wallet_frozen`
    from the next request on). `release_holds: true` voids every pending hold of the
    owner's agents. One `agent.frozen` event per agent whose state changed; audit
    `owner_frozen`."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    result = await freeze_service.set_owner(
        session,
        call_context(request, principal),
        frozen=True,
        release_holds=(payload or FreezeCreate()).release_holds,
    )
    return await idempotency.respond(result)


@router.post("/unfreeze", response_model=FreezeRead)
async def unfreeze_owner(
    principal: OwnerOnly, session: SessionDep, idempotency: IdempotencyDep, request: Request
) -> Response:
    """Lift the owner-wide freeze. Agents frozen on their own stay frozen. One
    `agent.unfrozen` event per agent whose state changed; audit `owner_unfrozen`."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    result = await freeze_service.set_owner(session, call_context(request, principal), frozen=False)
    return await idempotency.respond(result)
