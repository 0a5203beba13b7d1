"""Sandbox and live never mix, continued: webhook endpoints and their deliveries, audit
records, API keys and idempotency keys keep to their mode too. One database, a sandbox
server and a live server, one owner with a key of each mode (the ``servers`` fixture of
``test_mode_separation``). Also: an agent key's pages of payment requests are full."""

import asyncio
import json
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Mode
from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.domain.audit import service as audit_service
from app.domain.event import service as event_service
from app.domain.idempotency import repository as idempotency_repository
from app.domain.webhook import delivery
from app.domain.webhook import repository as webhook_repository
from app.domain.webhook import service as webhook_service
from app.domain.webhook.errors import WebhookNotFound
from app.domain.webhook.schemas import WebhookCreate
from app.kit.encryption import SecretBox, load_secret_box
from app.kit.time import utc_now
from app.migrations import alembic_config
from tests.api.helpers import bearer, key_maker
from tests.api.v1 import test_mode_separation as two_modes
from tests.webhook_receiver import running_receiver

Servers = two_modes.Servers
OWNER = two_modes.OWNER
#: The two apps on one database (see ``test_mode_separation.servers``).
servers = two_modes.servers


def _sandbox_box() -> SecretBox:
    """The box the sandbox app encrypts webhook secrets with (its data folder's key)."""
    return load_secret_box(None, sandbox=True, data_dir=two_modes._settings(Mode.sandbox).data_dir)


