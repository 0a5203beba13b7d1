"""SQL of the sandbox test clock: ``owner_controls.clock_offset_seconds``."""

from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, DateTime, Interval, Table, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import CURRENT_MODE_SQL, current_mode
from app.models.owner import OwnerControl

_controls = cast(Table, OwnerControl.__table__)

#: Clocks run ahead at most this far: ten years is more than any window or expiry needs,
#: and keeps every moment Purser computes far from the end of the calendar.
MAX_OFFSET: Final = timedelta(days=3653)

_ADVANCE: Final = text(
    f"""
    INSERT INTO owner_controls (owner_id, mode, clock_offset_seconds)
    VALUES (:owner_id, {CURRENT_MODE_SQL}, :seconds)
    ON CONFLICT (owner_id, mode) DO UPDATE
       SET clock_offset_seconds = owner_controls.clock_offset_seconds + :seconds,
           updated_at = now()
     WHERE owner_controls.clock_offset_seconds + :seconds <= :max_seconds
    RETURNING clock_offset_seconds
    """  # noqa: S608
)


def owner_now(now: datetime, owner_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQL for the now of the owner in column ``owner_id``: the server's ``now`` plus how
    far that owner's clock runs ahead (nothing for an owner who never moved it), for a
    periodic job comparing each row's time with its owner's now."""
    return literal(now, DateTime(timezone=True)) + offset_of(owner_id)


def offset_of(owner_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """How far the clock of the owner in column ``owner_id`` runs ahead, as an interval."""
    seconds = (
        select(_controls.c.clock_offset_seconds)
        .where(_controls.c.owner_id == owner_id, _controls.c.mode == current_mode())
        .scalar_subquery()
    )
    return func.coalesce(seconds, 0) * literal(timedelta(seconds=1), Interval)


async def offset_seconds(session: AsyncSession, owner_id: str) -> int:
    statement = select(_controls.c.clock_offset_seconds).where(
        _controls.c.owner_id == owner_id, _controls.c.mode == current_mode()
    )
    return int(await session.scalar(statement) or 0)


async def advance(session: AsyncSession, owner_id: str, seconds: int) -> int | None:
    """Move the owner's clock ``seconds`` further ahead (the row made if missing); the new
    offset, or None if it would pass ``MAX_OFFSET`` (nothing changed)."""
    offset = (
        await session.execute(
            _ADVANCE,
            {
                "owner_id": owner_id,
                "seconds": seconds,
                "max_seconds": int(MAX_OFFSET.total_seconds()),
            },
        )
    ).scalar_one_or_none()
    return None if offset is None else int(offset)
