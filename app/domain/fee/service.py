"""Fees as data: the ``fee_schedules`` table, one row per currency.

Schedules change only by migration (or an operator's SQL), never through the API, so each
process keeps what it read for ``SCHEDULE_TTL_SECONDS``: a changed schedule applies in
every process within that time, and a payment reads no fee row on the hot path.
"""

import time

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.fee import repository
from app.kit.money import Money

#: How long (seconds, monotonic clock) a process trusts a schedule it read.
SCHEDULE_TTL_SECONDS = 5.0

#: currency -> (read at, (flat, percent_bps) or None for a currency without a schedule).
_schedules: dict[str, tuple[float, tuple[int, int] | None]] = {}


def fee_of(amount: int, flat: int, percent_bps: int) -> int:
    """``flat`` plus ``percent_bps``/10,000 of ``amount``, rounded half up to the minor unit."""
    return flat + (amount * percent_bps + 5_000) // 10_000


def forget_schedules() -> None:
    """Drop every cached schedule: the next payment of each currency reads it again."""
    _schedules.clear()


async def schedule_of(session: AsyncSession, currency: str) -> tuple[int, int] | None:
    """``(flat, percent_bps)`` of ``currency``, or None without a schedule: from this
    process's cache when read less than ``SCHEDULE_TTL_SECONDS`` ago, else one query."""
    now = time.monotonic()
    cached = _schedules.get(currency)
    if cached is not None and now - cached[0] < SCHEDULE_TTL_SECONDS:
        return cached[1]
    row = await repository.get_schedule(session, currency)
    schedule = None if row is None else (int(row.flat), int(row.percent_bps))
    _schedules[currency] = (now, schedule)
    return schedule


async def fee_for(session: AsyncSession, amount: Money) -> Money:
    """The fee a payment of ``amount`` pays (zero for a currency without a schedule)."""
    schedule = await schedule_of(session, amount.currency)
    if schedule is None:
        return Money(0, amount.currency)
    flat, percent_bps = schedule
    return Money(fee_of(amount.minor, flat, percent_bps), amount.currency)
