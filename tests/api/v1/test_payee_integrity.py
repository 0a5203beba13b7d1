"""Payee integrity: a product is paid to its own merchant, and every refusal once the payer
is known is recorded (failed transaction, audit, event), whatever refused it."""

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, wallet_of


@dataclass
class Shop:
    headers: dict[str, str]
    agent: dict[str, Any]
    seller: dict[str, Any]  # the merchant selling the product
    other: dict[str, Any]  # another merchant of the same owner
    product: dict[str, Any]


async def _merchant(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> Any:
    response = await client.post("/api/v1/merchants", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _shop(client: httpx.AsyncClient, make_key: MakeKey, balance: str = "100.00") -> Shop:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers, initial_balance=balance))["agent"]
    seller = await _merchant(client, headers, "Seller of headphones")
    other = await _merchant(client, headers, "Some other store")
    created = await client.post(
        "/api/v1/catalog/products",
        json={"merchant_id": seller["merchant_id"], "name": "Headphones", "price": "49.99"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return Shop(headers, agent, seller, other, created.json())


async def _balance(client: httpx.AsyncClient, headers: dict[str, str], merchant: Any) -> str:
    response = await client.get(
        f"/api/v1/merchants/{merchant['merchant_id']}/wallet", headers=headers
    )
    balance: str = response.json()["balance"]
    return balance


async def _balances(client: httpx.AsyncClient, shop: Shop) -> tuple[str, str, str]:
    """(agent, seller, other merchant) balances."""
    return (
        (await wallet_of(client, shop.headers, shop.agent["agent_id"]))["balance"],
        await _balance(client, shop.headers, shop.seller),
        await _balance(client, shop.headers, shop.other),
    )


async def _pay(client: httpx.AsyncClient, shop: Shop, **fields: Any) -> httpx.Response:
    return await client.post(
        "/api/v1/payments",
        json={"agent_id": shop.agent["agent_id"], **fields},
        headers=shop.headers,
    )


@dataclass
class Recorded:
    status: str
    error_code: str | None
    to_wallet_id: str
    product_id: str | None
    amount: int
    audit: list[str]
    outbox: list[str]


async def _recorded(sessionmaker: async_sessionmaker[AsyncSession], tx_id: str) -> Recorded:
    """What the database holds about one payment attempt."""
    async with sessionmaker() as session:
        row = (
            await session.execute(
                text(
                    "SELECT status, error_code, to_wallet_id, product_id, amount"
                    " FROM transactions WHERE id = :tx"
                ),
                {"tx": tx_id},
            )
        ).one()
        audit = (
            await session.execute(
                text("SELECT event FROM audit_records WHERE subject_id = :tx ORDER BY seq"),
                {"tx": tx_id},
            )
        ).scalars()
        outbox = (
            await session.execute(
                text(
                    "SELECT type FROM outbox_events"
                    " WHERE data->'transaction'->>'tx_id' = :tx ORDER BY type"
                ),
                {"tx": tx_id},
            )
        ).scalars()
        return Recorded(*row, audit=list(audit), outbox=list(outbox))


async def _refused_and_recorded(
    response: httpx.Response,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    status: int,
    code: str,
    param: str | None,
) -> Recorded:
    """``response`` is a refusal in the shape of every payment refusal, and the attempt
    was recorded as failed: transaction row, audit records and events."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["transaction"] is None
    assert body["code"] == code
    assert body["status"] == status
    assert body["error"] == body["detail"]
    assert body.get("param") == param
    assert body["tx_id"].startswith("tx_")
    recorded = await _recorded(sessionmaker, body["tx_id"])
    assert (recorded.status, recorded.error_code) == ("failed", code)
    assert recorded.audit == ["payment_requested", "payment_failed"]
    assert recorded.outbox == ["payment.failed", "payment.initiated"]
    return recorded


async def test_product_without_payee_pays_its_merchant(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    shop = await _shop(client, make_key, balance="200.00")
    paid = await _pay(client, shop, product_id=shop.product["product_id"], purpose="headphones")
    assert paid.status_code == 200, paid.text
    tx = paid.json()["transaction"]
    assert tx["to_wallet"] == shop.seller["wallet_id"]
    assert tx["merchant_id"] == shop.seller["merchant_id"]
    assert tx["product_id"] == shop.product["product_id"]
    assert (tx["amount"], tx["fee"], tx["total_cost"]) == ("49.99", "0.10", "50.09")
    assert await _balances(client, shop) == ("149.91", "49.99", "0.00")
    # Naming the product's own merchant, or its wallet, is the same payment.
    by_merchant = await _pay(
        client, shop, product_id=shop.product["product_id"], merchant_id=shop.seller["merchant_id"]
    )
    assert by_merchant.status_code == 200, by_merchant.text
    by_wallet = await _pay(
        client,
        shop,
        product_id=shop.product["product_id"],
        recipient_wallet_id=shop.seller["wallet_id"],
    )
    assert by_wallet.status_code == 200, by_wallet.text
    assert by_wallet.json()["transaction"]["merchant_id"] == shop.seller["merchant_id"]
    assert await _balances(client, shop) == ("49.73", "149.97", "0.00")


async def test_another_merchant_is_refused_and_recorded(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    shop = await _shop(client, make_key)
    response = await _pay(
        client, shop, product_id=shop.product["product_id"], merchant_id=shop.other["merchant_id"]
    )
    recorded = await _refused_and_recorded(
        response, sessionmaker, status=422, code="product_merchant_mismatch", param="merchant_id"
    )
    assert shop.seller["merchant_id"] in response.json()["error"]
    # The attempt is recorded as made: to the payee named, for the product's price.
    assert recorded.to_wallet_id == shop.other["wallet_id"]
    assert recorded.product_id == shop.product["product_id"]
    assert recorded.amount == 49_990_000
    assert await _balances(client, shop) == ("100.00", "0.00", "0.00")
    fetched = await client.get(f"/api/v1/payments/{response.json()['tx_id']}", headers=shop.headers)
    assert fetched.json()["status"] == "failed"
    assert fetched.json()["error_message"] == response.json()["error"]


async def test_another_wallet_is_refused_and_recorded(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    shop = await _shop(client, make_key)
    bob = (await create_agent(client, shop.headers, name="bob"))["agent"]
    for wallet_id in (shop.other["wallet_id"], bob["wallet_id"], shop.agent["wallet_id"]):
        response = await _pay(
            client, shop, product_id=shop.product["product_id"], recipient_wallet_id=wallet_id
        )
        recorded = await _refused_and_recorded(
            response,
            sessionmaker,
            status=422,
            code="product_merchant_mismatch",
            param="recipient_wallet_id",
        )
        assert recorded.to_wallet_id == wallet_id
    assert await _balances(client, shop) == ("100.00", "0.00", "0.00")
    assert (await wallet_of(client, shop.headers, bob["agent_id"]))["balance"] == "100.00"


async def test_out_of_stock_and_currency_are_recorded(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    shop = await _shop(client, make_key)
    product_id = shop.product["product_id"]
    currency = await _pay(client, shop, product_id=product_id, currency="USDT")
    recorded = await _refused_and_recorded(
        currency, sessionmaker, status=400, code="currency_mismatch", param="currency"
    )
    assert recorded.to_wallet_id == shop.seller["wallet_id"]
    await client.patch(
        f"/api/v1/catalog/products/{product_id}", json={"in_stock": False}, headers=shop.headers
    )
    gone = await _pay(client, shop, product_id=product_id)
    await _refused_and_recorded(
        gone, sessionmaker, status=409, code="product_out_of_stock", param="product_id"
    )
    assert await _balances(client, shop) == ("100.00", "0.00", "0.00")


async def test_wallet_currency_and_own_wallet_are_recorded(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    shop = await _shop(client, make_key)
    base = {"merchant_id": shop.seller["merchant_id"], "amount": "1.00"}
    currency = await _pay(client, shop, **base, currency="USDT")
    recorded = await _refused_and_recorded(
        currency, sessionmaker, status=400, code="currency_mismatch", param="currency"
    )
    assert (recorded.to_wallet_id, recorded.amount) == (shop.seller["wallet_id"], 1_000_000)
    own = await _pay(client, shop, recipient_wallet_id=shop.agent["wallet_id"], amount="1.00")
    await _refused_and_recorded(
        own, sessionmaker, status=422, code="invalid_payment", param="recipient_wallet_id"
    )
    assert await _balances(client, shop) == ("100.00", "0.00", "0.00")
    history = await client.get(
        f"/api/v1/agents/{shop.agent['agent_id']}/transactions", headers=shop.headers
    )
    assert [t["status"] for t in history.json()] == ["failed", "failed"]


async def test_requests_naming_nothing_payable_record_nothing(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    shop = await _shop(client, make_key)
    product_id = shop.product["product_id"]
    for fields, status, code in [
        ({"product_id": product_id, "merchant_id": "merchant_nope"}, 404, "merchant_not_found"),
        (
            {"product_id": product_id, "recipient_wallet_id": "wallet_nope"},
            404,
            "recipient_not_found",
        ),
        ({"product_id": "prod_nope"}, 404, "product_not_found"),
        (
            {
                "product_id": product_id,
                "merchant_id": shop.seller["merchant_id"],
                "recipient_wallet_id": shop.seller["wallet_id"],
            },
            422,
            "invalid_payment",
        ),
        ({"amount": "1.00"}, 422, "invalid_payment"),
        ({"product_id": product_id, "amount": "1.00"}, 422, "invalid_payment"),
    ]:
        response = await _pay(client, shop, **fields)
        assert response.status_code == status, (fields, response.text)
        assert response.json()["code"] == code
        assert "tx_id" not in response.json()
    unknown_payer = await client.post(
        "/api/v1/payments",
        json={
            "agent_id": "agent_nope",
            "product_id": product_id,
            "merchant_id": shop.other["merchant_id"],
        },
        headers=shop.headers,
    )
    assert unknown_payer.status_code == 404
    assert unknown_payer.json()["code"] == "agent_not_found"
    history = await client.get(
        f"/api/v1/agents/{shop.agent['agent_id']}/transactions", headers=shop.headers
    )
    assert history.json() == []
    assert await _balances(client, shop) == ("100.00", "0.00", "0.00")


async def test_refusal_is_replayed_for_its_idempotency_key(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    shop = await _shop(client, make_key)
    body = {
        "agent_id": shop.agent["agent_id"],
        "product_id": shop.product["product_id"],
        "merchant_id": shop.other["merchant_id"],
    }
    headers = {**shop.headers, "Idempotency-Key": "mismatch-1"}
    first = await client.post("/api/v1/payments", json=body, headers=headers)
    again = await client.post("/api/v1/payments", json=body, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    history = await client.get(
        f"/api/v1/agents/{shop.agent['agent_id']}/transactions", headers=shop.headers
    )
    assert len(history.json()) == 1


async def test_hold_currency_mismatch_is_recorded(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    shop = await _shop(client, make_key)
    response = await client.post(
        "/api/v1/payments/holds",
        json={
            "agent_id": shop.agent["agent_id"],
            "merchant_id": shop.seller["merchant_id"],
            "amount": "5.00",
            "currency": "USDT",
        },
        headers=shop.headers,
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["hold"], body["code"], body["param"]) == (None, "currency_mismatch", "currency")
    async with sessionmaker() as session:
        audit = (
            await session.execute(
                text(
                    "SELECT event, data->>'code' FROM audit_records"
                    " WHERE agent_id = :agent AND subject_type = 'hold' ORDER BY seq"
                ),
                {"agent": shop.agent["agent_id"]},
            )
        ).all()
    assert [tuple(row) for row in audit] == [
        ("hold_requested", None),
        ("hold_failed", "currency_mismatch"),
    ]
    wallet = await wallet_of(client, shop.headers, shop.agent["agent_id"])
    assert (wallet["balance"], wallet["held_balance"]) == ("100.00", "0.00")


async def test_request_currency_mismatch_is_recorded(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    headers = bearer(await make_key())
    provider = (await create_agent(client, headers, name="provider"))["agent"]
    payer = (await create_agent(client, headers, name="payer"))["agent"]
    created = await client.post(
        "/api/v1/payments/request",
        json={
            "requester_agent_id": provider["agent_id"],
            "payer_agent_id": payer["agent_id"],
            "amount": "5.00",
            "currency": "USDT",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["request_id"]
    response = await client.post(f"/api/v1/payments/request/{request_id}/pay", headers=headers)
    recorded = await _refused_and_recorded(
        response, sessionmaker, status=400, code="currency_mismatch", param="currency"
    )
    assert recorded.to_wallet_id == provider["wallet_id"]
    async with sessionmaker() as session:
        paid = (
            await session.execute(
                text("SELECT request_id_paid FROM transactions WHERE id = :tx"),
                {"tx": response.json()["tx_id"]},
            )
        ).scalar_one()
    assert paid == request_id
    state = await client.get(f"/api/v1/payments/request/{request_id}", headers=headers)
    assert state.json()["status"] == "pending"
    for agent in (provider, payer):
        assert (await wallet_of(client, headers, agent["agent_id"]))["balance"] == "100.00"
