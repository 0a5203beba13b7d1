"""The Sequence gateway and wallet funding, end to end: Purser's API (in-process) and its
adapter talking over real loopback HTTP to the sandbox Sequence of this module."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.apikey.schemas import Scope
from app.domain.sequence.service import Rail, sandbox_key
from app.domain.sequence.transfers import resolve_due
from app.integrations.sequence import SequenceClient
from app.integrations.sequence.sandbox import seeded_id
from app.kit.time import utc_now
from tests.api.helpers import MakeKey, bearer
from tests.integrations.sequence.conftest import Sandbox

V1 = "/api/v1/sequence"


@contextmanager
def client_options(rail: Rail, **options: Any) -> Iterator[None]:
    """Adapter clients built with ``options`` (short timeouts, few attempts) meanwhile."""
    saved = rail.client_factory
    rail.client_factory = lambda key, url: SequenceClient(key, url, **options)
    rail._clients.clear()
    try:
        yield
    finally:
        rail.client_factory = saved
        rail._clients.clear()


@pytest.fixture
async def rail(app: FastAPI, sandbox: Sandbox) -> AsyncIterator[Rail]:
    rail: Rail = app.state.sequence
    saved = rail.sandbox_url, rail.client_factory
    rail.sandbox_url = sandbox.api
    rail.client_factory = lambda key, url: SequenceClient(
        key, url, timeout=2.0, retry_wait_initial=0.05, retry_wait_max=0.2
    )
    await rail.close()
    rail._snapshots.clear()
    try:
        yield rail
    finally:
        await rail.close()
        rail.sandbox_url, rail.client_factory = saved


class Owner:
    def __init__(self, app: FastAPI, key: Any) -> None:
        self.headers = bearer(key)
        self.seed_headers = {"X-API-Key": key.secret}
        self.owner_id = key.owner_id
        self.sandbox_key = sandbox_key(key.owner_id, app.state.settings)

    def account(self, name: str) -> str:
        return seeded_id(self.sandbox_key, name)


@pytest.fixture
async def owner(app: FastAPI, make_key: MakeKey, rail: Rail) -> Owner:
    return Owner(app, await make_key(scopes=list(Scope)))


def transfer(o: Owner, source: str, destination: str, cents: int, **fields: Any) -> dict[str, Any]:
    return {
        "source_id": o.account(source),
        "destination_id": o.account(destination),
        "amount_cents": cents,
        **fields,
    }


async def audit_events(client: httpx.AsyncClient, o: Owner) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params={"limit": 200}, headers=o.headers)
    records: list[dict[str, Any]] = response.json()["data"]
    return records


async def test_pods_balances_and_the_name_lookup_rules(
    client: httpx.AsyncClient, owner: Owner
) -> None:
    pods = (await client.get(f"{V1}/pods", headers=owner.headers)).json()
    assert {pod["name"]: pod["balance"] for pod in pods} == {
        "Emergency Fund": "$1,500.00",
        "Groceries": "$420.00",
        "Agent Budget": "$2,500.00",
        "Vacation": "$800.00",
        "Agent Budget Reserve": "$100.00",
    }
    total = (await client.get(f"{V1}/pods/balance", headers=owner.headers)).json()
    assert total == {"total_balance_cents": 532000, "total_balance": "$5,320.00", "pod_count": 5}

    async def by_name(name: str) -> httpx.Response:
        return await client.get(f"{V1}/pods/{name}/balance", headers=owner.headers)

    assert (await by_name("AGENT BUDGET")).json()["name"] == "Agent Budget"  # exact wins
    assert (await by_name("emerg")).json()["name"] == "Emergency Fund"  # unique substring
    ambiguous = await by_name("agent")
    assert ambiguous.status_code == 409
    assert "Agent Budget, Agent Budget Reserve" in ambiguous.json()["detail"]
    missing = await by_name("yacht")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Pod 'yacht' not found"
    accounts = (await client.get(f"{V1}/accounts", headers=owner.headers)).json()
    assert [a["name"] for a in accounts["ports"]] == ["Main Payroll"]
    assert "Purser Settlement" in [a["name"] for a in accounts["accounts"]]
    detail = await client.get(
        f"{V1}/pods/detail/{owner.account('Emergency Fund')}", headers=owner.headers
    )
    assert detail.json()["goal_amount_cents"] == 1000000
    not_a_pod = await client.get(
        f"{V1}/pods/detail/{owner.account('Main Payroll')}", headers=owner.headers
    )
    assert not_a_pod.status_code == 404


async def test_the_seed_paths_answer_like_the_v1_routes(
    client: httpx.AsyncClient, owner: Owner, make_key: MakeKey
) -> None:
    for seed, v1 in (
        ("/api/pods", f"{V1}/pods"),
        ("/api/pods/balance", f"{V1}/pods/balance"),
        ("/api/pods/groceries/balance", f"{V1}/pods/groceries/balance"),
        ("/api/accounts", f"{V1}/accounts"),
        (
            f"/api/pods/any-org/{owner.account('Vacation')}",
            f"{V1}/pods/detail/{owner.account('Vacation')}",
        ),
    ):
        seed_answer = await client.get(seed, headers=owner.seed_headers)
        assert seed_answer.status_code == 200, (seed, seed_answer.text)
        assert seed_answer.json() == (await client.get(v1, headers=owner.headers)).json()
    assert (await client.get("/api/health")).json() == {"status": "ok"}
    # Errors on the seed's paths are application/json with the seed's `detail`.
    missing = await client.get("/api/pods/yacht/balance", headers=owner.seed_headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["detail"] == "Pod 'yacht' not found"
    assert (await client.get("/api/pods")).status_code == 401
    # The `sequence` scope is needed.
    plain = await make_key(owner=owner.owner_id, scopes=["agents:read"])
    refused = await client.get("/api/pods", headers={"X-API-Key": plain.secret})
    assert refused.status_code == 403


async def test_one_owner_never_sees_another_owners_sequence(
    client: httpx.AsyncClient, owner: Owner, app: FastAPI, make_key: MakeKey
) -> None:
    other = Owner(app, await make_key(scopes=list(Scope)))
    mine = {pod["id"] for pod in (await client.get(f"{V1}/pods", headers=owner.headers)).json()}
    theirs = {pod["id"] for pod in (await client.get(f"{V1}/pods", headers=other.headers)).json()}
    assert mine
    assert theirs
    assert not mine & theirs
    made = await client.post(
        f"{V1}/transfers",
        json=transfer(owner, "Vacation", "Groceries", 1000),
        headers=owner.headers,
    )
    assert made.status_code in (200, 202), made.text
    for transfer_id in (made.json()["id"], made.json()["transfer_id"]):
        seen = await client.get(f"{V1}/transfers/{transfer_id}", headers=other.headers)
        assert seen.status_code == 404
    foreign_pod = await client.get(
        f"{V1}/pods/detail/{owner.account('Vacation')}", headers=other.headers
    )
    assert foreign_pod.status_code == 404


async def test_a_transfer_completes_with_sequences_id_and_its_audit_rows(
    client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox
) -> None:
    body = transfer(owner, "Emergency Fund", "Groceries", 5000, description="Rent 12")
    headers = {**owner.headers, "Idempotency-Key": "rent-december"}
    made = await client.post(f"{V1}/transfers", json=body, headers=headers)
    assert made.status_code == 200, made.text
    result = made.json()
    assert result["status"] == "completed"
    assert result["sequence_status"] == "COMPLETE"
    created = await sandbox.created_transfers(owner.sandbox_key)
    assert [t["id"] for t in created] == [result["transfer_id"]]
    # The same key and body: the same transfer, not a second one.
    again = await client.post(f"{V1}/transfers", json=body, headers=headers)
    assert again.json()["transfer_id"] == result["transfer_id"]
    assert len(await sandbox.created_transfers(owner.sandbox_key)) == 1
    reused = await client.post(
        f"{V1}/transfers", json={**body, "amount_cents": 6000}, headers=headers
    )
    assert reused.status_code == 422
    detail = (
        await client.get(f"{V1}/transfers/{result['transfer_id']}", headers=owner.headers)
    ).json()
    assert detail["status"] == "COMPLETE"
    assert detail["amount"] == "$50.00"
    records = [r for r in await audit_events(client, owner) if r["subject_id"] == result["id"]]
    assert sorted(r["event"] for r in records) == ["transfer_completed", "transfer_requested"]
    completed = next(r for r in records if r["event"] == "transfer_completed")
    assert completed["data"]["transfer_id"] == result["transfer_id"]
    limits = (await client.get(f"{V1}/limits", headers=owner.headers)).json()
    assert limits["used_today_cents"] == 5000


async def test_requests_the_platform_api_refuses_are_422_naming_the_field(
    client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox
) -> None:
    base = transfer(owner, "Vacation", "Groceries", 1000)
    for change, field in (
        ({"amount_cents": 99}, "amount_cents"),
        ({"amount_cents": 0}, "amount_cents"),
        ({"amount_cents": "100"}, "amount_cents"),
        ({"description": "Rent for December"}, "description"),
        ({"description": "rent!"}, "description"),
        ({"source_type": "WALLET"}, "source_type"),
        ({"destination_id": base["source_id"]}, "destination_id"),
    ):
        refused = await client.post(
            f"{V1}/transfers", json={**base, **change}, headers=owner.headers
        )
        assert refused.status_code == 422, (change, refused.text)
        assert refused.json()["param"] == field
    instant = await client.post(
        f"{V1}/transfers", json={**base, "instant": True}, headers=owner.headers
    )
    assert instant.status_code == 400
    assert instant.json()["param"] == "instant"
    assert await sandbox.created_transfers(owner.sandbox_key) == []


async def test_limits_hold_under_twenty_concurrent_transfers(
    client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox
) -> None:
    over = await client.post(
        f"{V1}/transfers",
        json=transfer(owner, "Agent Budget", "Groceries", 1_500_000),
        headers=owner.headers,
    )
    assert over.status_code == 400
    assert over.json()["detail"] == (
        "Amount 1500000 cents exceeds per-transfer limit of 1000000 cents"
    )
    limits = await client.put(
        f"{V1}/limits", json={"max_daily_transfer_cents": 5000}, headers=owner.headers
    )
    assert limits.json()["remaining_today_cents"] == 5000
    answers = await asyncio.gather(
        *(
            client.post(
                f"{V1}/transfers",
                json=transfer(owner, "Agent Budget", "Groceries", 1000),
                headers=owner.headers,
            )
            for _ in range(20)
        )
    )
    accepted = [a for a in answers if a.status_code in (200, 202)]
    refused = [a for a in answers if a.status_code == 400]
    assert len(accepted) == 5, [a.text for a in answers]
    assert len(refused) == 15
    assert {r.json()["detail"] for r in refused} == {
        "Amount 1000 cents exceeds daily remaining limit of 0 cents"
    }
    assert len(await sandbox.created_transfers(owner.sandbox_key)) == 5
    used = (await client.get(f"{V1}/limits", headers=owner.headers)).json()["used_today_cents"]
    assert used == 5000


async def test_a_failed_transfer_gives_its_reservation_back(
    client: httpx.AsyncClient, owner: Owner
) -> None:
    short = await client.post(
        f"{V1}/transfers",
        json=transfer(owner, "Agent Budget Reserve", "Groceries", 20000),
        headers=owner.headers,
    )
    assert short.status_code == 400
    assert short.json()["detail"].startswith("Transfer failed: INSUFFICIENT_FUNDS")
    assert (await client.get(f"{V1}/limits", headers=owner.headers)).json()["used_today_cents"] == 0
    events = [r["event"] for r in await audit_events(client, owner)]
    assert events.count("transfer_requested") == 1
    assert events.count("transfer_failed") == 1


async def test_a_timeout_after_sequence_accepted_is_settled_by_polling_not_resent_twice(
    app: FastAPI, client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox, rail: Rail
) -> None:
    await sandbox.fault(
        "timeout_after_commit", method="POST", path="/platform/v1/transfers", count=5, seconds=2
    )
    with client_options(rail, timeout=0.5, max_attempts=2, retry_wait_initial=0.05):
        pending = await client.post(
            f"{V1}/transfers",
            json=transfer(owner, "Vacation", "Groceries", 2500),
            headers=owner.headers,
        )
    assert pending.status_code == 202, pending.text
    assert pending.json()["status"] == "pending"
    assert pending.json()["transfer_id"] is None  # Sequence never answered
    # The reservation stays while the outcome is unknown.
    assert (await client.get(f"{V1}/limits", headers=owner.headers)).json()[
        "used_today_cents"
    ] == 2500
    await sandbox.control.delete("/_fake/faults")
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    for attempt in range(40):
        # The poller's clock jumps past each backoff; the sandbox settles in real time.
        await resolve_due(sessionmaker, rail, utc_now() + _later(3600 * (attempt + 1)))
        async with sessionmaker() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT status, sequence_transfer_id FROM sequence_transfers WHERE id = :id"
                    ),
                    {"id": pending.json()["id"]},
                )
            ).one()
        if row.status == "completed":
            break
        await asyncio.sleep(0.25)
    assert row.status == "completed"
    created = await sandbox.created_transfers(owner.sandbox_key)
    assert [t["id"] for t in created] == [row.sequence_transfer_id]  # one transfer, ever


def _later(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


async def _fund(
    client: httpx.AsyncClient, owner: Owner, agent_id: str, amount: str, pod: str = "Agent Budget"
) -> httpx.Response:
    return await client.post(
        f"/api/v1/agents/{agent_id}/wallet/fund",
        json={"source": "sequence", "pod_id": owner.account(pod), "amount": amount},
        headers=owner.headers,
    )


async def _agent(client: httpx.AsyncClient, owner: Owner, currency: str = "USD") -> str:
    created = await client.post(
        "/api/v1/agents",
        json={"name": "funded agent", "currency": currency},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["agent"]["agent_id"]
    return agent_id


async def test_funding_credits_the_wallet_once_when_sequence_completes(
    app: FastAPI, client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox, rail: Rail
) -> None:
    agent_id = await _agent(client, owner)
    funded = await _fund(client, owner, agent_id, "25.00")
    assert funded.status_code == 202, funded.text
    funding = funded.json()
    assert funding["funding_id"].startswith("fund_")
    assert funding["status"] == "completed"
    wallet = await client.get(f"/api/v1/agents/{agent_id}/wallet", headers=owner.headers)
    assert wallet.json()["balance"] == "25.00"
    read = await client.get(f"/api/v1/fundings/{funding['funding_id']}", headers=owner.headers)
    assert read.json()["transfer_id"] == funding["transfer_id"]
    # The poller finds nothing left to do; the wallet is credited once.
    await resolve_due(app.state.sessionmaker, rail, utc_now() + _later(3600))
    wallet = await client.get(f"/api/v1/agents/{agent_id}/wallet", headers=owner.headers)
    assert wallet.json()["balance"] == "25.00"
    settlement = owner.account("Purser Settlement")
    state = await sandbox.state(owner.sandbox_key)
    balance = next(a for a in state["accounts"] if a["id"] == settlement)
    assert balance["balance"]["balanceInCents"] == 2500


async def test_a_failed_funding_credits_nothing(client: httpx.AsyncClient, owner: Owner) -> None:
    agent_id = await _agent(client, owner)
    failed = await _fund(client, owner, agent_id, "500.00", pod="Agent Budget Reserve")
    assert failed.status_code == 400, failed.text
    assert "INSUFFICIENT_FUNDS" in failed.json()["detail"]
    funding_id = failed.json()["detail"].split("(funding ")[1].split(":")[0]
    read = await client.get(f"/api/v1/fundings/{funding_id}", headers=owner.headers)
    assert read.json()["status"] == "failed"
    # Not a pod, or no pod of this organisation: refused before Sequence moves anything.
    not_a_pod = await _fund(client, owner, agent_id, "5.00", pod="Main Payroll")
    assert not_a_pod.status_code == 422
    assert not_a_pod.json()["param"] == "pod_id"
    unknown = await client.post(
        f"/api/v1/agents/{agent_id}/wallet/fund",
        json={
            "source": "sequence",
            "pod_id": "7f8a3b5e-0000-4000-8000-000000000000",
            "amount": "5.00",
        },
        headers=owner.headers,
    )
    assert unknown.status_code == 404
    wallet = await client.get(f"/api/v1/agents/{agent_id}/wallet", headers=owner.headers)
    assert wallet.json()["balance"] == "0.00"
    euro = await _agent(client, owner, currency="EURC")
    refused = await _fund(client, owner, euro, "5.00")
    assert refused.status_code == 400
    flagged_agent = await _agent(client, owner)
    await client.post(
        f"/api/v1/risk/agents/{flagged_agent}/flag", json={"reason": "hold"}, headers=owner.headers
    )
    flagged = await _fund(client, owner, flagged_agent, "5.00")
    assert flagged.status_code == 403
    assert flagged.json()["code"] == "agent_flagged"


async def test_one_idempotency_key_sent_concurrently_makes_one_transfer_and_no_error(
    client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox
) -> None:
    body = transfer(owner, "Vacation", "Groceries", 1200)
    headers = {**owner.headers, "Idempotency-Key": "same-key-race"}
    answers = await asyncio.gather(
        *(client.post(f"{V1}/transfers", json=body, headers=headers) for _ in range(10))
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 202, 409}, [a.text for a in answers]
    assert len(await sandbox.created_transfers(owner.sandbox_key)) == 1
    replay = await client.post(f"{V1}/transfers", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    used = (await client.get(f"{V1}/limits", headers=owner.headers)).json()["used_today_cents"]
    assert used == 1200


async def test_idempotency_keys_are_checked_as_on_every_route(
    client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox
) -> None:
    body = transfer(owner, "Vacation", "Groceries", 1000)
    for headers in (
        {"Idempotency-Key": ""},
        {"Idempotency-Key": "k" * 256},
        {"Idempotency-Key": "a1", "X-Idempotency-Key": "b1"},
    ):
        refused = await client.post(
            f"{V1}/transfers", json=body, headers={**owner.headers, **headers}
        )
        assert refused.status_code == 400, (headers, refused.text)
        assert refused.json()["param"] == "Idempotency-Key"
    assert await sandbox.created_transfers(owner.sandbox_key) == []


async def test_the_connection_and_limits_change_only_as_asked(
    app: FastAPI, client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox, rail: Rail
) -> None:
    set_both = await client.put(
        f"{V1}/limits",
        json={"max_transfer_cents": 5000, "max_daily_transfer_cents": 9000},
        headers=owner.headers,
    )
    assert set_both.json()["max_transfer_cents"] == 5000
    one = await client.put(
        f"{V1}/limits", json={"max_daily_transfer_cents": 8000}, headers=owner.headers
    )
    assert (one.json()["max_transfer_cents"], one.json()["max_daily_transfer_cents"]) == (
        5000,
        8000,
    )
    # A transfer whose outcome is unknown pins the connection it was sent on.
    await sandbox.fault("500", method="POST", path="/platform/v1/transfers", count=10)
    with client_options(rail, timeout=1.0, max_attempts=2, retry_wait_initial=0.05):
        pending = await client.post(
            f"{V1}/transfers",
            json=transfer(owner, "Vacation", "Groceries", 1000),
            headers=owner.headers,
        )
    assert pending.status_code == 202
    busy = await client.put(
        f"{V1}/connection",
        json={"api_key": "sk_sandbox_someone_else", "base_url": sandbox.api},
        headers=owner.headers,
    )
    assert busy.status_code == 409
    assert busy.json()["code"] == "sequence_transfers_unresolved"
    shown = (await client.get(f"{V1}/connection", headers=owner.headers)).json()
    assert shown["source"] == "sandbox"
    assert owner.sandbox_key not in str(shown)


async def _state_of(
    client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox, agent_id: str
) -> tuple[Any, ...]:
    """Everything a transfer or funding could change: Purser's side and Sequence's."""
    limits = (await client.get(f"{V1}/limits", headers=owner.headers)).json()
    wallet = (await client.get(f"/api/v1/agents/{agent_id}/wallet", headers=owner.headers)).json()
    audit = [record["seq"] for record in await audit_events(client, owner)]
    state = await sandbox.state(owner.sandbox_key)
    return limits, wallet["balance"], audit, state["accounts"], state.get("transfers")


async def test_a_dry_run_transfer_or_funding_calls_no_sequence_and_writes_nothing(
    client: httpx.AsyncClient, owner: Owner, sandbox: Sandbox
) -> None:
    agent_id = await _agent(client, owner)
    dry = {**owner.headers, "Dry-Run": "true"}
    await client.put(
        f"{V1}/limits",
        json={"max_daily_transfer_cents": 10000, "max_transfer_cents": 6000},
        headers=owner.headers,
    )
    before = await _state_of(client, owner, sandbox, agent_id)
    planned = await client.post(
        f"{V1}/transfers", json=transfer(owner, "Main Payroll", "Groceries", 4000), headers=dry
    )
    assert planned.status_code == 200, planned.text
    plan = planned.json()
    assert (plan["decision"], plan["status_code"], plan["amount"]) == ("allow", 202, "40.00")
    assert plan["limits"]["sequence_daily"]["remaining"] == "60.00"
    too_much = await client.post(
        f"{V1}/transfers", json=transfer(owner, "Main Payroll", "Groceries", 7000), headers=dry
    )
    assert too_much.json()["decision"] == "deny"
    assert too_much.json()["reasons"][0]["code"] == "transfer_limit_exceeded"
    funding = await client.post(
        f"/api/v1/agents/{agent_id}/wallet/fund",
        json={"source": "sequence", "pod_id": owner.account("Agent Budget"), "amount": "25.00"},
        headers=dry,
    )
    assert funding.status_code == 200, funding.text
    assert (funding.json()["decision"], funding.json()["projected_balance"]) == ("allow", "25.00")
    assert funding.json()["risk"] is not None
    assert await _state_of(client, owner, sandbox, agent_id) == before
    # The real funding then does what the dry run said.
    real = await _fund(client, owner, agent_id, "25.00")
    assert real.status_code == 202, real.text
    wallet = await client.get(f"/api/v1/agents/{agent_id}/wallet", headers=owner.headers)
    assert wallet.json()["balance"] == funding.json()["projected_balance"]


async def test_a_frozen_agents_dry_run_funding_is_denied(
    client: httpx.AsyncClient, owner: Owner
) -> None:
    agent_id = await _agent(client, owner)
    await client.post(f"/api/v1/agents/{agent_id}/freeze", headers=owner.headers)
    funding = await client.post(
        f"/api/v1/agents/{agent_id}/wallet/fund",
        json={"source": "sequence", "pod_id": owner.account("Agent Budget"), "amount": "5.00"},
        headers={**owner.headers, "Dry-Run": "true"},
    )
    assert funding.status_code == 200, funding.text
    assert funding.json()["reasons"][0]["code"] == "wallet_frozen"
    assert funding.json()["projected_balance"] == "0.00"


async def test_the_rail_keeps_the_servers_time_when_the_owners_test_clock_moves(
    client: httpx.AsyncClient, owner: Owner, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    agent_id = await _agent(client, owner)
    moved = await client.post(
        "/api/v1/test/clock/advance", json={"seconds": 2 * 86_400}, headers=owner.headers
    )
    assert moved.status_code == 200, moved.text
    dry = await client.post(
        f"/api/v1/agents/{agent_id}/wallet/fund",
        json={"source": "sequence", "pod_id": owner.account("Agent Budget"), "amount": "25.00"},
        headers={**owner.headers, "Dry-Run": "true"},
    )
    real = await _fund(client, owner, agent_id, "25.00")
    assert real.status_code == 202, real.text
    # One day's usage, the server's today, as the limits and the dry run read it.
    limits = (await client.get(f"{V1}/limits", headers=owner.headers)).json()
    assert limits["used_today_cents"] == 2500
    assert dry.json()["limits"]["sequence_daily"]["used"] == "25.00"
    async with sessionmaker() as session:
        days = (
            (
                await session.execute(
                    text("SELECT day FROM sequence_daily_usage WHERE owner_id = :owner"),
                    {"owner": owner.owner_id},
                )
            )
            .scalars()
            .all()
        )
        follow_up = (
            await session.execute(
                text("SELECT max(next_check_at) FROM sequence_transfers WHERE owner_id = :owner"),
                {"owner": owner.owner_id},
            )
        ).scalar_one()
    assert len(days) == 1
    # The poller, which runs on the server's clock, is not put off by the owner's clock.
    assert follow_up is None or follow_up < utc_now() + timedelta(hours=1)
