"""Webhooks end to end, against a real local HTTP receiver."""

import asyncio
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from app.db import run_in_transaction
from app.domain.event import service as event_service
from app.domain.payment import service as payment_service
from app.domain.payment.schemas import PaymentCreate
from app.domain.webhook import delivery
from app.domain.webhook import service as webhook_service
from app.domain.webhook.errors import InvalidWebhookUrl
from app.domain.webhook.urls import check_destination
from app.kit.time import utc_now
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant
from tests.webhook_receiver import Receiver, running_receiver


def verify_webhook(payload: str, signature: str, secret: str) -> bool:
    # The API reference's verification snippet, verbatim.
    expected = "sha256=" + hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def pump(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> int:
    """One pass of the webhook worker: fan out, then deliver what is due at ``now``."""
    moment = now or utc_now()
    await run_in_transaction(sessionmaker, lambda s: webhook_service.fan_out(s, moment))
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
        return await delivery.deliver_due(
            sessionmaker, http, app.state.secret_box, now=moment, sandbox=True, batch=1000
        )


async def subscribe(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, events: list[str]
) -> dict[str, str]:
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": events}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def test_payment_completed_is_delivered_and_verifies_both_ways(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    headers = bearer(await make_key())
    hook = await subscribe(client, headers, f"{receiver.url}/hooks", ["payment.completed"])
    assert hook["secret"].startswith("whsec_")
    assert (
        "secret"
        not in (
            await client.get(f"/api/v1/webhooks/{hook['subscription_id']}", headers=headers)
        ).json()
    )
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    paid = await client.post(
        "/api/v1/payments",
        json={
            "agent_id": agent["agent_id"],
            "merchant_id": merchant["merchant_id"],
            "amount": "15.99",
        },
        headers=headers,
    )
    tx_id = paid.json()["transaction"]["tx_id"]
    await pump(app, sessionmaker)
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    event = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert verify_webhook(
        request.body.decode(), request.headers["x-sardis-signature"], hook["secret"]
    )
    assert event["type"] == "payment.completed"
    assert event["id"].startswith("evt_")
    assert event["api_version"] == "2024-01"
    transaction = event["data"]["transaction"]
    assert (transaction["id"], transaction["amount"], transaction["fee"], transaction["total"]) == (
        tx_id,
        "15.99",
        "0.10",
        "16.09",
    )
    assert transaction["status"] == "completed"
    # Delivered once: another pass sends nothing.
    assert await pump(app, sessionmaker) == 0
    stats = (
        await client.get(f"/api/v1/webhooks/{hook['subscription_id']}", headers=headers)
    ).json()
    assert (stats["total_deliveries"], stats["successful_deliveries"]) == (1, 1)


async def test_rolled_back_payment_emits_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    key = await make_key()
    headers = bearer(key)
    await subscribe(client, headers, receiver.url, ["payment.completed", "payment.initiated"])
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    principal = await _principal(sessionmaker, key.secret)
    async with sessionmaker() as session:
        outcome = await payment_service.create(
            session,
            PaymentCreate(
                agent_id=agent["agent_id"], merchant_id=merchant["merchant_id"], amount="1.00"
            ),
            payment_service.CallContext(principal, None, utc_now(), _utc()),
        )
        assert outcome.refusal is None
        await session.rollback()
    await pump(app, sessionmaker)
    assert receiver.requests == []


async def test_retry_with_growing_delays_then_success(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    headers = bearer(await make_key())
    hook = await subscribe(client, headers, receiver.url, ["merchant.created"])
    receiver.script = [500, 503]
    await create_merchant(client, headers)
    t0 = utc_now()
    assert await pump(app, sessionmaker, now=t0) == 1  # 500
    assert await pump(app, sessionmaker, now=t0 + timedelta(seconds=4)) == 0  # not due yet
    assert await pump(app, sessionmaker, now=t0 + timedelta(seconds=6)) == 1  # 503
    assert await pump(app, sessionmaker, now=t0 + timedelta(minutes=4)) == 0
    assert await pump(app, sessionmaker, now=t0 + timedelta(minutes=6)) == 1  # 200
    log = (
        await client.get(f"/api/v1/webhooks/{hook['subscription_id']}/deliveries", headers=headers)
    ).json()
    assert [(a["attempt"], a["status_code"]) for a in reversed(log)] == [
        (1, 500),
        (2, 503),
        (3, 200),
    ]
    first, second = log[2], log[1]
    delay_1 = datetime.fromisoformat(first["next_retry_at"]) - datetime.fromisoformat(
        first["attempted_at"]
    )
    assert (
        timedelta(seconds=4)
        < datetime.fromisoformat(first["next_retry_at"]) - t0
        < timedelta(seconds=6)
    )
    assert datetime.fromisoformat(second["next_retry_at"]) - (
        t0 + timedelta(seconds=6)
    ) > timedelta(minutes=4)
    assert delay_1 is not None
    assert log[0]["delivery_status"] == "succeeded"
    assert len({json.loads(r.body)["id"] for r in receiver.requests}) == 1  # same event each time


async def test_two_workers_deliver_500_events_exactly_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    key = await make_key()
    headers = bearer(key)
    await subscribe(client, headers, receiver.url, ["agent.updated"])

    async def emit(session: AsyncSession) -> None:
        await event_service.emit(
            session,
            [event_service.event(key.owner_id, "agent.updated", {"n": n}) for n in range(500)],
        )

    await run_in_transaction(sessionmaker, emit)
    await run_in_transaction(sessionmaker, lambda s: webhook_service.fan_out(s, utc_now()))

    async def worker() -> int:
        sent = 0
        async with httpx.AsyncClient(timeout=10) as http:
            while batch := await delivery.deliver_due(
                sessionmaker, http, app.state.secret_box, now=utc_now(), sandbox=True, batch=25
            ):
                sent += batch
        return sent

    counts = await asyncio.gather(worker(), worker())
    assert sum(counts) == 500
    assert all(count > 0 for count in counts)  # both really worked
    ids = Counter(json.loads(r.body)["id"] for r in receiver.requests)
    assert len(ids) == 500
    assert set(ids.values()) == {1}


async def test_test_event_reaches_only_its_endpoint_and_owners_are_isolated(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    alice, bob = bearer(await make_key()), bearer(await make_key())
    mine = await subscribe(client, alice, f"{receiver.url}/mine", ["payment.failed"])
    await subscribe(client, alice, f"{receiver.url}/other", ["payment.failed"])
    theirs = await subscribe(client, bob, f"{receiver.url}/bob", ["payment.failed"])
    queued = await client.post(f"/api/v1/webhooks/{mine['subscription_id']}/test", headers=alice)
    assert queued.status_code == 202
    await pump(app, sessionmaker)
    assert [r.path for r in receiver.requests] == ["/mine"]
    assert json.loads(receiver.requests[0].body)["type"] == "webhook.test"
    for method, suffix in [
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/test"),
        ("GET", "/deliveries"),
        ("POST", "/rotate-secret"),
        ("DELETE", ""),
    ]:
        response = await client.request(
            method, f"/api/v1/webhooks/{theirs['subscription_id']}{suffix}", json={}, headers=alice
        )
        assert response.status_code == 404, (method, suffix)
    listed = (await client.get("/api/v1/webhooks", headers=alice)).json()
    assert theirs["subscription_id"] not in {w["subscription_id"] for w in listed}


async def test_limit_events_fire_at_80_and_100_percent(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    headers = bearer(await make_key())
    await subscribe(client, headers, receiver.url, ["limit.warning", "limit.exceeded"])
    agent = (await create_agent(client, headers, limit_total="10.00"))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"]}
    for amount, status in [("7.00", 200), ("1.00", 200), ("3.00", 400)]:
        response = await client.post(
            "/api/v1/payments", json={**body, "amount": amount}, headers=headers
        )
        assert response.status_code == status
    await pump(app, sessionmaker)
    types = [json.loads(r.body)["type"] for r in receiver.requests]
    assert types == ["limit.warning", "limit.exceeded"]
    warning = json.loads(receiver.requests[0].body)["data"]
    assert (warning["limit"], warning["spent"]) == ("total", "8.00")


async def test_rotation_url_rules_and_event_types(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    headers = bearer(await make_key())
    hook = await subscribe(client, headers, receiver.url, ["merchant.created"])
    rotated = await client.post(
        f"/api/v1/webhooks/{hook['subscription_id']}/rotate-secret", headers=headers
    )
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    await create_merchant(client, headers)
    await pump(app, sessionmaker)
    request = receiver.requests[0]
    assert Webhook(new_secret).verify(request.body, request.headers)
    assert Webhook(hook["secret"]).verify(request.body, request.headers)  # 24 h overlap
    assert verify_webhook(request.body.decode(), request.headers["x-sardis-signature"], new_secret)
    bad = await client.post(
        "/api/v1/webhooks", json={"url": "ftp://x", "events": ["payment.failed"]}, headers=headers
    )
    assert bad.status_code == 422
    unknown = await client.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["nope"]}, headers=headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["param"] == "events"
    types = (await client.get("/api/v1/webhooks/events/types", headers=headers)).json()
    assert {"payment.completed", "limit.warning", "risk.alert", "invoice.paid"} <= {
        t["type"] for t in types
    }
    for url in [
        "http://example.com/h",
        "https://127.0.0.1/h",
        "https://10.1.2.3/h",
        "https://[::1]/h",
    ]:
        with pytest.raises(InvalidWebhookUrl):
            await check_destination(url, sandbox=False)


def _utc():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("UTC")


async def _principal(sessionmaker: async_sessionmaker[AsyncSession], secret: str):  # type: ignore[no-untyped-def]
    from app.config import Mode
    from app.domain.apikey import service as apikey_service

    async with sessionmaker() as session:
        return await apikey_service.authenticate(session, secret, Mode.sandbox)


async def test_endpoint_failing_for_five_days_is_disabled_and_dead_letters_replay(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    headers = bearer(await make_key())
    hook = await subscribe(client, headers, receiver.url, ["merchant.created"])
    receiver.script = [500] * 20
    await create_merchant(client, headers)
    t0 = utc_now()
    moment = t0
    for _ in range(8):  # the first attempt and seven retries, each when due
        assert await pump(app, sessionmaker, now=moment) == 1
        moment += timedelta(hours=11)
    log = (
        await client.get(f"/api/v1/webhooks/{hook['subscription_id']}/deliveries", headers=headers)
    ).json()
    assert log[0]["delivery_status"] == "failed"  # dead-lettered after 8 attempts
    assert log[0]["next_retry_at"] is None
    state = (
        await client.get(f"/api/v1/webhooks/{hook['subscription_id']}", headers=headers)
    ).json()
    assert state["is_active"] is True  # failing for ~3 days, not 5
    event_id = log[0]["event_id"]
    replayed = await client.post(
        f"/api/v1/webhooks/{hook['subscription_id']}/deliveries/{event_id}/replay", headers=headers
    )
    assert replayed.status_code == 202
    assert await pump(app, sessionmaker, now=t0 + timedelta(days=5, seconds=1)) == 1
    state = (
        await client.get(f"/api/v1/webhooks/{hook['subscription_id']}", headers=headers)
    ).json()
    assert state["is_active"] is False
    assert "5 days" in state["disabled_reason"]
    # Re-enabling clears the failure record.
    enabled = await client.patch(
        f"/api/v1/webhooks/{hook['subscription_id']}", json={"is_active": True}, headers=headers
    )
    assert enabled.json()["is_active"] is True
    assert enabled.json()["disabled_reason"] is None
