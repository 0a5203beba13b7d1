"""Shared helpers for API tests: keys issued through the real service."""

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Mode
from app.db import run_in_transaction
from app.domain.apikey import service as apikey_service
from app.domain.apikey.schemas import ApiKeyCreated
from app.kit.ids import new_id

MakeKey = Callable[..., Awaitable[ApiKeyCreated]]


def key_maker(sessionmaker: async_sessionmaker[AsyncSession]) -> MakeKey:
    async def make(owner: str | None = None, **options: Any) -> ApiKeyCreated:
        owner_id = owner or new_id("owner")
        options.setdefault("mode", Mode.sandbox)
        return await run_in_transaction(
            sessionmaker,
            lambda session: apikey_service.create_key(session, owner_id=owner_id, **options),
        )

    return make


def bearer(key: ApiKeyCreated) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.secret}"}
