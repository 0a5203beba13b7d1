from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.payment import IdempotencyRecord

_records = cast(Table, IdempotencyRecord.__table__)


_LOCK_AND_GET = text(
    """
    SELECT pg_try_advisory_xact_lock(hashtextextended(:scope, 0)) AS locked, r.*
      FROM (SELECT 1) AS one
      LEFT JOIN idempotency_records r
        ON r.owner_id = :owner_id AND r.method = :method AND r.path = :path AND r.key = :key
       AND r.expires_at > now()
    """
)


async def try_lock_and_get(
    session: AsyncSession, scope: str, owner_id: str, method: str, path: str, key: str
) -> Row[Any]:
    """Claim ``scope`` until the transaction ends, without waiting, and read the record in
    the same round trip (it may have been committed since the caller last looked).
    ``locked`` tells whether the claim succeeded; ``fingerprint`` is NULL without a record."""
    row: Row[Any] = (
        await session.execute(
            _LOCK_AND_GET,
            {"scope": scope, "owner_id": owner_id, "method": method, "path": path, "key": key},
        )
    ).one()
    return row


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
            for column in (
                "fingerprint",
                "key_id",
                "agent_id",
                "scopes",
                "status_code",
                "content_type",
                "body",
                "expires_at",
            )
        }
        | {"created_at": func.now()},
    )
    await session.execute(statement)


async def delete_expired(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(_records).where(_records.c.expires_at <= before))
    return int(result.rowcount)  # type: ignore[attr-defined]
