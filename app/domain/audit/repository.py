from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.payment import AuditRecord

_audit = cast(Table, AuditRecord.__table__)


async def insert_records(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(_audit), rows)


async def try_lock_sealer(session: AsyncSession) -> bool:
    """One sealer at a time, across processes (held until the transaction ends)."""
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtext('purser.audit.seal'))")
    )
    return bool(locked)


async def last_sealed(session: AsyncSession) -> Row[Any, Any] | None:
    statement = (
        select(_audit.c.chain_seq, _audit.c.hash)
        .where(_audit.c.chain_seq.is_not(None))
        .order_by(_audit.c.chain_seq.desc())
        .limit(1)
    )
    row: Row[Any, Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def unsealed(session: AsyncSession, limit: int) -> Sequence[Row[Any]]:
    statement = (
        select(_audit)
        .where(_audit.c.chain_seq.is_(None))
        .order_by(_audit.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


_SEAL = text(
    """
    UPDATE audit_records a
       SET chain_seq = u.chain_seq, prev_hash = u.prev_hash, hash = u.hash
      FROM unnest(CAST(:seqs AS bigint[]), CAST(:chain_seqs AS bigint[]),
                  CAST(:prev_hashes AS text[]), CAST(:hashes AS text[]))
           AS u(seq, chain_seq, prev_hash, hash)
     WHERE a.seq = u.seq
    """
)


async def seal(session: AsyncSession, links: list[tuple[int, int, str, str]]) -> None:
    """Write ``(seq, chain_seq, prev_hash, hash)`` links in one statement."""
    if not links:
        return
    seqs, chain_seqs, prev_hashes, hashes = (list(column) for column in zip(*links, strict=True))
    await session.execute(
        _SEAL,
        {"seqs": seqs, "chain_seqs": chain_seqs, "prev_hashes": prev_hashes, "hashes": hashes},
    )


async def sealed_in_order(
    session: AsyncSession, after_chain_seq: int, limit: int
) -> Sequence[Row[Any]]:
    statement = (
        select(_audit)
        .where(_audit.c.chain_seq > after_chain_seq)
        .order_by(_audit.c.chain_seq)
        .limit(limit)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


async def count_unsealed(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(text("count(*)")).select_from(_audit).where(_audit.c.chain_seq.is_(None))
        )
        or 0
    )


async def list_for_owner(
    session: AsyncSession, owner_id: str, *, limit: int, before_seq: int | None
) -> Sequence[Row[Any]]:
    statement = select(_audit).where(_audit.c.owner_id == owner_id)
    if before_seq is not None:
        statement = statement.where(_audit.c.seq < before_seq)
    statement = statement.order_by(_audit.c.seq.desc()).limit(limit)
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows
