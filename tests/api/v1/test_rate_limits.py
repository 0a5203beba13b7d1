"""Per-key rate limits: headers on every response, 429 past the tier's budget, and one
budget shared by several API processes through Redis."""

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.config import Settings
from app.domain.apikey.schemas import Tier
from app.main import create_app
from tests.api.helpers import MakeKey, bearer


async def test_free_tier_gets_60_a_minute_then_429(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(tier=Tier.free)
    other = await make_key(tier=Tier.free)
    remaining = []
    for _ in range(60):
        response = await client.get("/api/v1/agents", headers=bearer(key))
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "60"
        assert int(response.headers["X-RateLimit-Reset"]) > 0
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == list(range(59, -1, -1))
    refused = await client.get("/api/v1/agents", headers=bearer(key))
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["Request-Id"]
    # Budgets are per key.
    assert (await client.get("/api/v1/agents", headers=bearer(other))).status_code == 200


async def test_standard_tier_is_the_default(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    response = await client.get("/api/v1/agents", headers=bearer(key))
    assert response.headers["X-RateLimit-Limit"] == "300"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@asynccontextmanager
async def _api_process(database_url: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(database_url=database_url, settings=settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
            yield client


@pytest.mark.skipif(not _redis_answers(), reason="needs Redis on 127.0.0.1:6379")
async def test_two_api_processes_share_one_budget_through_redis(
    database_url: str, make_key: MakeKey
) -> None:
    key = await make_key(tier=Tier.free)
    settings = Settings(redis_url="redis://127.0.0.1:6379/0")
    async with (
        _api_process(database_url, settings) as first,
        _api_process(database_url, settings) as second,
    ):
        for i in range(60):
            api = first if i % 2 else second
            assert (await api.get("/api/v1/agents", headers=bearer(key))).status_code == 200
        assert (await first.get("/api/v1/agents", headers=bearer(key))).status_code == 429
        assert (await second.get("/api/v1/agents", headers=bearer(key))).status_code == 429


async def test_rate_limits_can_be_switched_off(database_url: str, make_key: MakeKey) -> None:
    key = await make_key(tier=Tier.free)
    async with _api_process(database_url, Settings(rate_limits="off")) as api:
        for _ in range(70):
            response = await api.get("/api/v1/agents", headers=bearer(key))
            assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers
