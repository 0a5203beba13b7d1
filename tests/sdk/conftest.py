"""The session app served over real loopback HTTP, an SDK client with every scope, a
webhook receiver on loopback and one pass of the webhook worker."""

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvicorn
from fastapi import FastAPI
from purser import AsyncPurserClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.apikey.schemas import Scope
from app.domain.webhook import delivery
from app.domain.webhook import service as webhook_service
from app.kit.time import utc_now
from tests.api.helpers import MakeKey
from tests.webhook_receiver import Receiver, running_receiver

#: One pass of the webhook worker; returns how many deliveries it attempted.
DeliverWebhooks = Callable[[], Awaitable[int]]


@pytest.fixture(scope="module")
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def api_key(make_key: MakeKey) -> str:
    return (await make_key(scopes=list(Scope))).secret


@pytest.fixture
async def client(base_url: str, api_key: str) -> AsyncIterator[AsyncPurserClient]:
    async with AsyncPurserClient(api_key=api_key, base_url=base_url) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
def deliver_webhooks(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> DeliverWebhooks:
    """The worker's fan-out and delivery, run now (the session app runs no jobs)."""

    async def deliver() -> int:
        now = utc_now()
        await run_in_transaction(sessionmaker, lambda s: webhook_service.fan_out(s, now))
        async with delivery.Sender(sandbox=True) as sender:
            return await delivery.deliver_due(
                sessionmaker, sender, app.state.secret_box, now=now, batch=1000
            )

    return deliver
