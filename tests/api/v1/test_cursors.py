"""Pagination cursors are no side channel: an anchor the caller may not see answers
exactly like one that does not exist (``starting_after`` on an agent's transactions,
``cursor`` on payment requests), so an agent key cannot learn that another agent's
transaction or request exists."""

from typing import Any

import httpx

from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant


def same_refusal(seen: httpx.Response, unknown: httpx.Response, seen_id: str, fake: str) -> None:
    """``seen`` (for ``seen_id``) is ``unknown``'s answer (for ``fake``), member for member."""
    assert seen.status_code == unknown.status_code == 404, (seen.text, unknown.text)
    assert seen.headers["content-type"] == unknown.headers["content-type"]

    def members(response: httpx.Response, anchor: str) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        body.pop("request_id")
        body["detail"] = body["detail"].replace(anchor, "<anchor>")
        return body

    assert members(seen, seen_id) == members(unknown, fake)


async def pay(
    client: httpx.AsyncClient, headers: dict[str, str], agent_id: str, **payee: str
) -> str:
    response = await client.post(
        "/api/v1/payments", json={"agent_id": agent_id, "amount": "1.00", **payee}, headers=headers
    )
    assert response.status_code == 200, response.text
    tx_id: str = response.json()["transaction"]["tx_id"]
    return tx_id


async def test_starting_after_another_agents_transaction_is_not_found(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    owner_key = await make_key()
    owner = bearer(owner_key)
    one = (await create_agent(client, owner, name="one"))["agent"]
    two = (await create_agent(client, owner, name="two"))["agent"]
    merchant = (await create_merchant(client, owner))["merchant_id"]
    mine = [await pay(client, owner, one["agent_id"], merchant_id=merchant) for _ in range(2)]
    # Agent two pays agent one: a transaction of both listings.
    received = await pay(client, owner, two["agent_id"], recipient_wallet_id=one["wallet_id"])
    theirs = await pay(client, owner, two["agent_id"], merchant_id=merchant)
    agent_key = bearer(await make_key(owner=owner_key.owner_id, agent_id=one["agent_id"]))
    url = f"/api/v1/agents/{one['agent_id']}/transactions"
    for headers in (agent_key, owner):
        hidden = await client.get(url, params={"starting_after": theirs}, headers=headers)
        unknown = await client.get(url, params={"starting_after": "tx_nope"}, headers=headers)
        same_refusal(hidden, unknown, theirs, "tx_nope")
        assert hidden.json()["param"] == "starting_after"
        # Cursors of the listing itself still page, received payments included.
        page = await client.get(url, params={"starting_after": received}, headers=headers)
        assert [t["tx_id"] for t in page.json()] == mine[::-1]
        page = await client.get(url, params={"starting_after": mine[1]}, headers=headers)
        assert [t["tx_id"] for t in page.json()] == [mine[0]]
    # Agent two's own listing takes it.
    page = await client.get(
        f"/api/v1/agents/{two['agent_id']}/transactions",
        params={"starting_after": theirs},
        headers=owner,
    )
    assert [t["tx_id"] for t in page.json()] == [received]


async def test_a_request_cursor_the_agent_may_not_see_is_not_found(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    owner_key = await make_key()
    owner = bearer(owner_key)
    one, two, three = [
        (await create_agent(client, owner, name=name))["agent"]["agent_id"]
        for name in ("one", "two", "three")
    ]

    async def ask(requester: str, payer: str) -> str:
        response = await client.post(
            "/api/v1/payments/request",
            json={"requester_agent_id": requester, "payer_agent_id": payer, "amount": "1.00"},
            headers=owner,
        )
        assert response.status_code == 201, response.text
        request_id: str = response.json()["request_id"]
        return request_id

    first = await ask(one, two)
    second = await ask(two, one)
    between_others = await ask(two, three)
    agent_key = bearer(await make_key(owner=owner_key.owner_id, agent_id=one))
    url = "/api/v1/payments/request"
    hidden = await client.get(url, params={"cursor": between_others}, headers=agent_key)
    unknown = await client.get(url, params={"cursor": "preq_nope"}, headers=agent_key)
    same_refusal(hidden, unknown, between_others, "preq_nope")
    assert hidden.json()["param"] == "cursor"
    # Requests naming its agent are cursors it may use; the owner may use any of its own.
    page = await client.get(url, params={"cursor": second}, headers=agent_key)
    assert [r["request_id"] for r in page.json()] == [first]
    page = await client.get(url, params={"cursor": between_others}, headers=owner)
    assert [r["request_id"] for r in page.json()] == [second, first]
    # Another owner's request is as unknown as ever.
    stranger = bearer(await make_key())
    foreign = await client.get(url, params={"cursor": first}, headers=stranger)
    same_refusal(
        foreign,
        await client.get(url, params={"cursor": "preq_nope"}, headers=stranger),
        first,
        "preq_nope",
    )
