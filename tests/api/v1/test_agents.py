"""Agents and wallets, starting from the API reference's own examples."""

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.ledger import service as ledger
from tests.api.helpers import MakeKey, bearer

SEED_CREATE_AGENT = {
    "name": "shopping_agent_1",
    "owner_id": "developer_123",
    "description": "Agent for e-commerce purchases",
    "initial_balance": "100.00",
    "limit_per_tx": "20.00",
    "limit_total": "100.00",
}


async def test_seed_create_agent_example_verbatim(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await make_key(owner="developer_123")
    response = await client.post("/api/v1/agents", json=SEED_CREATE_AGENT, headers=bearer(key))
    assert response.status_code == 201, response.text
    body = response.json()
    agent, wallet = body["agent"], body["wallet"]
    assert agent["agent_id"].startswith("agent_")
    assert agent["name"] == "shopping_agent_1"
    assert agent["owner_id"] == "developer_123"
    assert agent["description"] == "Agent for e-commerce purchases"
    assert agent["wallet_id"] == wallet["wallet_id"]
    assert agent["is_active"] is True
    assert wallet["agent_id"] == agent["agent_id"]
    assert wallet["balance"] == "100.00"
    assert wallet["currency"] == "USDC"
    assert wallet["limit_per_tx"] == "20.00"
    assert wallet["limit_total"] == "100.00"
    assert wallet["spent_total"] == "0.00"
    assert wallet["remaining_limit"] == "100.00"
    card = wallet["virtual_card"]
    assert card["card_id"].startswith("vc_")
    assert card["masked_number"].startswith("**** **** **** ")
    assert card["is_active"] is True
    # GET /agents/{id}/wallet answers the same, balance read from the ledger.
    again = await client.get(f"/api/v1/agents/{agent['agent_id']}/wallet", headers=bearer(key))
    assert again.json() == wallet
    # The initial balance is a real entry from the owner's deposit account.
    async with sessionmaker() as session:
        deposit = await session.scalar(
            text(
                "SELECT id FROM ledger_accounts WHERE kind = 'owner_deposit' "
                "AND owner_id = 'developer_123' AND currency = 'USDC'"
            )
        )
        assert deposit is not None
        assert (await ledger.balance_of(session, deposit)).minor <= -100_000_000
        card_columns = await session.scalar(
            text(
                "SELECT string_agg(column_name, ',') FROM information_schema.columns "
                "WHERE table_name = 'virtual_cards'"
            )
        )
    assert "pan" not in card_columns
    assert "cvv" not in card_columns
    assert "number" not in card_columns


async def test_get_list_and_update_agent(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    ids = []
    for i in range(3):
        created = await client.post(
            "/api/v1/agents", json={"name": f"agent_{i}"}, headers=bearer(key)
        )
        ids.append(created.json()["agent"]["agent_id"])
    listed = await client.get("/api/v1/agents?limit=2&offset=0", headers=bearer(key))
    assert [a["agent_id"] for a in listed.json()] == [ids[2], ids[1]]
    rest = await client.get("/api/v1/agents?limit=2&offset=2", headers=bearer(key))
    assert [a["agent_id"] for a in rest.json()] == [ids[0]]
    patched = await client.patch(
        f"/api/v1/agents/{ids[0]}",
        json={"description": "now described", "is_active": False},
        headers=bearer(key),
    )
    assert patched.status_code == 200
    assert patched.json()["description"] == "now described"
    assert patched.json()["is_active"] is False
    fetched = await client.get(f"/api/v1/agents/{ids[0]}", headers=bearer(key))
    assert fetched.json() == patched.json()


async def test_limits_update_sets_and_clears(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    agent = (
        await client.post(
            "/api/v1/agents", json={"name": "limited", "limit_total": "50"}, headers=bearer(key)
        )
    ).json()["agent"]
    url = f"/api/v1/agents/{agent['agent_id']}/wallet/limits"
    response = await client.patch(
        url, json={"limit_daily": "10.5", "limit_total": None}, headers=bearer(key)
    )
    assert response.status_code == 200
    wallet = response.json()
    assert wallet["limit_daily"] == "10.50"
    assert wallet["limit_total"] is None
    assert wallet["remaining_limit"] is None
    bad = await client.patch(url, json={"limit_per_tx": "0.0000001"}, headers=bearer(key))
    assert bad.status_code == 422
    assert bad.json()["param"] == "limit_per_tx"


async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    cases = [
        ({"name": "ab"}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"name": "valid name", "initial_balance": "1.0000001"}, "initial_balance"),
        ({"name": "valid name", "initial_balance": "-5"}, "initial_balance"),
        ({"name": "valid name", "initial_balance": "abc"}, "initial_balance"),
        ({"name": "valid name", "limit_per_tx": "0"}, "limit_per_tx"),
        ({"name": "valid name", "currency": "DOGE"}, "currency"),
    ]
    for body, param in cases:
        response = await client.post("/api/v1/agents", json=body, headers=bearer(key))
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert problem["param"] == param, (body, problem)
        assert problem["code"]
        assert problem["status"] == 422
        assert "Traceback" not in response.text
    empty = await client.post(
        "/api/v1/agents",
        content=b"{not json",
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert empty.status_code == 422


async def test_owner_id_in_body_must_match_the_key(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    response = await client.post(
        "/api/v1/agents", json={"name": "sneaky", "owner_id": "someone_else"}, headers=bearer(key)
    )
    assert response.status_code == 403
    assert response.json()["code"] == "owner_mismatch"
