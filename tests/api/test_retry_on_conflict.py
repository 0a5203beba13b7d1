"""A request whose transaction is chosen as a deadlock victim is rerun, not answered 500."""

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from app.api.deps import SessionDep
from app.main import create_app
from tests.ledger_helpers import open_funded_wallets


async def test_deadlock_victim_request_is_rerun(database_url: str, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    _, (a, b) = await open_funded_wallets(sessionmaker, 2, minor_each=0)
    app: FastAPI = create_app(database_url=database_url)
    barrier = asyncio.Barrier(2)
    attempts: dict[str, int] = {"ab": 0, "ba": 0}

    @app.post("/probe/lock/{order}")
    async def lock_in_order(order: str, session: SessionDep) -> dict[str, int]:
        attempts[order] += 1
        first, second = (a.id, b.id) if order == "ab" else (b.id, a.id)
        await session.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
        lock = text("SELECT 1 FROM ledger_balances WHERE account_id = :id FOR UPDATE")
        await session.execute(lock, {"id": first})
        if attempts[order] == 1:
            await barrier.wait()
        await session.execute(lock, {"id": second})
        return {"attempt": attempts[order]}

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = await asyncio.wait_for(
                asyncio.gather(client.post("/probe/lock/ab"), client.post("/probe/lock/ba")),
                timeout=60,
            )
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert sorted(r.json()["attempt"] for r in responses) == [1, 2]
