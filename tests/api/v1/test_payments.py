"""Payments through the API, from the reference's own examples to every refusal."""

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of


async def test_seed_payment_example(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    estimate = await client.get(
        "/api/v1/payments/estimate?amount=15.99&currency=USDC", headers=headers
    )
    assert estimate.json() == {
        "amount": "15.99",
        "fee": "0.10",
        "total": "16.09",
        "currency": "USDC",
    }
    body = {
        "agent_id": agent["agent_id"],
        "merchant_id": merchant["merchant_id"],
        "amount": "15.99",
        "currency": "USDC",
        "purpose": "Product purchase: Wireless Headphones",
    }
    response = await client.post("/api/v1/payments", json=body, headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["success"] is True
    assert result["error"] is None
    tx = result["transaction"]
    assert tx["tx_id"].startswith("tx_")
    assert tx["from_wallet"] == agent["wallet_id"]
    assert tx["to_wallet"] == merchant["wallet_id"]
    assert (tx["amount"], tx["fee"], tx["total_cost"]) == ("15.99", "0.10", "16.09")
    assert tx["currency"] == "USDC"
    assert tx["purpose"] == "Product purchase: Wireless Headphones"
    assert tx["status"] == "completed"
    assert tx["created_at"]
    assert tx["completed_at"]
    wallet = await wallet_of(client, headers, agent["agent_id"])
    assert wallet["balance"] == "83.91"
    assert wallet["spent_total"] == "15.99"
    merchant_wallet = await client.get(
        f"/api/v1/merchants/{merchant['merchant_id']}/wallet", headers=headers
    )
    assert merchant_wallet.json()["balance"] == "15.99"
    fetched = await client.get(f"/api/v1/payments/{tx['tx_id']}", headers=headers)
    assert fetched.json() == tx
    listed = await client.get(
        f"/api/v1/agents/{agent['agent_id']}/transactions?limit=10&offset=0", headers=headers
    )
    assert listed.json() == [tx]


async def test_insufficient_balance_is_refused_and_recorded(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers, initial_balance="10.00"))["agent"]
    merchant = await create_merchant(client, headers)
    response = await client.post(
        "/api/v1/payments",
        json={
            "agent_id": agent["agent_id"],
            "merchant_id": merchant["merchant_id"],
            "amount": "15.99",
        },
        headers=headers,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["transaction"] is None
    assert body["error"] == "Insufficient balance: have 10.00, need 16.09"
    assert body["detail"] == body["error"]
    assert body["code"] == "insufficient_funds"
    assert body["status"] == 400
    assert body["request_id"] == response.headers["Request-Id"]
    failed = (await client.get(f"/api/v1/payments/{body['tx_id']}", headers=headers)).json()
    assert failed["status"] == "failed"
    assert failed["error_message"] == body["error"]
    assert failed["completed_at"] is None
    wallet = await wallet_of(client, headers, agent["agent_id"])
    assert (wallet["balance"], wallet["spent_total"]) == ("10.00", "0.00")
    async with sessionmaker() as session:
        events = (
            (
                await session.execute(
                    text("SELECT event FROM audit_records WHERE subject_id = :tx ORDER BY seq"),
                    {"tx": body["tx_id"]},
                )
            )
            .scalars()
            .all()
        )
        outbox = (
            (
                await session.execute(
                    text(
                        "SELECT type FROM outbox_events"
                        " WHERE data->'transaction'->>'tx_id' = :tx ORDER BY type"
                    ),
                    {"tx": body["tx_id"]},
                )
            )
            .scalars()
            .all()
        )
    assert events == ["payment_requested", "payment_failed"]
    assert outbox == ["payment.failed", "payment.initiated"]


async def test_limits_refuse_and_warn(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await make_key()
    headers = bearer(key)
    agent = (await create_agent(client, headers, limit_per_tx="20.00", limit_daily="30.00"))[
        "agent"
    ]
    merchant = await create_merchant(client, headers)

    async def pay(amount: str) -> httpx.Response:
        return await client.post(
            "/api/v1/payments",
            json={
                "agent_id": agent["agent_id"],
                "merchant_id": merchant["merchant_id"],
                "amount": amount,
            },
            headers=headers,
        )

    too_big = await pay("20.01")
    assert too_big.status_code == 400
    assert too_big.json()["code"] == "limit_exceeded"
    assert "per-transaction limit of 20.00" in too_big.json()["error"]
    assert (await pay("20.00")).status_code == 200  # 20 of 30 today
    assert (await pay("5.00")).status_code == 200  # 25: crosses 80 % of the daily limit
    over_daily = await pay("5.01")
    assert over_daily.status_code == 400
    assert "daily limit of 30.00 (remaining 5.00)" in over_daily.json()["error"]
    assert (await pay("5.00")).status_code == 200
    wallet = await wallet_of(client, headers, agent["agent_id"])
    assert wallet["spent_total"] == "30.00"
    async with sessionmaker() as session:
        types = (
            (
                await session.execute(
                    text(
                        "SELECT type FROM outbox_events WHERE owner_id = :o"
                        " ORDER BY created_at, type"
                    ),
                    {"o": key.owner_id},
                )
            )
            .scalars()
            .all()
        )
    assert types.count("limit.exceeded") == 2
    assert types.count("limit.warning") == 1
    assert types.count("payment.completed") == 3


async def test_amount_precision_is_exact(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    base = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"]}
    for bad in ["0.0000001", "0", "-1", "NaN", "1e400", "abc"]:
        response = await client.post(
            "/api/v1/payments", json={**base, "amount": bad}, headers=headers
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["param"] == "amount"
    float_body = b'{"agent_id": "%s", "merchant_id": "%s", "amount": 0.1}' % (
        agent["agent_id"].encode(),
        merchant["merchant_id"].encode(),
    )
    as_number = await client.post(
        "/api/v1/payments",
        content=float_body,
        headers={**headers, "content-type": "application/json"},
    )
    # A JSON number has been through a binary float before anything sees it: refused.
    assert as_number.status_code == 422
    assert as_number.json()["param"] == "amount"
    assert "decimal string" in as_number.json()["detail"]
    exact = await client.post("/api/v1/payments", json={**base, "amount": "15.99"}, headers=headers)
    assert exact.json()["transaction"]["amount"] == "15.99"
    assert (await wallet_of(client, headers, agent["agent_id"]))["balance"] == "83.91"


async def test_pay_by_product_takes_the_catalog_price(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    product = (
        await client.post(
            "/api/v1/catalog/products",
            json={"merchant_id": merchant["merchant_id"], "name": "Headphones", "price": "49.99"},
            headers=headers,
        )
    ).json()
    base = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"]}
    paid = await client.post(
        "/api/v1/payments", json={**base, "product_id": product["product_id"]}, headers=headers
    )
    assert paid.status_code == 200
    assert paid.json()["transaction"]["amount"] == "49.99"
    assert paid.json()["transaction"]["product_id"] == product["product_id"]
    both = await client.post(
        "/api/v1/payments",
        json={**base, "product_id": product["product_id"], "amount": "0.01"},
        headers=headers,
    )
    assert both.status_code == 422
    await client.patch(
        f"/api/v1/catalog/products/{product['product_id']}",
        json={"in_stock": False},
        headers=headers,
    )
    gone = await client.post(
        "/api/v1/payments", json={**base, "product_id": product["product_id"]}, headers=headers
    )
    assert gone.status_code == 409
    assert gone.json()["code"] == "product_out_of_stock"


async def test_refusals_and_unknown_ids(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    headers = bearer(key)
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    base = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "1"}
    for body, status, code in [
        ({**base, "agent_id": "agent_nope"}, 404, "agent_not_found"),
        ({**base, "merchant_id": "merchant_nope"}, 404, "merchant_not_found"),
        (
            {**base, "merchant_id": None, "recipient_wallet_id": "wallet_nope"},
            404,
            "recipient_not_found",
        ),
        ({**base, "recipient_wallet_id": agent["wallet_id"]}, 422, "invalid_payment"),
        (
            {**base, "merchant_id": None, "recipient_wallet_id": agent["wallet_id"]},
            422,
            "invalid_payment",
        ),
        ({**base, "currency": "USDT"}, 400, "currency_mismatch"),
        ({**base, "currency": "DOGE"}, 422, "unknown_currency"),
    ]:
        response = await client.post("/api/v1/payments", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["code"] == code
    await client.patch(
        f"/api/v1/agents/{agent['agent_id']}", json={"is_active": False}, headers=headers
    )
    inactive = await client.post("/api/v1/payments", json=base, headers=headers)
    assert inactive.status_code == 403
    assert inactive.json()["code"] == "agent_inactive"
    assert inactive.json()["success"] is False


async def test_agent_to_agent_and_history(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    headers = bearer(await make_key())
    alice = (await create_agent(client, headers, name="alice"))["agent"]
    bob = (await create_agent(client, headers, name="bob"))["agent"]
    tx_ids = []
    for i in range(3):
        response = await client.post(
            "/api/v1/payments",
            json={
                "agent_id": alice["agent_id"],
                "recipient_wallet_id": bob["wallet_id"],
                "amount": f"{i + 1}",
            },
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["transaction"]["recipient_agent_id"] == bob["agent_id"]
        tx_ids.append(response.json()["transaction"]["tx_id"])
    assert (await wallet_of(client, headers, bob["agent_id"]))["balance"] == "106.00"
    assert (await wallet_of(client, headers, alice["agent_id"]))["balance"] == "93.70"
    history = await client.get(f"/api/v1/agents/{bob['agent_id']}/transactions", headers=headers)
    assert [t["tx_id"] for t in history.json()] == tx_ids[::-1]
    page = await client.get(
        f"/api/v1/agents/{alice['agent_id']}/transactions?limit=1&starting_after={tx_ids[2]}",
        headers=headers,
    )
    assert [t["tx_id"] for t in page.json()] == [tx_ids[1]]


async def test_agent_key_pays_only_for_its_agent(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    headers = bearer(key)
    mine = (await create_agent(client, headers, name="mine"))["agent"]
    other = (await create_agent(client, headers, name="other"))["agent"]
    merchant = await create_merchant(client, headers)
    agent_key = await make_key(owner=key.owner_id, agent_id=mine["agent_id"])
    body = {"merchant_id": merchant["merchant_id"], "amount": "1.00"}
    ok = await client.post(
        "/api/v1/payments", json={**body, "agent_id": mine["agent_id"]}, headers=bearer(agent_key)
    )
    assert ok.status_code == 200
    denied = await client.post(
        "/api/v1/payments", json={**body, "agent_id": other["agent_id"]}, headers=bearer(agent_key)
    )
    assert denied.status_code == 404


async def test_idempotent_retries(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers, initial_balance="5.00"))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "2.00"}
    first = await client.post(
        "/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": "pay-1"}
    )
    again = await client.post(
        "/api/v1/payments",
        content=b'{"amount": "2.00", "merchant_id": "%s", "agent_id": "%s"}'
        % (merchant["merchant_id"].encode(), agent["agent_id"].encode()),
        headers={**headers, "X-Idempotency-Key": "pay-1", "content-type": "application/json"},
    )
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert (await wallet_of(client, headers, agent["agent_id"]))["balance"] == "2.90"
    reused = await client.post(
        "/api/v1/payments",
        json={**body, "amount": "2.01"},
        headers={**headers, "Idempotency-Key": "pay-1"},
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    # A refusal is stored and replayed too, and does not run twice.
    refused = await client.post(
        "/api/v1/payments",
        json={**body, "amount": "3.00"},
        headers={**headers, "Idempotency-Key": "pay-2"},
    )
    refused_again = await client.post(
        "/api/v1/payments",
        json={**body, "amount": "3.00"},
        headers={**headers, "Idempotency-Key": "pay-2"},
    )
    assert refused.status_code == refused_again.status_code == 400
    assert refused_again.content == refused.content
    history = await client.get(f"/api/v1/agents/{agent['agent_id']}/transactions", headers=headers)
    assert len(history.json()) == 2
    bad_key = await client.post(
        "/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": "x" * 256}
    )
    assert bad_key.status_code == 400
    created = await client.post(
        "/api/v1/agents",
        json={"name": "once only"},
        headers={**headers, "Idempotency-Key": "agent-1"},
    )
    created_again = await client.post(
        "/api/v1/agents",
        json={"name": "once only"},
        headers={**headers, "Idempotency-Key": "agent-1"},
    )
    assert created_again.status_code == 201
    assert created_again.content == created.content
