"""Sandbox and live never mix: one database, a sandbox server and a live server, one owner
with a key of each mode. Neither key sees, pays from, pays to or resolves anything of the
other mode (404s and empty lists, as for ids that do not exist); the ledger refuses an
entry mixing the modes; a server does not start on a database holding the other mode's
data unless told to."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Mode, Settings
from app.db import (
    MixedModes,
    check_modes_apart,
    create_engine,
    create_sessionmaker,
    run_in_transaction,
)
from app.domain.hold import service as hold_service
from app.domain.ledger import service as ledger
from app.domain.ledger.schemas import Leg
from app.domain.payment.service import system_context
from app.kit.money import Money
from app.kit.time import utc_now
from app.main import create_app
from app.models import Wallet
from app.models.ledger import AccountKind, EntryKind
from app.postgres import to_libpq_url
from tests.api.helpers import bearer, key_maker

PURSER = str(Path(sys.executable).parent / "purser")
OWNER = "owner_both_modes"


def _settings(mode: Mode, **overrides: Any) -> Settings:
    return Settings(mode=mode, run_jobs=False, rate_limits="off", **overrides)


@dataclass
class Servers:
    database_url: str
    sandbox: httpx.AsyncClient
    live: httpx.AsyncClient
    #: Headers of the one owner's sandbox key and live key.
    test_key: dict[str, str]
    live_key: dict[str, str]
    sandbox_sessions: async_sessionmaker[AsyncSession]
    live_sessions: async_sessionmaker[AsyncSession]


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://purser.test")


@pytest.fixture
async def servers(empty_database_url: str) -> AsyncIterator[Servers]:
    """A sandbox app and a live app (allowed to share) on one fresh database."""
    engines: list[AsyncEngine] = [
        create_engine(empty_database_url, mode=mode, pool_size=2, max_overflow=0)
        for mode in (Mode.sandbox, Mode.live)
    ]
    sandbox_sessions, live_sessions = (create_sessionmaker(engine) for engine in engines)
    make_key = key_maker(sandbox_sessions)
    test_key = await make_key(OWNER)
    live_key = await make_key(OWNER, mode=Mode.live)
    sandbox_app = create_app(database_url=empty_database_url, settings=_settings(Mode.sandbox))
    live_app = create_app(
        database_url=empty_database_url,
        settings=_settings(Mode.live, allow_mixed_modes=True),
    )
    try:
        async with (
            sandbox_app.router.lifespan_context(sandbox_app),
            live_app.router.lifespan_context(live_app),
            _client(sandbox_app) as sandbox,
            _client(live_app) as live,
        ):
            yield Servers(
                empty_database_url,
                sandbox,
                live,
                bearer(test_key),
                bearer(live_key),
                sandbox_sessions,
                live_sessions,
            )
    finally:
        for engine in engines:
            await engine.dispose()


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    """The rows of a list response (a JSON array, or a page object's ``data``)."""
    body = response.json()
    items: list[dict[str, Any]] = body if isinstance(body, list) else body["data"]
    return items


async def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def _sandbox_world(s: Servers) -> dict[str, Any]:
    """Sandbox-funded agents, a merchant with a product, a payment, a hold, a request."""
    client, headers = s.sandbox, s.test_key
    payer = await _created(
        await client.post(
            "/api/v1/agents", json={"name": "payer", "initial_balance": "50.00"}, headers=headers
        )
    )
    payee = await _created(
        await client.post("/api/v1/agents", json={"name": "payee"}, headers=headers)
    )
    merchant = await _created(
        await client.post("/api/v1/merchants", json={"name": "Sandbox Shop"}, headers=headers)
    )
    product = await _created(
        await client.post(
            "/api/v1/catalog/products",
            json={"merchant_id": merchant["merchant_id"], "name": "Toy", "price": "1.00"},
            headers=headers,
        )
    )
    agent_id = payer["agent"]["agent_id"]
    paid = await _created(
        await client.post(
            "/api/v1/payments",
            json={"agent_id": agent_id, "merchant_id": merchant["merchant_id"], "amount": "5.00"},
            headers=headers,
        )
    )
    hold = await _created(
        await client.post(
            "/api/v1/payments/holds",
            json={"agent_id": agent_id, "merchant_id": merchant["merchant_id"], "amount": "10.00"},
            headers=headers,
        )
    )
    request = await _created(
        await client.post(
            "/api/v1/payments/request",
            json={
                "requester_agent_id": payee["agent"]["agent_id"],
                "payer_agent_id": agent_id,
                "amount": "2.00",
            },
            headers=headers,
        )
    )
    return {
        "agent_id": agent_id,
        "wallet_id": payer["wallet"]["wallet_id"],
        "payee_id": payee["agent"]["agent_id"],
        "payee_wallet_id": payee["wallet"]["wallet_id"],
        "merchant_id": merchant["merchant_id"],
        "product_id": product["product_id"],
        "tx_id": paid["transaction"]["tx_id"],
        "hold_id": hold["hold_id"],
        "request_id": request["request_id"],
    }


async def _fund_live_wallet(s: Servers, agent_id: str, amount: Money) -> None:
    """Live money arrives from a rail: a clearing account of the live mode pays it in."""

    async def fund(session: AsyncSession) -> None:
        wallet = (
            await session.execute(select(Wallet).where(Wallet.agent_id == agent_id))
        ).scalar_one()
        source = await ledger.open_system_account(
            session, kind=AccountKind.rail_clearing, currency=amount.currency
        )
        await ledger.post_entry(
            session,
            kind=EntryKind.funding,
            legs=[
                Leg(source.id, Money(-amount.minor, amount.currency)),
                Leg(wallet.available_account_id, amount),
            ],
        )

    await run_in_transaction(s.live_sessions, fund)


async def test_a_live_key_cannot_see_or_spend_sandbox_money(servers: Servers) -> None:
    s = servers
    world = await _sandbox_world(s)
    live, headers = s.live, s.live_key
    agent_id, tx_id, hold_id = world["agent_id"], world["tx_id"], world["hold_id"]
    request_id = world["request_id"]

    # Lists are empty.
    for path in (
        "/api/v1/agents",
        "/api/v1/merchants",
        "/api/v1/catalog/products",
        "/api/v1/payments/request",
    ):
        listed = await live.get(path, headers=headers)
        assert listed.status_code == 200, (path, listed.text)
        assert _items(listed) == [], (path, listed.text)

    # Every sandbox id answers as if it did not exist.
    not_found = [
        ("GET", f"/api/v1/agents/{agent_id}", None),
        ("PATCH", f"/api/v1/agents/{agent_id}", {"name": "taken over"}),
        ("GET", f"/api/v1/agents/{agent_id}/wallet", None),
        ("PATCH", f"/api/v1/agents/{agent_id}/wallet/limits", {"limit_total": "1000.00"}),
        ("GET", f"/api/v1/agents/{agent_id}/transactions", None),
        ("GET", f"/api/v1/agents/{agent_id}/holds", None),
        ("GET", f"/api/v1/merchants/{world['merchant_id']}", None),
        ("GET", f"/api/v1/merchants/{world['merchant_id']}/wallet", None),
        ("GET", f"/api/v1/catalog/products/{world['product_id']}", None),
        ("PATCH", f"/api/v1/catalog/products/{world['product_id']}", {"price": "0.01"}),
        ("GET", f"/api/v1/payments/{tx_id}", None),
        ("POST", f"/api/v1/payments/{tx_id}/refund", {}),
        ("GET", f"/api/v1/payments/{tx_id}/refunds", None),
        ("GET", f"/api/v1/payments/holds/{hold_id}", None),
        ("POST", f"/api/v1/payments/holds/{hold_id}/capture", None),
        ("POST", f"/api/v1/payments/holds/{hold_id}/void", None),
        ("GET", f"/api/v1/payments/request/{request_id}", None),
        ("POST", f"/api/v1/payments/request/{request_id}/pay", None),
        ("DELETE", f"/api/v1/payments/request/{request_id}", None),
    ]
    for method, path, body in not_found:
        response = await live.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.text)

    # The incident: a live key paying out of a sandbox-funded wallet, to a live payee (so
    # that it is the payer that is not found) or to a sandbox one.
    live_merchant = await _created(
        await live.post("/api/v1/merchants", json={"name": "Live Shop"}, headers=headers)
    )
    live_agent = await _created(
        await live.post("/api/v1/agents", json={"name": "live agent"}, headers=headers)
    )
    live_agent_id = live_agent["agent"]["agent_id"]
    for payee, not_found in (
        ({"merchant_id": live_merchant["merchant_id"]}, "agent_id"),
        ({"recipient_wallet_id": live_agent["wallet"]["wallet_id"]}, "agent_id"),
        ({"recipient_wallet_id": world["payee_wallet_id"]}, "recipient_wallet_id"),
    ):
        spent = await live.post(
            "/api/v1/payments",
            json={"agent_id": agent_id, "amount": "10.00", **payee},
            headers=headers,
        )
        assert spent.status_code == 404, (payee, spent.text)
        assert spent.json()["param"] == not_found
    held = await live.post(
        "/api/v1/payments/holds",
        json={"agent_id": agent_id, "merchant_id": live_merchant["merchant_id"], "amount": "1.00"},
        headers=headers,
    )
    assert held.status_code == 404, held.text

    # A live agent cannot pay into sandbox wallets, merchants or products, nor bill or be
    # billed by a sandbox agent, nor place a hold for a sandbox merchant.
    await _fund_live_wallet(s, live_agent_id, Money(20_000_000, "USDC"))
    for payee in (
        {"merchant_id": world["merchant_id"], "amount": "1.00"},
        {"recipient_wallet_id": world["payee_wallet_id"], "amount": "1.00"},
        {"recipient_wallet_id": world["wallet_id"], "amount": "1.00"},
        {"product_id": world["product_id"]},
    ):
        paid = await live.post(
            "/api/v1/payments", json={"agent_id": live_agent_id, **payee}, headers=headers
        )
        assert paid.status_code == 404, (payee, paid.text)
    held = await live.post(
        "/api/v1/payments/holds",
        json={"agent_id": live_agent_id, "merchant_id": world["merchant_id"], "amount": "1.00"},
        headers=headers,
    )
    assert held.status_code == 404, held.text
    for requester, payer in ((live_agent_id, agent_id), (agent_id, live_agent_id)):
        billed = await live.post(
            "/api/v1/payments/request",
            json={"requester_agent_id": requester, "payer_agent_id": payer, "amount": "1.00"},
            headers=headers,
        )
        assert billed.status_code == 404, billed.text

    # Nor the reverse: the sandbox key does not see the live agent.
    sandbox = s.sandbox
    assert (
        await sandbox.get(f"/api/v1/agents/{live_agent_id}", headers=s.test_key)
    ).status_code == 404
    listed = _items(await sandbox.get("/api/v1/agents", headers=s.test_key))
    assert {agent["agent_id"] for agent in listed} == {world["payee_id"], agent_id}

    # The sandbox side is untouched: 50 - (5 + 0.10) - (10 + 0.10) held.
    wallet = (await sandbox.get(f"/api/v1/agents/{agent_id}/wallet", headers=s.test_key)).json()
    assert (wallet["balance"], wallet["held_balance"]) == ("34.80", "10.10")
    hold = (await sandbox.get(f"/api/v1/payments/holds/{hold_id}", headers=s.test_key)).json()
    assert hold["status"] == "pending"
    request = (
        await sandbox.get(f"/api/v1/payments/request/{request_id}", headers=s.test_key)
    ).json()
    assert request["status"] == "pending"


