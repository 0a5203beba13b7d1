"""How many SQL statements each money movement sends to PostgreSQL: a structural guard on
the hot path, not a timing. BEGIN and COMMIT are not statements of the cursor and are not
counted. A change that adds a statement to one of these paths must raise its budget here
and say why.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.domain.apikey.schemas import Scope
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant

#: Statements per request (an idempotent payment, its replay, a refusal for a limit, a hold
#: capture, a payment-request pay), as the pipeline stands: each path's ceiling.
BUDGET = {
    "payment": 4,
    "replay": 1,
    "refusal": 4,
    "capture": 7,
    "request_pay": 6,
}


class Counter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement.split("\n", 1)[0][:80])


@contextmanager
def counting(app: FastAPI) -> Iterator[Counter]:
    counter = Counter()
    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)


@pytest.fixture
async def owner(client: httpx.AsyncClient, make_key: MakeKey) -> dict[str, Any]:
    headers = bearer(await make_key(scopes=list(Scope)))
    agent = (await create_agent(client, headers, limit_daily="50.00"))["agent"]
    merchant = await create_merchant(client, headers)
    # Warm the caches a first payment fills (fee schedule, system accounts).
    warm = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "1"}
    assert (await client.post("/api/v1/payments", json=warm, headers=headers)).status_code == 200
    return {"headers": headers, "agent": agent, "merchant": merchant}


def _within(counter: Counter, path: str) -> None:
    assert len(counter.statements) <= BUDGET[path], (path, counter.statements)


async def test_a_payment_its_replay_and_a_refusal_stay_within_budget(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    headers = {**owner["headers"], "Idempotency-Key": "budget-payment"}
    body = {
        "agent_id": owner["agent"]["agent_id"],
        "merchant_id": owner["merchant"]["merchant_id"],
        "amount": "2.00",
    }
    with counting(app) as paid:
        assert (
            await client.post("/api/v1/payments", json=body, headers=headers)
        ).status_code == 200
    _within(paid, "payment")
    with counting(app) as replayed:
        replay = await client.post("/api/v1/payments", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    _within(replayed, "replay")
    over_limit = {**body, "amount": "60.00"}
    refused_headers = {**owner["headers"], "Idempotency-Key": "budget-refusal"}
    with counting(app) as refused:
        response = await client.post("/api/v1/payments", json=over_limit, headers=refused_headers)
    assert response.status_code == 400
    _within(refused, "refusal")
    # A refusal never costs more than a success.
    assert len(refused.statements) <= len(paid.statements)


async def test_a_capture_and_a_request_pay_stay_within_budget(
    app: FastAPI, client: httpx.AsyncClient, owner: dict[str, Any], make_key: MakeKey
) -> None:
    headers = owner["headers"]
    agent_id = owner["agent"]["agent_id"]
    hold = await client.post(
        "/api/v1/payments/holds",
        json={"agent_id": agent_id, "merchant_id": owner["merchant"]["merchant_id"], "amount": "3"},
        headers=headers,
    )
    assert hold.status_code == 201, hold.text
    with counting(app) as captured:
        capture = await client.post(
            f"/api/v1/payments/holds/{hold.json()['hold_id']}/capture", json={}, headers=headers
        )
    assert capture.status_code == 200, capture.text
    _within(captured, "capture")
    requester = (await create_agent(client, headers, name="requesting agent"))["agent"]
    request = await client.post(
        "/api/v1/payments/request",
        json={
            "requester_agent_id": requester["agent_id"],
            "payer_agent_id": agent_id,
            "amount": "1.50",
        },
        headers=headers,
    )
    assert request.status_code == 201, request.text
    with counting(app) as paid:
        pay = await client.post(
            f"/api/v1/payments/request/{request.json()['request_id']}/pay", headers=headers
        )
    assert pay.status_code == 200, pay.text
    _within(paid, "request_pay")