async def _json(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _seal_all(sessions: async_sessionmaker[AsyncSession]) -> None:
    while await run_in_transaction(sessions, audit_service.seal):
        pass


async def test_a_live_key_sees_no_sandbox_webhooks_audit_records_or_keys(
    servers: Servers,
) -> None:
    s = servers
    sandbox, live = s.sandbox, s.live
    await two_modes._sandbox_world(s)
    hook = await _json(
        await sandbox.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["payment.completed"]},
            headers=s.test_key,
        ),
        201,
    )
    hook_id = hook["subscription_id"]
    sandbox_child = await _json(
        await sandbox.post("/api/v1/keys", json={"name": "sandbox child"}, headers=s.test_key),
        201,
    )
    live_child = await _json(
        await live.post("/api/v1/keys", json={"name": "live child"}, headers=s.live_key), 201
    )
    # A live sealer seals both modes' records (the chain is one), numbering each mode apart.
    await _seal_all(s.live_sessions)
    # One more of each, left unsealed: the first page leads with them.
    for client, headers in ((sandbox, s.test_key), (live, s.live_key)):
        await _json(await client.post("/api/v1/keys", json={"name": "late"}, headers=headers), 201)

    # Webhooks: the live key's list is empty and the sandbox endpoint is not found.
    assert await _json(await live.get("/api/v1/webhooks", headers=s.live_key)) == []
    not_found = [
        ("GET", f"/api/v1/webhooks/{hook_id}", None),
        ("PATCH", f"/api/v1/webhooks/{hook_id}", {"description": "taken over"}),
        ("PATCH", f"/api/v1/webhooks/{hook_id}", {"is_active": False}),
        ("POST", f"/api/v1/webhooks/{hook_id}/test", None),
        ("GET", f"/api/v1/webhooks/{hook_id}/deliveries", None),
        ("POST", f"/api/v1/webhooks/{hook_id}/deliveries/evt_nope/replay", None),
        ("DELETE", f"/api/v1/webhooks/{hook_id}", None),
    ]
    for method, path, body in not_found:
        response = await live.request(method, path, json=body, headers=s.live_key)
        assert response.status_code == 404, (method, path, response.text)
    # Rotating needs the secret box, which this live app lacks (503 first): the service.
    async with s.live_sessions() as session:
        with pytest.raises(WebhookNotFound):
            await webhook_service.rotate_secret(session, OWNER, hook_id, _sandbox_box(), utc_now())
        await session.rollback()
    unchanged = await _json(await sandbox.get(f"/api/v1/webhooks/{hook_id}", headers=s.test_key))
    assert (unchanged["description"], unchanged["is_active"]) == (None, True)
    assert [
        w["subscription_id"]
        for w in await _json(await sandbox.get("/api/v1/webhooks", headers=s.test_key))
    ] == [hook_id]

    # Audit: each key sees its own mode's records, numbered 1, 2, 3… without gaps.
    pages: dict[str, list[dict[str, Any]]] = {}
    for mode, client, headers in (("sandbox", sandbox, s.test_key), ("live", live, s.live_key)):
        page = await _json(await client.get("/api/v1/audit?limit=200", headers=headers))
        assert page["next_cursor"] is None
        records = page["data"]
        assert [r["seq"] for r in records[1:]] == list(range(len(records) - 1, 0, -1))
        assert records[0]["seq"] is None  # the late key, not sealed yet
        pages[mode] = records
    live_subjects = {r["subject_id"] for r in pages["live"]}
    sandbox_subjects = {r["subject_id"] for r in pages["sandbox"]}
    assert live_child["key_id"] in live_subjects
    assert not live_subjects & sandbox_subjects
    assert {r["event"] for r in pages["live"]} == {"api_key_created"}
    assert len(pages["live"]) == 2
    assert hook_id in sandbox_subjects
    assert sandbox_child["key_id"] in sandbox_subjects
    # Sealed as one chain, and it verifies.
    await _seal_all(s.sandbox_sessions)
    async with s.sandbox_sessions() as session:
        verified = await audit_service.verify(session)
    assert verified.bad_seq is None, verified

    # Keys: each mode lists its own; a live key cannot revoke a sandbox key, nor the reverse.
    listed = await _json(await live.get("/api/v1/keys", headers=s.live_key))
    assert {k["mode"] for k in listed} == {"live"}
    assert live_child["key_id"] in {k["key_id"] for k in listed}
    listed = await _json(await sandbox.get("/api/v1/keys", headers=s.test_key))
    assert {k["mode"] for k in listed} == {"sandbox"}
    assert sandbox_child["key_id"] in {k["key_id"] for k in listed}
    for client, headers, other in (
        (live, s.live_key, sandbox_child["key_id"]),
        (sandbox, s.test_key, live_child["key_id"]),
    ):
        refused = await client.delete(f"/api/v1/keys/{other}", headers=headers)
        assert refused.status_code == 404, refused.text
    still = {
        k["key_id"]: k for k in await _json(await sandbox.get("/api/v1/keys", headers=s.test_key))
    }
    assert still[sandbox_child["key_id"]]["revoked_at"] is None
    child_headers = {"Authorization": f"Bearer {sandbox_child['secret']}"}
    assert (await sandbox.get("/api/v1/agents", headers=child_headers)).status_code == 200
    # Within its mode, revoking works as before.
    revoked = await sandbox.delete(f"/api/v1/keys/{sandbox_child['key_id']}", headers=s.test_key)
    assert revoked.status_code == 200, revoked.text
    assert (await sandbox.get("/api/v1/agents", headers=child_headers)).status_code == 401


async def _emit(sessions: async_sessionmaker[AsyncSession], type_: str) -> str:
    event = event_service.event(OWNER, type_, {"n": 1})

    async def write(session: AsyncSession) -> None:
        await event_service.emit(session, [event])

    await run_in_transaction(sessions, write)
    event_id: str = event["id"]
    return event_id


def _event_id(body: bytes) -> str:
    event_id: str = json.loads(body)["id"]
    return event_id


