"""The audit trail: append-only records of every money-relevant event, hash-chained.

Writers only insert, with no lock, so the chain is not a global lock on the payment path.
``seal`` (run by the worker every second, and by ``purser audit seal``) gives committed
rows the next chain position and ``hash = sha256(prev_hash | canonical row)``; ``verify``
recomputes the chain from the start and reports the first row that does not match.

Owners see their own numbering, never the global one: ``seal`` also gives each row the
next number of its owner in its mode (``owner_seq``: 1, 2, 3… in chain order, without
gaps), which ``GET /audit`` shows as ``seq`` and its cursors carry. A global position
would tell an owner how many records (payments) other owners made between two of its own.
Numbering at seal time costs writers nothing: the one sealer already takes rows in order,
under its lock, so no owner's payments wait on a counter.

Each record carries the mode of the connection that wrote it; ``GET /audit`` lists only
the key's mode, numbered apart so that each mode's trail has no gaps. The chain itself is
one for both modes. Neither ``owner_seq`` nor ``mode`` is part of the hash (rows sealed
before them keep their hashes; the append-only trigger keeps both); ``verify`` recomputes
the numbering per owner and mode from the chain.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import repository
from app.domain.audit.schemas import AuditPage, AuditRecordRead
from app.domain.records import service as records_service
from app.errors import ValidationFailed
from app.kit.money import format_amount

GENESIS = "0" * 64
#: ``next_cursor`` as this API writes it: ``aud_`` and an owner's sequence number (BIGINT).
_CURSOR = re.compile(r"aud_[0-9]{1,18}", re.ASCII)
#: The canonical row. Fixed for good: adding a column here would break every row sealed
#: before it (``mode``, ``owner_seq`` are deliberately absent).
_HASHED_FIELDS = (
    "seq",
    "owner_id",
    "event",
    "key_id",
    "request_id",
    "subject_type",
    "subject_id",
    "agent_id",
    "amount",
    "currency",
    "data",
    "created_at",
    "chain_seq",
    "prev_hash",
)


def record(
    *,
    owner_id: str,
    event: str,
    subject_type: str,
    subject_id: str,
    key_id: str | None,
    request_id: str | None,
    agent_id: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit row, to be written with ``append`` in the caller's transaction."""
    return {
        "owner_id": owner_id,
        "event": event,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "key_id": key_id,
        "request_id": request_id,
        "agent_id": agent_id,
        "amount": amount,
        "currency": currency,
        "data": data or {},
    }


async def append(session: AsyncSession, records: list[dict[str, Any]]) -> None:
    """Queue ``records`` for the caller's commit: a use case's audit rows, outbox events and
    idempotency record are written together in one statement (``app.domain.records``)."""
    await records_service.defer_audit(session, records)


def row_hash(row: Row[Any] | dict[str, Any], chain_seq: int, prev_hash: str) -> str:
    values = dict(row._mapping) if isinstance(row, Row) else dict(row)
    values["chain_seq"] = chain_seq
    values["prev_hash"] = prev_hash
    canonical = {field: values[field] for field in _HASHED_FIELDS}
    canonical["created_at"] = values["created_at"].isoformat()
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}|{payload}".encode()).hexdigest()


async def seal(session: AsyncSession, *, batch: int = 1000) -> int:
    """Chain up to ``batch`` committed, unsealed rows of either mode, each with the next
    ``owner_seq`` of its owner in its mode; returns how many were sealed (0 if another
    sealer holds the lock)."""
    if not await repository.try_lock_sealer(session):
        return 0
    rows = await repository.unsealed(session, batch)
    if not rows:
        return 0
    last = await repository.last_sealed(session)
    chain_seq, prev_hash = (last.chain_seq, last.hash) if last else (0, GENESIS)
    owner_seqs = await repository.last_owner_seqs(
        session, sorted({(row.owner_id, row.mode) for row in rows})
    )
    links = []
    for row in rows:
        chain_seq += 1
        owner_seqs[row.owner_id, row.mode] += 1
        digest = row_hash(row, chain_seq, prev_hash)
        links.append((row.seq, chain_seq, owner_seqs[row.owner_id, row.mode], prev_hash, digest))
        prev_hash = digest
    await repository.seal(session, links)
    return len(rows)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    checked: int
    unsealed: int
    bad_seq: int | None = None
    reason: str | None = None


