"""Live mode refuses sandbox conveniences; a restart loses nothing."""

import httpx

from app.config import Mode, Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from tests.api.helpers import MakeKey, bearer, key_maker


async def _client_for(app):  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p")


async def test_live_mode_refuses_initial_balance_and_test_keys(empty_database_url: str) -> None:
    # A database of its own: a live server does not start on the shared sandbox one.
    engine = create_engine(empty_database_url, pool_size=1, max_overflow=0)
    try:
        make_key = key_maker(create_sessionmaker(engine))
        live_key = await make_key(mode=Mode.live)
        test_key = await make_key()
    finally:
        await engine.dispose()
    assert live_key.secret.startswith("sk_live_")
    app = create_app(database_url=empty_database_url, settings=Settings(mode=Mode.live))
    async with app.router.lifespan_context(app), await _client_for(app) as client:
        refused = await client.post(
            "/api/v1/agents",
            json={"name": "live agent", "initial_balance": "10.00"},
            headers=bearer(live_key),
        )
        assert refused.status_code == 400
        assert refused.json()["code"] == "funding_not_allowed"
        assert refused.json()["param"] == "initial_balance"
        created = await client.post(
            "/api/v1/agents", json={"name": "live agent"}, headers=bearer(live_key)
        )
        assert created.status_code == 201
        assert created.json()["wallet"]["balance"] == "0.00"
        wrong_mode = await client.get("/api/v1/agents", headers=bearer(test_key))
        assert wrong_mode.status_code == 401


async def test_restart_keeps_agents_merchants_and_products(
    database_url: str, make_key: MakeKey
) -> None:
    key = await make_key()
    headers = bearer(key)
    first = create_app(database_url=database_url)
    async with first.router.lifespan_context(first), await _client_for(first) as client:
        agent = (
            await client.post(
                "/api/v1/agents",
                json={"name": "survivor", "initial_balance": "12.34", "limit_total": "20"},
                headers=headers,
            )
        ).json()
        merchant = (
            await client.post("/api/v1/merchants", json={"name": "Durable Shop"}, headers=headers)
        ).json()
        product = (
            await client.post(
                "/api/v1/catalog/products",
                json={"merchant_id": merchant["merchant_id"], "name": "Brick", "price": "3.00"},
                headers=headers,
            )
        ).json()
    # A new process against the same database: everything is still there.
    second = create_app(database_url=database_url)
    async with second.router.lifespan_context(second), await _client_for(second) as client:
        agent_id = agent["agent"]["agent_id"]
        assert (await client.get(f"/api/v1/agents/{agent_id}", headers=headers)).json() == agent[
            "agent"
        ]
        wallet = (await client.get(f"/api/v1/agents/{agent_id}/wallet", headers=headers)).json()
        assert wallet == agent["wallet"]
        assert wallet["balance"] == "12.34"
        got = await client.get(f"/api/v1/merchants/{merchant['merchant_id']}", headers=headers)
        assert got.json() == merchant
        got_product = await client.get(
            f"/api/v1/catalog/products/{product['product_id']}", headers=headers
        )
        assert got_product.json() == product


async def test_restart_between_the_steps_of_holds_and_requests(
    database_url: str, make_key: MakeKey
) -> None:
    key = await make_key()
    headers = bearer(key)
    first = create_app(database_url=database_url)
    async with first.router.lifespan_context(first), await _client_for(first) as client:
        payer = (
            await client.post(
                "/api/v1/agents", json={"name": "payer", "initial_balance": "50"}, headers=headers
            )
        ).json()["agent"]
        payee = (
            await client.post("/api/v1/agents", json={"name": "payee"}, headers=headers)
        ).json()["agent"]
        merchant = (
            await client.post("/api/v1/merchants", json={"name": "Shop"}, headers=headers)
        ).json()
        hold = (
            await client.post(
                "/api/v1/payments/holds",
                json={
                    "agent_id": payer["agent_id"],
                    "merchant_id": merchant["merchant_id"],
                    "amount": "10",
                },
                headers=headers,
            )
        ).json()
        request = (
            await client.post(
                "/api/v1/payments/request",
                json={
                    "requester_agent_id": payee["agent_id"],
                    "payer_agent_id": payer["agent_id"],
                    "amount": "5",
                },
                headers=headers,
            )
        ).json()
    second = create_app(database_url=database_url)
    async with second.router.lifespan_context(second), await _client_for(second) as client:
        captured = await client.post(
            f"/api/v1/payments/holds/{hold['hold_id']}/capture", headers=headers
        )
        assert captured.json()["status"] == "captured"
        paid = await client.post(
            f"/api/v1/payments/request/{request['request_id']}/pay", headers=headers
        )
        assert paid.json()["success"] is True
        wallet = (
            await client.get(f"/api/v1/agents/{payer['agent_id']}/wallet", headers=headers)
        ).json()
        assert wallet["balance"] == "34.80"  # 50 - (10 + 0.10) - (5 + 0.10)
