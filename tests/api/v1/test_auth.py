"""API keys: both headers, every way to be refused (always 401, never 422 or 500)."""

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.helpers import MakeKey, bearer


def assert_invalid_key(response: httpx.Response, *, missing: bool = False) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if missing:
        # No key sent at all: the answer says so, and how to send one.
        assert body["detail"].startswith("Missing API key: send `Authorization: Bearer")
    else:
        assert body["detail"] == "Invalid API key"
    assert body["code"] == "invalid_api_key"
    assert body["request_id"] == response.headers["Request-Id"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_bearer_and_x_api_key_both_work(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    assert (await client.get("/api/v1/agents", headers=bearer(key))).status_code == 200
    response = await client.get("/api/v1/agents", headers={"X-API-Key": key.secret})
    assert response.status_code == 200
    assert response.headers["Request-Id"].startswith("req_")
    assert key.secret.startswith("sk_test_")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "sk_test_"},
        {"X-API-Key": "sk_test_" + "0" * 16 + "_" + "0" * 64},
        {"X-API-Key": "sk_test_" + "g" * 16 + "_" + "0" * 64},
        {"X-API-Key": "sk_test_0123456789abcdef_" + "ä" * 64},
        {"X-API-Key": "x" * 10_000},
    ],
)
async def test_missing_or_malformed_key_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    encoded = {name: value.encode("utf-8") for name, value in headers.items()}
    response = await client.get("/api/v1/agents", headers=encoded)
    if headers in ({"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        # An Authorization header not in the form that carries a key: told how to send one,
        # naming the header (never skipped for another credential).
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_api_key"
        assert response.json()["param"] == "Authorization"
        assert response.json()["detail"].startswith("Authorization must be `Bearer sk_test_")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        return
    # No key at all: told how to send one.
    assert_invalid_key(response, missing=headers == {})


async def test_wrong_secret_for_a_real_key_id_is_401(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    tampered = key.secret[:-1] + ("0" if key.secret[-1] != "0" else "1")
    assert_invalid_key(await client.get("/api/v1/agents", headers={"X-API-Key": tampered}))


async def test_live_key_on_a_sandbox_server_is_401(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    live = key.secret.replace("sk_test_", "sk_live_")
    assert_invalid_key(await client.get("/api/v1/agents", headers={"X-API-Key": live}))


async def test_revoked_key_is_401(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    admin = await make_key()
    victim = await make_key(owner=admin.owner_id)
    revoked = await client.delete(f"/api/v1/keys/{victim.key_id}", headers=bearer(admin))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert_invalid_key(await client.get("/api/v1/agents", headers=bearer(victim)))
    listed = await client.get("/api/v1/keys", headers=bearer(admin))
    assert {k["key_id"] for k in listed.json()} == {admin.key_id, victim.key_id}
    assert all("secret" not in k for k in listed.json())


async def test_expired_key_is_401(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await make_key()
    assert (await client.get("/api/v1/agents", headers=bearer(key))).status_code == 200
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": key.key_id},
        )
        await session.commit()
    assert_invalid_key(await client.get("/api/v1/agents", headers=bearer(key)))


async def test_keys_are_stored_hashed(
    make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await make_key()
    secret_part = key.secret.rsplit("_", 1)[1]
    async with sessionmaker() as session:
        row = (
            await session.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": key.key_id})
        ).one()
    assert secret_part not in str(tuple(row))
    assert len(row.secret_hash) == 64


async def test_new_key_over_http_has_default_scopes_without_sequence(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    admin = await make_key()
    response = await client.post(
        "/api/v1/keys", json={"name": "ci", "tier": "free"}, headers=bearer(admin)
    )
    assert response.status_code == 201
    created = response.json()
    assert "sequence" not in created["scopes"]
    assert "payments:write" in created["scopes"]
    assert created["tier"] == "free"
    works = await client.get("/api/v1/agents", headers={"X-API-Key": created["secret"]})
    assert works.status_code == 200
