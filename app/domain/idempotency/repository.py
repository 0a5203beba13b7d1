from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import CURRENT_MODE_SQL
from app.models.payment import IdempotencyRecord

_records = cast(Table, IdempotencyRecord.__table__)

# Records are keyed by the connection's mode too: a live request never replays, nor is
# refused for, a sandbox request that used the same key. One round trip reads the record
# and, only when there is none, claims the key's lock without waiting: a finished request
# is replayed without the lock, so replays never block each other. The lock's scope names
# the mode in the same statement, so the two modes never wait for each other. The mode is
# the connection's setting, spelled by a constant: nothing of a request's is formatted
# into this SQL.
_GET_OR_LOCK = text(
    f"""
    SELECT CASE WHEN r.fingerprint IS NULL
                THEN pg_try_advisory_xact_lock(
                         hashtextextended(:scope || chr(31) || {CURRENT_MODE_SQL}, 0))
           END AS locked,
           r.*
      FROM (SELECT 1) AS one
      LEFT JOIN idempotency_records r
        ON r.owner_id = :owner_id AND r.mode = {CURRENT_MODE_SQL} AND r.method = :method
       AND r.path = :path AND r.key = :key AND r.expires_at > now()
    """  # noqa: S608
)


async def get_or_lock(
    session: AsyncSession, scope: str, owner_id: str, method: str, path: str, key: str
) -> Row[Any]:
    """The live record of the key (``fingerprint`` not NULL, ``locked`` NULL), or, without
    one, the claim of ``scope`` until the transaction ends, made without waiting
    (``locked`` true or false, ``fingerprint`` NULL)."""
    row: Row[Any] = (
        await session.execute(
            _GET_OR_LOCK,
            {"scope": scope, "owner_id": owner_id, "method": method, "path": path, "key": key},
        )
    ).one()
    return row


async def save(session: AsyncSession, values: dict[str, Any]) -> None:
    """Store a record of the connection's mode (the column's default), replacing an
    expired one of that mode."""
    statement = insert(_records).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["owner_id", "mode", "method", "path", "key"],
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
    """Every mode's expired records: an expired record is dead in any mode, and a database
    serving one mode would otherwise keep the other's forever."""
    result = await session.execute(delete(_records).where(_records.c.expires_at <= before))
    return int(result.rowcount)  # type: ignore[attr-defined]
