"""``Dry-Run: true``: the real call through the whole pipeline, then a rollback. It writes
nothing (every table's row count unchanged, no outbox event, no idempotency record) and
agrees with the real call that follows (decision, fee, projected balance, limits)."""

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Base
from tests.api.helpers import bearer
from tests.api.payment_helpers import create_agent, create_merchant

DRY = {"Dry-Run": "true"}


async def row_counts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture
async def world(client: httpx.AsyncClient, make_key: Any) -> dict[str, Any]:
    owner = bearer(await make_key())
    agent = await create_agent(
        client, owner, initial_balance="100.00", limit_daily="50.00", limit_per_tx="40.00"
    )
    merchant = await create_merchant(client, owner)
    return {
        "owner": owner,
        "agent_id": agent["agent"]["agent_id"],
        "merchant_id": merchant["merchant_id"],
    }


async def test_a_dry_run_payment_writes_nothing_and_agrees_with_the_real_call(
    client: httpx.AsyncClient, world: dict[str, Any], sessionmaker: Any
) -> None:
    body = {"agent_id": world["agent_id"], "merchant_id": world["merchant_id"], "amount": "30.00"}
    headers = {**world["owner"], "Idempotency-Key": "dry-then-real"}
    before = await row_counts(sessionmaker)
    dry = await client.post("/api/v1/payments", json=body, headers={**headers, **DRY})
    assert dry.status_code == 200, dry.text
    assert await row_counts(sessionmaker) == before
    plan = dry.json()
    assert plan["dry_run"] is True
    assert plan["decision"] == "allow"
    assert plan["reasons"] == []
    assert plan["status_code"] == 200
    assert plan["risk"]["decision"] in ("allow", "review")
    # The same key then makes the real payment: the dry run neither claimed nor stored it.
    real = await client.post("/api/v1/payments", json=body, headers=headers)
    assert real.status_code == 200, real.text
    assert real.headers.get("Idempotent-Replayed") is None
    transaction = real.json()["transaction"]
    assert plan["fee"] == transaction["fee"]
    wallet = (
        await client.get(f"/api/v1/agents/{world['agent_id']}/wallet", headers=world["owner"])
    ).json()
    assert plan["projected_balance"] == wallet["balance"]
    assert plan["projected_held_balance"] == wallet["held_balance"]
    assert plan["limits"] == wallet["limits"]
    assert plan["limits"]["daily"]["remaining"] == "20.00"


async def test_a_dry_run_refusal_is_a_200_deny_recording_nothing(
    client: httpx.AsyncClient, world: dict[str, Any], sessionmaker: Any
) -> None:
    body = {"agent_id": world["agent_id"], "merchant_id": world["merchant_id"], "amount": "45.00"}
    before = await row_counts(sessionmaker)
    dry = await client.post("/api/v1/payments", json=body, headers={**world["owner"], **DRY})
    assert dry.status_code == 200, dry.text
    assert await row_counts(sessionmaker) == before
    plan = dry.json()
    assert plan["decision"] == "deny"
    assert plan["status_code"] == 400
    assert [reason["code"] for reason in plan["reasons"]] == ["limit_exceeded"]
    # Unchanged: the projection of a refusal is the wallet as it is.
    assert plan["projected_balance"] == "100.00"
    assert plan["limits"]["daily"] == {
        "limit": "50.00",
        "used": "0.00",
        "remaining": "50.00",
        "resets_at": plan["limits"]["daily"]["resets_at"],
    }
    real = await client.post("/api/v1/payments", json=body, headers=world["owner"])
    assert real.status_code == 400
    assert real.json()["code"] == "limit_exceeded"


async def test_insufficient_funds_found_by_the_ledger_itself_is_a_deny(
    client: httpx.AsyncClient, make_key: Any, sessionmaker: Any
) -> None:
    owner = bearer(await make_key())
    agent = (await create_agent(client, owner, initial_balance="5.00"))["agent"]["agent_id"]
    merchant = (await create_merchant(client, owner))["merchant_id"]
    before = await row_counts(sessionmaker)
    dry = await client.post(
        "/api/v1/payments",
        json={"agent_id": agent, "merchant_id": merchant, "amount": "5.00"},
        headers={**owner, **DRY},
    )
    assert await row_counts(sessionmaker) == before
    plan = dry.json()
    assert plan["decision"] == "deny", plan
    assert plan["reasons"][0]["code"] == "insufficient_funds"
    assert plan["projected_balance"] == "5.00"


