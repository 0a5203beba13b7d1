from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.payment import IdempotencyRecord

_records = cast(Table, IdempotencyRecord.__table__)


async def try_lock(session: AsyncSession, scope: str) -> bool:
    """Claim ``scope`` until the transaction ends, without waiting."""
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:scope, 0))"), {"scope": scope}
    )
    return bool(locked)


async def get_live(
    session: AsyncSession, owner_id: str, method: str, path: str, key: str
) -> Row[Any] | None:
    statement = select(_records).where(
        _records.c.owner_id == owner_id,
        _records.c.method == method,
        _records.c.path == path,
        _records.c.key == key,
        _records.c.expires_at > func.now(),
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def save(session: AsyncSession, values: dict[str, Any]) -> None:
    statement = insert(_records).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["owner_id", "method", "path", "key"],
        set_={
            column: statement.excluded[column]
            for column in ("fingerprint", "status_code", "content_type", "body", "expires_at")
        }
        | {"created_at": func.now()},
    )
    await session.execute(statement)


async def delete_expired(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(_records).where(_records.c.expires_at <= before))
    return int(result.rowcount)  # type: ignore[attr-defined]
