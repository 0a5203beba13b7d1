from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.test_clock import repository as test_clock_repository
from app.models.agent import Agent
from app.models.base import current_mode
from app.models.payment_flow import Hold
from app.models.wallet import Wallet

_agents = cast(Table, Agent.__table__)
_holds = cast(Table, Hold.__table__)
_wallets = cast(Table, Wallet.__table__)


async def insert_hold(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    row: Row[Any] = (await session.execute(insert(_holds).values(**values).returning(_holds))).one()
    return row


async def get_hold(session: AsyncSession, owner_id: str, hold_id: str) -> Row[Any] | None:
    statement = select(_holds).where(
        _holds.c.owner_id == owner_id, _holds.c.id == hold_id, _holds.c.mode == current_mode()
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def get_hold_with_payee(
    session: AsyncSession, owner_id: str, hold_id: str
) -> Row[Any] | None:
    """``get_hold`` plus the merchant's wallet, in one round trip: ``payee_wallet_id`` and
    ``payee_account_id`` (its available account); whether the agent is flagged
    (``agent_is_flagged``); and the paying wallet's row locked as a payment locks it, with
    its freeze flags (``payer_wallet_id``, ``payer_is_active``, ``payer_owner_frozen``:
    the last committed, and no freeze commits until this capture does). A merchant's
    wallet is opened with it and never changes, so reading it before the hold is claimed
    reads what the capture pays."""
    payer = _wallets.alias("payer")
    statement = (
        select(
            _holds,
            _wallets.c.id.label("payee_wallet_id"),
            _wallets.c.available_account_id.label("payee_account_id"),
            select(_agents.c.is_flagged)
            .where(_agents.c.id == _holds.c.agent_id)
            .scalar_subquery()
            .label("agent_is_flagged"),
            payer.c.id.label("payer_wallet_id"),
            payer.c.is_active.label("payer_is_active"),
            payer.c.owner_frozen.label("payer_owner_frozen"),
        )
        .select_from(_holds)
        .join(payer, payer.c.id == _holds.c.wallet_id)
        .outerjoin(
            _wallets,
            (_wallets.c.owner_id == _holds.c.owner_id)
            & (_wallets.c.merchant_id == _holds.c.merchant_id)
            & (_wallets.c.mode == current_mode()),
        )
        .where(
            _holds.c.owner_id == owner_id, _holds.c.id == hold_id, _holds.c.mode == current_mode()
        )
        .with_for_update(key_share=True, of=payer)
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def resolve_pending(
    session: AsyncSession,
    hold_id: str,
    *,
    owner_id: str | None,
    status: str,
    now: datetime,
    not_expired: bool,
    values: dict[str, Any] | None = None,
) -> Row[Any] | None:
    """Move a hold out of ``pending`` exactly once (a conditional UPDATE)."""
    conditions = [
        _holds.c.id == hold_id,
        _holds.c.status == "pending",
        _holds.c.mode == current_mode(),
    ]
    if owner_id is not None:
        conditions.append(_holds.c.owner_id == owner_id)
    if not_expired:
        conditions.append(_holds.c.expires_at > now)
    statement = (
        update(_holds)
        .where(*conditions)
        .values(status=status, resolved_at=now, **(values or {}))
        .returning(_holds)
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def due_for_expiry(
    session: AsyncSession, now: datetime, limit: int, *, owner_id: str | None = None
) -> Sequence[Row[Any]]:
    """Pending holds past their expiry at their owner's now (``now``, the server's, plus
    the owner's test clock offset), every owner's or ``owner_id``'s; with that
    ``owner_now`` (when each expired, as its owner reads time)."""
    statement = (
        select(
            _holds.c.id,
            test_clock_repository.owner_now(now, _holds.c.owner_id).label("owner_now"),
        )
        # Each mode's server expires its own holds: their money is that mode's.
        .where(
            _holds.c.status == "pending",
            _holds.c.expires_at <= test_clock_repository.owner_now(now, _holds.c.owner_id),
            _holds.c.mode == current_mode(),
            *(() if owner_id is None else (_holds.c.owner_id == owner_id,)),
        )
        .order_by(_holds.c.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return cast(Sequence[Row[Any]], (await session.execute(statement)).all())


async def pending_of(
    session: AsyncSession, owner_id: str, agent_ids: Sequence[str] | None
) -> Sequence[Row[Any]]:
    """The pending holds of the owner's agents ``agent_ids`` (every agent's with None),
    oldest first."""
    statement = select(_holds.c.id).where(
        _holds.c.owner_id == owner_id,
        _holds.c.status == "pending",
        _holds.c.mode == current_mode(),
    )
    if agent_ids is not None:
        statement = statement.where(_holds.c.agent_id.in_(agent_ids))
    rows: Sequence[Row[Any]] = (
        await session.execute(statement.order_by(_holds.c.created_at, _holds.c.id))
    ).all()
    return rows


async def list_for_agent(
    session: AsyncSession, owner_id: str, agent_id: str, *, limit: int, offset: int
) -> Sequence[Row[Any]]:
    statement = (
        select(_holds)
        .where(
            _holds.c.owner_id == owner_id,
            _holds.c.agent_id == agent_id,
            _holds.c.mode == current_mode(),
        )
        .order_by(_holds.c.created_at.desc(), _holds.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows
