"""Events for webhooks, written to the outbox in the caller's transaction: an event exists
exactly when the change it describes was committed."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.records import service as records_service
from app.kit.ids import new_id


def event(owner_id: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": new_id("evt", 10), "owner_id": owner_id, "type": type_, "data": data}


async def emit(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """Queue ``events`` for the caller's commit: a use case's audit rows, outbox events and
    idempotency record are written together in one statement (``app.domain.records``)."""
    await records_service.defer_events(session, events)
