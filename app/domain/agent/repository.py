from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Select, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.agent import Agent
from app.models.base import current_mode
from app.models.wallet import Wallet

_agents = cast(Table, Agent.__table__)
_wallets = cast(Table, Wallet.__table__)


def _with_wallet() -> Select[Any]:
    return select(_agents, _wallets.c.id.label("wallet_id")).outerjoin(
        _wallets, _wallets.c.agent_id == _agents.c.id
    )


async def insert_agent(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(_agents).values(**values))


# Every read keeps to the connection's mode: an agent of the other mode answers exactly
# like one that does not exist.


async def get_agent(session: AsyncSession, owner_id: str, agent_id: str) -> Row[Any] | None:
    statement = _with_wallet().where(
        _agents.c.owner_id == owner_id, _agents.c.id == agent_id, _agents.c.mode == current_mode()
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def list_agents(
    session: AsyncSession, owner_id: str, *, limit: int, offset: int
) -> Sequence[Row[Any]]:
    statement = (
        _with_wallet()
        .where(_agents.c.owner_id == owner_id, _agents.c.mode == current_mode())
        .order_by(_agents.c.created_at.desc(), _agents.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


async def update_agent(
    session: AsyncSession, owner_id: str, agent_id: str, values: dict[str, Any]
) -> bool:
    statement = (
        update(_agents)
        .where(
            _agents.c.owner_id == owner_id,
            _agents.c.id == agent_id,
            _agents.c.mode == current_mode(),
        )
        .values(**values, updated_at=func.now())
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_agent_any_owner(session: AsyncSession, agent_id: str) -> Row[Any] | None:
    """An agent by id across owners: only to address a payment request to it."""
    statement = select(_agents).where(_agents.c.id == agent_id, _agents.c.mode == current_mode())
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row
