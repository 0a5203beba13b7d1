"""One owner's endpoint never delays or stops another owner's deliveries: an endpoint
that hangs, one that answers a byte at a time, and stored URLs that no longer parse each
fail as their own attempts, recorded and scheduled, while a healthy endpoint of another
owner gets its event at once. Every receiver is a real server on 127.0.0.1."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.event import service as event_service
from app.domain.webhook import delivery
from app.domain.webhook import service as webhook_service
from app.kit.time import utc_now
from app.worker.webhooks import run_webhook_loop
from tests.api.helpers import MakeKey, bearer
from tests.webhook_receiver import Receiver, running_receiver

#: Stored URLs that saving now refuses, as rows written before the checks would hold them.
BROKEN_URLS = [
    "http://127.0.0.1:abc/",
    "http://127.0.0.1:99999/",
    "http://[::1/",
    "http://a\uff20b.example/",
]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@asynccontextmanager
async def running_silent_server(
    answer: Callable[[asyncio.StreamWriter], Awaitable[None]] | None = None,
) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that accepts and runs ``answer``; by default it reads until
    the client goes away and never answers at all. Yields its base URL."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        try:
            if answer is not None:
                await answer(writer)
            else:
                while await reader.read(65536):
                    pass
        except ConnectionError:
            pass  # the client gave up, as it should
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def drip(writer: asyncio.StreamWriter) -> None:
    """A status line one byte every 0.1 s: no read ever waits long, the whole never ends."""
    for byte in b"HTTP/1.1 200 OK\r\n" * 100:
        if writer.is_closing():
            return
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.1)


async def subscribe(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, events: list[str]
) -> str:
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": events}, headers=headers
    )
    assert response.status_code == 201, response.text
    subscription_id: str = response.json()["subscription_id"]
    return subscription_id


async def break_url(
    sessionmaker: async_sessionmaker[AsyncSession], endpoint_id: str, url: str
) -> None:
    """Store ``url`` as a row saved before the URL checks existed would hold it."""

    async def write(session: AsyncSession) -> None:
        await session.execute(
            text("UPDATE webhook_endpoints SET url = :url WHERE id = :id"),
            {"url": url, "id": endpoint_id},
        )

    await run_in_transaction(sessionmaker, write)


async def emit(
    sessionmaker: async_sessionmaker[AsyncSession],
    owner_id: str,
    count: int,
    type_: str,
    *,
    first: int = 0,
) -> None:
    """``count`` events in one transaction, numbered ``first`` on in their data."""

    async def write(session: AsyncSession) -> None:
        numbers = range(first, first + count)
        await event_service.emit(
            session, [event_service.event(owner_id, type_, {"n": n}) for n in numbers]
        )

    await run_in_transaction(sessionmaker, write)


async def remove_endpoints(
    sessionmaker: async_sessionmaker[AsyncSession], endpoint_ids: list[str]
) -> None:
    """Delete the endpoints (their deliveries go with them), so nothing this test left
    pending reaches another test's worker pass."""

    async def write(session: AsyncSession) -> None:
        await session.execute(
            text("DELETE FROM webhook_endpoints WHERE id = ANY(:ids)"), {"ids": endpoint_ids}
        )

    await run_in_transaction(sessionmaker, write)


async def deliveries_of(
    sessionmaker: async_sessionmaker[AsyncSession], endpoint_id: str
) -> list[dict[str, Any]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            text(
                "SELECT d.status, d.attempts, d.next_attempt_at, a.attempt, a.status_code, "
                "a.error, a.next_retry_at FROM webhook_deliveries d "
                "LEFT JOIN webhook_attempts a ON a.delivery_id = d.id "
                "WHERE d.endpoint_id = :id ORDER BY d.id, a.id"
            ),
            {"id": endpoint_id},
        )
        return [dict(row._mapping) for row in rows]


