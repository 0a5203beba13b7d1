"""Risk & Authorization (seed 003): scores, profiles, authorized services and flags."""

from typing import Annotated

from fastapi import APIRouter, Request

from app.api.deps import AccessRoute, SessionDep, scoped
from app.api.outcomes import owner_now
from app.api.problems import AUTH_ERRORS, NOT_FOUND
from app.api.request_context import request_id_var
from app.domain.apikey.schemas import Principal, Scope
from app.domain.risk import service as risk_service
from app.domain.risk.schemas import (
    AuthorizedServices,
    FlagCreate,
    FlagState,
    RiskProfile,
    RiskScore,
    ServiceAuthorize,
)
from app.kit.schemas import IdText

router = APIRouter(
    prefix="/risk/agents", tags=["risk"], responses=AUTH_ERRORS, route_class=AccessRoute
)
#: Reading an agent's risk: owner keys, and agent keys for their own agent.
Reader = Annotated[Principal, scoped(Scope.agents_read, Scope.wallet_read, agent_keys=True)]
#: Flagging stops an agent's money: an agent key may stop its own agent, never restart it.
Flagger = Annotated[Principal, scoped(Scope.agents_write, Scope.payments_write, agent_keys=True)]
#: Unflagging and changing authorized services: the owner's decisions only.
Owner = Annotated[Principal, scoped(Scope.agents_write)]


@router.get("/{agent_id}/score", response_model=RiskScore, responses=NOT_FOUND)
async def get_risk_score(
    agent_id: str, principal: Reader, session: SessionDep, request: Request
) -> RiskScore:
    """The agent's risk now, from its stored history (velocity in the sliding hour and day,
    refused attempts, wallet age, flag): each factor with its points and reason. Reading
    changes nothing."""
    return await risk_service.score(
        session, principal, agent_id, owner_now(request, principal), request.app.state.risk_rules
    )


@router.get("/{agent_id}/profile", response_model=RiskProfile, responses=NOT_FOUND)
async def get_risk_profile(
    agent_id: str, principal: Reader, session: SessionDep, request: Request
) -> RiskProfile:
    """Current score and level, totals of the agent's stored transactions, flag and
    authorized services."""
    return await risk_service.profile(
        session, principal, agent_id, owner_now(request, principal), request.app.state.risk_rules
    )


@router.post("/{agent_id}/authorize", response_model=AuthorizedServices, responses=NOT_FOUND)
async def authorize_service(
    agent_id: str, payload: ServiceAuthorize, principal: Owner, session: SessionDep
) -> AuthorizedServices:
    """Authorize one of the owner's merchants or wallets for the agent: it lowers the
    new-recipient factor and, with the agent's `enforce_authorized_services`, is one of
    the only payees allowed. Idempotent."""
    return await risk_service.authorize_service(
        session, principal, agent_id, payload.service_id, request_id_var.get()
    )


@router.delete(
    "/{agent_id}/authorize/{service_id}", response_model=AuthorizedServices, responses=NOT_FOUND
)
async def revoke_service(
    agent_id: str, service_id: IdText, principal: Owner, session: SessionDep
) -> AuthorizedServices:
    """Revoke a service's authorization (404 if it was not authorized)."""
    return await risk_service.revoke_service(
        session, principal, agent_id, service_id, request_id_var.get()
    )


@router.post("/{agent_id}/flag", response_model=FlagState, responses=NOT_FOUND)
async def flag_agent(
    agent_id: str, payload: FlagCreate, principal: Flagger, session: SessionDep, request: Request
) -> FlagState:
    """Flag the agent for review: every money movement of it is refused with 403
    `agent_flagged` (recorded) until it is unflagged. An agent key may flag its own agent."""
    return await risk_service.set_flag(
        session,
        principal,
        agent_id,
        payload.reason,
        owner_now(request, principal),
        request_id_var.get(),
    )


@router.delete("/{agent_id}/flag", response_model=FlagState, responses=NOT_FOUND)
async def unflag_agent(
    agent_id: str, principal: Owner, session: SessionDep, request: Request
) -> FlagState:
    """Clear the flag: the agent may move money again. Owner keys only."""
    return await risk_service.set_flag(
        session, principal, agent_id, None, owner_now(request, principal), request_id_var.get()
    )