async def test_holds_captures_request_pays_and_refunds_dry_run_too(
    client: httpx.AsyncClient, world: dict[str, Any], sessionmaker: Any
) -> None:
    owner, agent, merchant = world["owner"], world["agent_id"], world["merchant_id"]
    hold_body = {"agent_id": agent, "merchant_id": merchant, "amount": "10.00"}
    before = await row_counts(sessionmaker)
    dry_hold = await client.post("/api/v1/payments/holds", json=hold_body, headers={**owner, **DRY})
    assert dry_hold.status_code == 200, dry_hold.text
    plan = dry_hold.json()
    assert plan["decision"] == "allow"
    assert plan["status_code"] == 201
    assert await row_counts(sessionmaker) == before
    hold = await client.post("/api/v1/payments/holds", json=hold_body, headers=owner)
    assert hold.status_code == 201
    wallet = (await client.get(f"/api/v1/agents/{agent}/wallet", headers=owner)).json()
    assert (plan["projected_balance"], plan["projected_held_balance"]) == (
        wallet["balance"],
        wallet["held_balance"],
    )

    hold_id = hold.json()["hold_id"]
    before = await row_counts(sessionmaker)
    dry_capture = await client.post(
        f"/api/v1/payments/holds/{hold_id}/capture",
        json={"amount": "4.00"},
        headers={**owner, **DRY},
    )
    assert dry_capture.status_code == 200, dry_capture.text
    assert await row_counts(sessionmaker) == before
    assert (await client.get(f"/api/v1/payments/holds/{hold_id}", headers=owner)).json()[
        "status"
    ] == "pending"
    captured = await client.post(
        f"/api/v1/payments/holds/{hold_id}/capture", json={"amount": "4.00"}, headers=owner
    )
    assert captured.status_code == 200, captured.text
    wallet = (await client.get(f"/api/v1/agents/{agent}/wallet", headers=owner)).json()
    capture_plan = dry_capture.json()
    assert capture_plan["projected_balance"] == wallet["balance"]
    assert capture_plan["limits"] == wallet["limits"]

    requester = (await create_agent(client, owner, name="seller"))["agent"]["agent_id"]
    invoice = await client.post(
        "/api/v1/payments/request",
        json={"requester_agent_id": requester, "payer_agent_id": agent, "amount": "3.00"},
        headers=owner,
    )
    assert invoice.status_code == 201, invoice.text
    request_id = invoice.json()["request_id"]
    before = await row_counts(sessionmaker)
    dry_pay = await client.post(
        f"/api/v1/payments/request/{request_id}/pay", headers={**owner, **DRY}
    )
    assert dry_pay.status_code == 200, dry_pay.text
    assert dry_pay.json()["decision"] == "allow"
    assert await row_counts(sessionmaker) == before
    paid = await client.post(f"/api/v1/payments/request/{request_id}/pay", headers=owner)
    assert paid.status_code == 200, paid.text
    assert paid.json()["transaction"]["fee"] == dry_pay.json()["fee"]

    tx_id = paid.json()["transaction"]["tx_id"]
    before = await row_counts(sessionmaker)
    dry_refund = await client.post(
        f"/api/v1/payments/{tx_id}/refund", json={"amount": "1.00"}, headers={**owner, **DRY}
    )
    assert dry_refund.status_code == 200, dry_refund.text
    assert await row_counts(sessionmaker) == before
    refund = await client.post(
        f"/api/v1/payments/{tx_id}/refund", json={"amount": "1.00"}, headers=owner
    )
    assert refund.status_code == 201, refund.text
    wallet = (await client.get(f"/api/v1/agents/{agent}/wallet", headers=owner)).json()
    assert dry_refund.json()["projected_balance"] == wallet["balance"]


async def test_a_frozen_agent_dry_run_is_denied_as_the_real_call(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    owner, agent = world["owner"], world["agent_id"]
    assert (await client.post(f"/api/v1/agents/{agent}/freeze", headers=owner)).status_code == 200
    body = {"agent_id": agent, "merchant_id": world["merchant_id"], "amount": "1.00"}
    plan = (await client.post("/api/v1/payments", json=body, headers={**owner, **DRY})).json()
    assert (plan["decision"], plan["status_code"]) == ("deny", 403)
    assert plan["reasons"][0]["code"] == "wallet_frozen"
    real = await client.post("/api/v1/payments", json=body, headers=owner)
    assert (real.status_code, real.json()["code"]) == (403, "wallet_frozen")


@pytest.mark.parametrize("value", ["TRUE", "1", "yes", "", " true"])
async def test_a_dry_run_header_other_than_true_or_false_is_refused(
    client: httpx.AsyncClient, world: dict[str, Any], sessionmaker: Any, value: str
) -> None:
    body = {"agent_id": world["agent_id"], "merchant_id": world["merchant_id"], "amount": "1.00"}
    before = await row_counts(sessionmaker)
    response = await client.post(
        "/api/v1/payments", json=body, headers={**world["owner"], "Dry-Run": value}
    )
    assert response.status_code == 400, response.text
    assert (response.json()["code"], response.json()["param"]) == ("invalid_dry_run", "Dry-Run")
    assert await row_counts(sessionmaker) == before


async def test_dry_run_false_is_a_real_call(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    body = {"agent_id": world["agent_id"], "merchant_id": world["merchant_id"], "amount": "1.00"}
    response = await client.post(
        "/api/v1/payments", json=body, headers={**world["owner"], "Dry-Run": "false"}
    )
    assert response.status_code == 200
    assert response.json()["success"] is True


async def test_a_route_without_a_dry_run_refuses_the_header_and_does_nothing(
    client: httpx.AsyncClient, world: dict[str, Any], sessionmaker: Any
) -> None:
    before = await row_counts(sessionmaker)
    response = await client.post(
        "/api/v1/agents", json={"name": "not really"}, headers={**world["owner"], **DRY}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "dry_run_not_supported"
    assert await row_counts(sessionmaker) == before