async def endpoint_state(
    sessionmaker: async_sessionmaker[AsyncSession], endpoint_id: str
) -> dict[str, Any]:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                text(
                    "SELECT is_active, failing_since, disabled_reason "
                    "FROM webhook_endpoints WHERE id = :id"
                ),
                {"id": endpoint_id},
            )
        ).one()
        return dict(row._mapping)


async def test_a_healthy_endpoint_gets_its_event_within_a_second_beside_broken_ones(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    """The webhook loop as ``purser worker`` runs it. Alice's endpoints: one that never
    answers, with a backlog larger than a worker's slots, and stored URLs that no longer
    parse, all with events older than Bob's. Bob's endpoint still has its event within a
    second."""
    alice_key, bob_key = await make_key(), await make_key()
    alice, bob = bearer(alice_key), bearer(bob_key)
    endpoints: list[str] = []
    async with running_silent_server() as hanging:
        try:
            endpoints.append(await subscribe(client, alice, hanging, ["agent.updated"]))
            for url in BROKEN_URLS:
                endpoint_id = await subscribe(client, alice, receiver.url, ["agent.updated"])
                await break_url(sessionmaker, endpoint_id, url)
                endpoints.append(endpoint_id)
            bobs = await subscribe(client, bob, f"{receiver.url}/bob", ["merchant.created"])
            endpoints.append(bobs)
            limits = delivery.DeliveryLimits()
            await emit(sessionmaker, alice_key.owner_id, limits.in_flight + 6, "agent.updated")
            await emit(sessionmaker, bob_key.owner_id, 1, "merchant.created")

            started = time.perf_counter()
            loop = asyncio.create_task(
                run_webhook_loop(sessionmaker, app.state.secret_box, sandbox=True)
            )
            try:
                # The receiver records into a list; polling it every 5 ms is precise enough.
                while not receiver.bodies("/bob") and time.perf_counter() - started < 5:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                waited = time.perf_counter() - started
            finally:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
            assert waited < 1.0, f"Bob's event took {waited:.2f} s"
            assert json.loads(receiver.bodies("/bob")[0])["type"] == "merchant.created"
            # No request reached the receiver for Alice's broken URLs.
            assert receiver.bodies("/") == []
        finally:
            await remove_endpoints(sessionmaker, endpoints)


async def test_every_failure_is_its_own_recorded_attempt_and_scheduled(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    """One pass with a total timeout of 1 s: a hanging endpoint, one that drips its
    answer, and each broken stored URL fail as recorded attempts with the first retry
    due in 5 s, concurrently (the pass takes about one timeout, not one per endpoint);
    the healthy endpoint of another owner succeeds in the same pass. Failing on for five
    days disables the broken endpoints as any other failing endpoint."""
    alice_key, bob_key = await make_key(), await make_key()
    alice, bob = bearer(alice_key), bearer(bob_key)
    endpoints: list[str] = []
    async with running_silent_server() as hanging, running_silent_server(drip) as dripping:
        try:
            hanging_id = await subscribe(client, alice, hanging, ["agent.updated"])
            dripping_id = await subscribe(client, alice, dripping, ["agent.updated"])
            broken: dict[str, str] = {}
            for url in BROKEN_URLS:
                endpoint_id = await subscribe(client, alice, receiver.url, ["agent.updated"])
                await break_url(sessionmaker, endpoint_id, url)
                broken[endpoint_id] = url
            bobs = await subscribe(client, bob, f"{receiver.url}/bob", ["merchant.created"])
            endpoints += [hanging_id, dripping_id, *broken, bobs]
            await emit(sessionmaker, alice_key.owner_id, 1, "agent.updated")
            await emit(sessionmaker, bob_key.owner_id, 1, "merchant.created")

            t0 = utc_now()
            limits = delivery.DeliveryLimits(total_timeout=1.0, connect_timeout=0.5)
            started = time.perf_counter()
            await pump(app, sessionmaker, limits, now=t0)
            elapsed = time.perf_counter() - started
            assert elapsed < 2.5, f"the pass took {elapsed:.2f} s"

            assert [r["status"] for r in await deliveries_of(sessionmaker, bobs)] == ["succeeded"]
            assert len(receiver.bodies("/bob")) == 1
            for endpoint_id in [hanging_id, dripping_id, *broken]:
                (row,) = await deliveries_of(sessionmaker, endpoint_id)
                assert (row["status"], row["attempts"], row["attempt"]) == ("pending", 1, 1)
                assert row["status_code"] is None
                assert row["next_retry_at"] == row["next_attempt_at"]
                delay = row["next_retry_at"] - t0
                assert timedelta(seconds=4.5) <= delay <= timedelta(seconds=5.5), endpoint_id
                assert (await endpoint_state(sessionmaker, endpoint_id))["failing_since"] == t0
            for endpoint_id in (hanging_id, dripping_id):
                (row,) = await deliveries_of(sessionmaker, endpoint_id)
                assert row["error"] == "timed out: no complete answer within 1 s"
            for endpoint_id, url in broken.items():
                (row,) = await deliveries_of(sessionmaker, endpoint_id)
                assert row["error"].startswith("url "), (url, row["error"])
                # The owner reads the failure in the delivery log.
                log = await client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=alice)
                assert log.status_code == 200
                assert log.json()[0]["error"] == row["error"]

            # Still failing five days on: disabled, like any endpoint that always fails.
            await remove_endpoints(sessionmaker, [hanging_id, dripping_id])
            later = t0 + timedelta(days=5, seconds=1)
            await pump(app, sessionmaker, limits, now=later)
            for endpoint_id in broken:
                state = await endpoint_state(sessionmaker, endpoint_id)
                assert state["is_active"] is False, endpoint_id
                assert "5 days" in state["disabled_reason"]
                rows = await deliveries_of(sessionmaker, endpoint_id)
                assert [(r["attempt"], r["status"]) for r in rows] == [
                    (1, "pending"),
                    (2, "pending"),
                ]
        finally:
            await remove_endpoints(sessionmaker, endpoints)


async def pump(
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    limits: delivery.DeliveryLimits,
    *,
    now: datetime,
) -> int:
    # Every pending event, however many earlier tests left (a pass takes 500).
    while await run_in_transaction(sessionmaker, lambda s: webhook_service.fan_out(s, now)):
        pass
    async with delivery.Sender(sandbox=True, limits=limits) as sender:
        return await delivery.deliver_due(
            sessionmaker, sender, app.state.secret_box, now=now, batch=1000
        )


async def test_one_endpoint_takes_at_most_its_share_of_a_pass(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    """A backlog of one endpoint leases ``per_endpoint`` deliveries at a time, oldest
    first; the other owner's single delivery is in the same pass."""
    alice_key, bob_key = await make_key(), await make_key()
    endpoints = [
        await subscribe(client, bearer(alice_key), f"{receiver.url}/a", ["agent.updated"]),
        await subscribe(client, bearer(bob_key), f"{receiver.url}/bob", ["merchant.created"]),
    ]
    try:
        for n in range(10):  # one by one: each event its own creation time
            await emit(sessionmaker, alice_key.owner_id, 1, "agent.updated", first=n)
        await emit(sessionmaker, bob_key.owner_id, 1, "merchant.created")
        limits = delivery.DeliveryLimits(per_endpoint=3)
        now = utc_now()
        await pump(app, sessionmaker, limits, now=now)
        assert len(receiver.bodies("/bob")) == 1
        assert sorted(json.loads(b)["data"]["n"] for b in receiver.bodies("/a")) == [0, 1, 2]
        await pump(app, sessionmaker, limits, now=now)
        assert sorted(json.loads(b)["data"]["n"] for b in receiver.bodies("/a")) == list(range(6))
    finally:
        await remove_endpoints(sessionmaker, endpoints)