async def test_each_mode_pays_fees_into_its_own_account(servers: Servers) -> None:
    s = servers
    world = await _sandbox_world(s)
    live, headers = s.live, s.live_key
    agent = await _created(
        await live.post("/api/v1/agents", json={"name": "live payer"}, headers=headers)
    )
    agent_id = agent["agent"]["agent_id"]
    await _fund_live_wallet(s, agent_id, Money(20_000_000, "USDC"))
    merchant = await _created(
        await live.post("/api/v1/merchants", json={"name": "Live Shop"}, headers=headers)
    )
    paid = await live.post(
        "/api/v1/payments",
        json={"agent_id": agent_id, "merchant_id": merchant["merchant_id"], "amount": "3.00"},
        headers=headers,
    )
    assert paid.status_code == 200, paid.text
    wallet = (await live.get(f"/api/v1/agents/{agent_id}/wallet", headers=headers)).json()
    assert wallet["balance"] == "16.90"
    assert (
        await live.get(f"/api/v1/payments/{world['tx_id']}", headers=headers)
    ).status_code == 404

    async with s.sandbox_sessions() as session:
        fees = dict(
            (
                await session.execute(
                    text(
                        "SELECT a.mode, sum(b.balance) FROM ledger_accounts a"
                        " JOIN ledger_balances b ON b.account_id = a.id"
                        " WHERE a.system_key = 'fee_revenue:USDC' GROUP BY a.mode"
                    )
                )
            ).all()
        )
        # Sandbox: the payment's fee and the hold's (reserved, not yet earned: 0.10 held).
        assert fees == {"sandbox": 100_000, "live": 100_000}
        # Each mode's ledger balances on its own.
        totals = (
            await session.execute(
                text(
                    "SELECT a.mode, a.currency, sum(b.balance) FROM ledger_accounts a"
                    " JOIN ledger_balances b ON b.account_id = a.id GROUP BY a.mode, a.currency"
                    " HAVING sum(b.balance) <> 0"
                )
            )
        ).all()
        assert totals == []


