"""Webhooks end to end, against a real local HTTP receiver."""

import asyncio
import hashlib
import hmac
import ipaddress
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from app.db import run_in_transaction
from app.domain.event import service as event_service
from app.domain.payment import service as payment_service
from app.domain.payment.schemas import PaymentCreate
from app.domain.webhook import delivery
from app.domain.webhook import service as webhook_service
from app.domain.webhook.errors import InvalidWebhookUrl
from app.domain.webhook.urls import check_destination, parse
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
    # Every pending event, however many earlier tests left (a pass takes 500).
    while await run_in_transaction(sessionmaker, lambda s: webhook_service.fan_out(s, moment)):
        pass
    async with delivery.Sender(sandbox=True) as sender:
        return await delivery.deliver_due(
            sessionmaker, sender, app.state.secret_box, now=moment, batch=1000
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


async def test_a_subscription_never_receives_what_happened_before_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    headers = bearer(await make_key())
    agent = (await create_agent(client, headers))["agent"]
    merchant = await create_merchant(client, headers)
    body = {"agent_id": agent["agent_id"], "merchant_id": merchant["merchant_id"], "amount": "1"}
    before = await client.post("/api/v1/payments", json=body, headers=headers)
    assert before.status_code == 200
    # A backlog the fan-out has not reached (a worker that was down for two minutes):
    # older than the subscription by more than its grace, it belongs to the past.
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE outbox_events SET created_at = created_at - interval '2 minutes' "
                "WHERE owner_id = :owner AND fanned_out_at IS NULL"
            ),
            {"owner": agent["owner_id"]},
        )
        await session.commit()
    await subscribe(client, headers, f"{receiver.url}/late", ["payment.completed"])
    # An event written before the subscription whose transaction committed after it (a
    # stalled commit): within the grace, it is delivered, never missed.
    straddling = await client.post("/api/v1/payments", json=body, headers=headers)
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE outbox_events SET created_at = created_at - interval '30 seconds' "
                "WHERE owner_id = :owner AND fanned_out_at IS NULL"
            ),
            {"owner": agent["owner_id"]},
        )
        await session.commit()
    after = await client.post("/api/v1/payments", json=body, headers=headers)
    await pump(app, sessionmaker)
    delivered = [json.loads(request.body) for request in receiver.requests]
    assert sorted(event["data"]["transaction"]["id"] for event in delivered) == sorted(
        [straddling.json()["transaction"]["tx_id"], after.json()["transaction"]["tx_id"]]
    )
    # An event is dated when written, at its payment's commit: never before the payment.
    for event in delivered:
        written = datetime.fromisoformat(event["created_at"])
        paid = datetime.fromisoformat(event["data"]["transaction"]["created_at"])
        assert written >= paid or (
            event["data"]["transaction"]["id"] == straddling.json()["transaction"]["tx_id"]
        )


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
        # As the webhook loop runs: start what is due as slots free up.
        started = 0
        async with delivery.Sender(sandbox=True) as sender:
            dispatcher = delivery.Dispatcher(sessionmaker, sender, app.state.secret_box)
            try:
                while len(receiver.requests) < 500:
                    batch = await dispatcher.dispatch(utc_now())
                    started += batch
                    if not batch:
                        await dispatcher.wait(0.05)
                await dispatcher.drain()
            finally:
                await dispatcher.aclose()
        return started

    async with asyncio.timeout(60):
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


BAD_URLS = [
    "http://127.0.0.1:abc/",
    "http://127.0.0.1:65536/",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:0/",
    "http://127.0.0.1:-1/",
    "http://[::1/",
    "http://[::1]x/",
    "http://a\uff20b.example/",  # a full-width @
    "http://ex\u00e4mple.com/",
    "http://exa mple.com/",
    "http://example.com\\@127.0.0.1/",
    "http://user:pw@example.com/",
    "http://@example.com/",
    "http://:80/",
    "http:///path",
    "http://example..com/",
    "http://-bad.example/",
    "http://%41.example/",
    "http://example.com/%zz",
    "http://[1.2.3.4]/",
    "http://[fe80::1%25eth0]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://999.1.1.1/",
    "http://01.2.3.4/",
    "ftp://example.com/",
    "example.com/hooks",
]


