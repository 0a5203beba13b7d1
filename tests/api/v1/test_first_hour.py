"""What a newcomer meets first: an error that says what to do."""

import httpx

from tests.api.helpers import MakeKey, bearer


async def test_the_seeds_owner_id_gets_an_error_naming_the_keys_owner(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    response = await client.post(
        "/api/v1/agents",
        json={"name": "shopping agent", "owner_id": "developer_123"},
        headers=bearer(key),
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "owner_mismatch"
    assert body["param"] == "owner_id"
    assert key.owner_id in body["detail"]
    assert "omit owner_id" in body["detail"]