async def test_jobs_expire_only_their_own_modes_holds(servers: Servers) -> None:
    s = servers
    world = await _sandbox_world(s)
    later = utc_now() + timedelta(days=365)
    context = system_context(later, Settings().limits_zone)

    async def expire(session: AsyncSession) -> int:
        return await hold_service.expire_due(session, context)

    assert await run_in_transaction(s.live_sessions, expire) == 0
    hold = (
        await s.sandbox.get(f"/api/v1/payments/holds/{world['hold_id']}", headers=s.test_key)
    ).json()
    assert hold["status"] == "pending"
    assert await run_in_transaction(s.sandbox_sessions, expire) == 1


async def _open(sessions: async_sessionmaker[AsyncSession]) -> str:
    async def work(session: AsyncSession) -> str:
        account = await ledger.open_account(session, kind=AccountKind.rail_clearing, currency="USD")
        return account.id

    return await run_in_transaction(sessions, work)


async def test_the_database_refuses_an_entry_mixing_modes(servers: Servers) -> None:
    s = servers
    sandbox_a, sandbox_b = await _open(s.sandbox_sessions), await _open(s.sandbox_sessions)
    live_a = await _open(s.live_sessions)
    one = Money(1, "USD")
    minus_one = Money(-1, "USD")
    attempts = [
        # Sandbox money into a live account, from either side.
        (s.sandbox_sessions, [Leg(sandbox_a, minus_one), Leg(live_a, one)]),
        (s.live_sessions, [Leg(sandbox_a, minus_one), Leg(live_a, one)]),
        # A live connection moving sandbox money between sandbox accounts.
        (s.live_sessions, [Leg(sandbox_a, minus_one), Leg(sandbox_b, one)]),
    ]
    for sessions, legs in attempts:
        async with sessions() as session:
            with pytest.raises(IntegrityError, match="sandbox and live money never meet"):
                await ledger.post_entry(session, kind=EntryKind.transfer, legs=legs)
            await session.rollback()
    # The same entry within one mode posts.
    async with s.sandbox_sessions() as session:
        await ledger.post_entry(
            session,
            kind=EntryKind.transfer,
            legs=[Leg(sandbox_a, minus_one), Leg(sandbox_b, one)],
        )
        await session.commit()
    # An account's mode never changes.
    async with s.sandbox_sessions() as session:
        with pytest.raises(DBAPIError, match="not allowed"):
            await session.execute(
                text("UPDATE ledger_accounts SET mode = 'live' WHERE id = :id"), {"id": sandbox_a}
            )
        await session.rollback()