async def verify(session: AsyncSession, *, page: int = 5000) -> VerifyResult:
    """Recompute the chain from its start; stop at the first row that does not match (its
    position, its link, its contents, or its owner's number: each owner's rows of each mode
    must be numbered 1, 2, 3… in chain order). ``bad_seq`` is the row's internal ``seq``."""
    expected_seq, prev_hash, checked = 0, GENESIS, 0
    owner_counts: dict[tuple[str, str], int] = {}
    while True:
        rows = await repository.sealed_in_order(session, expected_seq, page)
        if not rows:
            break
        for row in rows:
            expected_seq += 1
            if row.chain_seq != expected_seq:
                return VerifyResult(checked, 0, row.seq, f"chain position {expected_seq} missing")
            if row.prev_hash != prev_hash:
                return VerifyResult(checked, 0, row.seq, "prev_hash does not match the chain")
            if row_hash(row, row.chain_seq, prev_hash) != row.hash:
                return VerifyResult(checked, 0, row.seq, "contents do not match the hash")
            owner_seq = owner_counts.get((row.owner_id, row.mode), 0) + 1
            if row.owner_seq != owner_seq:
                return VerifyResult(
                    checked, 0, row.seq, f"owner sequence {row.owner_seq} where {owner_seq} is due"
                )
            owner_counts[row.owner_id, row.mode] = owner_seq
            prev_hash = row.hash
            checked += 1
    return VerifyResult(checked, await repository.count_unsealed(session))


def _read(row: Row[Any]) -> AuditRecordRead:
    return AuditRecordRead(
        seq=row.owner_seq,
        event=row.event,
        key_id=row.key_id,
        request_id=row.request_id,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        agent_id=row.agent_id,
        amount=None
        if row.amount is None or row.currency is None
        else format_amount(row.amount, row.currency),
        currency=row.currency,
        data=row.data,
        created_at=row.created_at,
        sealed=row.hash is not None,
    )


async def list_for_owner(
    session: AsyncSession, owner_id: str, *, limit: int, cursor: str | None
) -> AuditPage:
    """The owner's records of the session's mode, newest first:
    ``AuditPage(data=[AuditRecordRead…], next_cursor="aud_<seq>" | None)``, ``seq`` being
    the owner's own number in that mode.

    The first page (no ``cursor``) starts with the records not sealed yet (``seq`` null,
    ``sealed`` false; they get their number within about a second), then the newest sealed
    ones. ``next_cursor`` is set when the page is full and continues with the sealed
    records numbered below the page's last one (below every sealed record if the page held
    only unsealed ones): unsealed records beyond a full first page show up once sealed.
    Raises ``ValidationFailed`` (422, ``param="cursor"``) for a cursor this API did not
    write.
    """
    before: int | None = None
    if cursor is not None:
        if _CURSOR.fullmatch(cursor) is None:
            raise ValidationFailed("cursor is not one this API returned", param="cursor")
        before = int(cursor[4:])
    unsealed, sealed = await repository.list_for_owner(
        session, owner_id, limit=limit, before_owner_seq=before
    )
    rows = [*unsealed, *sealed][:limit]
    next_cursor: str | None = None
    if len(rows) == limit:
        last = rows[-1]
        if last.owner_seq is not None:
            next_cursor = f"aud_{last.owner_seq}"
        elif sealed:
            next_cursor = f"aud_{sealed[0].owner_seq + 1}"
    return AuditPage(data=[_read(row) for row in rows], next_cursor=next_cursor)
