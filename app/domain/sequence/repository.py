"""All SQL of the Sequence rail. Functions take the session first; nothing here commits."""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Row, Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import CURRENT_MODE_SQL, current_mode
from app.models.sequence import SequenceDailyUsage, SequenceSettings, SequenceTransfer

_settings = cast(Table, SequenceSettings.__table__)
_transfers = cast(Table, SequenceTransfer.__table__)
_usage = cast(Table, SequenceDailyUsage.__table__)


async def get_settings(session: AsyncSession, owner_id: str) -> Row[Any] | None:
    statement = select(_settings).where(
        _settings.c.owner_id == owner_id, _settings.c.mode == current_mode()
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def upsert_settings(session: AsyncSession, owner_id: str, values: dict[str, Any]) -> Row[Any]:
    """Set ``values`` on the owner's row of this mode (created if missing)."""
    insert_row = insert(_settings).values(owner_id=owner_id, **values)
    statement = insert_row.on_conflict_do_update(
        index_elements=["owner_id", "mode"], set_={**values, "updated_at": func.now()}
    ).returning(_settings)
    row: Row[Any] = (await session.execute(statement)).one()
    return row


# Reserve ``amount`` of the day's limit: the row is created with the amount if it fits,
# or raised by it only while the result stays within the limit. One statement, the row
# lock deciding between concurrent reservations: no race passes the limit. Returns the
# day's use after the reservation, or no row when it does not fit.
_RESERVE = text(
    f"""
    INSERT INTO sequence_daily_usage AS u (owner_id, mode, day, used_cents)
    SELECT :owner_id, {CURRENT_MODE_SQL}, CAST(:day AS date), CAST(:amount AS bigint)
     WHERE CAST(:amount AS bigint) <= CAST(:limit AS bigint)
    ON CONFLICT (owner_id, mode, day)
    DO UPDATE SET used_cents = u.used_cents + EXCLUDED.used_cents
     WHERE u.used_cents + EXCLUDED.used_cents <= CAST(:limit AS bigint)
    RETURNING used_cents
    """
)


async def reserve(
    session: AsyncSession, owner_id: str, day: date, amount: int, limit: int
) -> int | None:
    """Reserve ``amount`` cents of ``day``'s ``limit``; the day's use after it, or None
    if it does not fit."""
    row = (
        await session.execute(
            _RESERVE, {"owner_id": owner_id, "day": day, "amount": amount, "limit": limit}
        )
    ).one_or_none()
    return None if row is None else int(row.used_cents)


async def release(session: AsyncSession, owner_id: str, day: date, amount: int) -> None:
    """Give ``amount`` cents of ``day`` back (a transfer that definitely failed)."""
    await session.execute(
        update(_usage)
        .where(_usage.c.owner_id == owner_id, _usage.c.mode == current_mode(), _usage.c.day == day)
        .values(used_cents=func.greatest(_usage.c.used_cents - amount, 0))
    )


async def used_on(session: AsyncSession, owner_id: str, day: date) -> int:
    statement = select(_usage.c.used_cents).where(
        _usage.c.owner_id == owner_id, _usage.c.mode == current_mode(), _usage.c.day == day
    )
    return int((await session.execute(statement)).scalar() or 0)


async def insert_transfer(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    statement = insert(_transfers).values(**values).returning(_transfers)
    row: Row[Any] = (await session.execute(statement)).one()
    return row


async def get_transfer(
    session: AsyncSession, owner_id: str, transfer_id: str, *, lock: bool = False
) -> Row[Any] | None:
    statement = select(_transfers).where(
        _transfers.c.owner_id == owner_id,
        _transfers.c.id == transfer_id,
        _transfers.c.mode == current_mode(),
    )
    if lock:
        statement = statement.with_for_update()
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def get_by_client_key(
    session: AsyncSession, owner_id: str, client_key: str, *, lock: bool = False
) -> Row[Any] | None:
    statement = select(_transfers).where(
        _transfers.c.owner_id == owner_id,
        _transfers.c.client_key == client_key,
        _transfers.c.mode == current_mode(),
    )
    if lock:
        statement = statement.with_for_update()
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def update_transfer(
    session: AsyncSession, transfer_id: str, values: dict[str, Any], *, from_statuses: Sequence[str]
) -> Row[Any] | None:
    """Change the transfer if its status is one of ``from_statuses`` (a conditional
    UPDATE: of two resolutions, one gets the row, the other None)."""
    statement = (
        update(_transfers)
        .where(_transfers.c.id == transfer_id, _transfers.c.status.in_(list(from_statuses)))
        .values(**values, updated_at=func.now())
        .returning(_transfers)
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def due_for_check(session: AsyncSession, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Unresolved transfers of the connection's mode whose next check is due, locked;
    rows another poller holds are skipped (SKIP LOCKED), so pollers in several processes
    share them."""
    statement = (
        select(_transfers)
        .where(
            _transfers.c.mode == current_mode(),
            _transfers.c.status.in_(["reserved", "submitted"]),
            _transfers.c.next_check_at <= now,
        )
        .order_by(_transfers.c.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(statement)).all()


async def delete_settings_key(session: AsyncSession, owner_id: str) -> bool:
    """Forget the owner's key (limits overrides stay); False if it had none."""
    statement = (
        update(_settings)
        .where(
            _settings.c.owner_id == owner_id,
            _settings.c.mode == current_mode(),
            _settings.c.api_key_ciphertext.is_not(None),
        )
        .values(api_key_ciphertext=None, key_hint=None, base_url=None, updated_at=func.now())
        .returning(_settings.c.owner_id)
    )
    return (await session.execute(statement)).one_or_none() is not None


# Serialises the requests of one Idempotency-Key of one owner (this mode), blocking for
# as long as the first one's reservation transaction runs: the second then finds its row.
_LOCK_CLIENT_KEY = text(
    f"SELECT pg_advisory_xact_lock(hashtextextended("
    f"concat_ws(chr(31), 'sequence-transfer', CAST(:owner_id AS text), CAST(:key AS text),"
    f" {CURRENT_MODE_SQL}), 0))"
)


async def lock_client_key(session: AsyncSession, owner_id: str, key: str) -> None:
    await session.execute(_LOCK_CLIENT_KEY, {"owner_id": owner_id, "key": key})


async def unresolved_count(session: AsyncSession, owner_id: str) -> int:
    """The owner's transfers whose outcome is not yet known (this mode)."""
    statement = select(func.count()).where(
        _transfers.c.owner_id == owner_id,
        _transfers.c.mode == current_mode(),
        _transfers.c.status.in_(["reserved", "submitted"]),
    )
    return int((await session.execute(statement)).scalar() or 0)
