"""The records a use case leaves besides its effect — audit rows, outbox events and the
idempotency record of its request — written in one statement when its transaction
commits.

``defer_*`` queue rows on the session (``Session.info``); the session's ``before_commit``
hook writes everything queued with ``repository.write`` (one round trip), and a rollback
drops the queue. The rows are therefore committed exactly when the use case's effect is,
in the order they were queued, and a use case pays one statement for all of them however
many steps added some. Nothing reads these tables inside the transaction that writes them
(audit and outbox are read by later transactions: sealing, listing, fan-out; the
idempotency record by later requests).
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.domain.records import repository

_KEY = "purser.pending_records"


class _Pending:
    __slots__ = ("audit", "events", "idempotency")

    def __init__(self) -> None:
        self.audit: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.idempotency: dict[str, Any] | None = None


async def _pending(session: AsyncSession) -> _Pending:
    pending = session.info.get(_KEY)
    if pending is None:
        # Begin the transaction if nothing has yet: a commit of a session without one does
        # nothing, and would not run the hook that writes the queue.
        await session.connection()
        pending = session.info[_KEY] = _Pending()
    assert isinstance(pending, _Pending)
    return pending


async def defer_audit(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Queue audit rows (``app.domain.audit.service.record``) for the commit."""
    if rows:
        (await _pending(session)).audit.extend(rows)


async def defer_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Queue outbox events (``app.domain.event.service.event``) for the commit."""
    if rows:
        (await _pending(session)).events.extend(rows)


async def defer_idempotency(session: AsyncSession, row: dict[str, Any]) -> None:
    """Queue the request's idempotency record (one per transaction; a later one replaces
    it) for the commit."""
    (await _pending(session)).idempotency = row


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending = session.info.pop(_KEY, None)
    if pending is not None:
        repository.write(session, pending.audit, pending.events, pending.idempotency)


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction's end (commit, after the hook wrote the queue, or
    # rollback) ends the use case; a savepoint's does not.
    if transaction.parent is None:
        session.info.pop(_KEY, None)
