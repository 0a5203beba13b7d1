"""The audit trail: append-only records of every money-relevant event, hash-chained.

Writers only insert, with no lock, so the chain is not a global lock on the payment path.
``seal`` (run by the worker every second, and by ``purser audit verify``) gives committed
rows the next chain position and ``hash = sha256(prev_hash | canonical row)``; ``verify``
recomputes the chain from the start and reports the first row that does not match.
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
from app.errors import ValidationFailed
from app.kit.money import format_amount

GENESIS = "0" * 64
#: ``next_cursor`` as this API writes it: ``aud_`` and a sequence number within BIGINT.
_CURSOR = re.compile(r"aud_[0-9]{1,18}", re.ASCII)
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
    await repository.insert_records(session, records)


def row_hash(row: Row[Any] | dict[str, Any], chain_seq: int, prev_hash: str) -> str:
    values = dict(row._mapping) if isinstance(row, Row) else dict(row)
    values["chain_seq"] = chain_seq
    values["prev_hash"] = prev_hash
    canonical = {field: values[field] for field in _HASHED_FIELDS}
    canonical["created_at"] = values["created_at"].isoformat()
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}|{payload}".encode()).hexdigest()


async def seal(session: AsyncSession, *, batch: int = 1000) -> int:
    """Chain up to ``batch`` committed, unsealed rows; returns how many were sealed."""
    if not await repository.try_lock_sealer(session):
        return 0
    last = await repository.last_sealed(session)
    chain_seq, prev_hash = (last.chain_seq, last.hash) if last else (0, GENESIS)
    rows = await repository.unsealed(session, batch)
    links = []
    for row in rows:
        chain_seq += 1
        digest = row_hash(row, chain_seq, prev_hash)
        links.append((row.seq, chain_seq, prev_hash, digest))
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
    """Recompute the chain from its start; stop at the first row that does not match."""
    expected_seq, prev_hash, checked = 0, GENESIS, 0
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
            prev_hash = row.hash
            checked += 1
    return VerifyResult(checked, await repository.count_unsealed(session))


def _read(row: Row[Any]) -> AuditRecordRead:
    return AuditRecordRead(
        seq=row.seq,
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
    """The owner's records, newest first; ``cursor`` continues where the last page ended."""
    before: int | None = None
    if cursor is not None:
        if _CURSOR.fullmatch(cursor) is None:
            raise ValidationFailed("cursor is not one this API returned", param="cursor")
        before = int(cursor[4:])
    rows = await repository.list_for_owner(session, owner_id, limit=limit, before_seq=before)
    next_cursor = f"aud_{rows[-1].seq}" if len(rows) == limit else None
    return AuditPage(data=[_read(row) for row in rows], next_cursor=next_cursor)
