from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Label, Row, Table, func, insert, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.idempotency.repository import claim_sql
from app.models.apikey import ApiKey
from app.models.base import CURRENT_MODE_SQL

_keys = cast(Table, ApiKey.__table__)


async def insert_key(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    row: Row[Any] = (await session.execute(insert(_keys).values(**values).returning(_keys))).one()
    return row


#: How far the key's owner's sandbox clock runs ahead (``owner_controls``), in seconds:
#: read with the key, so that a request's notion of time costs no statement of its own.
_CLOCK_OFFSET_SQL = (
    "coalesce((SELECT o.clock_offset_seconds FROM owner_controls AS o"
    " WHERE o.owner_id = k.owner_id AND o.mode = k.mode), 0)"
)


async def get_key(session: AsyncSession, key_id: str) -> Row[Any] | None:
    """The key's row, with ``clock_offset_seconds`` (``_CLOCK_OFFSET_SQL``)."""
    k = _keys.alias("k")
    offset: Label[int] = literal_column(_CLOCK_OFFSET_SQL).label("clock_offset_seconds")
    statement = select(k, offset).where(k.c.id == key_id)
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


# The key's row and, in the same round trip, the claim of the request's idempotency key
# for the key's owner (``idempotency.repository.claim_sql``): made only if the presented
# secret is the key's and the key is live and of the connection's mode, so a request that
# will be refused with 401 claims nothing. Otherwise the claim's columns are NULL.
_LIVE_KEY_PRESENTED = (
    "k.secret_hash = :secret_hash AND k.revoked_at IS NULL"
    f" AND (k.expires_at IS NULL OR k.expires_at > now()) AND k.mode = {CURRENT_MODE_SQL}"
)
_GET_KEY_CLAIMING = text(
    f"""
    SELECT k.*, {_CLOCK_OFFSET_SQL} AS clock_offset_seconds, c.*
      FROM api_keys AS k
      LEFT JOIN LATERAL ({claim_sql("k.owner_id", when=_LIVE_KEY_PRESENTED)}) AS c ON true
     WHERE k.id = :key_id
    """  # noqa: S608
)


async def get_key_claiming(
    session: AsyncSession, key_id: str, secret_hash: str, claim: dict[str, str]
) -> Row[Any] | None:
    """``get_key``, and the claim of ``claim`` (``method``, ``path``, ``key``) for the
    key's owner in the same round trip, if ``secret_hash`` is the key's and the key is
    live: ``claim_*`` columns as ``idempotency.repository.claim_sql`` returns them."""
    row: Row[Any] | None = (
        await session.execute(
            _GET_KEY_CLAIMING, {"key_id": key_id, "secret_hash": secret_hash, **claim}
        )
    ).one_or_none()
    return row


# Keys name their mode themselves (a key is made for one mode, whatever connection writes
# it), so the filters compare with the caller's mode, not the connection's; ``mode=None``
# is the operator's CLI, which sees and revokes keys of both modes.


async def list_keys(
    session: AsyncSession, owner_id: str | None, mode: str | None = None
) -> Sequence[Row[Any]]:
    """The owner's keys (every owner's with ``owner_id`` None: the operator's CLI)."""
    statement = select(_keys).order_by(_keys.c.owner_id, _keys.c.created_at)
    if owner_id is not None:
        statement = statement.where(_keys.c.owner_id == owner_id)
    if mode is not None:
        statement = statement.where(_keys.c.mode == mode)
    return (await session.execute(statement)).all()


async def revoke_key(
    session: AsyncSession, key_id: str, owner_id: str | None, mode: str | None = None
) -> Row[Any] | None:
    """The key's row after revocation, plus ``revoked_now``: whether this call revoked it
    (``False`` when it already was)."""
    statement = update(_keys).where(_keys.c.id == key_id)
    if owner_id is not None:
        statement = statement.where(_keys.c.owner_id == owner_id)
    if mode is not None:
        statement = statement.where(_keys.c.mode == mode)
    statement = statement.values(revoked_at=func.coalesce(_keys.c.revoked_at, func.now()))
    # RETURNING sees the new value; now() is the transaction's start, so the two are equal
    # only when this transaction set it.
    revoked_now = (_keys.c.revoked_at == func.now()).label("revoked_now")
    row: Row[Any] | None = (
        await session.execute(statement.returning(_keys, revoked_now))
    ).one_or_none()
    return row


async def any_key_exists(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(func.count()).select_from(_keys).limit(1)))
