"""The session app served over real loopback HTTP, an SDK client with every scope, a
webhook receiver on loopback and one pass of the webhook worker."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fastapi import FastAPI
from purser import AsyncPurserClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.apikey.schemas import Scope
from app.domain.webhook import delivery
from app.domain.webhook import service as webhook_service
from app.kit.time import utc_now
from tests.api.helpers import MakeKey
from tests.loopback import served_on_loopback
from tests.webhook_receiver import Receiver, running_receiver

#: One pass of the webhook worker; returns how many deliveries it attempted.
DeliverWebhooks = Callable[[], Awaitable[int]]


@pytest.fixture(scope="module")
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    async with served_on_loopback(app) as url:
        yield url


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
        # Every pending event, however many earlier tests left unfanned (a pass takes 500).
        while await run_in_transaction(sessionmaker, lambda s: webhook_service.fan_out(s, now)):
            pass
        async with delivery.Sender(sandbox=True) as sender:
            return await delivery.deliver_due(
                sessionmaker, sender, app.state.secret_box, now=now, batch=1000
            )

    return deliver
