from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import current_mode
from app.models.payment import Transaction
from app.models.payment_flow import Refund

_refunds = cast(Table, Refund.__table__)
_transactions = cast(Table, Transaction.__table__)


async def lock_transaction(session: AsyncSession, owner_id: str, tx_id: str) -> Row[Any] | None:
    """The payment, locked: refunds of one payment run one at a time, so their sum is
    checked against what the previous ones left."""
    statement = (
        select(_transactions)
        .where(
            _transactions.c.owner_id == owner_id,
            _transactions.c.id == tx_id,
            _transactions.c.mode == current_mode(),
        )
        .with_for_update(key_share=True)
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def add_refunded(session: AsyncSession, tx_id: str, amount: int, status: str) -> None:
    await session.execute(
        update(_transactions)
        .where(_transactions.c.id == tx_id)
        .values(refunded_amount=_transactions.c.refunded_amount + amount, status=status)
    )


async def insert_refund(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    row: Row[Any] = (
        await session.execute(insert(_refunds).values(**values).returning(_refunds))
    ).one()
    return row


async def list_for_transaction(
    session: AsyncSession, owner_id: str, tx_id: str
) -> Sequence[Row[Any]]:
    statement = (
        select(_refunds)
        .where(
            _refunds.c.owner_id == owner_id,
            _refunds.c.tx_id == tx_id,
            _refunds.c.mode == current_mode(),
        )
        .order_by(_refunds.c.created_at, _refunds.c.id)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows
