"""Payments under real concurrency: many requests at once through the API, each with its
own connection and transaction, against one PostgreSQL."""

import asyncio
import random
from collections import Counter

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.ledger import service as ledger
from app.kit.money import to_minor
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of


async def test_limit_of_10_and_50_concurrent_payments_of_1(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers, limit_total="10.00"))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "1.00"}
    responses = await asyncio.gather(
        *(client.post("/api/v1/payments", json=body, headers=headers) for _ in range(50))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 10, 400: 40}
    assert all(r.json()["code"] == "limit_exceeded" for r in responses if r.status_code == 400)
    wallet = await wallet_of(client, headers, agent["agent_id"])
    assert wallet["spent_total"] == "10.00"
    assert wallet["remaining_limit"] == "0.00"
    assert wallet["balance"] == "89.00"  # 10 x (1.00 + 0.10 fee)
    history = await client.get(
        f"/api/v1/agents/{agent['agent_id']}/transactions?limit=100", headers=headers
    )
    assert Counter(t["status"] for t in history.json()) == {"completed": 10, "failed": 40}


async def test_100_opposite_direction_agent_payments_conserve_money(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    headers = bearer(await make_key())
    agents = [(await create_agent(client, headers, name=f"peer {i}"))["agent"] for i in range(4)]
    fee_account = "acct_fee_revenue_usdc"
    async with sessionmaker() as session:
        fees_before = (await ledger.balance_of(session, fee_account)).minor
    rng = random.Random(5)
    pairs = [(agents[i % 4], agents[(i + 1) % 4]) for i in range(50)]
    pairs += [(b, a) for a, b in pairs]
    rng.shuffle(pairs)

    async def pay(payer: dict[str, str], payee: dict[str, str]) -> httpx.Response:
        return await client.post(
            "/api/v1/payments",
            json={
                "agent_id": payer["agent_id"],
                "recipient_wallet_id": payee["wallet_id"],
                "amount": f"{rng.randint(1, 300) / 100:.2f}",
            },
            headers=headers,
        )

    responses = await asyncio.gather(*(pay(a, b) for a, b in pairs))
    assert {r.status_code for r in responses} <= {200, 400}, [
        r.text for r in responses if r.status_code not in (200, 400)
    ]
    completed = [r.json()["transaction"] for r in responses if r.status_code == 200]
    assert len(completed) > 80
    total_agents = 0
    for agent in agents:
        wallet = await wallet_of(client, headers, agent["agent_id"])
        total_agents += to_minor(wallet["balance"], "USDC", allow_zero=True)
    async with sessionmaker() as session:
        fees_after = (await ledger.balance_of(session, fee_account)).minor
        assert all(v == 0 for v in (await ledger.total_by_currency(session)).values())
    fees_paid = sum(to_minor(t["fee"], "USDC") for t in completed)
    assert fees_after - fees_before >= fees_paid  # other tests may pay fees at the same time
    assert total_agents + fees_paid == 4 * 100_000_000


async def test_same_idempotency_key_20_times_at_once_pays_once(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "7.00"}
    keyed = {**headers, "Idempotency-Key": "concurrent-once"}
    responses = await asyncio.gather(
        *(client.post("/api/v1/payments", json=body, headers=keyed) for _ in range(20))
    )
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}
    assert statuses[200] >= 1
    assert all(
        r.json()["code"] == "idempotency_key_in_use" for r in responses if r.status_code == 409
    )
    originals = [
        r for r in responses if r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    ]
    assert len(originals) == 1
    history = await client.get(f"/api/v1/agents/{agent['agent_id']}/transactions", headers=headers)
    assert len(history.json()) == 1
    assert (await wallet_of(client, headers, agent["agent_id"]))["balance"] == "92.90"
    replays = await asyncio.gather(
        *(client.post("/api/v1/payments", json=body, headers=keyed) for _ in range(20))
    )
    assert all(r.status_code == 200 for r in replays)
    assert {r.content for r in replays} == {originals[0].content}
