"""The per-process cache of API key rows (``PURSER_AUTH_CACHE_SECONDS``): a cached key
costs no query, the secret is checked on every request, a revocation applies at once in
the process that revoked and within the cache's lifetime (at most 1 s) everywhere else."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Mode
from app.domain.apikey import service as apikey_service
from app.domain.apikey.errors import InvalidApiKey
from tests.api.helpers import MakeKey


async def _authenticate(
    sessionmaker: async_sessionmaker[AsyncSession], secret: str, statements: list[str]
) -> str:
    async with sessionmaker() as session:
        connection = await session.connection()
        sync_engine = connection.engine.sync_engine

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(sync_engine, "before_cursor_execute", count)
        try:
            principal = await apikey_service.authenticate(
                session, secret, Mode.sandbox, cache_seconds=1.0
            )
        finally:
            event.remove(sync_engine, "before_cursor_execute", count)
    return principal.key_id


async def test_a_cached_key_costs_no_query_and_a_wrong_secret_still_fails(
    sessionmaker: async_sessionmaker[AsyncSession], make_key: MakeKey
) -> None:
    key = await make_key()
    statements: list[str] = []
    assert await _authenticate(sessionmaker, key.secret, statements) == key.key_id
    assert len(statements) == 1
    assert await _authenticate(sessionmaker, key.secret, statements) == key.key_id
    assert len(statements) == 1
    tampered = key.secret[:-1] + ("0" if key.secret[-1] != "0" else "1")
    with pytest.raises(InvalidApiKey):
        await _authenticate(sessionmaker, tampered, statements)


async def test_a_revocation_applies_at_once_here_and_within_a_second_elsewhere(
    sessionmaker: async_sessionmaker[AsyncSession], make_key: MakeKey
) -> None:
    here, elsewhere = await make_key(), await make_key()
    statements: list[str] = []
    for key in (here, elsewhere):
        assert await _authenticate(sessionmaker, key.secret, statements) == key.key_id
    async with sessionmaker() as session:
        await apikey_service.revoke_key(session, here.key_id, owner_id=None)
        await session.commit()
    with pytest.raises(InvalidApiKey):
        await _authenticate(sessionmaker, here.secret, statements)
    # Another process revoking is a row change this process has not seen.
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE api_keys SET revoked_at = now() WHERE id = :id"), {"id": elsewhere.key_id}
        )
        await session.commit()
    await asyncio.sleep(apikey_service.MAX_CACHE_SECONDS)
    with pytest.raises(InvalidApiKey):
        await _authenticate(sessionmaker, elsewhere.secret, statements)
