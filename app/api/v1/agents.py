from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from app.api.deps import AccessRoute, PageDep, SessionDep, SettingsDep, scoped
from app.api.idempotency import IdempotencyDep
from app.api.outcomes import call_context
from app.api.problems import AUTH_ERRORS, NOT_FOUND, Problem
from app.domain.agent import service as agent_service
from app.domain.agent.schemas import AgentCreate, AgentCreated, AgentRead, AgentUpdate
from app.domain.apikey.schemas import Principal, Scope
from app.domain.hold import service as hold_service
from app.domain.hold.schemas import HoldRead
from app.domain.payment import service as payment_service
from app.domain.payment.schemas import TransactionRead
from app.domain.wallet import service as wallet_service
from app.domain.wallet.schemas import WalletLimitsUpdate, WalletRead
from app.kit.schemas import MAX_ID_LENGTH, STORABLE_TEXT_PATTERN

router = APIRouter(
    prefix="/agents", tags=["agents"], responses=AUTH_ERRORS, route_class=AccessRoute
)
Reader = Annotated[Principal, scoped(Scope.agents_read)]
Writer = Annotated[Principal, scoped(Scope.agents_write)]
#: Agent keys read their own agent's wallet, transactions and holds; the rest is the owner's.
WalletReader = Annotated[Principal, scoped(Scope.wallet_read, agent_keys=True)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentCreated,
    responses={400: {"model": Problem, "description": "initial_balance in live mode"}},
)
async def create_agent(
    payload: AgentCreate,
    principal: Writer,
    session: SessionDep,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Create an agent with its wallet. `owner_id` is the API key's owner; a different
    `owner_id` in the body is refused (403). In the sandbox, `initial_balance` is funded
    from the owner's deposit account by a real ledger entry."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    context = call_context(request, principal)
    created = await agent_service.create(
        session, principal, payload, mode=settings.mode, now=context.now, tz=context.tz
    )
    return await idempotency.respond(created, status_code=status.HTTP_201_CREATED)


@router.get("", response_model=list[AgentRead])
async def list_agents(principal: Reader, session: SessionDep, page: PageDep) -> list[AgentRead]:
    """The owner's agents, newest first."""
    return await agent_service.list_agents(session, principal, page)


@router.get("/{agent_id}", response_model=AgentRead, responses=NOT_FOUND)
async def get_agent(agent_id: str, principal: Reader, session: SessionDep) -> AgentRead:
    return await agent_service.get(session, principal, agent_id)


@router.patch("/{agent_id}", response_model=AgentRead, responses=NOT_FOUND)
async def update_agent(
    agent_id: str, payload: AgentUpdate, principal: Writer, session: SessionDep
) -> AgentRead:
    """Change `name`, `description`, `is_active` or `enforce_authorized_services`; fields
    left out are unchanged."""
    return await agent_service.update(session, principal, agent_id, payload)


@router.get("/{agent_id}/wallet", response_model=WalletRead, responses=NOT_FOUND)
async def get_agent_wallet(
    agent_id: str, principal: WalletReader, session: SessionDep, request: Request
) -> WalletRead:
    """The agent's wallet, with balances read from the ledger and `limits`: each
    configured limit's `limit`, `used`, `remaining` and `resets_at`, from the counters the
    payment pipeline locks (a payment of exactly `remaining` passes that limit; a cent more
    is refused)."""
    await agent_service.get(session, principal, agent_id)
    wallet = await wallet_service.get_agent_wallet(session, principal.owner_id, agent_id)
    context = call_context(request, principal)
    return await wallet_service.read_agent_wallet(session, wallet, now=context.now, tz=context.tz)


@router.get("/{agent_id}/transactions", response_model=list[TransactionRead], responses=NOT_FOUND)
async def list_agent_transactions(
    agent_id: str,
    principal: WalletReader,
    session: SessionDep,
    page: PageDep,
    starting_after: Annotated[
        str | None,
        Query(
            max_length=MAX_ID_LENGTH,
            pattern=STORABLE_TEXT_PATTERN,
            description="Cursor: a tx_id; returns the transactions after it (older).",
        ),
    ] = None,
) -> list[TransactionRead]:
    """Payments the agent made or received (completed and failed), newest first."""
    return await payment_service.list_for_agent(session, principal, agent_id, page, starting_after)


@router.get("/{agent_id}/holds", response_model=list[HoldRead], responses=NOT_FOUND)
async def list_agent_holds(
    agent_id: str, principal: WalletReader, session: SessionDep, page: PageDep
) -> list[HoldRead]:
    """The agent's holds, newest first."""
    await agent_service.get(session, principal, agent_id)
    return await hold_service.list_for_agent(session, principal.owner_id, agent_id, page)


@router.patch("/{agent_id}/wallet/limits", response_model=WalletRead, responses=NOT_FOUND)
async def update_wallet_limits(
    agent_id: str,
    payload: WalletLimitsUpdate,
    principal: Writer,
    session: SessionDep,
    request: Request,
) -> WalletRead:
    """Set spending limits (decimal strings in the wallet's currency); `null` removes one."""
    await agent_service.get(session, principal, agent_id)
    context = call_context(request, principal)
    return await wallet_service.update_limits(
        session, principal.owner_id, agent_id, payload, now=context.now, tz=context.tz
    )
