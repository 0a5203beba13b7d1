from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import current_mode
from app.models.payment import AuditRecord

_audit = cast(Table, AuditRecord.__table__)


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


_LAST_OWNER_SEQS = text(
    """
    SELECT o.owner_id, o.mode,
           COALESCE((SELECT max(a.owner_seq) FROM audit_records a
                      WHERE a.owner_id = o.owner_id AND a.mode = o.mode), 0) AS last
      FROM unnest(CAST(:owners AS text[]), CAST(:modes AS text[])) AS o(owner_id, mode)
    """
)


async def last_owner_seqs(
    session: AsyncSession, owners: list[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """The highest ``owner_seq`` given to each ``(owner_id, mode)`` in ``owners`` (0 for
    none yet): one statement, one backward step of the ``(owner_id, mode, owner_seq)``
    index per pair. The sealer seals every mode's rows: the chain is one for all."""
    if not owners:
        return {}
    owner_ids, modes = (list(column) for column in zip(*owners, strict=True))
    rows = await session.execute(_LAST_OWNER_SEQS, {"owners": owner_ids, "modes": modes})
    return {(row.owner_id, row.mode): row.last for row in rows}


_SEAL = text(
    """
    UPDATE audit_records a
       SET chain_seq = u.chain_seq, owner_seq = u.owner_seq,
           prev_hash = u.prev_hash, hash = u.hash
      FROM unnest(CAST(:seqs AS bigint[]), CAST(:chain_seqs AS bigint[]),
                  CAST(:owner_seqs AS bigint[]), CAST(:prev_hashes AS text[]),
                  CAST(:hashes AS text[]))
           AS u(seq, chain_seq, owner_seq, prev_hash, hash)
     WHERE a.seq = u.seq
    """
)


async def seal(session: AsyncSession, links: list[tuple[int, int, int, str, str]]) -> None:
    """Write ``(seq, chain_seq, owner_seq, prev_hash, hash)`` links in one statement."""
    if not links:
        return
    columns = [list(column) for column in zip(*links, strict=True)]
    names = ("seqs", "chain_seqs", "owner_seqs", "prev_hashes", "hashes")
    await session.execute(_SEAL, dict(zip(names, columns, strict=True)))


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
    session: AsyncSession, owner_id: str, *, limit: int, before_owner_seq: int | None
) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
    """The owner's records of the connection's mode newest first, in one statement (one
    snapshot, so a record sealed meanwhile is never both or neither): ``(unsealed,
    sealed)``, up to ``limit`` of each.

    Without ``before_owner_seq``: the unsealed records (by insertion, newest first) and the
    newest sealed ones; with it, no unsealed records and the sealed ones numbered below it.
    """
    sealed = (
        select(_audit)
        .where(
            _audit.c.owner_id == owner_id,
            _audit.c.mode == current_mode(),
            _audit.c.owner_seq.is_not(None),
        )
        .order_by(_audit.c.owner_seq.desc())
        .limit(limit)
    )
    if before_owner_seq is not None:
        rows: Sequence[Row[Any]] = (
            await session.execute(sealed.where(_audit.c.owner_seq < before_owner_seq))
        ).all()
        return [], rows
    unsealed = (
        select(_audit)
        .where(
            _audit.c.owner_id == owner_id,
            _audit.c.mode == current_mode(),
            _audit.c.owner_seq.is_(None),
        )
        .order_by(_audit.c.seq.desc())
        .limit(limit)
    )
    both = union_all(unsealed.subquery().select(), sealed.subquery().select())
    rows = (await session.execute(both)).all()
    # A union keeps no order of its own: each part is sorted here (2 * limit rows at most).
    return (
        sorted((r for r in rows if r.owner_seq is None), key=lambda r: -r.seq),
        sorted((r for r in rows if r.owner_seq is not None), key=lambda r: -r.owner_seq),
    )
