"""The wallet journal and journal entries, against the real app and ledger.

The journal is computed from the postings themselves, never from the balance projection:
so its newest running balance equalling the wallet's balance (read from the projection)
is a real check of both, after every kind of entry there is.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Mode, Settings
from app.db import create_engine, create_sessionmaker
from app.domain.apikey.schemas import Scope
from app.domain.sequence.service import sandbox_key
from app.integrations.sequence.sandbox import seeded_id
from app.main import create_app
from tests.api.helpers import MakeKey, bearer, key_maker
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of

Entry = dict[str, Any]


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get(url, params=params, headers=headers)
    assert response.status_code == 200, (url, response.text)
    return response.json()


async def journal(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    agent_id: str,
    *,
    account: str = "available",
    page_size: int = 200,
) -> list[Entry]:
    """Every posting of the wallet account, newest first, read page by page."""
    items: list[Entry] = []
    params: dict[str, Any] = {"account": account, "limit": page_size}
    while True:
        page = await _get(client, f"/api/v1/agents/{agent_id}/wallet/entries", headers, **params)
        items.extend(page)
        if len(page) < page_size:
            return items
        params["starting_after"] = page[-1]["entry_id"]


def assert_running_balances(items: list[Entry], balance: str) -> None:
    """Newest first: each posting's balance is the one before it plus its amount, the first
    posting's is its amount, the newest is ``balance`` and so is the sum of all amounts."""
    oldest_first = items[::-1]
    running = Decimal(0)
    for item in oldest_first:
        running += Decimal(item["amount"])
        assert Decimal(item["balance_after"]) == running, item
        assert Decimal(item["balance_after"]) >= 0, item
    assert running == Decimal(balance)
    assert sum((Decimal(item["amount"]) for item in items), Decimal(0)) == Decimal(balance)
    if items:
        assert items[0]["balance_after"] == balance


async def assert_journal_matches_wallet(
    client: httpx.AsyncClient, headers: dict[str, str], agent_id: str, *, page_size: int = 3
) -> dict[str, list[Entry]]:
    """Both accounts' journals agree with the wallet, and paging (``page_size`` at a time)
    gives exactly the items of one big page."""
    wallet = await wallet_of(client, headers, agent_id)
    found = {}
    for account, balance in (("available", "balance"), ("held", "held_balance")):
        whole = await journal(client, headers, agent_id, account=account)
        paged = await journal(client, headers, agent_id, account=account, page_size=page_size)
        assert paged == whole
        assert all(item["account"] == account for item in whole)
        assert_running_balances(whole, wallet[balance])
        found[account] = whole
    return found