async def _pass(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> tuple[int, int]:
    """One pass of a worker serving ``sessions``' mode: (events fanned out, attempts)."""
    now = utc_now()
    fanned = await run_in_transaction(sessions, lambda s: webhook_service.fan_out(s, now))
    # The sender's sandbox flag only relaxes URL rules (the receiver is on 127.0.0.1); the
    # mode of what is delivered is the connection's.
    async with delivery.Sender(sandbox=True) as sender:
        started = await delivery.deliver_due(sessions, sender, box, now=now, batch=100)
    return fanned, started


async def test_a_live_worker_never_delivers_sandbox_events(servers: Servers) -> None:
    s = servers
    box = _sandbox_box()
    async with running_receiver() as receiver:
        sandbox_hook = (
            await _json(
                await s.sandbox.post(
                    "/api/v1/webhooks",
                    json={"url": f"{receiver.url}/sandbox", "events": ["payment.completed"]},
                    headers=s.test_key,
                ),
                201,
            )
        )["subscription_id"]
        # The live endpoint of the same owner, for the same event type (written through the
        # service: a live server's API refuses a loopback URL).
        live_hook = (
            await run_in_transaction(
                s.live_sessions,
                lambda session: webhook_service.create(
                    session,
                    OWNER,
                    WebhookCreate(url=f"{receiver.url}/live", events=["payment.completed"]),
                    box,
                    sandbox=True,
                ),
            )
        ).subscription_id
        sandbox_event = await _emit(s.sandbox_sessions, "payment.completed")
        live_event = await _emit(s.live_sessions, "payment.completed")

        # The live worker fans out and delivers the live event only, to the live endpoint.
        assert await _pass(s.live_sessions, box) == (1, 1)
        assert [(r.path, _event_id(r.body)) for r in receiver.requests] == [("/live", live_event)]
        async with s.sandbox_sessions() as session:
            unfanned = await session.scalar(
                text("SELECT fanned_out_at IS NULL FROM outbox_events WHERE id = :id"),
                {"id": sandbox_event},
            )
        assert unfanned is True

        # The sandbox worker fans the sandbox event out to the sandbox endpoint only ...
        now = utc_now()
        fanned = await run_in_transaction(
            s.sandbox_sessions, lambda session: webhook_service.fan_out(session, now)
        )
        assert fanned == 1
        async with s.sandbox_sessions() as session:
            endpoints = (
                await session.scalars(
                    text("SELECT endpoint_id FROM webhook_deliveries WHERE event_id = :id"),
                    {"id": sandbox_event},
                )
            ).all()
        assert endpoints == [sandbox_hook]
        # ... and a live worker, finding it due, leaves it alone.
        assert await _pass(s.live_sessions, box) == (0, 0)
        assert len(receiver.requests) == 1
        assert await _pass(s.sandbox_sessions, box) == (0, 1)
        assert [(r.path, _event_id(r.body)) for r in receiver.requests] == [
            ("/live", live_event),
            ("/sandbox", sandbox_event),
        ]

    # The repository's own filters, below the service's 404: a live connection reads no
    # attempt of, reschedules no delivery to, loads, changes or deletes no sandbox endpoint.
    async with s.live_sessions() as session:
        assert await webhook_repository.list_attempts(session, OWNER, sandbox_hook, 10) == []
        assert not await webhook_repository.reschedule(
            session, OWNER, sandbox_hook, sandbox_event, utc_now()
        )
        loaded = await webhook_repository.endpoints_by_id(session, [sandbox_hook, live_hook])
        assert list(loaded) == [live_hook]
        changes = {"description": "taken over"}
        assert not await webhook_repository.update_endpoint(session, OWNER, sandbox_hook, changes)
        assert not await webhook_repository.delete_endpoint(session, OWNER, sandbox_hook)
        await session.rollback()
    async with s.sandbox_sessions() as session:
        attempts = await webhook_repository.list_attempts(session, OWNER, sandbox_hook, 10)
        assert [a.event_id for a in attempts] == [sandbox_event]


async def test_an_idempotency_key_of_sandbox_runs_afresh_in_live(servers: Servers) -> None:
    s = servers
    headers = {"Idempotency-Key": "same-key-both-modes"}
    body = {"name": "twin"}
    first = await s.sandbox.post("/api/v1/agents", json=body, headers={**s.test_key, **headers})
    assert first.status_code == 201, first.text
    # Same owner, same path, same key, same body: a new request in live, not a replay.
    again = await s.live.post("/api/v1/agents", json=body, headers={**s.live_key, **headers})
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    live_agent = again.json()["agent"]["agent_id"]
    assert live_agent != first.json()["agent"]["agent_id"]
    listed = await _json(await s.live.get("/api/v1/agents", headers=s.live_key))
    assert [a["agent_id"] for a in listed] == [live_agent]
    # Each mode now replays its own response.
    for client, key, response in ((s.sandbox, s.test_key, first), (s.live, s.live_key, again)):
        replay = await client.post("/api/v1/agents", json=body, headers={**key, **headers})
        assert replay.status_code == 201, replay.text
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == response.content
    # Another body under a key only the other mode used is no reuse either.
    other_key = {"Idempotency-Key": "sandbox-only-key"}
    used = await s.sandbox.post(
        "/api/v1/agents", json={"name": "alpha"}, headers={**s.test_key, **other_key}
    )
    assert used.status_code == 201, used.text
    fresh = await s.live.post(
        "/api/v1/agents", json={"name": "bravo"}, headers={**s.live_key, **other_key}
    )
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["agent"]["name"] == "bravo"
    # Within one mode the key is still bound to its body.
    reused = await s.live.post(
        "/api/v1/agents", json={"name": "charlie"}, headers={**s.live_key, **other_key}
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_the_idempotency_lock_is_per_mode(servers: Servers) -> None:
    s = servers
    where = ("owner", "POST", "/api/v1/agents", "k")
    async with s.sandbox_sessions() as holder:
        held = await idempotency_repository.get_or_lock(holder, *where)
        assert held.claim_locked
        # The same key in the same mode waits its turn (409); in the other mode it does not.
        async with s.sandbox_sessions() as same_mode:
            assert not (await idempotency_repository.get_or_lock(same_mode, *where)).claim_locked
            await same_mode.rollback()
        async with s.live_sessions() as other_mode:
            assert (await idempotency_repository.get_or_lock(other_mode, *where)).claim_locked
            await other_mode.rollback()
        await holder.rollback()


async def test_an_agent_keys_pages_of_payment_requests_are_full(servers: Servers) -> None:
    s = servers
    client, owner = s.sandbox, s.test_key
    one, two, three = [
        (await _json(await client.post("/api/v1/agents", json={"name": n}, headers=owner), 201))[
            "agent"
        ]["agent_id"]
        for n in ("one", "two", "three")
    ]

    async def ask(requester: str, payer: str) -> str:
        created = await _json(
            await client.post(
                "/api/v1/payments/request",
                json={"requester_agent_id": requester, "payer_agent_id": payer, "amount": "1.00"},
                headers=owner,
            ),
            201,
        )
        request_id: str = created["request_id"]
        return request_id

    # Three requests naming agent one, then more of its owner's that do not: the newest
    # rows are all ones the agent key may not see.
    mine = [await ask(one, two), await ask(two, one), await ask(one, three)]
    for _ in range(5):
        await ask(two, three)
    agent_key = bearer(await key_maker(s.sandbox_sessions)(OWNER, agent_id=one))
    url = "/api/v1/payments/request"
    seen: list[str] = []
    cursor: dict[str, str] = {}
    while True:
        page = await _json(await client.get(url, params={"limit": 2, **cursor}, headers=agent_key))
        seen += [r["request_id"] for r in page]
        if len(page) < 2:
            break
        assert len(page) == 2
        cursor = {"cursor": page[-1]["request_id"]}
    assert seen == mine[::-1]
    # The first page is full, though the owner's newest five are not the agent's.
    first = await _json(await client.get(url, params={"limit": 2}, headers=agent_key))
    assert [r["request_id"] for r in first] == mine[:0:-1]
    # The owner key still sees all eight.
    everything = await _json(await client.get(url, params={"limit": 200}, headers=owner))
    assert len(everything) == 8


#: The revision that gave webhook endpoints, idempotency and audit records their mode.
REVISION = "ef083315a10b"


async def _audit(session: AsyncSession, owners: list[str]) -> None:
    await audit_service.append(
        session,
        [
            audit_service.record(
                owner_id=owner,
                event="payment_completed",
                subject_type="transaction",
                subject_id=f"tx_{owner}",
                key_id=None,
                request_id=None,
            )
            for owner in owners
        ],
    )
    await session.commit()


async def test_rows_from_before_the_revision_are_sandbox_and_still_verify(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    config = alembic_config(url)
    await asyncio.to_thread(command.downgrade, config, f"{REVISION}-1")
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session:
            await session.execute(
                text(
                    "INSERT INTO webhook_endpoints (id, owner_id, url, events, secret_encrypted)"
                    " VALUES ('whsub_old', 'owner_a', 'http://127.0.0.1:9/',"
                    " '{payment.completed}', 'x')"
                )
            )
            await session.execute(
                text(
                    "INSERT INTO idempotency_records (owner_id, method, path, key, fingerprint,"
                    " status_code, content_type, body, expires_at) VALUES ('owner_a', 'POST',"
                    " '/api/v1/agents', 'k', 'f', 201, 'application/json', '\\x7b7d',"
                    " now() + interval '1 day')"
                )
            )
            await _audit(session, ["owner_a", "owner_b", "owner_a"])
            # Sealed as the revision before sealed: chain position, owner number, hash.
            rows = (await session.execute(text("SELECT * FROM audit_records ORDER BY seq"))).all()
            prev_hash, numbers = audit_service.GENESIS, {"owner_a": 0, "owner_b": 0}
            for position, row in enumerate(rows, start=1):
                digest = audit_service.row_hash(row, position, prev_hash)
                numbers[row.owner_id] += 1
                await session.execute(
                    text(
                        "UPDATE audit_records SET chain_seq = :c, owner_seq = :o,"
                        " prev_hash = :p, hash = :h WHERE seq = :s"
                    ),
                    {
                        "c": position,
                        "o": numbers[row.owner_id],
                        "p": prev_hash,
                        "h": digest,
                        "s": row.seq,
                    },
                )
                prev_hash = digest
            await session.commit()
    finally:
        await engine.dispose()

    await asyncio.to_thread(command.upgrade, config, "head")
    engines = [
        create_engine(url, mode=mode, pool_size=1, max_overflow=0)
        for mode in (Mode.sandbox, Mode.live)
    ]
    sandbox_sessions, live_sessions = (create_sessionmaker(engine) for engine in engines)
    try:
        async with sandbox_sessions() as session:
            modes = {
                table: set(
                    (await session.scalars(text(f"SELECT DISTINCT mode FROM {table}"))).all()
                )
                for table in ("webhook_endpoints", "idempotency_records", "audit_records")
            }
            assert modes == {table: {"sandbox"} for table in modes}
            # The old rows' hashes still hold.
            assert (await audit_service.verify(session)).bad_seq is None
        # New records of both modes: the sandbox ones go on from the old numbers, the live
        # ones start at 1; the one chain verifies (counting each owner's modes apart).
        async with sandbox_sessions() as session:
            await _audit(session, ["owner_a"])
        async with live_sessions() as session:
            await _audit(session, ["owner_a", "owner_a"])
        await _seal_all(live_sessions)
        async with sandbox_sessions() as session:
            numbered = (
                await session.execute(
                    text(
                        "SELECT owner_id, mode, owner_seq FROM audit_records"
                        " WHERE chain_seq > 3 ORDER BY chain_seq"
                    )
                )
            ).all()
            assert [tuple(row) for row in numbered] == [
                ("owner_a", "sandbox", 3),
                ("owner_a", "live", 1),
                ("owner_a", "live", 2),
            ]
            result = await audit_service.verify(session)
            assert (result.bad_seq, result.checked, result.unsealed) == (None, 6, 0)
    finally:
        for engine in engines:
            await engine.dispose()
