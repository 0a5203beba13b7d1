"""Window limits (daily, weekly, monthly) under real concurrency. Their counters are read
by the payer's lock statement with its snapshot, taken before the lock is granted: a
payment that waited for another must see the counts that one committed, never overshoot."""

import asyncio
from collections import Counter

import httpx
import pytest

from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of


@pytest.mark.parametrize("limit", ["limit_daily", "limit_weekly", "limit_monthly"])
async def test_a_window_limit_of_10_and_40_concurrent_payments_of_1(
    client: httpx.AsyncClient, make_key: MakeKey, limit: str
) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers, **{limit: "10.00"}))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "1.00"}
    responses = await asyncio.gather(
        *(client.post("/api/v1/payments", json=body, headers=headers) for _ in range(40))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 10, 400: 30}
    assert all(r.json()["code"] == "limit_exceeded" for r in responses if r.status_code == 400)
    wallet = await wallet_of(client, headers, agent["agent_id"])
    assert wallet["spent_total"] == "10.00"