@pytest.mark.parametrize("url", BAD_URLS)
async def test_urls_are_checked_completely_on_save(
    client: httpx.AsyncClient, make_key: MakeKey, url: str
) -> None:
    headers = bearer(await make_key())
    created = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["payment.failed"]}, headers=headers
    )
    assert created.status_code == 422, created.text
    assert (created.json()["code"], created.json()["param"]) == ("invalid_webhook_url", "url")
    hook = await subscribe(client, headers, "http://127.0.0.1:9/ok", ["payment.failed"])
    patched = await client.patch(
        f"/api/v1/webhooks/{hook['subscription_id']}", json={"url": url}, headers=headers
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["code"] == "invalid_webhook_url"
    listed = (await client.get("/api/v1/webhooks", headers=headers)).json()
    assert [w["url"] for w in listed] == ["http://127.0.0.1:9/ok"]


async def test_live_destinations_must_be_public_after_unwrapping() -> None:
    for url in [
        "https://[64:ff9b::a9fe:a9fe]/hooks",  # NAT64 of the metadata address
        "https://[64:ff9b:1::808:808]/hooks",
        "https://[::ffff:169.254.169.254]/hooks",
        "https://[::ffff:0:a9fe:a9fe]/hooks",
        "https://[::a9fe:a9fe]/hooks",
        "https://[2002:a9fe:a9fe::1]/hooks",
        "https://[2001:0:808:808::5601:5601]/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hooks",
        "https://[fd00::1]/hooks",
    ]:
        with pytest.raises(InvalidWebhookUrl, match="non-public"):
            await check_destination(url, sandbox=False)

    async def answers(*addresses: str) -> Any:
        async def resolver(host: str, port: int) -> list[str]:
            return list(addresses)

        return resolver

    mixed = await answers("93.184.215.14", "10.0.0.1")
    with pytest.raises(InvalidWebhookUrl, match=r"resolves to 10\.0\.0\.1"):
        await check_destination("https://hooks.example.test/", sandbox=False, resolver=mixed)
    public = await answers("93.184.215.14", "2606:4700:4700::1111")
    destination = await check_destination(
        "https://hooks.example.test/h", sandbox=False, resolver=public
    )
    assert (destination.host, destination.port) == ("hooks.example.test", 443)
    assert (await check_destination("https://[64:ff9b::808:808]/", sandbox=False)).port == 443


async def test_a_rebinding_between_save_and_delivery_is_refused_at_connect() -> None:
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["93.184.215.14"] if len(lookups) == 1 else ["127.0.0.1"]

    url = "https://hooks.example.test/hooks"
    await check_destination(url, sandbox=False, resolver=rebinding)  # saved: public
    async with delivery.Sender(sandbox=False, resolver=rebinding) as sender:
        result = await sender.post(url, b"{}", {"content-type": "application/json"})
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("DestinationRefused: hooks.example.test resolves to 127.0.0.1")
    assert lookups == ["hooks.example.test", "hooks.example.test"]


async def test_webhook_changes_are_audited_and_secret_responses_are_not_stored(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key = await make_key()
    headers = bearer(key)
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/a", "events": ["payment.failed"], "description": "ci"},
        headers=headers,
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    hook_id = created.json()["subscription_id"]
    patched = await client.patch(
        f"/api/v1/webhooks/{hook_id}",
        json={"url": "http://127.0.0.1:9/b", "events": ["payment.failed", "payment.completed"]},
        headers=headers,
    )
    assert patched.status_code == 200
    rotated = await client.post(f"/api/v1/webhooks/{hook_id}/rotate-secret", headers=headers)
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    deleted = await client.delete(f"/api/v1/webhooks/{hook_id}", headers=headers)
    assert deleted.status_code == 204

    async with sessionmaker() as session:
        rows = [
            dict(row._mapping)
            for row in await session.execute(
                text(
                    "SELECT event, subject_type, subject_id, key_id, request_id, data "
                    "FROM audit_records WHERE owner_id = :owner ORDER BY seq"
                ),
                {"owner": key.owner_id},
            )
        ]
    assert [(r["event"], r["subject_type"], r["subject_id"]) for r in rows] == [
        ("webhook_created", "webhook", hook_id),
        ("webhook_updated", "webhook", hook_id),
        ("webhook_secret_rotated", "webhook", hook_id),
        ("webhook_deleted", "webhook", hook_id),
    ]
    assert {r["key_id"] for r in rows} == {key.key_id}
    assert [r["request_id"] for r in rows] == [
        response.headers["Request-Id"] for response in (created, patched, rotated, deleted)
    ]
    made, changed, rotation, gone = (r["data"] for r in rows)
    assert made == {
        "url": "http://127.0.0.1:9/a",
        "events": ["payment.failed"],
        "description": "ci",
    }
    assert changed == {
        "changes": {
            "url": {"from": "http://127.0.0.1:9/a", "to": "http://127.0.0.1:9/b"},
            "events": {
                "from": ["payment.failed"],
                "to": ["payment.completed", "payment.failed"],
            },
        }
    }
    assert set(rotation) == {"previous_secret_expires_at"}
    assert gone == {
        "url": "http://127.0.0.1:9/b",
        "events": ["payment.completed", "payment.failed"],
    }
    written = json.dumps(rows, default=str)
    for secret in (created.json()["secret"], rotated.json()["secret"]):
        assert secret not in written
        assert secret.removeprefix("whsec_") not in written
    assert "whsec_" not in written


_URLISH = st.text(
    alphabet=st.sampled_from(list("ab1:/?#[]@!$&'()*+,;=%.-_~ 0fF9xX\\\uff20\u00e4\u0660\t")),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(["http://", "https://", "HTTP://", "", "http:"]),
    rest=_URLISH,
    sandbox=st.booleans(),
)
def test_url_parsing_either_accepts_a_sendable_url_or_refuses_with_a_422(
    scheme: str, rest: str, sandbox: bool
) -> None:
    try:
        destination = parse(scheme + rest, sandbox=sandbox)
    except InvalidWebhookUrl as error:
        refused = error
    else:
        assert 1 <= destination.port <= 65535
        assert destination.host
        assert destination.host.isascii()
        assert destination.url.scheme in (("http", "https") if sandbox else ("https",))
        sent = httpx.URL(str(destination.url)).raw_host.decode()
        assert ipaddress.ip_address(sent) if ":" in sent else sent == destination.host
        return
    assert (refused.status_code, refused.param) == (422, "url")
