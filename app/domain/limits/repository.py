from datetime import date
from typing import cast

from sqlalchemy import Table, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.payment import SpendCounter

_counters = cast(Table, SpendCounter.__table__)


async def spent_in_windows(
    session: AsyncSession, wallet_id: str, windows: dict[str, date]
) -> dict[str, int]:
    statement = select(_counters.c.period, _counters.c.spent).where(
        _counters.c.wallet_id == wallet_id,
        tuple_(_counters.c.period, _counters.c.window_start).in_(list(windows.items())),
    )
    return {row.period: int(row.spent) for row in (await session.execute(statement)).all()}


async def add_spend(
    session: AsyncSession, wallet_id: str, windows: dict[str, date], amount: int
) -> None:
    statement = insert(_counters).values(
        [
            {"wallet_id": wallet_id, "period": period, "window_start": start, "spent": amount}
            for period, start in windows.items()
        ]
    )
    statement = statement.on_conflict_do_update(
        index_elements=["wallet_id", "period", "window_start"],
        set_={"spent": _counters.c.spent + statement.excluded.spent},
    )
    await session.execute(statement)
