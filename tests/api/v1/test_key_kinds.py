"""Which kinds of key may call each route.

An owner key may call every route its scopes allow; a key restricted to one agent only
reads that agent's wallet and pays. Every route of the app declares its rule (``scoped``,
``authenticated`` or ``PUBLIC`` in ``app.api.deps``), the OpenAPI document states it
(``x-key-kinds`` and a line of the description), and an agent key walking every route
gets exactly what ``TABLE`` says: 403 ``agent_key_not_allowed`` before any effect where
only owner keys may call, never 403 where agent keys may.
"""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.deps import rules_of
from app.api.router import api_router
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of

NO_KEY: frozenset[str] = frozenset()
OWNER = frozenset({"owner"})
BOTH = frozenset({"owner", "agent"})

#: Who may call each operation: the contract README's "what each key can do" describes.
TABLE: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/health"): NO_KEY,
    ("GET", "/api/v1/health/ready"): NO_KEY,
    ("POST", "/api/v1/keys"): OWNER,
    ("GET", "/api/v1/keys"): OWNER,
    ("DELETE", "/api/v1/keys/{key_id}"): OWNER,
    ("POST", "/api/v1/agents"): OWNER,
    ("GET", "/api/v1/agents"): OWNER,
    ("GET", "/api/v1/agents/{agent_id}"): OWNER,
    ("PATCH", "/api/v1/agents/{agent_id}"): OWNER,
    ("GET", "/api/v1/agents/{agent_id}/wallet"): BOTH,
    ("GET", "/api/v1/agents/{agent_id}/transactions"): BOTH,
    ("GET", "/api/v1/agents/{agent_id}/holds"): BOTH,
    ("PATCH", "/api/v1/agents/{agent_id}/wallet/limits"): OWNER,
    ("POST", "/api/v1/agents/{agent_id}/freeze"): BOTH,
    ("POST", "/api/v1/agents/{agent_id}/unfreeze"): OWNER,
    ("POST", "/api/v1/freeze"): OWNER,
    ("GET", "/api/v1/test/clock"): OWNER,
    ("POST", "/api/v1/test/clock/advance"): OWNER,
    ("GET", "/api/v1/agents/{agent_id}/wallet/entries"): BOTH,
    ("GET", "/api/v1/journal/entries/{entry_id}"): BOTH,
    ("POST", "/api/v1/unfreeze"): OWNER,
    ("POST", "/api/v1/merchants"): OWNER,
    ("GET", "/api/v1/merchants"): OWNER,
    ("GET", "/api/v1/merchants/{merchant_id}"): OWNER,
    ("GET", "/api/v1/merchants/{merchant_id}/wallet"): OWNER,
    ("GET", "/api/v1/catalog/products"): OWNER,
    ("GET", "/api/v1/catalog/products/{product_id}"): OWNER,
    ("POST", "/api/v1/catalog/products"): OWNER,
    ("PATCH", "/api/v1/catalog/products/{product_id}"): OWNER,
    ("POST", "/api/v1/payments/request"): OWNER,
    ("GET", "/api/v1/payments/request"): BOTH,
    ("GET", "/api/v1/payments/request/{request_id}"): BOTH,
    ("POST", "/api/v1/payments/request/{request_id}/pay"): BOTH,
    ("DELETE", "/api/v1/payments/request/{request_id}"): OWNER,
    ("POST", "/api/v1/payments/holds"): BOTH,
    ("GET", "/api/v1/payments/holds/{hold_id}"): BOTH,
    ("POST", "/api/v1/payments/holds/{hold_id}/capture"): OWNER,
    ("POST", "/api/v1/payments/holds/{hold_id}/void"): OWNER,
    ("POST", "/api/v1/payments"): BOTH,
    ("GET", "/api/v1/payments/estimate"): BOTH,
    ("POST", "/api/v1/payments/{tx_id}/refund"): OWNER,
    ("GET", "/api/v1/payments/{tx_id}/refunds"): BOTH,
    ("GET", "/api/v1/payments/{tx_id}"): BOTH,
    ("GET", "/api/v1/risk/agents/{agent_id}/score"): BOTH,
    ("GET", "/api/v1/risk/agents/{agent_id}/profile"): BOTH,
    ("POST", "/api/v1/risk/agents/{agent_id}/flag"): BOTH,
    ("DELETE", "/api/v1/risk/agents/{agent_id}/flag"): OWNER,
    ("POST", "/api/v1/risk/agents/{agent_id}/authorize"): OWNER,
    ("DELETE", "/api/v1/risk/agents/{agent_id}/authorize/{service_id}"): OWNER,
    ("GET", "/api/v1/sequence/pods"): OWNER,
    ("GET", "/api/v1/sequence/pods/balance"): OWNER,
    ("GET", "/api/v1/sequence/pods/detail/{pod_id}"): OWNER,
    ("GET", "/api/v1/sequence/pods/{pod_name}/balance"): OWNER,
    ("GET", "/api/v1/sequence/pods/{org_id}/{pod_id}"): OWNER,
    ("GET", "/api/v1/sequence/accounts"): OWNER,
    ("GET", "/api/v1/sequence/activity/summary"): OWNER,
    ("GET", "/api/v1/sequence/activity"): OWNER,
    ("GET", "/api/v1/sequence/transfers/{transfer_id}"): OWNER,
    ("GET", "/api/v1/sequence/activity/{org_id}/{transfer_id}"): OWNER,
    ("POST", "/api/v1/sequence/transfers"): OWNER,
    ("GET", "/api/pods"): OWNER,
    ("GET", "/api/pods/balance"): OWNER,
    ("GET", "/api/pods/detail/{pod_id}"): OWNER,
    ("GET", "/api/pods/{pod_name}/balance"): OWNER,
    ("GET", "/api/pods/{org_id}/{pod_id}"): OWNER,
    ("GET", "/api/accounts"): OWNER,
    ("GET", "/api/activity/summary"): OWNER,
    ("GET", "/api/activity"): OWNER,
    ("GET", "/api/transfers/{transfer_id}"): OWNER,
    ("GET", "/api/activity/{org_id}/{transfer_id}"): OWNER,
    ("POST", "/api/transfers"): OWNER,
    ("GET", "/api/health"): NO_KEY,
    ("GET", "/api/v1/sequence/connection"): OWNER,
    ("PUT", "/api/v1/sequence/connection"): OWNER,
    ("DELETE", "/api/v1/sequence/connection"): OWNER,
    ("GET", "/api/v1/sequence/limits"): OWNER,
    ("PUT", "/api/v1/sequence/limits"): OWNER,
    ("POST", "/api/v1/agents/{agent_id}/wallet/fund"): OWNER,
    ("GET", "/api/v1/fundings/{funding_id}"): OWNER,
    ("GET", "/api/v1/audit"): OWNER,
    ("GET", "/api/v1/webhooks/events/types"): OWNER,
    ("POST", "/api/v1/webhooks"): OWNER,
    ("GET", "/api/v1/webhooks"): OWNER,
    ("GET", "/api/v1/webhooks/{subscription_id}"): OWNER,
    ("PATCH", "/api/v1/webhooks/{subscription_id}"): OWNER,
    ("DELETE", "/api/v1/webhooks/{subscription_id}"): OWNER,
    ("POST", "/api/v1/webhooks/{subscription_id}/test"): OWNER,
    ("POST", "/api/v1/webhooks/{subscription_id}/rotate-secret"): OWNER,
    ("GET", "/api/v1/webhooks/{subscription_id}/deliveries"): OWNER,
    ("POST", "/api/v1/webhooks/{subscription_id}/deliveries/{event_id}/replay"): OWNER,
}

Operation = tuple[str, str]


def declared_rules(app: FastAPI) -> dict[Operation, list[frozenset[str]]]:
    """Every operation the app serves, with the key kinds of each rule it declares."""
    found: dict[Operation, list[frozenset[str]]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue  # the documentation pages: not operations of the API
        rules = {
            frozenset(kind.value for kind in rule.kinds) for rule in rules_of(context.dependant)
        }
        for method in context.methods or ():
            found[(method, context.path)] = sorted(rules, key=sorted)
    return found


async def test_every_route_declares_who_may_call_it_as_the_table_says(app: FastAPI) -> None:
    declared = declared_rules(app)
    undeclared = sorted(op for op, rules in declared.items() if len(rules) != 1)
    assert undeclared == [], f"routes without exactly one key rule: {undeclared}"
    actual = {op: rules[0] for op, rules in declared.items()}
    assert set(actual) == set(TABLE), (
        f"routes missing from TABLE: {sorted(set(actual) - set(TABLE))}; "
        f"in TABLE but not served: {sorted(set(TABLE) - set(actual))}"
    )
    differs = {op: sorted(actual[op]) for op in TABLE if actual[op] != TABLE[op]}
    assert differs == {}


def _openapi_cases() -> list[Any]:
    return [pytest.param(method, path, id=f"{method} {path}") for method, path in TABLE]


@pytest.mark.parametrize(("method", "path"), _openapi_cases())
async def test_openapi_states_which_keys_may_call_each_operation(
    app: FastAPI, method: str, path: str
) -> None:
    operation = app.openapi()["paths"][path][method.lower()]
    expected = [kind for kind in ("owner", "agent") if kind in TABLE[(method, path)]]
    assert operation.get("x-key-kinds") == expected
    line = operation["description"].splitlines()[-1]
    assert line.startswith("**Keys:** ")
    if not expected:
        assert line == "**Keys:** none needed."
    elif expected == ["owner"]:
        assert "owner keys only" in line
    else:
        assert "owner keys and agent keys (their agent only)" in line


def test_the_walk_fills_every_path_parameter() -> None:
    # The walk below fills path parameters by name: a new one must be added there.
    names = {
        name
        for route in api_router.routes
        if isinstance(route, APIRoute)
        for name in route.param_convertors
    }
    assert names <= set(PATH_VALUES)


#: The path parameters the walk knows how to fill (from ``World.ids``).
PATH_VALUES = (
    "agent_id",
    "key_id",
    "merchant_id",
    "product_id",
    "tx_id",
    "hold_id",
    "request_id",
    "subscription_id",
    "event_id",
    "service_id",
    "pod_id",
    "pod_name",
    "org_id",
    "transfer_id",
    "funding_id",
    "entry_id",
)


class World:
    """An owner with two agents, a merchant and a product; a payment, a pending hold and
    a pending payment request of its first agent; and a key restricted to that agent."""

    def __init__(
        self, owner: dict[str, str], agent_key: dict[str, str], ids: dict[str, str]
    ) -> None:
        self.owner = owner
        self.agent_key = agent_key
        self.ids = ids

    def url(self, path: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda match: self.ids[match.group(1)], path)


async def build_world(client: httpx.AsyncClient, make_key: MakeKey) -> World:
    owner_key = await make_key()
    owner = bearer(owner_key)
    mine = (await create_agent(client, owner, name="mine"))["agent"]["agent_id"]
    other = (await create_agent(client, owner, name="other"))["agent"]["agent_id"]
    merchant = (await create_merchant(client, owner))["merchant_id"]
    product = await client.post(
        "/api/v1/catalog/products",
        json={"merchant_id": merchant, "name": "Widget", "price": "2.00"},
        headers=owner,
    )
    assert product.status_code == 201, product.text
    paid = await client.post(
        "/api/v1/payments",
        json={"agent_id": mine, "merchant_id": merchant, "amount": "10.00"},
        headers=owner,
    )
    assert paid.status_code == 200, paid.text
    hold = await client.post(
        "/api/v1/payments/holds",
        json={"agent_id": mine, "merchant_id": merchant, "amount": "5.00"},
        headers=owner,
    )
    assert hold.status_code == 201, hold.text
    request = await client.post(
        "/api/v1/payments/request",
        json={"requester_agent_id": other, "payer_agent_id": mine, "amount": "1.00"},
        headers=owner,
    )
    assert request.status_code == 201, request.text
    agent_key = await make_key(owner=owner_key.owner_id, agent_id=mine)
    entries = await client.get(f"/api/v1/agents/{mine}/wallet/entries", headers=owner)
    assert entries.status_code == 200, entries.text
    ids = {
        "agent_id": mine,
        "other_agent_id": other,
        "key_id": owner_key.key_id,
        "merchant_id": merchant,
        "product_id": product.json()["product_id"],
        "tx_id": paid.json()["transaction"]["tx_id"],
        "hold_id": hold.json()["hold_id"],
        "request_id": request.json()["request_id"],
        # Only owner keys reach webhook routes: the ids need not exist.
        "subscription_id": "whk_unknown",
        "event_id": "evt_unknown",
        # Only owner keys may revoke a service: it need not be authorized.
        "service_id": merchant,
        # Only owner keys reach the Sequence routes: the ids need not exist.
        "pod_id": "pod-unknown",
        "pod_name": "groceries",
        "org_id": "org-unknown",
        "transfer_id": "transfer-unknown",
        "funding_id": "fund_unknown",
        "entry_id": entries.json()[0]["entry_id"],
    }
    return World(owner, bearer(agent_key), ids)


async def owner_view(client: httpx.AsyncClient, world: World) -> list[Any]:
    """Everything an effect of a refused request could change, as the owner reads it."""
    mine = world.ids["agent_id"]
    urls = [
        "/api/v1/agents",
        "/api/v1/merchants",
        f"/api/v1/merchants/{world.ids['merchant_id']}/wallet",
        "/api/v1/catalog/products?in_stock_only=false",
        "/api/v1/keys",
        f"/api/v1/agents/{mine}/wallet",
        f"/api/v1/agents/{mine}/transactions",
        f"/api/v1/agents/{mine}/holds",
        f"/api/v1/payments/{world.ids['tx_id']}/refunds",
        "/api/v1/payments/request",
        "/api/v1/webhooks",
        "/api/v1/audit?limit=200",
    ]
    view = []
    for url in urls:
        response = await client.get(url, headers=world.owner)
        assert response.status_code == 200, (url, response.text)
        body = response.json()
        if url.startswith("/api/v1/audit"):
            # Sealing may stamp records later; which records exist is what counts.
            body = [record["seq"] for record in body["data"]]
        view.append(body)
    return view


async def test_an_agent_key_walking_every_route_gets_what_the_table_says(
    client: httpx.AsyncClient, app: FastAPI, make_key: MakeKey
) -> None:
    world = await build_world(client, make_key)
    operations = sorted(declared_rules(app))
    owner_only = [op for op in operations if TABLE[op] == OWNER]
    # The agent key's freeze of its own agent comes last: every money route after it
    # would answer 403 wallet_frozen, as it should.
    allowed = sorted(
        (op for op in operations if TABLE[op] != OWNER), key=lambda op: op[1].endswith("/freeze")
    )
    before = await owner_view(client, world)
    for method, path in owner_only:
        body = {} if method in ("POST", "PATCH") else None
        response = await client.request(method, world.url(path), json=body, headers=world.agent_key)
        assert response.status_code == 403, (method, path, response.text)
        # The seed gateway's own paths answer errors as application/json (its clients
        # read `detail` only from that); every other path as problem+json.
        expected = (
            "application/json" if not path.startswith("/api/v1/") else "application/problem+json"
        )
        assert response.headers["content-type"].startswith(expected)
        problem = response.json()
        assert problem["code"] == "agent_key_not_allowed", (method, path, problem)
        assert "owner keys" in problem["detail"]
    # Nothing happened: no refund, capture, void, key, agent, limit or product changed.
    assert await owner_view(client, world) == before
    for method, path in allowed:
        body = {} if method in ("POST", "PATCH") else None
        response = await client.request(method, world.url(path), json=body, headers=world.agent_key)
        assert response.status_code not in (401, 403), (method, path, response.text)
        assert response.status_code < 500, (method, path, response.text)
        if method == "GET" and path != "/api/v1/payments/estimate":
            assert response.status_code == 200, (method, path, response.text)


async def test_an_agent_cannot_take_back_what_it_paid(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    world = await build_world(client, make_key)
    mine = world.ids["agent_id"]
    paid = await client.post(
        "/api/v1/payments",
        json={"agent_id": mine, "merchant_id": world.ids["merchant_id"], "amount": "10.00"},
        headers=world.agent_key,
    )
    assert paid.status_code == 200, paid.text
    tx_id = paid.json()["transaction"]["tx_id"]
    wallet = await wallet_of(client, world.owner, mine)
    for body in (None, {}, {"amount": "10.00"}):
        refund = await client.post(
            f"/api/v1/payments/{tx_id}/refund", json=body, headers=world.agent_key
        )
        assert refund.status_code == 403, refund.text
        assert refund.json()["code"] == "agent_key_not_allowed"
    # Balance and spending counters are untouched: the limits were not credited.
    assert await wallet_of(client, world.owner, mine) == wallet
    seen = await client.get(f"/api/v1/payments/{tx_id}", headers=world.agent_key)
    assert (seen.json()["status"], seen.json()["refunded_amount"]) == ("completed", "0.00")
    # The owner may.
    owner_refund = await client.post(
        f"/api/v1/payments/{tx_id}/refund", json={}, headers=world.owner
    )
    assert owner_refund.status_code == 201, owner_refund.text


async def test_an_agent_places_holds_but_the_owner_settles_them(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    world = await build_world(client, make_key)
    mine = world.ids["agent_id"]
    placed = await client.post(
        "/api/v1/payments/holds",
        json={"agent_id": mine, "merchant_id": world.ids["merchant_id"], "amount": "3.00"},
        headers=world.agent_key,
    )
    assert placed.status_code == 201, placed.text
    hold_url = f"/api/v1/payments/holds/{placed.json()['hold_id']}"
    for action in ("void", "capture"):
        refused = await client.post(f"{hold_url}/{action}", headers=world.agent_key)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "agent_key_not_allowed"
    seen = await client.get(hold_url, headers=world.agent_key)
    assert seen.json()["status"] == "pending"
    captured = await client.post(f"{hold_url}/capture", headers=world.owner)
    assert captured.status_code == 200, captured.text
    assert captured.json()["status"] == "captured"


async def test_an_agent_pays_requests_addressed_to_it_but_does_not_issue_or_cancel_them(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    world = await build_world(client, make_key)
    mine, other = world.ids["agent_id"], world.ids["other_agent_id"]
    asked = await client.post(
        "/api/v1/payments/request",
        json={"requester_agent_id": mine, "payer_agent_id": other, "amount": "1.00"},
        headers=world.agent_key,
    )
    assert asked.status_code == 403, asked.text
    assert asked.json()["code"] == "agent_key_not_allowed"
    request_url = f"/api/v1/payments/request/{world.ids['request_id']}"
    cancelled = await client.delete(request_url, headers=world.agent_key)
    assert cancelled.status_code == 403
    assert cancelled.json()["code"] == "agent_key_not_allowed"
    paid = await client.post(f"{request_url}/pay", headers=world.agent_key)
    assert paid.status_code == 200, paid.text
    assert (await client.get(request_url, headers=world.agent_key)).json()["status"] == "paid"


async def test_an_agent_key_with_owner_scopes_is_still_an_agent_key(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # Keys created before agent keys were limited to their two scopes may hold more:
    # the kind decides, not the scopes.
    world = await build_world(client, make_key)
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE api_keys SET scopes = ARRAY['agents:read', 'agents:write', "
                "'payments:read', 'payments:write', 'wallet:read', 'keys:write'] "
                "WHERE agent_id = :agent"
            ),
            {"agent": world.ids["agent_id"]},
        )
        await session.commit()
    for method, url in [
        ("GET", "/api/v1/agents"),
        ("PATCH", f"/api/v1/agents/{world.ids['agent_id']}/wallet/limits"),
        ("POST", f"/api/v1/payments/{world.ids['tx_id']}/refund"),
        ("GET", "/api/v1/keys"),
    ]:
        response = await client.request(method, url, json={}, headers=world.agent_key)
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["code"] == "agent_key_not_allowed"
