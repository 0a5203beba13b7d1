"""Fees as data: the ``fee_schedules`` table, one row per currency."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.fee import repository
from app.kit.money import Money


def fee_of(amount: int, flat: int, percent_bps: int) -> int:
    """``flat`` plus ``percent_bps``/10,000 of ``amount``, rounded half up to the minor unit."""
    return flat + (amount * percent_bps + 5_000) // 10_000


async def fee_for(session: AsyncSession, amount: Money) -> Money:
    """The fee a payment of ``amount`` pays (zero for a currency without a schedule)."""
    schedule = await repository.get_schedule(session, amount.currency)
    if schedule is None:
        return Money(0, amount.currency)
    return Money(fee_of(amount.minor, schedule.flat, schedule.percent_bps), amount.currency)
