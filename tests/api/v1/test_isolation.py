"""Tenancy: another owner's agents, wallets, merchants, products and keys are 404,
exactly as if they did not exist; lists never show them."""

import httpx

from tests.api.helpers import MakeKey, bearer


async def _world(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    agent = (
        await client.post(
            "/api/v1/agents", json={"name": "owned agent", "initial_balance": "5"}, headers=headers
        )
    ).json()["agent"]
    merchant = (
        await client.post("/api/v1/merchants", json={"name": "Owned Shop"}, headers=headers)
    ).json()
    product = (
        await client.post(
            "/api/v1/catalog/products",
            json={"merchant_id": merchant["merchant_id"], "name": "Thing", "price": "1.00"},
            headers=headers,
        )
    ).json()
    return {
        "agent": agent["agent_id"],
        "merchant": merchant["merchant_id"],
        "product": product["product_id"],
    }


async def test_every_route_hides_other_owners(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    alice, bob = await make_key(), await make_key()
    a = await _world(client, bearer(alice))
    await _world(client, bearer(bob))
    bob_headers = bearer(bob)
    not_found = [
        ("GET", f"/api/v1/agents/{a['agent']}", None),
        ("PATCH", f"/api/v1/agents/{a['agent']}", {"name": "stolen"}),
        ("GET", f"/api/v1/agents/{a['agent']}/wallet", None),
        ("PATCH", f"/api/v1/agents/{a['agent']}/wallet/limits", {"limit_total": "1"}),
        ("GET", f"/api/v1/merchants/{a['merchant']}", None),
        ("GET", f"/api/v1/merchants/{a['merchant']}/wallet", None),
        ("GET", f"/api/v1/catalog/products/{a['product']}", None),
        ("PATCH", f"/api/v1/catalog/products/{a['product']}", {"in_stock": False}),
        (
            "POST",
            "/api/v1/catalog/products",
            {"merchant_id": a["merchant"], "name": "Fake", "price": "1.00"},
        ),
        ("POST", "/api/v1/keys", {"agent_id": a["agent"]}),
        ("DELETE", f"/api/v1/keys/{alice.key_id}", None),
    ]
    for method, url, body in not_found:
        response = await client.request(method, url, json=body, headers=bob_headers)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["detail"]
    for url, key in [
        ("/api/v1/agents", "agent_id"),
        ("/api/v1/merchants", "merchant_id"),
        ("/api/v1/catalog/products", "product_id"),
    ]:
        listed = (await client.get(url, headers=bob_headers)).json()
        assert all(item[key] not in a.values() for item in listed), url
    # Alice still sees all of hers, unchanged.
    agent = (await client.get(f"/api/v1/agents/{a['agent']}", headers=bearer(alice))).json()
    assert agent["name"] == "owned agent"
    assert (await client.get("/api/v1/agents", headers=bearer(alice))).status_code == 200


async def test_agent_scoped_key_reads_only_its_wallet(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    owner = await make_key()
    mine = (
        await client.post("/api/v1/agents", json={"name": "scoped one"}, headers=bearer(owner))
    ).json()["agent"]["agent_id"]
    other = (
        await client.post("/api/v1/agents", json={"name": "other one"}, headers=bearer(owner))
    ).json()["agent"]["agent_id"]
    created = await client.post(
        "/api/v1/keys", json={"agent_id": mine, "name": "agent key"}, headers=bearer(owner)
    )
    assert created.status_code == 201
    assert sorted(created.json()["scopes"]) == ["payments:write", "wallet:read"]
    agent_key = {"X-API-Key": created.json()["secret"]}
    assert (await client.get(f"/api/v1/agents/{mine}/wallet", headers=agent_key)).status_code == 200
    assert (
        await client.get(f"/api/v1/agents/{other}/wallet", headers=agent_key)
    ).status_code == 404
    for method, url in [
        ("GET", "/api/v1/agents"),
        ("GET", f"/api/v1/agents/{mine}"),
        ("POST", "/api/v1/agents"),
        ("GET", "/api/v1/merchants"),
        ("GET", "/api/v1/catalog/products"),
        ("GET", "/api/v1/keys"),
        ("PATCH", f"/api/v1/agents/{mine}/wallet/limits"),
    ]:
        response = await client.request(method, url, json={"name": "x"}, headers=agent_key)
        assert response.status_code == 403, (method, url, response.text)
        # The key's kind is refused before its scopes are looked at.
        assert response.json()["code"] == "agent_key_not_allowed"
    # An agent key cannot be given owner scopes.
    refused = await client.post(
        "/api/v1/keys",
        json={"agent_id": mine, "scopes": ["agents:write"]},
        headers=bearer(owner),
    )
    assert refused.status_code == 422
    assert refused.json()["param"] == "scopes"
