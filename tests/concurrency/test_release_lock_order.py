"""Refunds, voids and partial captures take an agent's locks in the order its payments do
(wallet row, then balance rows), so mixing them at once deadlocks nothing: no transaction
is chosen as a deadlock victim, and none needs the API's rerun."""

import asyncio
import logging
from collections import Counter

import httpx
import pytest

from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of


async def test_payments_beside_refunds_voids_and_captures_never_deadlock(
    client: httpx.AsyncClient, make_key: MakeKey, caplog: pytest.LogCaptureFixture
) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers, initial_balance="500.00"))["agent"]
    merchant = await create_merchant(client, headers)
    pay = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"]}
    first = await client.post("/api/v1/payments", json={**pay, "amount": "40.00"}, headers=headers)
    assert first.status_code == 200
    tx_id = first.json()["transaction"]["tx_id"]
    holds = []
    for _ in range(16):
        hold = await client.post(
            "/api/v1/payments/holds", json={**pay, "amount": "2.00"}, headers=headers
        )
        assert hold.status_code == 201, hold.text
        holds.append(hold.json()["hold_id"])

    caplog.set_level(logging.WARNING, logger="purser.api")
    requests = [
        *(
            client.post("/api/v1/payments", json={**pay, "amount": "1.00"}, headers=headers)
            for _ in range(40)
        ),
        *(
            client.post(
                f"/api/v1/payments/{tx_id}/refund", json={"amount": "1.00"}, headers=headers
            )
            for _ in range(16)
        ),
        *(client.post(f"/api/v1/payments/holds/{h}/void", headers=headers) for h in holds[:8]),
        *(
            client.post(
                f"/api/v1/payments/holds/{h}/capture", json={"amount": "1.00"}, headers=headers
            )
            for h in holds[8:]
        ),
    ]
    responses = await asyncio.gather(*requests)
    assert Counter(r.status_code for r in responses) == {200: 56, 201: 16}
    reruns = [r for r in caplog.records if "rerunning" in r.getMessage()]
    assert reruns == [], [r.getMessage() for r in reruns]
    wallet = await wallet_of(client, headers, agent["agent_id"])
    # 500 - 40.10 - 16 x 2.10 held - 40 x 1.10 + 16 x 1.00 refunded + 8 x 2.10 voided
    # + 8 x (2.10 - 1.10) released by the partial captures.
    assert wallet["balance"] == "423.10"
    assert wallet["held_balance"] == "0.00"
