from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import current_mode
from app.models.payment import Transaction
from app.models.payment_flow import Hold, Refund

_refunds = cast(Table, Refund.__table__)
_holds = cast(Table, Hold.__table__)
_transactions = cast(Table, Transaction.__table__)


async def lock_transaction(session: AsyncSession, owner_id: str, tx_id: str) -> Row[Any] | None:
    """The payment, locked: refunds of one payment run one at a time, so their sum is
    checked against what the previous ones left. ``spent_at``: the moment its spend was
    counted in the limits' windows — a capture's hold was counted when it was placed, a
    payment at its request's time (``completed_at``)."""
    counted_at = func.coalesce(
        select(_holds.c.authorized_at)
        .where(_holds.c.id == _transactions.c.hold_id)
        .scalar_subquery(),
        _transactions.c.completed_at,
        _transactions.c.created_at,
    ).label("spent_at")
    statement = (
        select(_transactions, counted_at)
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
