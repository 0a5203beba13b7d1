from typing import Any, cast

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.payment import FeeSchedule

_fees = cast(Table, FeeSchedule.__table__)


async def get_schedule(session: AsyncSession, currency: str) -> Row[Any] | None:
    statement = select(_fees).where(_fees.c.currency == currency)
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row
