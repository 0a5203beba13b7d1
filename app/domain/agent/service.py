"""Agents: created with their wallet, listed and changed within their owner only."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Mode
from app.domain.agent import repository
from app.domain.agent.errors import AgentNotFound, OwnerMismatch
from app.domain.agent.schemas import AgentCreate, AgentCreated, AgentRead, AgentUpdate
from app.domain.apikey.schemas import Principal
from app.domain.audit import service as audit_service
from app.domain.event import service as event_service
from app.domain.freeze import repository as freeze_repository
from app.domain.wallet import service as wallet_service
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, scale_of, to_minor
from app.kit.pagination import Page


def _read(row: Row[Any]) -> AgentRead:
    return AgentRead(
        agent_id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        description=row.description,
        wallet_id=row.wallet_id,
        is_active=row.is_active,
        enforce_authorized_services=row.enforce_authorized_services,
        created_at=row.created_at,
    )


async def create(
    session: AsyncSession,
    principal: Principal,
    payload: AgentCreate,
    *,
    mode: Mode,
    now: datetime,
    tz: ZoneInfo,
) -> AgentCreated:
    """Create an agent and its wallet; a non-zero initial balance is a real funding entry."""
    owner_id = principal.owner_id
    if payload.owner_id is not None and payload.owner_id != owner_id:
        raise OwnerMismatch(
            f"owner_id {payload.owner_id!r} is not this API key's owner ({owner_id}): an agent "
            "belongs to the owner of the key that creates it; omit owner_id",
            param="owner_id",
        )
    currency = payload.currency
    scale_of(currency)
    limits = wallet_service.parse_limits(
        {field: getattr(payload, field) for field in wallet_service.LIMIT_FIELDS}, currency
    )
    initial = to_minor(payload.initial_balance, currency, param="initial_balance", allow_zero=True)
    agent_id = new_id("agent")
    await repository.insert_agent(
        session,
        {
            "id": agent_id,
            "owner_id": owner_id,
            "name": payload.name,
            "description": payload.description,
        },
    )
    # The owner's row locked FOR SHARE until commit: an owner-wide freeze running now
    # waits for this agent, then freezes it too; one committed before starts it frozen.
    owner_frozen = await freeze_repository.lock_owner_row(session, owner_id, exclusive=False)
    wallet = await wallet_service.open_agent_wallet(
        session,
        owner_id=owner_id,
        agent_id=agent_id,
        currency=currency,
        limits=limits,
        owner_frozen=owner_frozen,
    )
    if initial:
        await wallet_service.fund_from_owner_deposit(
            session,
            wallet,
            Money(initial, currency),
            mode=mode,
            reference=f"initial_balance:{wallet.id}",
        )
    agent = await get(session, principal, agent_id)
    wallet_read = await wallet_service.read_agent_wallet(session, wallet, now=now, tz=tz)
    events = [
        event_service.event(owner_id, "agent.created", {"agent": agent.model_dump(mode="json")}),
        event_service.event(
            owner_id, "wallet.created", {"wallet": wallet_read.model_dump(mode="json")}
        ),
    ]
    if owner_frozen:
        # Born under the owner's freeze: a subscriber sees it frozen before any unfreeze.
        events.append(
            event_service.event(
                owner_id,
                "agent.frozen",
                {
                    "agent_id": agent_id,
                    "scope": "owner",
                    "key_id": principal.key_id,
                    "holds_released": [],
                },
            )
        )
    if initial:
        events.append(
            event_service.event(
                owner_id,
                "wallet.funded",
                {
                    "wallet_id": wallet.id,
                    "agent_id": agent_id,
                    "amount": format_amount(initial, currency),
                    "currency": currency,
                    "source": "sandbox_initial_balance",
                },
            )
        )
    await event_service.emit(session, events)
    return AgentCreated(agent=agent, wallet=wallet_read)


async def get(session: AsyncSession, principal: Principal, agent_id: str) -> AgentRead:
    """The agent, if the caller may see it; otherwise 404, exactly as if it did not exist."""
    row = None
    if principal.sees_agent(agent_id):
        row = await repository.get_agent(session, principal.owner_id, agent_id)
    if row is None:
        raise AgentNotFound(f"Agent {agent_id} not found")
    return _read(row)


async def list_agents(session: AsyncSession, principal: Principal, page: Page) -> list[AgentRead]:
    rows = await repository.list_agents(
        session, principal.owner_id, limit=page.limit, offset=page.offset
    )
    return [_read(row) for row in rows]


async def update(
    session: AsyncSession, principal: Principal, agent_id: str, payload: AgentUpdate
) -> AgentRead:
    changes = payload.model_dump(include=payload.model_fields_set)
    for field in ("name", "is_active", "enforce_authorized_services"):
        if field in changes and changes[field] is None:
            changes.pop(field)  # these cannot be cleared
    await get(session, principal, agent_id)
    if not changes:
        return await get(session, principal, agent_id)
    await repository.update_agent(session, principal.owner_id, agent_id, changes)
    agent = await get(session, principal, agent_id)
    if "enforce_authorized_services" in changes:
        # A risk control switched on or off: attributed to the key in the audit trail.
        await audit_service.append(
            session,
            [
                audit_service.record(
                    owner_id=principal.owner_id,
                    event="authorized_services_enforced"
                    if changes["enforce_authorized_services"]
                    else "authorized_services_relaxed",
                    subject_type="agent",
                    subject_id=agent_id,
                    key_id=principal.key_id,
                    request_id=None,
                    agent_id=agent_id,
                )
            ],
        )
    await event_service.emit(
        session,
        [
            event_service.event(
                principal.owner_id,
                "agent.updated",
                {"agent": agent.model_dump(mode="json"), "changed": sorted(changes)},
            )
        ],
    )
    return agent
