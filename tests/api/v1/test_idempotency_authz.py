"""Idempotency never bypasses authorization: a stored response is replayed only to a
caller that could have made the first request. The route's own rule runs first (key kind,
scope); then the record's author is compared with the caller: an agent key never gets an
owner key's or another agent's response (403 ``idempotency_key_forbidden``, nothing of the
stored body), while the same key, another key of the same agent and owner keys do."""

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.apikey.schemas import Scope
from app.domain.idempotency.service import Authority
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of


class Owner:
    """An owner key, two agents with a key each, and a merchant."""

    def __init__(self, owner: dict[str, str], ids: dict[str, str], keys: dict[str, Any]) -> None:
        self.owner = owner
        self.ids = ids
        self.keys = keys


async def setup(client: httpx.AsyncClient, make_key: MakeKey) -> Owner:
    owner_key = await make_key()
    owner = bearer(owner_key)
    one = (await create_agent(client, owner, name="one"))["agent"]["agent_id"]
    two = (await create_agent(client, owner, name="two"))["agent"]["agent_id"]
    merchant = (await create_merchant(client, owner))["merchant_id"]
    keys = {
        "one": await make_key(owner=owner_key.owner_id, agent_id=one),
        "one_again": await make_key(owner=owner_key.owner_id, agent_id=one),
        "two": await make_key(owner=owner_key.owner_id, agent_id=two),
        "owner": owner_key,
        "other_owner_key": await make_key(owner=owner_key.owner_id),
    }
    return Owner(owner, {"one": one, "two": two, "merchant": merchant}, keys)