async def _sandbox_agent(database_url: str) -> None:
    app = create_app(database_url=database_url, settings=_settings(Mode.sandbox))
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        key = await key_maker(create_sessionmaker(engine))(OWNER)
    finally:
        await engine.dispose()
    async with app.router.lifespan_context(app), _client(app) as client:
        await _created(
            await client.post(
                "/api/v1/agents",
                json={"name": "sandbox", "initial_balance": "10.00"},
                headers=bearer(key),
            )
        )


async def test_a_live_server_refuses_a_database_holding_sandbox_data(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    live = create_engine(url, mode=Mode.live, pool_size=1, max_overflow=0)
    sandbox = create_engine(url, mode=Mode.sandbox, pool_size=1, max_overflow=0)
    try:
        # A fresh database (its sandbox fee accounts are the platform's, not data) is fine.
        await check_modes_apart(live, Mode.live, allow_mixed=False)
        await _sandbox_agent(url)
        with pytest.raises(MixedModes) as refused:
            await check_modes_apart(live, Mode.live, allow_mixed=False)
        message = str(refused.value)
        assert "\n" not in message
        assert "holds sandbox data" in message
        assert "PURSER_ALLOW_MIXED_MODES=true" in message
        await check_modes_apart(live, Mode.live, allow_mixed=True)
        await check_modes_apart(sandbox, Mode.sandbox, allow_mixed=False)
    finally:
        await live.dispose()
        await sandbox.dispose()

    refusing = create_app(database_url=url, settings=_settings(Mode.live))
    with pytest.raises(MixedModes):
        async with refusing.router.lifespan_context(refusing):
            pass
    allowed = create_app(database_url=url, settings=_settings(Mode.live, allow_mixed_modes=True))
    async with allowed.router.lifespan_context(allowed), _client(allowed) as client:
        assert (await client.get("/api/v1/health")).status_code == 200


async def test_a_sandbox_server_refuses_a_database_holding_live_data(
    empty_database_url: str,
) -> None:
    live = create_engine(empty_database_url, mode=Mode.live, pool_size=1, max_overflow=0)
    try:
        key = await key_maker(create_sessionmaker(live))(OWNER, mode=Mode.live)
        app = create_app(database_url=empty_database_url, settings=_settings(Mode.live))
        async with app.router.lifespan_context(app), _client(app) as client:
            await _created(
                await client.post("/api/v1/agents", json={"name": "live"}, headers=bearer(key))
            )
        with pytest.raises(MixedModes, match="holds live data"):
            await check_modes_apart(live, Mode.sandbox, allow_mixed=False)
    finally:
        await live.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_purser_serve_and_worker_refuse_in_one_line(empty_database_url: str) -> None:
    asyncio.run(_sandbox_agent(empty_database_url))
    env = {
        **os.environ,
        "DATABASE_URL": to_libpq_url(empty_database_url),
        "PURSER_MODE": "live",
    }
    env.pop("PURSER_ALLOW_MIXED_MODES", None)
    for command in (["serve", "--port", str(_free_port())], ["worker"]):
        result = subprocess.run(
            [PURSER, *command], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: the database holds sandbox data")
        assert "PURSER_ALLOW_MIXED_MODES=true" in lines[0]

    # Told to, it serves (live keys only see live data).
    port = _free_port()
    process = subprocess.Popen(
        [PURSER, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "PURSER_ALLOW_MIXED_MODES": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert "Traceback" not in output


async def test_a_live_server_has_no_test_clock(servers: Servers) -> None:
    for method, path, body in (
        ("GET", "/api/v1/test/clock", None),
        ("POST", "/api/v1/test/clock/advance", {"seconds": 60}),
    ):
        response = await servers.live.request(method, path, json=body, headers=servers.live_key)
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    # The sandbox server has one.
    sandbox = await servers.sandbox.get("/api/v1/test/clock", headers=servers.test_key)
    assert sandbox.status_code == 200, sandbox.text
