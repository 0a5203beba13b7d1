"""The freeze ladder under real concurrency: the session app served by uvicorn on a
loopback port, clients on several connections, each request in its own database
transaction. A freeze must stop every payment that starts after its answer, let none
complete after it committed, lose no money, and never miss an agent created beside it."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.apikey.schemas import Scope, Tier
from app.domain.audit import service as audit_service
from app.domain.ledger import service as ledger
from app.kit.money import to_minor
from app.kit.time import utc_now
from tests.api.helpers import MakeKey, bearer
from tests.loopback import served_on_loopback

AGENTS = 20
#: Payments each agent starts after the freeze answered, before it stops.
AFTER_FREEZE = 2


@pytest.fixture(scope="module")
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    """The session app served by uvicorn on a loopback port: each request its own
    connection from the app's pool and its own transaction."""
    async with served_on_loopback(app) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=AGENTS + 5, max_keepalive_connections=AGENTS + 5)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        yield client


async def audit(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> list[dict[str, Any]]:
    """Every audit record of the key's owner: sealed first (only sealed records page), then
    read page by page."""
    while await run_in_transaction(sessionmaker, audit_service.seal):
        pass
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/api/v1/audit", params=params, headers=headers)).json()
        records.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return records


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def create_agent(
    http: httpx.AsyncClient, headers: dict[str, str], name: str, balance: str = "100.00"
) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/agents", json={"name": name, "initial_balance": balance}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def frozen_flags(
    http: httpx.AsyncClient, headers: dict[str, str], agent_ids: list[str]
) -> dict[str, bool]:
    responses = await asyncio.gather(
        *(http.get(f"/api/v1/agents/{agent_id}/wallet", headers=headers) for agent_id in agent_ids)
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return {r.json()["agent_id"]: r.json()["frozen"] for r in responses}


@dataclass
class Attempt:
    #: The paying agent (or, for one agent's calls, which call: pay, hold, capture).
    agent_id: str
    #: When the client sent it (the server's clock is the same machine's).
    started: datetime
    response: httpx.Response


async def test_an_owner_wide_freeze_stops_20_agents_paying_concurrently_within_one_request(
    http: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    owner_key = await make_key(scopes=list(Scope), tier=Tier.enterprise)
    headers = bearer(owner_key)
    merchant = await http.post(
        "/api/v1/merchants", json={"name": "Busy Merchant", "category": "tools"}, headers=headers
    )
    merchant_id = merchant.json()["merchant_id"]
    agents = [
        (await create_agent(http, headers, f"payer {i}"))["agent"]["agent_id"]
        for i in range(AGENTS)
    ]
    # Each agent pays with its own key, as agents do (and each key has its own budget).
    agent_keys = {
        agent_id: bearer(
            await make_key(owner=owner_key.owner_id, agent_id=agent_id, tier=Tier.enterprise)
        )
        for agent_id in agents
    }
    async with sessionmaker() as session:
        assert all(v == 0 for v in (await ledger.total_by_currency(session)).values())

    attempts: list[Attempt] = []
    freeze_answered: datetime | None = None
    started_after = Counter[str]()

    async def payer(agent_id: str, index: int) -> None:
        amount = f"0.{index + 1:02d}"
        for _ in range(400):  # a bound, should the freeze never come
            if started_after[agent_id] >= AFTER_FREEZE:
                return
            started = utc_now()
            if freeze_answered is not None and started > freeze_answered:
                started_after[agent_id] += 1
            response = await http.post(
                "/api/v1/payments",
                json={"agent_id": agent_id, "merchant_id": merchant_id, "amount": amount},
                headers=agent_keys[agent_id],
            )
            attempts.append(Attempt(agent_id, started, response))
        raise AssertionError(f"{agent_id} was never stopped")

    async def freezer() -> httpx.Response:
        nonlocal freeze_answered
        # In the middle: once every agent is paying and some payments went through.
        while len(attempts) < 2 * AGENTS:  # noqa: ASYNC110 - polling the payers' progress
            await asyncio.sleep(0.005)
        response = await http.post("/api/v1/freeze", headers=headers)
        freeze_answered = utc_now()
        return response

    freezing = asyncio.create_task(freezer())
    await asyncio.gather(*(payer(agent_id, i) for i, agent_id in enumerate(agents)))
    frozen = await freezing
    assert frozen.status_code == 200, frozen.text
    assert frozen.json()["agent_ids"] == sorted(agents)
    assert freeze_answered is not None

    statuses = Counter(a.response.status_code for a in attempts)
    assert set(statuses) == {200, 403}, statuses
    refused = [a for a in attempts if a.response.status_code == 403]
    assert {a.response.json()["code"] for a in refused} == {"wallet_frozen"}
    # Every payment that started after the freeze answered was refused.
    late = [a for a in attempts if a.started > freeze_answered]
    assert len(late) >= AGENTS * AFTER_FREEZE
    assert all(a.response.status_code == 403 for a in late), [
        a.response.text for a in late if a.response.status_code != 403
    ]
    # No payment completed after the freeze committed (it committed before its answer).
    completed = [
        a.response.json()["transaction"] for a in attempts if a.response.status_code == 200
    ]
    assert len(completed) >= AGENTS  # the freeze really came in the middle
    assert max(instant(t["completed_at"]) for t in completed) < freeze_answered

    # The server's records agree with the answers: one row per attempt, none completed
    # beyond those answered 200, every refusal recorded as a failed transaction.
    spent: dict[str, int] = {}
    for agent_id in agents:
        listed = await http.get(
            f"/api/v1/agents/{agent_id}/transactions", params={"limit": 100}, headers=headers
        )
        rows = listed.json()
        mine = [a for a in attempts if a.agent_id == agent_id]
        assert len(rows) == len(mine)
        done = [t for t in rows if t["status"] == "completed"]
        assert len(done) == sum(1 for a in mine if a.response.status_code == 200)
        assert all(instant(t["completed_at"]) < freeze_answered for t in done)
        failed = [t for t in rows if t["status"] == "failed"]
        assert all("frozen" in t["error_message"] for t in failed)
        spent[agent_id] = sum(to_minor(t["total_cost"], "USDC") for t in done)

    # Money is conserved: each wallet lost exactly what it paid, the merchant got the
    # amounts, and the ledger still sums to zero.
    for agent_id in agents:
        wallet = (await http.get(f"/api/v1/agents/{agent_id}/wallet", headers=headers)).json()
        assert wallet["frozen"] is True
        assert wallet["held_balance"] == "0.00"
        assert to_minor(wallet["balance"], "USDC") == to_minor("100.00", "USDC") - spent[agent_id]
    merchant_wallet = (
        await http.get(f"/api/v1/merchants/{merchant_id}/wallet", headers=headers)
    ).json()
    assert to_minor(merchant_wallet["balance"], "USDC", allow_zero=True) == sum(
        to_minor(t["amount"], "USDC") for t in completed
    )
    async with sessionmaker() as session:
        assert all(v == 0 for v in (await ledger.total_by_currency(session)).values())

    records = [r for r in await audit(http, headers, sessionmaker) if r["event"] == "owner_frozen"]
    assert len(records) == 1
    assert records[0]["key_id"] == owner_key.key_id
    assert records[0]["data"]["agent_ids"] == sorted(agents)


async def test_an_agent_freeze_stops_its_concurrent_payments_holds_and_captures(
    http: httpx.AsyncClient, make_key: MakeKey
) -> None:
    """One agent paying, and placing and capturing holds, on 12 connections at once; its
    own freeze comes in the middle. Captures of holds placed before the freeze are refused
    after it, and their holds stay pending with their money held."""
    owner_key = await make_key(scopes=list(Scope), tier=Tier.enterprise)
    headers = bearer(owner_key)
    merchant = await http.post(
        "/api/v1/merchants", json={"name": "Hold Merchant", "category": "tools"}, headers=headers
    )
    merchant_id = merchant.json()["merchant_id"]
    agent_id = (await create_agent(http, headers, "busy agent", "200.00"))["agent"]["agent_id"]
    body = {"agent_id": agent_id, "merchant_id": merchant_id, "amount": "0.50"}
    attempts: list[Attempt] = []
    pending: list[str] = []
    freeze_answered: datetime | None = None

    def stopped() -> bool:
        return (
            freeze_answered is not None
            and sum(1 for a in attempts if a.started > freeze_answered) >= 24
        )

    async def paying() -> None:
        while not stopped():
            started = utc_now()
            response = await http.post("/api/v1/payments", json=body, headers=headers)
            attempts.append(Attempt("pay", started, response))

    async def holding() -> None:
        while not stopped():
            started = utc_now()
            placed = await http.post("/api/v1/payments/holds", json=body, headers=headers)
            attempts.append(Attempt("hold", started, placed))
            if placed.status_code != 201:
                continue
            hold_id = placed.json()["hold_id"]
            # A pause, so that some holds are placed before the freeze and captured after.
            await asyncio.sleep(0.02)
            started = utc_now()
            captured = await http.post(f"/api/v1/payments/holds/{hold_id}/capture", headers=headers)
            attempts.append(Attempt("capture", started, captured))
            if captured.status_code != 200:
                pending.append(hold_id)

    async def freezer() -> httpx.Response:
        nonlocal freeze_answered
        while len(attempts) < 30:  # noqa: ASYNC110 - polling the workers' progress
            await asyncio.sleep(0.005)
        response = await http.post(f"/api/v1/agents/{agent_id}/freeze", headers=headers)
        freeze_answered = utc_now()
        return response

    freezing = asyncio.create_task(freezer())
    await asyncio.gather(*(paying() for _ in range(6)), *(holding() for _ in range(6)))
    frozen = await freezing
    assert frozen.status_code == 200, frozen.text
    assert freeze_answered is not None

    for attempt in attempts:
        status = attempt.response.status_code
        assert status in (200, 201, 403), attempt.response.text
        if status == 403:
            assert attempt.response.json()["code"] == "wallet_frozen"
        if attempt.started > freeze_answered:
            assert status == 403, (attempt.agent_id, attempt.response.text)
    kinds = Counter((a.agent_id, a.response.status_code) for a in attempts)
    assert kinds[("capture", 403)] >= 1, kinds  # a hold placed before, captured after
    assert kinds[("pay", 200)] >= 1, kinds
    assert kinds[("capture", 200)] >= 1, kinds

    # Completed payments and captures all completed before the freeze answered.
    paid = [a.response.json()["transaction"] for a in attempts if a.agent_id == "pay"]
    paid = [t for t in paid if t is not None]
    captures = [
        a.response.json()["capture_tx_id"]
        for a in attempts
        if a.agent_id == "capture" and a.response.status_code == 200
    ]
    listed = await http.get(
        f"/api/v1/agents/{agent_id}/transactions", params={"limit": 100}, headers=headers
    )
    rows = {t["tx_id"]: t for t in listed.json()}
    done = [t for t in rows.values() if t["status"] == "completed"]
    assert {t["tx_id"] for t in done} == {t["tx_id"] for t in paid} | set(captures)
    assert all(instant(t["completed_at"]) < freeze_answered for t in done)
    refused = [
        a for a in attempts if a.agent_id in ("pay", "capture") and a.response.status_code == 403
    ]
    assert sum(1 for t in rows.values() if t["status"] == "failed") == len(refused)

    # The holds refused a capture are still pending, their money still held, and the
    # wallet lost exactly what completed.
    held = 0
    for hold_id in pending:
        hold = (await http.get(f"/api/v1/payments/holds/{hold_id}", headers=headers)).json()
        assert hold["status"] == "pending", hold
        held += to_minor(hold["amount"], "USDC") + to_minor(hold["fee"], "USDC")
    wallet = (await http.get(f"/api/v1/agents/{agent_id}/wallet", headers=headers)).json()
    assert to_minor(wallet["held_balance"], "USDC", allow_zero=True) == held
    spent = sum(to_minor(t["total_cost"], "USDC") for t in done)
    assert to_minor(wallet["balance"], "USDC") == to_minor("200.00", "USDC") - spent - held


async def freeze_after(
    http: httpx.AsyncClient, headers: dict[str, str], delay: float
) -> httpx.Response:
    """``POST /freeze`` after ``delay`` seconds: the rounds move it across the creations."""
    await asyncio.sleep(delay)
    return await http.post("/api/v1/freeze", headers=headers)


async def test_agents_created_beside_an_owner_freeze_are_never_left_unfrozen(
    http: httpx.AsyncClient, make_key: MakeKey
) -> None:
    for round_ in range(10):
        key = await make_key(scopes=list(Scope), tier=Tier.enterprise)
        headers = bearer(key)
        first = (await create_agent(http, headers, "existing"))["agent"]["agent_id"]

        created, frozen = await asyncio.gather(
            asyncio.gather(*(create_agent(http, headers, f"new {i}", "1.00") for i in range(2))),
            freeze_after(http, headers, 0.002 * round_),
        )
        assert frozen.status_code == 200, frozen.text
        new = [c["agent"]["agent_id"] for c in created]
        flags = await frozen_flags(http, headers, [first, *new])
        assert all(flags.values()), (round_, flags)
        # Each new agent was either frozen by the freeze (it existed when the freeze ran)
        # or created frozen (the freeze had committed): exactly one of the two.
        by_freeze = set(frozen.json()["agent_ids"])
        assert first in by_freeze
        for made in created:
            agent_id = made["agent"]["agent_id"]
            assert (agent_id in by_freeze) != made["wallet"]["frozen"], (round_, made["wallet"])

        # And beside the owner's unfreeze, none is left frozen.
        created, thawed = await asyncio.gather(
            asyncio.gather(*(create_agent(http, headers, f"thaw {i}", "1.00") for i in range(2))),
            http.post("/api/v1/unfreeze", headers=headers),
        )
        assert thawed.status_code == 200, thawed.text
        everyone = [first, *new, *(c["agent"]["agent_id"] for c in created)]
        flags = await frozen_flags(http, headers, everyone)
        assert not any(flags.values()), (round_, flags)


async def waiting_on_locks(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Backends of this database waiting for a lock."""
    async with sessionmaker() as session:
        count = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(count or 0)


async def until_waiting(sessionmaker: async_sessionmaker[AsyncSession], count: int) -> None:
    for _ in range(500):
        if await waiting_on_locks(sessionmaker) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} requests never waited for the wallet's lock")


@pytest.mark.parametrize(
    ("call", "scope"),
    [("pay", "owner"), ("hold", "agent"), ("capture", "owner"), ("request", "agent")],
)
async def test_a_call_queued_behind_the_freeze_on_the_wallets_lock_is_refused(
    http: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    call: str,
    scope: str,
) -> None:
    """The race the 20 agents leave to chance, made certain: a payment in flight holds the
    wallet's lock (here, a transaction of the test's); the freeze queues for it, then the
    call queues behind the freeze. The call started before the freeze answered, yet runs
    after it committed: it must read the freeze from the row it locks, and be refused."""
    key = await make_key(scopes=list(Scope), tier=Tier.enterprise)
    headers = bearer(key)
    created = await create_agent(http, headers, "queued agent")
    agent_id, wallet_id = created["agent"]["agent_id"], created["wallet"]["wallet_id"]
    merchant = await http.post(
        "/api/v1/merchants", json={"name": "Queue Merchant", "category": "tools"}, headers=headers
    )
    body = {"agent_id": agent_id, "merchant_id": merchant.json()["merchant_id"], "amount": "5.00"}
    if call == "pay":
        path, payload = "/api/v1/payments", body
    elif call == "hold":
        path, payload = "/api/v1/payments/holds", body
    elif call == "capture":
        placed = await http.post("/api/v1/payments/holds", json=body, headers=headers)
        path, payload = f"/api/v1/payments/holds/{placed.json()['hold_id']}/capture", None
    else:
        peer = (await create_agent(http, headers, "requesting agent"))["agent"]["agent_id"]
        invoice = await http.post(
            "/api/v1/payments/request",
            json={"requester_agent_id": peer, "payer_agent_id": agent_id, "amount": "5.00"},
            headers=headers,
        )
        path, payload = f"/api/v1/payments/request/{invoice.json()['request_id']}/pay", None
    freeze_path = "/api/v1/freeze" if scope == "owner" else f"/api/v1/agents/{agent_id}/freeze"
    before = (await http.get(f"/api/v1/agents/{agent_id}/wallet", headers=headers)).json()

    async with sessionmaker() as locker:
        await locker.execute(
            text("SELECT id FROM wallets WHERE id = :id FOR UPDATE"), {"id": wallet_id}
        )
        freezing = asyncio.create_task(http.post(freeze_path, headers=headers))
        await until_waiting(sessionmaker, 1)
        calling = asyncio.create_task(http.post(path, json=payload, headers=headers))
        await until_waiting(sessionmaker, 2)
        await locker.rollback()
    frozen, called = await freezing, await calling
    assert frozen.status_code == 200, frozen.text
    assert called.status_code == 403, called.text
    assert called.json()["code"] == "wallet_frozen"
    after = (await http.get(f"/api/v1/agents/{agent_id}/wallet", headers=headers)).json()
    assert (after["balance"], after["held_balance"]) == (before["balance"], before["held_balance"])


@pytest.mark.parametrize("first", ["freeze", "create"])
async def test_an_agent_created_in_the_queue_with_an_owner_freeze_ends_up_frozen(
    http: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    first: str,
) -> None:
    """The creation and the freeze queued in a known order on the owner's row (held by a
    transaction of the test's meanwhile): the freeze first, the agent starts frozen; the
    creation first, the freeze waits for it and freezes the new agent."""
    key = await make_key(scopes=list(Scope), tier=Tier.enterprise)
    headers = bearer(key)
    existing = (await create_agent(http, headers, "existing agent"))["agent"]["agent_id"]

    def freeze() -> Any:
        return http.post("/api/v1/freeze", headers=headers)

    def create() -> Any:
        return create_agent(http, headers, "queued agent")

    async with sessionmaker() as locker:
        await locker.execute(
            text("SELECT 1 FROM owner_controls WHERE owner_id = :owner FOR UPDATE"),
            {"owner": key.owner_id},
        )
        tasks = {}
        for step, name in enumerate([first, "create" if first == "freeze" else "freeze"]):
            tasks[name] = asyncio.create_task(freeze() if name == "freeze" else create())
            await until_waiting(sessionmaker, step + 1)
        await locker.rollback()
    frozen: httpx.Response = await tasks["freeze"]
    created: dict[str, Any] = await tasks["create"]
    assert frozen.status_code == 200, frozen.text
    new = created["agent"]["agent_id"]
    if first == "freeze":
        assert created["wallet"]["frozen"] is True
        assert frozen.json()["agent_ids"] == [existing]
    else:
        assert created["wallet"]["frozen"] is False  # created before the freeze committed
        assert frozen.json()["agent_ids"] == sorted([existing, new])
    assert await frozen_flags(http, headers, [existing, new]) == {existing: True, new: True}
