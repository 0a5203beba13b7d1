from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Row, Table, delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import CURRENT_MODE_SQL
from app.models.payment import IdempotencyRecord

_records = cast(Table, IdempotencyRecord.__table__)

#: The record's columns a claim returns, prefixed ``claim_`` (a statement that also reads
#: the API key's row then has no two columns of one name).
_CLAIM_COLUMNS: Final = (
    "fingerprint",
    "key_id",
    "agent_id",
    "scopes",
    "status_code",
    "content_type",
    "body",
)


def claim_sql(owner: str, when: str = "true") -> str:
    """A claim of an idempotency key, as a SELECT for a statement to run (alone, or as a
    lateral subquery): ``claim_locked`` and the live record's ``claim_*`` columns.

    Records are keyed by the connection's mode too: a live request never replays, nor is
    refused for, a sandbox request that used the same key. The statement reads the record
    and, only when there is none, claims the key's lock without waiting: a finished
    request is replayed without the lock, so replays never block each other. The lock
    names owner, method, path, key and mode, so no two of them wait for each other.
    ``owner`` is the owner id's SQL (a parameter or a column) and ``when`` a condition
    that must hold for anything to be read or claimed (no row otherwise): constants of
    the caller's, never request data; the request's parts are the parameters ``:method``,
    ``:path`` and ``:key``."""
    columns = ", ".join(f"r.{column} AS claim_{column}" for column in _CLAIM_COLUMNS)
    return f"""
    SELECT CASE WHEN r.fingerprint IS NULL
                THEN pg_try_advisory_xact_lock(hashtextextended(
                         concat_ws(chr(31), 'idempotency', {owner}, :method, :path, :key,
                                   {CURRENT_MODE_SQL}), 0))
           END AS claim_locked,
           {columns}
      FROM (SELECT 1) AS one
      LEFT JOIN idempotency_records r
        ON r.owner_id = {owner} AND r.mode = {CURRENT_MODE_SQL} AND r.method = :method
       AND r.path = :path AND r.key = :key AND r.expires_at > now()
     WHERE {when}
    """  # noqa: S608


_GET_OR_LOCK = text(claim_sql(":owner_id"))


async def get_or_lock(
    session: AsyncSession, owner_id: str, method: str, path: str, key: str
) -> Row[Any]:
    """The live record of the key (``claim_fingerprint`` not NULL, ``claim_locked`` NULL),
    or, without one, the claim of the key until the transaction ends, made without
    waiting (``claim_locked`` true or false, ``claim_fingerprint`` NULL)."""
    row: Row[Any] = (
        await session.execute(
            _GET_OR_LOCK, {"owner_id": owner_id, "method": method, "path": path, "key": key}
        )
    ).one()
    return row


async def delete_expired(session: AsyncSession, before: datetime) -> int:
    """Every mode's expired records: an expired record is dead in any mode, and a database
    serving one mode would otherwise keep the other's forever."""
    result = await session.execute(delete(_records).where(_records.c.expires_at <= before))
    return int(result.rowcount)  # type: ignore[attr-defined]