async def pay(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/payments", json=body, headers=headers)
    assert response.status_code == 200, response.text
    transaction: dict[str, Any] = response.json()["transaction"]
    return transaction


async def post(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: Any = None
) -> dict[str, Any]:
    response = await client.post(url, json=body, headers=headers)
    assert response.status_code in (200, 201), (url, response.text)
    created: dict[str, Any] = response.json()
    return created


def by_reference(items: list[Entry], kind: str, ref_id: str) -> Entry:
    matches = [
        item
        for item in items
        if item["reference"] is not None
        and item["reference"]["type"] == kind
        and item["reference"]["id"] == ref_id
    ]
    assert len(matches) == 1, (kind, ref_id, items)
    return matches[0]


def money(text: str) -> Decimal:
    return Decimal(text)


@dataclass
class History:
    owner_id: str
    owner: dict[str, str]
    other_owner: dict[str, str]
    agent: dict[str, Any]
    peer: dict[str, Any]
    stranger: dict[str, Any]
    merchant: dict[str, Any]
    paid: dict[str, Any]
    to_peer: dict[str, Any]
    captured_hold: dict[str, Any]
    voided_hold: dict[str, Any]
    pending_hold: dict[str, Any]
    refund: dict[str, Any]
    request_out: dict[str, Any]
    request_out_tx: str
    request_in: dict[str, Any]


@pytest.fixture
async def history(client: httpx.AsyncClient, make_key: MakeKey) -> History:
    """One agent's mixed history: a sandbox initial balance, a payment with a fee to a
    merchant, a payment to another agent, a hold partly captured, a hold voided, a hold
    left pending, a partial refund, a request of another owner's agent paid by it, and a
    request of its own paid by its owner's other agent."""
    owner_key, other_key = await make_key(), await make_key()
    owner, other_owner = bearer(owner_key), bearer(other_key)
    agent = await create_agent(client, owner, name="journal_agent")
    peer = await create_agent(client, owner, name="peer_agent", initial_balance="10.00")
    stranger = await create_agent(client, other_owner, name="stranger_agent")
    merchant = await create_merchant(client, owner)
    agent_id = agent["agent"]["agent_id"]
    paid = await pay(
        client, owner, agent_id=agent_id, merchant_id=merchant["merchant_id"], amount="15.99"
    )
    to_peer = await pay(
        client,
        owner,
        agent_id=agent_id,
        recipient_wallet_id=peer["wallet"]["wallet_id"],
        amount="5.00",
    )
    holds = "/api/v1/payments/holds"
    hold_body = {"agent_id": agent_id, "merchant_id": merchant["merchant_id"]}
    captured_hold = await post(client, holds, owner, {**hold_body, "amount": "20.00"})
    captured_hold = await post(
        client,
        f"{holds}/{captured_hold['hold_id']}/capture",
        owner,
        {"amount": "12.50"},
    )
    voided_hold = await post(client, holds, owner, {**hold_body, "amount": "7.00"})
    voided_hold = await post(client, f"{holds}/{voided_hold['hold_id']}/void", owner)
    pending_hold = await post(client, holds, owner, {**hold_body, "amount": "3.00"})
    refund = await post(
        client, f"/api/v1/payments/{paid['tx_id']}/refund", owner, {"amount": "5.00"}
    )
    request_out = await post(
        client,
        "/api/v1/payments/request",
        other_owner,
        {
            "requester_agent_id": stranger["agent"]["agent_id"],
            "payer_agent_id": agent_id,
            "amount": "4.00",
            "description": "invoice from another owner",
        },
    )
    paid_out = await post(
        client, f"/api/v1/payments/request/{request_out['request_id']}/pay", owner
    )
    request_in = await post(
        client,
        "/api/v1/payments/request",
        owner,
        {
            "requester_agent_id": agent_id,
            "payer_agent_id": peer["agent"]["agent_id"],
            "amount": "2.50",
        },
    )
    await post(client, f"/api/v1/payments/request/{request_in['request_id']}/pay", owner)
    return History(
        owner_id=owner_key.owner_id,
        owner=owner,
        other_owner=other_owner,
        agent=agent,
        peer=peer,
        stranger=stranger,
        merchant=merchant,
        paid=paid,
        to_peer=to_peer,
        captured_hold=captured_hold,
        voided_hold=voided_hold,
        pending_hold=pending_hold,
        refund=refund,
        request_out=request_out,
        request_out_tx=paid_out["transaction"]["tx_id"],
        request_in=request_in,
    )


async def test_running_balances_equal_the_wallet_after_a_mixed_history(
    client: httpx.AsyncClient, history: History
) -> None:
    h = history
    agent_id = h.agent["agent"]["agent_id"]
    wallet = await wallet_of(client, h.owner, agent_id)
    # Money is still held by the pending hold: both accounts have something to agree on.
    assert money(wallet["held_balance"]) > 0
    found = await assert_journal_matches_wallet(client, h.owner, agent_id, page_size=2)
    available, held = found["available"], found["held"]

    assert [item["reference"]["type"] for item in available[::-1]] == [
        "initial_balance",
        "payment",
        "payment",
        "hold",
        "capture",
        "hold",
        "void",
        "hold",
        "refund",
        "payment_request",
        "payment_request",
    ]
    assert [item["kind"] for item in available[::-1]] == [
        "funding",
        "payment",
        "payment",
        "hold",
        "capture",
        "hold",
        "void",
        "hold",
        "refund",
        "payment",
        "payment",
    ]
    assert [item["reference"]["type"] for item in held[::-1]] == [
        "hold",
        "capture",
        "hold",
        "void",
        "hold",
    ]
    assert held[0]["balance_after"] == wallet["held_balance"]
    assert available[0]["balance_after"] == wallet["balance"]

    initial = available[-1]
    assert initial["amount"] == initial["balance_after"] == "100.00"
    assert initial["reference"]["id"] == h.agent["wallet"]["wallet_id"]
    assert [c["owner"]["type"] for c in initial["counterparties"]] == ["deposit"]
    assert initial["counterparties"][0]["account"] == "owner_deposit"
    assert initial["counterparties"][0]["amount"] == "-100.00"

    # A payment with a fee: the merchant and the fee revenue, largest first.
    paid = by_reference(available, "payment", h.paid["tx_id"])
    assert paid["reference"]["tx_id"] == h.paid["tx_id"]
    assert money(paid["amount"]) == -(money(h.paid["amount"]) + money(h.paid["fee"]))
    assert paid["description"] is None
    merchant_leg, fee_leg = paid["counterparties"]
    assert merchant_leg == {
        "account": "merchant",
        "owner": {
            "type": "merchant",
            "id": h.merchant["merchant_id"],
            "name": h.merchant["name"],
            "wallet_id": merchant_leg["owner"]["wallet_id"],
        },
        "amount": "15.99",
        "currency": "USDC",
    }
    assert merchant_leg["owner"]["wallet_id"].startswith("wallet_")
    assert fee_leg["account"] == "fee_revenue"
    assert fee_leg["owner"] == {"type": "fee", "id": None, "name": "Fee revenue", "wallet_id": None}
    assert fee_leg["amount"] == h.paid["fee"]

    to_peer = by_reference(available, "payment", h.to_peer["tx_id"])
    peer_leg = to_peer["counterparties"][0]
    assert peer_leg["account"] == "wallet_available"
    assert peer_leg["owner"] == {
        "type": "agent",
        "id": h.peer["agent"]["agent_id"],
        "name": "peer_agent",
        "wallet_id": h.peer["wallet"]["wallet_id"],
    }

    # The hold moved amount + fee to the held account; the partial capture paid the
    # merchant and its fee from it and gave the rest back.
    hold_id = h.captured_hold["hold_id"]
    reserved = money(h.captured_hold["amount"]) + money(h.captured_hold["fee"])
    placed = by_reference(available, "hold", hold_id)
    assert money(placed["amount"]) == -reserved
    assert placed["counterparties"][0]["account"] == "wallet_held"
    assert placed["counterparties"][0]["owner"]["id"] == agent_id
    capture = by_reference(available, "capture", hold_id)
    assert capture["reference"]["tx_id"] == h.captured_hold["capture_tx_id"]
    capture_tx = await _get(client, f"/api/v1/payments/{h.captured_hold['capture_tx_id']}", h.owner)
    released = reserved - money(capture_tx["amount"]) - money(capture_tx["fee"])
    assert money(capture["amount"]) == released > 0
    assert [(c["account"], money(c["amount"])) for c in capture["counterparties"]] == [
        ("wallet_held", -reserved),
        ("merchant", money("12.50")),
        ("fee_revenue", money(capture_tx["fee"])),
    ]
    held_capture = by_reference(held, "capture", hold_id)
    assert held_capture["entry_id"] == capture["entry_id"]
    assert money(held_capture["amount"]) == -reserved
    assert by_reference(held, "hold", hold_id)["entry_id"] == placed["entry_id"]

    voided = by_reference(available, "void", h.voided_hold["hold_id"])
    assert money(voided["amount"]) == money(h.voided_hold["amount"]) + money(h.voided_hold["fee"])
    assert by_reference(held, "void", h.voided_hold["hold_id"])["entry_id"] == voided["entry_id"]
    assert (
        by_reference(held, "hold", h.pending_hold["hold_id"])["balance_after"]
        == (wallet["held_balance"])
    )

    refund = by_reference(available, "refund", h.refund["refund_id"])
    assert refund["reference"]["tx_id"] == h.paid["tx_id"]
    assert refund["amount"] == "5.00"
    assert refund["counterparties"][0]["owner"]["id"] == h.merchant["merchant_id"]

    # Paid to another owner's agent: its id, not its name.
    out = by_reference(available, "payment_request", h.request_out["request_id"])
    assert out["reference"]["tx_id"] == h.request_out_tx
    assert out["description"] == "invoice from another owner"
    stranger_leg = out["counterparties"][0]
    assert stranger_leg["owner"] == {
        "type": "agent",
        "id": h.stranger["agent"]["agent_id"],
        "name": None,
        "wallet_id": h.stranger["wallet"]["wallet_id"],
    }
    incoming = by_reference(available, "payment_request", h.request_in["request_id"])
    assert incoming["amount"] == "2.50"
    assert incoming["counterparties"][0]["owner"]["id"] == h.peer["agent"]["agent_id"]
    assert money(incoming["counterparties"][0]["amount"]) < money("-2.50")  # amount + fee

    # The other agents' journals agree with their wallets too.
    await assert_journal_matches_wallet(client, h.owner, h.peer["agent"]["agent_id"])
    await assert_journal_matches_wallet(client, h.other_owner, h.stranger["agent"]["agent_id"])


async def test_an_entry_shows_every_posting_to_whoever_it_touches(
    client: httpx.AsyncClient, history: History, make_key: MakeKey
) -> None:
    h = history
    agent_id = h.agent["agent"]["agent_id"]
    available = await journal(client, h.owner, agent_id)
    capture = by_reference(available, "capture", h.captured_hold["hold_id"])
    entry = await _get(client, f"/api/v1/journal/entries/{capture['entry_id']}", h.owner)
    assert entry["entry_id"] == capture["entry_id"]
    assert entry["kind"] == "capture"
    assert entry["reference"] == capture["reference"]
    assert entry["created_at"] == capture["created_at"]
    assert sum(money(p["amount"]) for p in entry["postings"]) == 0
    # Debits first, then credits, each largest first.
    assert [p["account"] for p in entry["postings"]] == [
        "wallet_held",
        "merchant",
        "wallet_available",
        "fee_revenue",
    ]
    mine = [p for p in entry["postings"] if p["owner"]["id"] == agent_id]
    assert [p["amount"] for p in mine if p["account"] == "wallet_available"] == [capture["amount"]]

    paid = by_reference(available, "payment", h.paid["tx_id"])
    to_peer = by_reference(available, "payment", h.to_peer["tx_id"])
    out = by_reference(available, "payment_request", h.request_out["request_id"])
    url = "/api/v1/journal/entries/{}".format

    async def status(entry_id: str, headers: dict[str, str]) -> int:
        return (await client.get(url(entry_id), headers=headers)).status_code

    # The agent's own key reads its entries, and its journal as its owner does.
    own_key = bearer(await make_key(owner=h.owner_id, agent_id=agent_id))
    assert await status(paid["entry_id"], own_key) == 200
    own_view = await journal(client, own_key, agent_id)
    assert [(i["entry_id"], i["balance_after"]) for i in own_view] == [
        (i["entry_id"], i["balance_after"]) for i in available
    ]
    # ...but not its fellow agent's name: an agent key reads no other agent.
    peer_leg = by_reference(own_view, "payment", h.to_peer["tx_id"])["counterparties"][0]
    assert peer_leg["owner"]["id"] == h.peer["agent"]["agent_id"]
    assert peer_leg["owner"]["name"] is None

    # The peer agent's key: only entries that touch its own wallet.
    peer_key = bearer(await make_key(owner=h.owner_id, agent_id=h.peer["agent"]["agent_id"]))
    assert await status(to_peer["entry_id"], peer_key) == 200
    await assert_same_not_found(client, url(paid["entry_id"]), url("je_doesnotexist"), peer_key)
    listing = await client.get(f"/api/v1/agents/{agent_id}/wallet/entries", headers=peer_key)
    assert listing.status_code == 404
    assert listing.json()["code"] == "agent_not_found"

    # Another owner: the entry paying its agent's request, nothing else.
    seen = await _get(client, url(out["entry_id"]), h.other_owner)
    assert {p["owner"]["id"]: p["owner"]["name"] for p in seen["postings"] if p["owner"]["id"]} == {
        agent_id: None,
        h.stranger["agent"]["agent_id"]: "stranger_agent",
    }
    for hidden in (paid, to_peer, capture):
        await assert_same_not_found(
            client, url(hidden["entry_id"]), url("je_doesnotexist"), h.other_owner
        )
    listing = await client.get(f"/api/v1/agents/{agent_id}/wallet/entries", headers=h.other_owner)
    assert listing.status_code == 404
    assert listing.json()["code"] == "agent_not_found"


async def assert_same_not_found(
    client: httpx.AsyncClient, hidden_url: str, unknown_url: str, headers: dict[str, str]
) -> None:
    """``hidden_url`` (an entry that exists) answers exactly as ``unknown_url`` (one that
    does not), member for member but the id and the request id."""
    hidden = await client.get(hidden_url, headers=headers)
    unknown = await client.get(unknown_url, headers=headers)
    assert hidden.status_code == unknown.status_code == 404, (hidden.text, unknown.text)
    assert hidden.headers["content-type"] == unknown.headers["content-type"]

    def members(response: httpx.Response, url: str) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        body.pop("request_id")
        body["detail"] = body["detail"].replace(url.rsplit("/", 1)[-1], "<id>")
        return body

    assert members(hidden, hidden_url) == members(unknown, unknown_url)
    assert hidden.json()["code"] == "entry_not_found"


async def test_a_cursor_must_be_an_entry_of_the_listing(
    client: httpx.AsyncClient, history: History
) -> None:
    h = history
    agent_id = h.agent["agent"]["agent_id"]
    url = f"/api/v1/agents/{agent_id}/wallet/entries"
    available = await journal(client, h.owner, agent_id)
    peer_initial = (await journal(client, h.owner, h.peer["agent"]["agent_id"]))[-1]
    refund = by_reference(available, "refund", h.refund["refund_id"])
    cases = [
        ("available", peer_initial["entry_id"]),  # another wallet's entry
        ("held", refund["entry_id"]),  # an entry of the other account of this wallet
        ("available", "je_doesnotexist"),
    ]
    bodies = []
    for account, cursor in cases:
        response = await client.get(
            url, params={"account": account, "starting_after": cursor}, headers=h.owner
        )
        assert response.status_code == 404, response.text
        body = response.json()
        assert (body["code"], body["param"]) == ("entry_not_found", "starting_after")
        body.pop("request_id")
        body["detail"] = body["detail"].replace(cursor, "<id>")
        bodies.append(body)
    assert bodies[0] == bodies[1] == bodies[2]
    # A cursor of the listing pages on from it, running balances unchanged.
    middle = available[4]
    rest = await _get(client, url, h.owner, starting_after=middle["entry_id"], limit=200)
    assert rest == available[5:]
    assert (await _get(client, url, h.owner, limit=1)) == available[:1]
    too_many = await client.get(url, params={"limit": 201}, headers=h.owner)
    assert (too_many.status_code, too_many.json()["param"]) == (422, "limit")
    wrong_account = await client.get(url, params={"account": "spent"}, headers=h.owner)
    assert (wrong_account.status_code, wrong_account.json()["param"]) == (422, "account")


async def test_a_new_wallet_has_an_empty_journal(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    headers = bearer(await make_key())
    agent = await create_agent(client, headers, initial_balance="0")
    agent_id = agent["agent"]["agent_id"]
    for account in ("available", "held"):
        assert await journal(client, headers, agent_id, account=account) == []


async def test_a_sequence_funding_names_the_transfer(
    app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(scopes=list(Scope))
    headers = bearer(key)
    agent = await create_agent(client, headers, currency="USD", initial_balance="0")
    agent_id = agent["agent"]["agent_id"]
    pod = seeded_id(sandbox_key(key.owner_id, app.state.settings), "Agent Budget")
    funded = await client.post(
        f"/api/v1/agents/{agent_id}/wallet/fund",
        json={"source": "sequence", "pod_id": pod, "amount": "25.00"},
        headers=headers,
    )
    assert funded.status_code == 202, funded.text
    funding = funded.json()
    assert funding["status"] == "completed", funding
    (entry,) = await journal(client, headers, agent_id)
    assert entry["kind"] == "funding"
    assert entry["reference"] == {
        "type": "funding",
        "id": funding["funding_id"],
        "tx_id": None,
        "transfer_id": funding["transfer_id"],
    }
    assert (entry["amount"], entry["balance_after"], entry["currency"]) == ("25.00", "25.00", "USD")
    assert [c["owner"] for c in entry["counterparties"]] == [
        {"type": "rail", "id": None, "name": "Sequence", "wallet_id": None}
    ]
    assert entry["counterparties"][0]["account"] == "rail_clearing"


# --- mode isolation ---------------------------------------------------------------------

OWNER = "owner_journal_modes"


@dataclass
class TwoModes:
    """One owner, a sandbox app and a live app on one database, a key of each mode."""

    sandbox: httpx.AsyncClient
    live: httpx.AsyncClient
    sandbox_key: dict[str, str]
    live_key: dict[str, str]


@pytest.fixture
async def two_modes(empty_database_url: str) -> AsyncIterator[TwoModes]:
    engine = create_engine(empty_database_url, pool_size=1, max_overflow=0)
    make_key = key_maker(create_sessionmaker(engine))
    test_key, live_key = await make_key(OWNER), await make_key(OWNER, mode=Mode.live)
    sandbox_app, live_app = (
        create_app(
            database_url=empty_database_url,
            settings=Settings(mode=mode, run_jobs=False, rate_limits="off", allow_mixed_modes=True),
        )
        for mode in (Mode.sandbox, Mode.live)
    )

    def client_of(app: FastAPI) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://purser.test")

    try:
        async with (
            sandbox_app.router.lifespan_context(sandbox_app),
            live_app.router.lifespan_context(live_app),
            client_of(sandbox_app) as sandbox,
            client_of(live_app) as live,
        ):
            yield TwoModes(sandbox, live, bearer(test_key), bearer(live_key))
    finally:
        await engine.dispose()


async def test_the_other_modes_entries_are_not_found(two_modes: TwoModes) -> None:
    sandbox, live = two_modes.sandbox, two_modes.live
    agent = await create_agent(sandbox, two_modes.sandbox_key)
    agent_id = agent["agent"]["agent_id"]
    (entry,) = await journal(sandbox, two_modes.sandbox_key, agent_id)
    url = f"/api/v1/journal/entries/{entry['entry_id']}"
    assert (await sandbox.get(url, headers=two_modes.sandbox_key)).status_code == 200
    # The same owner's live key: the sandbox entry and agent do not exist for it.
    await assert_same_not_found(live, url, "/api/v1/journal/entries/je_nope", two_modes.live_key)
    listing = await live.get(
        f"/api/v1/agents/{agent_id}/wallet/entries", headers=two_modes.live_key
    )
    assert (listing.status_code, listing.json()["code"]) == (404, "agent_not_found")


# --- property: any history ---------------------------------------------------------------

_cents = st.integers(min_value=1, max_value=4_000)
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), _cents),
        st.tuples(st.just("pay_peer"), _cents),
        st.tuples(st.just("hold"), _cents),
        st.tuples(st.just("capture"), st.integers(0, 9), st.integers(1, 100)),
        st.tuples(st.just("void"), st.integers(0, 9)),
        st.tuples(st.just("refund"), st.integers(0, 9), st.integers(1, 100)),
        st.tuples(st.just("request_in"), _cents),
        st.tuples(st.just("request_out"), _cents),
    ),
    min_size=1,
    max_size=8,
)


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _part(amount: str, percent: int) -> str:
    """``percent`` of ``amount`` (at least 0.01), in cents."""
    return _amount(max(1, int(money(amount) * 100) * percent // 100))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=_operations)
async def test_any_history_keeps_the_journal_equal_to_the_wallet(
    client: httpx.AsyncClient, make_key: MakeKey, operations: list[tuple[Any, ...]]
) -> None:
    headers = bearer(await make_key())
    agent = await create_agent(client, headers, name="random_agent", initial_balance="60.00")
    peer = await create_agent(client, headers, name="random_peer", initial_balance="60.00")
    merchant = (await create_merchant(client, headers))["merchant_id"]
    agent_id, peer_id = agent["agent"]["agent_id"], peer["agent"]["agent_id"]
    holds: list[str] = []
    payments: list[str] = []
    for operation in operations:
        name = operation[0]
        if name in ("pay", "pay_peer"):
            payee = (
                {"merchant_id": merchant}
                if name == "pay"
                else {"recipient_wallet_id": peer["wallet"]["wallet_id"]}
            )
            response = await client.post(
                "/api/v1/payments",
                json={"agent_id": agent_id, "amount": _amount(operation[1]), **payee},
                headers=headers,
            )
            if response.status_code == 200:
                payments.append(response.json()["transaction"]["tx_id"])
        elif name == "hold":
            response = await client.post(
                "/api/v1/payments/holds",
                json={
                    "agent_id": agent_id,
                    "merchant_id": merchant,
                    "amount": _amount(operation[1]),
                },
                headers=headers,
            )
            if response.status_code == 201:
                holds.append(response.json()["hold_id"])
        elif name in ("capture", "void") and holds:
            hold_id = holds[operation[1] % len(holds)]
            hold = await _get(client, f"/api/v1/payments/holds/{hold_id}", headers)
            body = {"amount": _part(hold["amount"], operation[2])} if name == "capture" else None
            response = await client.post(
                f"/api/v1/payments/holds/{hold_id}/{name}", json=body, headers=headers
            )
            if response.status_code == 200 and name == "capture":
                payments.append(response.json()["capture_tx_id"])
        elif name == "refund" and payments:
            tx_id = payments[operation[1] % len(payments)]
            tx = await _get(client, f"/api/v1/payments/{tx_id}", headers)
            left = money(tx["amount"]) - money(tx["refunded_amount"])
            if left > 0:
                await client.post(
                    f"/api/v1/payments/{tx_id}/refund",
                    json={"amount": _part(str(left), operation[2])},
                    headers=headers,
                )
        elif name in ("request_in", "request_out"):
            requester, payer = (agent_id, peer_id) if name == "request_in" else (peer_id, agent_id)
            request = await post(
                client,
                "/api/v1/payments/request",
                headers,
                {
                    "requester_agent_id": requester,
                    "payer_agent_id": payer,
                    "amount": _amount(operation[1]),
                },
            )
            await client.post(
                f"/api/v1/payments/request/{request['request_id']}/pay", headers=headers
            )
    for who in (agent_id, peer_id):
        await assert_journal_matches_wallet(client, headers, who, page_size=2)
