"""Failed authentication is throttled per client address and per key id, before the
database is asked; a malformed key never costs a query; a key id's budget cannot lock its
owner out; budgets are shared through Redis.

Each test runs an API of its own (its own in-memory budgets) and speaks from addresses of
its choosing (``httpx.ASGITransport(client=…)``); database statements are counted on the
engine (``before_cursor_execute``).
"""

import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.config import Settings
from app.kit.rate_limit import client_bucket
from app.main import create_app
from tests.api.helpers import MakeKey

AGENTS = "/api/v1/agents"


class Api:
    """One API process: requests from any client address, and the statements each cost."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.statements = 0

    def _count(self, *_: Any) -> None:
        self.statements += 1

    async def get(self, address: str, key: str | None) -> tuple[httpx.Response, int]:
        """``GET /agents`` with ``key`` from ``address``: the response and how many SQL
        statements it cost."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://purser.test") as c:
            before = self.statements
            response = await c.get(AGENTS, headers=headers)
            return response, self.statements - before


@asynccontextmanager
async def api(database_url: str, **settings: Any) -> AsyncIterator[Api]:
    app = create_app(database_url=database_url, settings=Settings(run_jobs=False, **settings))
    async with app.router.lifespan_context(app):
        served = Api(app)
        engine = app.state.engine.sync_engine
        event.listen(engine, "before_cursor_execute", served._count)
        try:
            yield served
        finally:
            event.remove(engine, "before_cursor_execute", served._count)


def wrong_secret(key: str) -> str:
    """``key`` with another secret: its key id, well-formed, not the key."""
    return key[:-64] + secrets.token_hex(32)


def unknown_key() -> str:
    return f"sk_test_{secrets.token_hex(8)}_{secrets.token_hex(32)}"


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "authentication_throttled"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["Request-Id"]


MALFORMED = [
    None,
    "",
    "not-a-key",
    "sk_test_",
    "sk_test_" + "g" * 16 + "_" + "0" * 64,
    "sk_test_0123456789abcdef_" + "0" * 63,
    "sk_test_0123456789abcdef_" + "0" * 64 + "0",
    "sk_test_0123456789ABCDEF_" + "0" * 64,
    "x" * 4000,
]


async def test_a_malformed_key_costs_no_database_query(
    database_url: str, make_key: MakeKey
) -> None:
    async with api(database_url, auth_failures_per_address=1000) as served:
        key = await make_key()
        # Warm the pool: a first connection runs the driver's own setup statements.
        ok, _ = await served.get("198.51.100.1", key.secret)
        assert ok.status_code == 200
        for presented in MALFORMED:
            response, statements = await served.get("198.51.100.2", presented)
            assert response.status_code == 401, presented
            assert statements == 0, presented
        # The counter sees the lookup a well-formed key costs.
        response, statements = await served.get("198.51.100.2", unknown_key())
        assert response.status_code == 401
        assert statements >= 1


async def test_past_the_address_budget_attempts_are_429_before_the_database(
    database_url: str, make_key: MakeKey
) -> None:
    attacker, neighbour_key, fresh_key = "203.0.113.5", await make_key(), await make_key()
    async with api(database_url, auth_failures_per_address=3) as served:
        # The neighbour's key authenticated a moment ago (from anywhere): it is known.
        ok, _ = await served.get("198.51.100.9", neighbour_key.secret)
        assert ok.status_code == 200
        for presented in ("nope", unknown_key(), wrong_secret(fresh_key.secret)):
            response, _ = await served.get(attacker, presented)
            assert response.status_code == 401
        for presented in ("nope", unknown_key(), fresh_key.secret):
            response, statements = await served.get(attacker, presented)
            assert_throttled(response)
            assert statements == 0
        # Behind one address (a NAT, a proxy), a key in use keeps working.
        ok, _ = await served.get(attacker, neighbour_key.secret)
        assert ok.status_code == 200
        # Budgets are per address; an IPv6 client counts by its /64.
        ok, _ = await served.get("203.0.113.6", fresh_key.secret)
        assert ok.status_code == 200
        for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"):
            response, _ = await served.get(host, "nope")
            assert response.status_code == 401
        response, _ = await served.get("2001:db8:1:2::4", "nope")
        assert_throttled(response)
        response, _ = await served.get("2001:db8:1:3::1", "nope")
        assert response.status_code == 401


async def test_a_spent_key_id_cannot_lock_its_owner_out(
    database_url: str, make_key: MakeKey
) -> None:
    owner_key = await make_key()
    guess = wrong_secret(owner_key.secret)
    async with api(
        database_url, auth_failures_per_address=100, auth_failures_per_key_id=3
    ) as served:
        for attempt in range(3):
            response, statements = await served.get("192.0.2.1", guess)
            assert response.status_code == 401, attempt
            assert statements >= 1
        # The key id's budget is spent: an address that failed pays no further lookup ...
        response, statements = await served.get("192.0.2.1", guess)
        assert_throttled(response)
        assert statements == 0
        response, statements = await served.get("192.0.2.1", owner_key.secret)
        assert_throttled(response)
        assert statements == 0
        # ... a fresh address gets one lookup, then is refused the same way ...
        response, _ = await served.get("192.0.2.2", guess)
        assert response.status_code == 401
        response, statements = await served.get("192.0.2.2", guess)
        assert_throttled(response)
        assert statements == 0
        # ... and the owner, from an address of its own, is let in.
        ok, _ = await served.get("192.0.2.77", owner_key.secret)
        assert ok.status_code == 200
        # Another key id is not affected anywhere.
        response, _ = await served.get("192.0.2.1", unknown_key())
        assert response.status_code == 401


async def test_rate_limits_off_turns_throttling_off(database_url: str) -> None:
    async with api(database_url, rate_limits="off", auth_failures_per_address=1) as served:
        for _ in range(3):
            response, _ = await served.get("203.0.113.50", "nope")
            assert response.status_code == 401


def test_addresses_are_counted_by_host_and_ipv6_by_its_64() -> None:
    assert client_bucket("203.0.113.5") == "203.0.113.5"
    assert client_bucket("2001:db8:1:2:aaaa::1") == client_bucket("2001:db8:1:2::9")
    assert client_bucket("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_bucket("::ffff:203.0.113.5") == "203.0.113.5"
    assert client_bucket(None) == client_bucket("testclient") == "unknown"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_answers(), reason="needs Redis on 127.0.0.1:6379")
async def test_two_api_processes_share_failure_budgets_through_redis(
    database_url: str, make_key: MakeKey
) -> None:
    # Addresses of this run only: Redis outlives the test and other runs share it.
    run = f"2001:db8:{secrets.token_hex(2)}"
    attacker, other = f"{run}:1::1", f"{run}:2::1"  # two /64s
    key = await make_key()
    settings: dict[str, Any] = {
        "redis_url": "redis://127.0.0.1:6379/0",
        "auth_failures_per_address": 4,
        "auth_failures_per_key_id": 2,
    }
    async with (
        api(database_url, **settings) as first,
        api(database_url, **settings) as second,
    ):
        for i in range(4):
            response, _ = await (first if i % 2 else second).get(attacker, unknown_key())
            assert response.status_code == 401
        for served in (first, second):
            response, statements = await served.get(attacker, "nope")
            assert_throttled(response)
            assert statements == 0
        # One key id's failures, seen by both processes.
        guess = wrong_secret(key.secret)
        for served in (first, second):
            response, _ = await served.get(other, guess)
            assert response.status_code == 401
        response, statements = await first.get(other, guess)
        assert_throttled(response)
        assert statements == 0
