from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Select, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import current_mode
from app.models.merchant import Merchant
from app.models.wallet import Wallet

_merchants = cast(Table, Merchant.__table__)
_wallets = cast(Table, Wallet.__table__)


def _with_wallet() -> Select[Any]:
    return select(_merchants, _wallets.c.id.label("wallet_id")).join(
        _wallets, _wallets.c.merchant_id == _merchants.c.id
    )


async def insert_merchant(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(_merchants).values(**values))


async def get_merchant(session: AsyncSession, owner_id: str, merchant_id: str) -> Row[Any] | None:
    statement = _with_wallet().where(
        _merchants.c.owner_id == owner_id,
        _merchants.c.id == merchant_id,
        _merchants.c.mode == current_mode(),
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def list_merchants(
    session: AsyncSession, owner_id: str, *, limit: int, offset: int
) -> Sequence[Row[Any]]:
    statement = (
        _with_wallet()
        .where(_merchants.c.owner_id == owner_id, _merchants.c.mode == current_mode())
        .order_by(_merchants.c.created_at.desc(), _merchants.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows
