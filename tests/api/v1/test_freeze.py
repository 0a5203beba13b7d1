"""The freeze ladder through the API, as an owner (and an agent's own key) pulls it: one
agent or every agent of the owner, every money call refused and recorded while frozen,
holds released on request, who may pull and release which brake, events to a real
receiver, and a hold's capture as a completed payment (``payment.completed``)."""

import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.apikey.schemas import Scope
from app.domain.sequence.service import sandbox_key
from app.integrations.sequence.sandbox import seeded_id
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of
from tests.api.v1.test_webhooks import pump, subscribe
from tests.webhook_receiver import Receiver, running_receiver

PAY = "/api/v1/payments"
HOLDS = "/api/v1/payments/holds"
REQUESTS = "/api/v1/payments/request"
FREEZE_EVENTS = ["agent.frozen", "agent.unfrozen"]

Owner = dict[str, Any]


@pytest.fixture
async def owner(client: httpx.AsyncClient, make_key: MakeKey) -> Owner:
    """A fresh owner (key with every scope), one agent holding 500.00 and a merchant."""
    key = await make_key(scopes=list(Scope))
    headers = bearer(key)
    agent = await create_agent(client, headers, initial_balance="500.00")
    merchant = await create_merchant(client, headers)
    return {
        "key": key,
        "headers": headers,
        "agent_id": agent["agent"]["agent_id"],
        "wallet_id": agent["wallet"]["wallet_id"],
        "merchant_id": merchant["merchant_id"],
    }


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def post(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any = None
) -> httpx.Response:
    return await client.post(f"/api/v1{path}", json=body, headers=headers)


async def pay(
    client: httpx.AsyncClient, o: Owner, agent_id: str | None = None, amount: str = "1.00"
) -> httpx.Response:
    body = {
        "agent_id": agent_id or o["agent_id"],
        "merchant_id": o["merchant_id"],
        "amount": amount,
    }
    return await client.post(PAY, json=body, headers=o["headers"])


async def place_hold(
    client: httpx.AsyncClient, o: Owner, amount: str, agent_id: str | None = None
) -> httpx.Response:
    body = {
        "agent_id": agent_id or o["agent_id"],
        "merchant_id": o["merchant_id"],
        "amount": amount,
    }
    return await client.post(HOLDS, json=body, headers=o["headers"])