def with_key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def assert_forbidden(response: httpx.Response, *secrets: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "idempotency_key_forbidden"
    assert body["param"] == "Idempotency-Key"
    assert "Idempotent-Replayed" not in response.headers
    for secret in secrets:
        assert secret not in response.text


async def test_an_agent_key_never_receives_an_owner_keys_payment(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    world = await setup(client, make_key)
    body = {"agent_id": world.ids["two"], "merchant_id": world.ids["merchant"], "amount": "4.00"}
    first = await client.post("/api/v1/payments", json=body, headers=with_key(world.owner, "k1"))
    assert first.status_code == 200, first.text
    tx_id = first.json()["transaction"]["tx_id"]
    balance = (await wallet_of(client, world.owner, world.ids["two"]))["balance"]
    resent = await client.post(
        "/api/v1/payments", json=body, headers=with_key(bearer(world.keys["one"]), "k1")
    )
    assert_forbidden(resent, tx_id, balance)
    # Agent two's own key could not have made it either: it might have named any agent.
    by_two = await client.post(
        "/api/v1/payments", json=body, headers=with_key(bearer(world.keys["two"]), "k1")
    )
    assert_forbidden(by_two, tx_id)
    # Another owner-wide key of the owner could have: it gets the replay.
    by_owner = await client.post(
        "/api/v1/payments",
        json=body,
        headers=with_key(bearer(world.keys["other_owner_key"]), "k1"),
    )
    assert by_owner.status_code == 200
    assert by_owner.content == first.content
    assert by_owner.headers["Idempotent-Replayed"] == "true"
    # Nothing ran twice.
    assert (await wallet_of(client, world.owner, world.ids["two"]))["balance"] == balance


async def test_an_agent_keys_payment_is_replayed_to_its_agent_and_owner_only(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    world = await setup(client, make_key)
    body = {"agent_id": world.ids["one"], "merchant_id": world.ids["merchant"], "amount": "2.00"}
    first = await client.post(
        "/api/v1/payments", json=body, headers=with_key(bearer(world.keys["one"]), "k2")
    )
    assert first.status_code == 200, first.text
    for who in ("one", "one_again", "owner"):
        again = await client.post(
            "/api/v1/payments", json=body, headers=with_key(bearer(world.keys[who]), "k2")
        )
        assert again.status_code == 200, (who, again.text)
        assert again.content == first.content
        assert again.headers["Idempotent-Replayed"] == "true"
    assert_forbidden(
        await client.post(
            "/api/v1/payments", json=body, headers=with_key(bearer(world.keys["two"]), "k2")
        ),
        first.json()["transaction"]["tx_id"],
    )


async def test_authority_is_checked_before_the_body(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    # Another body would be 422 idempotency_key_reused for the owner; an agent key learns
    # no more than that the key is not its to use.
    world = await setup(client, make_key)
    body = {"agent_id": world.ids["two"], "merchant_id": world.ids["merchant"], "amount": "1.00"}
    first = await client.post("/api/v1/payments", json=body, headers=with_key(world.owner, "k3"))
    assert first.status_code == 200
    mine = {**body, "agent_id": world.ids["one"]}
    assert_forbidden(
        await client.post(
            "/api/v1/payments", json=mine, headers=with_key(bearer(world.keys["one"]), "k3")
        )
    )


async def test_the_routes_own_rule_runs_before_any_replay(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    world = await setup(client, make_key)
    hold = await client.post(
        "/api/v1/payments/holds",
        json={"agent_id": world.ids["two"], "merchant_id": world.ids["merchant"], "amount": "3"},
        headers=with_key(world.owner, "k4"),
    )
    assert hold.status_code == 201, hold.text
    # Holds of agent two, placed by the owner: agent one's key gets no replay of it.
    assert_forbidden(
        await client.post(
            "/api/v1/payments/holds",
            json={
                "agent_id": world.ids["two"],
                "merchant_id": world.ids["merchant"],
                "amount": "3",
            },
            headers=with_key(bearer(world.keys["one"]), "k4"),
        ),
        hold.json()["hold_id"],
    )
    url = f"/api/v1/payments/holds/{hold.json()['hold_id']}/capture"
    captured = await client.post(url, headers=with_key(world.owner, "k5"))
    assert captured.status_code == 200, captured.text
    # Capture is for owner keys only: the route refuses before the replay is looked up.
    for who in ("one", "two"):
        resent = await client.post(url, headers=with_key(bearer(world.keys[who]), "k5"))
        assert resent.status_code == 403, resent.text
        assert resent.json()["code"] == "agent_key_not_allowed"
        assert "captured" not in resent.text
    # A key without the route's scope is refused by the route, not served the replay.
    reader = await make_key(owner=world.keys["owner"].owner_id, scopes=[Scope.payments_read])
    resent = await client.post(url, headers=with_key(bearer(reader), "k5"))
    assert resent.status_code == 403
    assert resent.json()["code"] == "insufficient_scope"


async def test_the_record_names_who_made_the_request(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await setup(client, make_key)
    body = {"agent_id": world.ids["one"], "merchant_id": world.ids["merchant"], "amount": "1.00"}
    made = await client.post(
        "/api/v1/payments", json=body, headers=with_key(bearer(world.keys["one"]), "k6")
    )
    assert made.status_code == 200
    async with sessionmaker() as session:
        row = (
            await session.execute(
                text(
                    "SELECT key_id, agent_id, scopes FROM idempotency_records "
                    "WHERE owner_id = :owner AND key = 'k6'"
                ),
                {"owner": world.keys["owner"].owner_id},
            )
        ).one()
    # The scopes that mattered: those of the route's rule the key held.
    assert (row.key_id, row.agent_id, row.scopes) == (
        world.keys["one"].key_id,
        world.ids["one"],
        ["payments:write"],
    )


async def test_records_from_before_authorities_replay_to_owner_keys_only(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await setup(client, make_key)
    body = {"agent_id": world.ids["one"], "merchant_id": world.ids["merchant"], "amount": "1.00"}
    made = await client.post(
        "/api/v1/payments", json=body, headers=with_key(bearer(world.keys["one"]), "k7")
    )
    assert made.status_code == 200
    async with sessionmaker() as session:
        # As the migration leaves a record written before it.
        await session.execute(
            text(
                "UPDATE idempotency_records SET key_id = NULL, agent_id = NULL, scopes = '{}' "
                "WHERE owner_id = :owner AND key = 'k7'"
            ),
            {"owner": world.keys["owner"].owner_id},
        )
        await session.commit()
    assert_forbidden(
        await client.post(
            "/api/v1/payments", json=body, headers=with_key(bearer(world.keys["one"]), "k7")
        )
    )
    replayed = await client.post("/api/v1/payments", json=body, headers=with_key(world.owner, "k7"))
    assert replayed.status_code == 200
    assert replayed.content == made.content


def test_authority_covers_what_the_caller_could_have_done() -> None:
    owner = Authority("key_o", None, frozenset({"payments:write", "agents:write"}))
    agent = Authority("key_a", "agent_a", frozenset({"payments:write"}))
    assert owner.covers(agent)
    assert owner.covers(owner)
    assert agent.covers(agent)
    assert agent.covers(Authority("key_b", "agent_a", frozenset({"payments:write"})))
    assert not agent.covers(Authority("key_c", "agent_b", frozenset({"payments:write"})))
    assert not agent.covers(Authority("key_o", None, frozenset({"payments:write"})))
    # A scope the original request used and the caller lacks.
    assert not agent.covers(Authority("key_d", "agent_a", frozenset({"payments:read"})))
    assert not Authority("key_e", None, frozenset()).covers(owner)
