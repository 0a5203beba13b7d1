"""Set-ups shared by payment tests, all through the public API."""

from typing import Any

import httpx


async def create_agent(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"name": "paying agent", "initial_balance": "100.00", **fields}
    response = await client.post("/api/v1/agents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_merchant(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/merchants",
        json={"name": "TechStore Electronics", "category": "electronics"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    merchant: dict[str, Any] = response.json()
    return merchant


async def wallet_of(
    client: httpx.AsyncClient, headers: dict[str, str], agent_id: str
) -> dict[str, Any]:
    response = await client.get(f"/api/v1/agents/{agent_id}/wallet", headers=headers)
    assert response.status_code == 200
    wallet: dict[str, Any] = response.json()
    return wallet