async def audit(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The owner's audit records, newest first (a fresh owner has fewer than 200)."""
    response = await client.get("/api/v1/audit", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["data"]
    return records


async def transactions(
    client: httpx.AsyncClient, headers: dict[str, str], agent_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/agents/{agent_id}/transactions", params={"limit": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def assert_frozen(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == "wallet_frozen", body
    return body


async def deliver_all(app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Run the webhook worker until it has nothing left to deliver now (a pass sends only
    a few deliveries per endpoint); what the receiver got is then checked."""
    for _ in range(50):
        if await pump(app, sessionmaker) == 0:
            return


def events_of(receiver: Receiver, *types: str) -> list[dict[str, Any]]:
    """The bodies the receiver got, of ``types`` (all with none), in arrival order."""
    bodies = [json.loads(body) for body in receiver.bodies()]
    return [body for body in bodies if not types or body["type"] in types]


async def postings_of(sessionmaker: async_sessionmaker[AsyncSession], wallet_id: str) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            text(
                "SELECT count(*) FROM postings p JOIN wallets w"
                " ON p.account_id IN (w.available_account_id, w.held_account_id)"
                " WHERE w.id = :id"
            ),
            {"id": wallet_id},
        )
    return int(count or 0)


# --- one agent ---------------------------------------------------------------------------


async def test_a_frozen_agent_moves_no_money_by_any_call_and_every_attempt_is_recorded(
    client: httpx.AsyncClient, owner: Owner, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    o, headers = owner, owner["headers"]
    requester = (await create_agent(client, headers, name="requesting agent"))["agent"]
    invoice = await client.post(
        REQUESTS,
        json={
            "requester_agent_id": requester["agent_id"],
            "payer_agent_id": o["agent_id"],
            "amount": "2.00",
        },
        headers=headers,
    )
    assert invoice.status_code == 201, invoice.text
    request_id = invoice.json()["request_id"]
    held = await place_hold(client, o, "30.00")
    assert held.status_code == 201, held.text
    hold_id = held.json()["hold_id"]

    frozen = await post(client, f"/agents/{o['agent_id']}/freeze", headers)
    assert frozen.status_code == 200, frozen.text
    assert frozen.json() == {
        "scope": "agent",
        "agent_id": o["agent_id"],
        "frozen": True,
        "frozen_by": ["agent"],
        "changed": True,
        "agent_ids": [o["agent_id"]],
        "holds_released": [],
    }
    before = await wallet_of(client, headers, o["agent_id"])
    assert before["frozen"] is True
    assert before["held_balance"] == "30.10"  # no release asked for: the hold (and fee) stays
    postings = await postings_of(sessionmaker, o["wallet_id"])
    history = len(await transactions(client, headers, o["agent_id"]))

    paid = assert_frozen(await pay(client, o))
    assert paid["success"] is False
    tx = await client.get(f"{PAY}/{paid['tx_id']}", headers=headers)
    assert tx.json()["status"] == "failed"
    assert "frozen" in tx.json()["error_message"]

    assert_frozen(await place_hold(client, o, "5.00"))

    captured = assert_frozen(await post(client, f"/payments/holds/{hold_id}/capture", headers))
    assert captured["hold"] is None
    hold = (await client.get(f"{HOLDS}/{hold_id}", headers=headers)).json()
    assert (hold["status"], hold["capture_tx_id"]) == ("pending", None)

    request_paid = assert_frozen(await post(client, f"/payments/request/{request_id}/pay", headers))
    assert (await client.get(f"{REQUESTS}/{request_id}", headers=headers)).json()[
        "status"
    ] == "pending"
    failed_request = await client.get(f"{PAY}/{request_paid['tx_id']}", headers=headers)
    assert failed_request.json()["status"] == "failed"

    # Nothing moved, and each attempt left its record.
    assert await wallet_of(client, headers, o["agent_id"]) == before
    assert await postings_of(sessionmaker, o["wallet_id"]) == postings
    listed = await transactions(client, headers, o["agent_id"])
    new = listed[: len(listed) - history]
    assert Counter(t["status"] for t in new) == {"failed": 3}, new
    failed_capture = next(t for t in new if t["amount"] == "30.00")
    # The refusal names the failed transaction it recorded, as a payment's does.
    assert captured["tx_id"] == failed_capture["tx_id"]
    assert failed_capture["merchant_id"] == o["merchant_id"]
    assert "frozen" in (failed_capture["error_message"] or "")
    records = await audit(client, headers)
    events = Counter(r["event"] for r in records)
    assert events["agent_frozen"] == 1
    assert events["payment_failed"] == 2  # the payment and the request's payment
    assert events["hold_failed"] == 1
    assert events["hold_capture_failed"] == 1
    failures = [
        r for r in records if r["event"] in ("payment_failed", "hold_failed", "hold_capture_failed")
    ]
    assert all(r["data"]["code"] == "wallet_frozen" for r in failures), failures
    frozen_record = next(r for r in records if r["event"] == "agent_frozen")
    assert frozen_record["key_id"] == o["key"].key_id
    assert frozen_record["subject_id"] == o["agent_id"]
    assert frozen_record["request_id"] == frozen.headers["Request-Id"]

    # The owner lets go of the brake: every call goes through again.
    unfrozen = await post(client, f"/agents/{o['agent_id']}/unfreeze", headers)
    assert unfrozen.status_code == 200, unfrozen.text
    assert (unfrozen.json()["frozen"], unfrozen.json()["changed"]) == (False, True)
    assert (await wallet_of(client, headers, o["agent_id"]))["frozen"] is False
    assert (await pay(client, o)).status_code == 200
    capture = await post(client, f"/payments/holds/{hold_id}/capture", headers)
    assert capture.status_code == 200, capture.text
    assert capture.json()["status"] == "captured"
    assert (await post(client, f"/payments/request/{request_id}/pay", headers)).status_code == 200
    unfreeze_record = next(
        r for r in await audit(client, headers) if r["event"] == "agent_unfrozen"
    )
    assert unfreeze_record["key_id"] == o["key"].key_id


async def test_release_holds_voids_the_agents_pending_holds_and_restores_its_balance(
    client: httpx.AsyncClient, owner: Owner
) -> None:
    o, headers = owner, owner["headers"]
    await client.patch(
        f"/api/v1/agents/{o['agent_id']}/wallet/limits",
        json={"limit_daily": "100.00", "limit_total": "400.00"},
        headers=headers,
    )
    start = await wallet_of(client, headers, o["agent_id"])
    holds = [(await place_hold(client, o, amount)).json()["hold_id"] for amount in ("20.00", "7.5")]
    held = await wallet_of(client, headers, o["agent_id"])
    assert held["held_balance"] != "0.00"
    assert held["limits"]["daily"]["used"] == "27.50"

    frozen = await post(client, f"/agents/{o['agent_id']}/freeze", headers, {"release_holds": True})
    assert frozen.status_code == 200, frozen.text
    assert sorted(frozen.json()["holds_released"]) == sorted(holds)
    after = await wallet_of(client, headers, o["agent_id"])
    assert after["held_balance"] == "0.00"
    assert after["balance"] == start["balance"]
    assert after["limits"]["daily"]["used"] == "0.00"
    assert after["spent_total"] == start["spent_total"]
    for hold_id in holds:
        hold = (await client.get(f"{HOLDS}/{hold_id}", headers=headers)).json()
        assert hold["status"] == "voided"
    # A second freeze finds nothing to change and nothing to release.
    again = await post(client, f"/agents/{o['agent_id']}/freeze", headers, {"release_holds": True})
    assert (again.json()["changed"], again.json()["holds_released"]) == (False, [])


async def test_the_freeze_body_is_checked(client: httpx.AsyncClient, owner: Owner) -> None:
    o, headers = owner, owner["headers"]
    for body in ({"release_holds": "yes"}, {"release_holds": 1}, {"unknown": True}):
        response = await post(client, f"/agents/{o['agent_id']}/freeze", headers, body)
        assert response.status_code == 422, (body, response.text)
    assert (await wallet_of(client, headers, o["agent_id"]))["frozen"] is False
    missing = await post(client, "/agents/agent_0000000000000000/freeze", headers)
    assert missing.status_code == 404


async def test_an_agent_key_may_freeze_its_own_agent_and_nothing_more(
    client: httpx.AsyncClient, owner: Owner, make_key: MakeKey
) -> None:
    o, headers = owner, owner["headers"]
    other = (await create_agent(client, headers, name="sibling agent"))["agent"]["agent_id"]
    agent_key = await make_key(
        owner=o["key"].owner_id, agent_id=o["agent_id"], scopes=["wallet:read", "payments:write"]
    )
    own = bearer(agent_key)

    frozen = await post(client, f"/agents/{o['agent_id']}/freeze", own)
    assert frozen.status_code == 200, frozen.text
    assert frozen.json()["changed"] is True
    assert (await wallet_of(client, own, o["agent_id"]))["frozen"] is True
    record = next(r for r in await audit(client, headers) if r["event"] == "agent_frozen")
    assert record["key_id"] == agent_key.key_id

    unfreeze = await post(client, f"/agents/{o['agent_id']}/unfreeze", own)
    assert unfreeze.status_code == 403, unfreeze.text
    assert unfreeze.json()["code"] == "agent_key_not_allowed"
    sibling = await post(client, f"/agents/{other}/freeze", own)
    assert sibling.status_code == 404, sibling.text
    for path in ("/freeze", "/unfreeze"):
        response = await post(client, path, own)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "agent_key_not_allowed"
    assert (await wallet_of(client, headers, o["agent_id"]))["frozen"] is True
    assert (await wallet_of(client, headers, other))["frozen"] is False
    assert_frozen(
        await client.post(
            PAY,
            json={"agent_id": o["agent_id"], "merchant_id": o["merchant_id"], "amount": "1.00"},
            headers=own,
        )
    )
    # An owner key that may only read pulls no brake.
    reader = bearer(await make_key(owner=o["key"].owner_id, scopes=["agents:read", "wallet:read"]))
    for path in (f"/agents/{other}/freeze", "/freeze", f"/agents/{o['agent_id']}/unfreeze"):
        response = await post(client, path, reader)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "insufficient_scope"
    assert (await wallet_of(client, headers, other))["frozen"] is False


async def test_an_agent_key_cannot_release_holds_it_may_not_void(
    client: httpx.AsyncClient, owner: Owner, make_key: MakeKey
) -> None:
    o, headers = owner, owner["headers"]
    own = bearer(await make_key(owner=o["key"].owner_id, agent_id=o["agent_id"]))
    hold_id = (await place_hold(client, o, "25.00")).json()["hold_id"]
    void = await post(client, f"/payments/holds/{hold_id}/void", own)
    assert void.status_code == 403, void.text
    assert void.json()["code"] == "agent_key_not_allowed"
    # The merchant's reservation stays whatever the agent's own key asks: either the
    # release is refused, or the agent is frozen with its holds kept.
    frozen = await post(client, f"/agents/{o['agent_id']}/freeze", own, {"release_holds": True})
    hold = (await client.get(f"{HOLDS}/{hold_id}", headers=headers)).json()
    assert hold["status"] == "pending", (frozen.json(), hold)
    assert frozen.status_code in (200, 403), frozen.text


async def test_freezing_twice_changes_nothing_and_emits_one_event(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Owner,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o, headers = owner, owner["headers"]
    await subscribe(client, headers, receiver.url, FREEZE_EVENTS)
    path = f"/agents/{o['agent_id']}"
    first, second = [await post(client, f"{path}/freeze", headers) for _ in range(2)]
    assert (first.json()["changed"], second.json()["changed"]) == (True, False)
    assert second.json()["frozen"] is True
    assert second.json()["agent_ids"] == []
    on, off = [await post(client, f"{path}/unfreeze", headers) for _ in range(2)]
    assert (on.json()["changed"], off.json()["changed"]) == (True, False)
    await deliver_all(app, sessionmaker)
    received = events_of(receiver)
    assert [e["type"] for e in received] == ["agent.frozen", "agent.unfrozen"]
    assert all(e["data"]["agent_id"] == o["agent_id"] for e in received)
    assert received[0]["data"]["key_id"] == o["key"].key_id
    records = Counter(r["event"] for r in await audit(client, headers))
    assert (records["agent_frozen"], records["agent_unfrozen"]) == (1, 1)


async def test_an_idempotent_freeze_replays_its_answer(
    client: httpx.AsyncClient, owner: Owner
) -> None:
    o = owner
    keyed = {**o["headers"], "Idempotency-Key": "freeze-once"}
    first = await post(client, f"/agents/{o['agent_id']}/freeze", keyed)
    replay = await post(client, f"/agents/{o['agent_id']}/freeze", keyed)
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert replay.json()["changed"] is True  # the stored answer, not a second freeze's
    other = await post(client, f"/agents/{o['agent_id']}/freeze", keyed, {"release_holds": True})
    assert other.status_code == 422, other.text
    assert other.json()["code"] == "idempotency_key_reused"
    assert (await wallet_of(client, o["headers"], o["agent_id"]))["frozen"] is True


# --- every agent of the owner -------------------------------------------------------------


async def test_an_owner_wide_freeze_stops_every_agent_including_new_ones(
    client: httpx.AsyncClient, owner: Owner
) -> None:
    o, headers = owner, owner["headers"]
    others = [
        (await create_agent(client, headers, name=f"agent {i}"))["agent"]["agent_id"]
        for i in range(2)
    ]
    everyone = sorted([o["agent_id"], *others])
    frozen = await post(client, "/freeze", headers)
    assert frozen.status_code == 200, frozen.text
    assert frozen.json() == {
        "scope": "owner",
        "agent_id": None,
        "frozen": True,
        "frozen_by": ["owner"],
        "changed": True,
        "agent_ids": everyone,
        "holds_released": [],
    }
    for agent_id in everyone:
        assert (await wallet_of(client, headers, agent_id))["frozen"] is True
        assert_frozen(await pay(client, o, agent_id))
    # An agent created while the owner is frozen starts frozen.
    created = await create_agent(client, headers, name="late agent")
    late = created["agent"]["agent_id"]
    assert created["wallet"]["frozen"] is True
    assert (await wallet_of(client, headers, late))["frozen"] is True
    assert_frozen(await pay(client, o, late))
    assert_frozen(await place_hold(client, o, "1.00", late))

    again = await post(client, "/freeze", headers)
    assert (again.json()["changed"], again.json()["agent_ids"]) == (False, [])
    records = await audit(client, headers)
    owner_frozen = [r for r in records if r["event"] == "owner_frozen"]
    assert len(owner_frozen) == 1
    assert owner_frozen[0]["key_id"] == o["key"].key_id
    assert owner_frozen[0]["data"]["agent_ids"] == everyone

    thawed = await post(client, "/unfreeze", headers)
    assert thawed.status_code == 200, thawed.text
    assert (thawed.json()["frozen"], thawed.json()["changed"]) == (False, True)
    assert thawed.json()["agent_ids"] == sorted([*everyone, late])
    for agent_id in [*everyone, late]:
        assert (await wallet_of(client, headers, agent_id))["frozen"] is False
    assert (await pay(client, o, late)).status_code == 200
    assert (await post(client, "/unfreeze", headers)).json()["changed"] is False
    # Unfrozen: new agents start free again.
    fresh = await create_agent(client, headers, name="after the thaw")
    assert fresh["wallet"]["frozen"] is False


async def test_owner_wide_release_holds_voids_every_agents_holds(
    client: httpx.AsyncClient, owner: Owner
) -> None:
    o, headers = owner, owner["headers"]
    second = (await create_agent(client, headers, initial_balance="50.00"))["agent"]["agent_id"]
    holds = [
        (await place_hold(client, o, "10.00", agent_id)).json()["hold_id"]
        for agent_id in (o["agent_id"], second, second)
    ]
    frozen = await post(client, "/freeze", headers, {"release_holds": True})
    assert sorted(frozen.json()["holds_released"]) == sorted(holds)
    for agent_id, balance in ((o["agent_id"], "500.00"), (second, "50.00")):
        wallet = await wallet_of(client, headers, agent_id)
        assert (wallet["balance"], wallet["held_balance"]) == (balance, "0.00")


async def test_the_owners_unfreeze_leaves_an_agent_frozen_on_its_own_frozen(
    client: httpx.AsyncClient, owner: Owner
) -> None:
    o, headers = owner, owner["headers"]
    free = (await create_agent(client, headers, name="free agent"))["agent"]["agent_id"]
    assert (await post(client, f"/agents/{o['agent_id']}/freeze", headers)).status_code == 200
    assert (await post(client, "/freeze", headers)).status_code == 200
    assert (await post(client, "/unfreeze", headers)).status_code == 200
    assert (await wallet_of(client, headers, o["agent_id"]))["frozen"] is True
    assert_frozen(await pay(client, o))
    assert (await wallet_of(client, headers, free))["frozen"] is False
    assert (await pay(client, o, free)).status_code == 200
    # Only its own unfreeze releases it.
    assert (await post(client, f"/agents/{o['agent_id']}/unfreeze", headers)).status_code == 200
    assert (await pay(client, o)).status_code == 200


async def test_owner_wide_events_name_only_agents_whose_state_changed(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Owner,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o, headers = owner, owner["headers"]
    free = (await create_agent(client, headers, name="free agent"))["agent"]["agent_id"]
    await subscribe(client, headers, receiver.url, FREEZE_EVENTS)
    assert (await post(client, f"/agents/{o['agent_id']}/freeze", headers)).status_code == 200
    frozen = await post(client, "/freeze", headers)
    thawed = await post(client, "/unfreeze", headers)
    assert (frozen.status_code, thawed.status_code) == (200, 200)
    await deliver_all(app, sessionmaker)
    received = Counter((e["type"], e["data"]["agent_id"]) for e in events_of(receiver))
    # The self-frozen agent is frozen from its own freeze on, through both owner calls: one
    # event says so, and none says otherwise (a subscriber reading agent.unfrozen would let
    # it pay again).
    expected = {
        ("agent.frozen", o["agent_id"]): 1,
        ("agent.frozen", free): 1,
        ("agent.unfrozen", free): 1,
    }
    assert received == expected, received


async def test_an_agent_unfreeze_under_an_owner_freeze_says_the_agent_is_still_frozen(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Owner,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o, headers = owner, owner["headers"]
    await subscribe(client, headers, receiver.url, FREEZE_EVENTS)
    await post(client, f"/agents/{o['agent_id']}/freeze", headers)
    await post(client, "/freeze", headers)
    unfrozen = await post(client, f"/agents/{o['agent_id']}/unfreeze", headers)
    assert unfrozen.status_code == 200, unfrozen.text
    wallet = await wallet_of(client, headers, o["agent_id"])
    assert wallet["frozen"] is True
    assert_frozen(await pay(client, o))
    await deliver_all(app, sessionmaker)
    # "frozen: the state after the call": the agent is still frozen, by its owner.
    assert unfrozen.json()["frozen"] is wallet["frozen"]
    assert events_of(receiver, "agent.unfrozen") == []


async def test_owners_are_isolated(
    client: httpx.AsyncClient, owner: Owner, make_key: MakeKey
) -> None:
    o = owner
    b_headers = bearer(await make_key(scopes=list(Scope)))
    b_agent = (await create_agent(client, b_headers))["agent"]["agent_id"]
    b = {
        "headers": b_headers,
        "merchant_id": (await create_merchant(client, b_headers))["merchant_id"],
    }
    assert (await post(client, "/freeze", o["headers"])).status_code == 200
    assert (await wallet_of(client, b_headers, b_agent))["frozen"] is False
    assert (await pay(client, b, b_agent)).status_code == 200
    # B's agent is not A's to freeze or unfreeze, and B's own unfreeze does not thaw A.
    for path in (f"/agents/{b_agent}/freeze", f"/agents/{b_agent}/unfreeze"):
        assert (await post(client, path, o["headers"])).status_code == 404
    assert (await post(client, f"/agents/{o['agent_id']}/freeze", b_headers)).status_code == 404
    unfreeze_b = await post(client, "/unfreeze", b_headers)
    assert unfreeze_b.json()["agent_ids"] == []
    assert (await wallet_of(client, o["headers"], o["agent_id"]))["frozen"] is True
    assert_frozen(await pay(client, o))
    # Nothing of A's shows in B's audit.
    assert not [r for r in await audit(client, b_headers) if r["event"] == "owner_frozen"]


async def test_a_frozen_agents_funding_is_refused_and_recorded(
    app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(scopes=list(Scope))
    headers = bearer(key)
    agent_id = (await create_agent(client, headers, currency="USD", initial_balance="0"))["agent"][
        "agent_id"
    ]
    pod = seeded_id(sandbox_key(key.owner_id, app.state.settings), "Agent Budget")
    assert (await post(client, f"/agents/{agent_id}/freeze", headers)).status_code == 200
    funded = await post(
        client,
        f"/agents/{agent_id}/wallet/fund",
        headers,
        {"source": "sequence", "pod_id": pod, "amount": "25.00"},
    )
    assert_frozen(funded)
    assert (await wallet_of(client, headers, agent_id))["balance"] == "0.00"
    refused = next(r for r in await audit(client, headers) if r["event"] == "funding_refused")
    assert refused["data"]["code"] == "wallet_frozen"
    assert refused["key_id"] == key.key_id


# --- a capture is a completed payment ---------------------------------------------------


async def test_a_capture_emits_hold_captured_and_payment_completed_with_its_transaction(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Owner,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o, headers = owner, owner["headers"]
    await subscribe(client, headers, receiver.url, ["hold.captured", "payment.completed"])
    paid = await pay(client, o, amount="3.00")  # a plain payment's event, to compare shapes
    partial = (await place_hold(client, o, "30.00")).json()["hold_id"]
    full = (await place_hold(client, o, "4.25")).json()["hold_id"]
    first = await post(client, f"/payments/holds/{partial}/capture", headers, {"amount": "12.50"})
    assert first.status_code == 200, first.text
    second = await post(client, f"/payments/holds/{full}/capture", headers)
    assert second.status_code == 200, second.text
    await deliver_all(app, sessionmaker)

    completed = {
        e["data"]["transaction"]["tx_id"]: e["data"]["transaction"]
        for e in events_of(receiver, "payment.completed")
    }
    captured = {
        e["data"]["hold"]["hold_id"]: e["data"]["hold"]
        for e in events_of(receiver, "hold.captured")
    }
    assert set(captured) == {partial, full}
    plain = completed.pop(paid.json()["transaction"]["tx_id"])
    for hold, amount in ((first.json(), "12.50"), (second.json(), "4.25")):
        tx_id = hold["capture_tx_id"]
        assert tx_id is not None
        assert captured[hold["hold_id"]]["capture_tx_id"] == tx_id
        event = completed.pop(tx_id)
        assert (event["amount"], event["status"]) == (amount, "completed")
        assert event["id"] == tx_id
        assert event["merchant_id"] == o["merchant_id"]
        assert event["agent_id"] == o["agent_id"]
        assert event["from_wallet"] == o["wallet_id"]
        assert event["completed_at"] is not None
        assert set(event) == set(plain)
        # The event carries what the API says of that transaction.
        stored = (await client.get(f"{PAY}/{tx_id}", headers=headers)).json()
        assert {k: event[k] for k in stored} == stored
    assert completed == {}  # one payment.completed per capture, no more


async def test_a_frozen_agents_capture_emits_nothing_and_keeps_the_hold(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Owner,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    o, headers = owner, owner["headers"]
    await subscribe(client, headers, receiver.url, ["hold.captured", "payment.completed"])
    hold_id = (await place_hold(client, o, "8.00")).json()["hold_id"]
    await post(client, "/freeze", headers)
    before = await wallet_of(client, headers, o["agent_id"])
    for body in (None, {"amount": "2.00"}):
        assert_frozen(await post(client, f"/payments/holds/{hold_id}/capture", headers, body))
    await deliver_all(app, sessionmaker)
    assert events_of(receiver) == []
    hold = (await client.get(f"{HOLDS}/{hold_id}", headers=headers)).json()
    assert (hold["status"], hold["captured_amount"]) == ("pending", None)
    assert await wallet_of(client, headers, o["agent_id"]) == before
    failed = [
        t for t in await transactions(client, headers, o["agent_id"]) if t["status"] == "failed"
    ]
    assert sorted(t["amount"] for t in failed) == ["2.00", "8.00"]
    # A hold that cannot be captured anyway is answered as for anyone: no record.
    await post(client, "/unfreeze", headers)
    assert (await post(client, f"/payments/holds/{hold_id}/void", headers)).status_code == 200
    await post(client, "/freeze", headers)
    late = await post(client, f"/payments/holds/{hold_id}/capture", headers)
    assert late.status_code == 409, late.text
    assert (
        len(
            [
                t
                for t in await transactions(client, headers, o["agent_id"])
                if t["status"] == "failed"
            ]
        )
        == 2
    )


async def test_an_agent_born_under_an_owner_freeze_is_announced_frozen(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    headers = bearer(await make_key())
    assert (await post(client, "/freeze", headers)).json()["frozen_by"] == ["owner"]
    agent_id = (await create_agent(client, headers))["agent"]["agent_id"]
    wallet = await wallet_of(client, headers, agent_id)
    assert (wallet["frozen"], wallet["frozen_by"]) == (True, ["owner"])
    async with sessionmaker() as session:
        types = (
            (
                await session.execute(
                    text(
                        "SELECT type FROM outbox_events WHERE type LIKE 'agent.%' AND "
                        "(data->>'agent_id' = :agent OR data->'agent'->>'agent_id' = :agent) "
                        "ORDER BY created_at"
                    ),
                    {"agent": agent_id},
                )
            )
            .scalars()
            .all()
        )
    # A subscriber sees it frozen before the owner's unfreeze announces it unfrozen.
    assert types == ["agent.created", "agent.frozen"]
    unfrozen = await post(client, "/unfreeze", headers)
    assert agent_id in unfrozen.json()["agent_ids"]
    own = await post(client, f"/agents/{agent_id}/freeze", headers)
    assert own.json()["frozen_by"] == ["agent"]
    await post(client, "/freeze", headers)
    both = await wallet_of(client, headers, agent_id)
    assert both["frozen_by"] == ["agent", "owner"]
