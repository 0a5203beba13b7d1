"""Calendar windows with an injected clock; the audit trail, its chain and its API."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.audit import service as audit_service
from app.main import create_app
from app.postgres import to_libpq_url
from tests.api.helpers import MakeKey, bearer, key_maker
from tests.api.payment_helpers import create_agent, create_merchant

PURSER = str(Path(sys.executable).parent / "purser")


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def api(
    database_url: str, settings: Settings | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(database_url=database_url, settings=settings or Settings(run_jobs=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, app.state


async def test_yesterdays_spend_does_not_count_today(database_url: str, make_key: MakeKey) -> None:
    headers = bearer(await make_key())
    # 23:30 in New York is already the next day in UTC: the window follows the set zone.
    settings = Settings(run_jobs=False, limits_timezone="America/New_York")
    async with api(database_url, settings) as (client, state):
        clock = FakeClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
        state.clock = clock
        agent = (await create_agent(client, headers, limit_daily="10.00"))["agent"]
        merchant = await create_merchant(client, headers)
        body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"]}

        async def pay(amount: str) -> int:
            response = await client.post(
                "/api/v1/payments", json={**body, "amount": amount}, headers=headers
            )
            return response.status_code

        assert await pay("10.00") == 200
        assert await pay("0.01") == 400  # the day's limit is used up
        clock.now = datetime(2026, 3, 11, 3, 59, tzinfo=UTC)  # 23:59 on the 10th in New York
        assert await pay("0.01") == 400
        clock.now = datetime(2026, 3, 11, 4, 1, tzinfo=UTC)  # 00:01 on the 11th in New York
        assert await pay("10.00") == 200
        assert await pay("0.01") == 400
        clock.now += timedelta(days=1)
        assert await pay("4.00") == 200


async def test_audit_trail_is_chained_and_scoped(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    alice, bob = await make_key(), await make_key()
    agent = (await create_agent(client, bearer(alice)))["agent"]
    merchant = await create_merchant(client, bearer(alice))
    paid = await client.post(
        "/api/v1/payments",
        json={
            "agent_id": agent["agent_id"],
            "merchant_id": merchant["merchant_id"],
            "amount": "1.50",
        },
        headers=bearer(alice),
    )
    tx_id = paid.json()["transaction"]["tx_id"]
    while await run_in_transaction(sessionmaker, audit_service.seal):
        pass
    page = (await client.get("/api/v1/audit?limit=2", headers=bearer(alice))).json()
    assert [r["event"] for r in page["data"]] == ["payment_completed", "payment_requested"]
    first = page["data"][0]
    assert first["subject_id"] == tx_id
    assert first["amount"] == "1.50"
    assert first["key_id"] == alice.key_id
    assert first["request_id"] == paid.headers["Request-Id"]
    assert first["sealed"] is True
    assert page["next_cursor"]
    assert (await client.get("/api/v1/audit", headers=bearer(bob))).json()["data"] == []
    async with sessionmaker() as session:
        result = await audit_service.verify(session)
    assert result.bad_seq is None
    assert result.checked >= 2


async def test_tampering_is_found_by_audit_verify(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url, pool_size=2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    try:
        key = await key_maker(sessionmaker)()
        async with api(empty_database_url) as (client, _):
            agent = (await create_agent(client, bearer(key)))["agent"]
            merchant = await create_merchant(client, bearer(key))
            for amount in ("1.00", "2.00", "3.00"):
                await client.post(
                    "/api/v1/payments",
                    json={
                        "agent_id": agent["agent_id"],
                        "merchant_id": merchant["merchant_id"],
                        "amount": amount,
                    },
                    headers=bearer(key),
                )
        env = {**os.environ, "DATABASE_URL": to_libpq_url(empty_database_url)}

        async def purser(*args: str) -> subprocess.CompletedProcess[str]:
            return await asyncio.to_thread(
                subprocess.run, [PURSER, *args], env=env, capture_output=True, text=True
            )

        sealed = await purser("audit", "seal")
        assert "sealed 6 audit records" in sealed.stdout
        intact = await purser("audit", "verify")
        assert intact.returncode == 0, intact.stderr
        assert "6 records verified" in intact.stdout
        async with sessionmaker() as session:
            # The trigger refuses an edit ...
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text("UPDATE audit_records SET amount = 1 WHERE seq = 3"))
        async with sessionmaker() as session:
            # ... so a tamperer with superuser rights switches triggers off first.
            await session.execute(text("SET session_replication_role = replica"))
            await session.execute(
                text("UPDATE audit_records SET amount = amount + 1 WHERE seq = 3")
            )
            await session.commit()
        broken = await purser("audit", "verify")
        assert broken.returncode == 1
        assert "seq=3" in broken.stderr
        assert "2 records verified before it" in broken.stderr
    finally:
        await engine.dispose()
