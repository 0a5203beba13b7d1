"""The sandbox test clock: each owner moves its own now; limit windows roll, holds and
payment requests expire (in the advance and in the periodic jobs), velocity windows
slide, and other owners' time does not move."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.hold import service as hold_service
from app.domain.payment.service import system_context
from app.kit.time import utc_now
from tests.api.helpers import bearer
from tests.api.payment_helpers import create_agent, create_merchant

DAY = 86_400


async def _advance(client: httpx.AsyncClient, owner: dict[str, str], seconds: int) -> Any:
    response = await client.post(
        "/api/v1/test/clock/advance", json={"seconds": seconds}, headers=owner
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _pay(client: httpx.AsyncClient, owner: dict[str, str], body: dict[str, Any]) -> Any:
    return await client.post("/api/v1/payments", json=body, headers=owner)


async def test_the_clock_rolls_a_daily_window(client: httpx.AsyncClient, make_key: Any) -> None:
    owner = bearer(await make_key())
    agent = (await create_agent(client, owner, limit_daily="10.00"))["agent"]["agent_id"]
    merchant = (await create_merchant(client, owner))["merchant_id"]
    body = {"agent_id": agent, "merchant_id": merchant, "amount": "10.00"}
    assert (await _pay(client, owner, body)).status_code == 200
    refused = await _pay(client, owner, {**body, "amount": "0.01"})
    assert (refused.status_code, refused.json()["code"]) == (400, "limit_exceeded")
    wallet = (await client.get(f"/api/v1/agents/{agent}/wallet", headers=owner)).json()
    resets_at = datetime.fromisoformat(wallet["limits"]["daily"]["resets_at"])
    clock = (await client.get("/api/v1/test/clock", headers=owner)).json()
    # Past the window's end: the new day's window is empty.
    seconds = int((resets_at - datetime.fromisoformat(clock["now"])).total_seconds()) + 1
    moved = await _advance(client, owner, seconds)
    assert moved["offset_seconds"] == seconds
    after = (await client.get(f"/api/v1/agents/{agent}/wallet", headers=owner)).json()
    assert after["limits"]["daily"]["used"] == "0.00"
    assert datetime.fromisoformat(after["limits"]["daily"]["resets_at"]) == resets_at + timedelta(
        days=1
    )
    assert (await _pay(client, owner, body)).status_code == 200
    # The payment is dated by the owner's clock.
    transactions = (await client.get(f"/api/v1/agents/{agent}/transactions", headers=owner)).json()
    assert datetime.fromisoformat(transactions[0]["completed_at"]) >= resets_at
    assert transactions[0]["created_at"] == transactions[0]["completed_at"]


async def test_the_clock_expires_a_hold_and_a_payment_request_in_the_advance(
    client: httpx.AsyncClient, make_key: Any
) -> None:
    owner = bearer(await make_key())
    agent = (await create_agent(client, owner))["agent"]["agent_id"]
    seller = (await create_agent(client, owner, name="seller"))["agent"]["agent_id"]
    merchant = (await create_merchant(client, owner))["merchant_id"]
    hold = await client.post(
        "/api/v1/payments/holds",
        json={
            "agent_id": agent,
            "merchant_id": merchant,
            "amount": "30.00",
            "expires_in_minutes": 5,
        },
        headers=owner,
    )
    assert hold.status_code == 201, hold.text
    invoice = await client.post(
        "/api/v1/payments/request",
        json={
            "requester_agent_id": seller,
            "payer_agent_id": agent,
            "amount": "1.00",
            "expires_in_hours": 1,
        },
        headers=owner,
    )
    assert invoice.status_code == 201, invoice.text
    early = await _advance(client, owner, 60)
    assert (early["holds_expired"], early["payment_requests_expired"]) == (0, 0)
    moved = await _advance(client, owner, 3600)
    assert (moved["holds_expired"], moved["payment_requests_expired"]) == (1, 1)
    expired = (
        await client.get(f"/api/v1/payments/holds/{hold.json()['hold_id']}", headers=owner)
    ).json()
    assert expired["status"] == "expired"
    # Dated by the owner's clock throughout: it expired after it was due.
    assert expired["resolved_at"] >= expired["expires_at"]
    wallet = (await client.get(f"/api/v1/agents/{agent}/wallet", headers=owner)).json()
    assert (wallet["balance"], wallet["held_balance"]) == ("100.00", "0.00")
    pay = await client.post(
        f"/api/v1/payments/request/{invoice.json()['request_id']}/pay", headers=owner
    )
    assert pay.status_code == 409, pay.text
    request = (
        await client.get(f"/api/v1/payments/request/{invoice.json()['request_id']}", headers=owner)
    ).json()
    assert request["status"] == "expired"
    assert request["resolved_at"] >= request["expires_at"]


async def test_the_periodic_job_honours_each_owners_clock(
    client: httpx.AsyncClient, make_key: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    moved_key, still_key = await make_key(), await make_key()
    holds = {}
    for key in (moved_key, still_key):
        owner = bearer(key)
        agent = (await create_agent(client, owner))["agent"]["agent_id"]
        merchant = (await create_merchant(client, owner))["merchant_id"]
        hold = await client.post(
            "/api/v1/payments/holds",
            json={
                "agent_id": agent,
                "merchant_id": merchant,
                "amount": "1.00",
                "expires_in_minutes": 5,
            },
            headers=owner,
        )
        assert hold.status_code == 201, hold.text
        holds[key.owner_id] = hold.json()["hold_id"]
    # Another process moved the first owner's clock (as its advance would, before its own
    # expiry ran): only the job is left to notice.
    async with sessionmaker() as session:
        await session.execute(
            text(
                "INSERT INTO owner_controls (owner_id, mode, clock_offset_seconds) "
                "VALUES (:owner, 'sandbox', 3600) ON CONFLICT (owner_id, mode) "
                "DO UPDATE SET clock_offset_seconds = 3600"
            ),
            {"owner": moved_key.owner_id},
        )
        await session.commit()
    async with sessionmaker() as session:
        await hold_service.expire_due(session, system_context(utc_now(), _utc()))
        await session.commit()
    statuses = {
        key.owner_id: (
            await client.get(f"/api/v1/payments/holds/{holds[key.owner_id]}", headers=bearer(key))
        ).json()["status"]
        for key in (moved_key, still_key)
    }
    assert statuses == {moved_key.owner_id: "expired", still_key.owner_id: "pending"}


def _utc() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("UTC")


async def test_each_owner_has_its_own_clock(client: httpx.AsyncClient, make_key: Any) -> None:
    mover, bystander = bearer(await make_key()), bearer(await make_key())
    await _advance(client, mover, 3 * DAY)
    await _advance(client, mover, DAY)
    mine = (await client.get("/api/v1/test/clock", headers=mover)).json()
    theirs = (await client.get("/api/v1/test/clock", headers=bystander)).json()
    assert mine["offset_seconds"] == 4 * DAY
    assert theirs["offset_seconds"] == 0
    gap = datetime.fromisoformat(mine["now"]) - datetime.fromisoformat(theirs["now"])
    assert timedelta(days=4) - timedelta(seconds=5) < gap < timedelta(days=4, seconds=5)


async def test_an_agent_key_reads_but_does_not_move_the_clock(
    client: httpx.AsyncClient, make_key: Any
) -> None:
    owner_key = await make_key()
    owner = bearer(owner_key)
    agent = (await create_agent(client, owner))["agent"]["agent_id"]
    agent_key = bearer(await make_key(owner=owner_key.owner_id, agent_id=agent))
    refused = await client.post(
        "/api/v1/test/clock/advance", json={"seconds": 60}, headers=agent_key
    )
    assert refused.status_code == 403
    assert (await client.get("/api/v1/test/clock", headers=owner)).json()["offset_seconds"] == 0


@pytest.mark.parametrize(
    "body",
    [{"seconds": 0}, {"seconds": -5}, {"seconds": "60"}, {"seconds": 1.5}, {"seconds": 10**12}, {}],
)
async def test_an_advance_outside_the_grammar_is_refused(
    client: httpx.AsyncClient, make_key: Any, body: dict[str, Any]
) -> None:
    owner = bearer(await make_key())
    response = await client.post("/api/v1/test/clock/advance", json=body, headers=owner)
    assert response.status_code == 422, response.text
    assert (await client.get("/api/v1/test/clock", headers=owner)).json()["offset_seconds"] == 0


async def test_the_clock_stops_ten_years_ahead(client: httpx.AsyncClient, make_key: Any) -> None:
    owner = bearer(await make_key())
    for _ in range(10):
        await _advance(client, owner, 365 * DAY)
    response = await client.post(
        "/api/v1/test/clock/advance", json={"seconds": 365 * DAY}, headers=owner
    )
    assert response.status_code == 422
    assert response.json()["code"] == "clock_out_of_range"
    assert (await client.get("/api/v1/test/clock", headers=owner)).json()[
        "offset_seconds"
    ] == 3650 * DAY


async def test_an_advance_retried_with_its_key_moves_the_clock_once(
    client: httpx.AsyncClient, make_key: Any
) -> None:
    owner = bearer(await make_key())
    keyed = {**owner, "Idempotency-Key": "advance-1"}
    first = await client.post("/api/v1/test/clock/advance", json={"seconds": 60}, headers=keyed)
    again = await client.post("/api/v1/test/clock/advance", json={"seconds": 60}, headers=keyed)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert (await client.get("/api/v1/test/clock", headers=owner)).json()["offset_seconds"] == 60
