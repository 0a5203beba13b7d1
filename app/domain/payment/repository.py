from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CTE, Row, Table, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import current_mode
from app.models.payment import Transaction

_transactions = cast(Table, Transaction.__table__)


async def insert_transaction(
    session: AsyncSession,
    values: dict[str, Any],
    carrying: tuple[Sequence[CTE], dict[str, Any]] = ((), {}),
) -> Row[Any]:
    """Insert the transaction row and return it; ``carrying`` are data-modifying CTEs
    (the spend counters of a completed payment) run in the same statement, with their
    parameters."""
    ctes, params = carrying
    statement = insert(_transactions).values(**values).returning(_transactions)
    for cte in ctes:
        statement = statement.add_cte(cte)
    row: Row[Any] = (await session.execute(statement, params or None)).one()
    return row


async def get_transaction(session: AsyncSession, owner_id: str, tx_id: str) -> Row[Any] | None:
    statement = select(_transactions).where(
        _transactions.c.owner_id == owner_id,
        _transactions.c.id == tx_id,
        _transactions.c.mode == current_mode(),
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def list_for_agent(
    session: AsyncSession,
    owner_id: str,
    agent_id: str,
    *,
    limit: int,
    offset: int,
    starting_after: Row[Any] | None,
) -> Sequence[Row[Any]]:
    """Payments the agent made or received, newest first."""
    t = _transactions
    statement = select(t).where(
        t.c.owner_id == owner_id,
        t.c.mode == current_mode(),
        or_(t.c.agent_id == agent_id, t.c.to_agent_id == agent_id),
    )
    if starting_after is not None:
        statement = statement.where(
            tuple_(t.c.created_at, t.c.id) < tuple_(starting_after.created_at, starting_after.id)
        )
    statement = statement.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit).offset(offset)
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows
