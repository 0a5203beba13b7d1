from typing import Any, cast

from sqlalchemy import Table, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.models.payment import AuditRecord, IdempotencyRecord, OutboxEvent

_audit = cast(Table, AuditRecord.__table__)
_events = cast(Table, OutboxEvent.__table__)
_idempotency = cast(Table, IdempotencyRecord.__table__)

#: Idempotency columns a new record replaces in an expired one of the same key.
_IDEMPOTENCY_REPLACED = (
    "fingerprint",
    "key_id",
    "agent_id",
    "scopes",
    "status_code",
    "content_type",
    "body",
    "expires_at",
)


def write(
    session: Session,
    audit: list[dict[str, Any]],
    events: list[dict[str, Any]],
    idempotency: dict[str, Any] | None,
) -> None:
    """Insert audit rows, outbox events and at most one idempotency record in ONE
    statement: multi-row INSERTs, each a data-modifying CTE of one ``SELECT``. Every row
    takes the connection's mode (the columns' default). An idempotency record replaces an
    expired one of its mode, as ``app.domain.idempotency.repository.save`` does.

    Synchronous: it runs from the session's ``before_commit`` hook (inside the async
    session's greenlet, so the driver is still awaited)."""
    parts = []
    if audit:
        # One column list for every row: ``record`` builds each row with the same keys.
        parts.append(insert(_audit).values(audit).cte("audit_rows"))
    if events:
        parts.append(insert(_events).values(events).cte("event_rows"))
    if idempotency is not None:
        upsert = insert(_idempotency).values(**idempotency)
        upsert = upsert.on_conflict_do_update(
            index_elements=["owner_id", "mode", "method", "path", "key"],
            set_={column: upsert.excluded[column] for column in _IDEMPOTENCY_REPLACED}
            | {"created_at": func.now()},
        )
        parts.append(upsert.cte("idempotency_row"))
    if not parts:
        return
    statement = select(literal(1))
    for part in parts:
        statement = statement.add_cte(part)
    session.execute(statement)
