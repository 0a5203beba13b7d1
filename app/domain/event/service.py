"""Events for webhooks, written to the outbox in the caller's transaction: an event exists
exactly when the change it describes was committed."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.event import repository
from app.kit.ids import new_id


def event(owner_id: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": new_id("evt", 10), "owner_id": owner_id, "type": type_, "data": data}


async def emit(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    await repository.insert_events(session, events)
