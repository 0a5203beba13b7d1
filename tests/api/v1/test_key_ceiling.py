"""The key privilege ceiling: a key creates keys only within its own powers (scopes, agent,
tier, expiry); refusals are 403 ``key_ceiling_exceeded`` and stay in the audit trail."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Mode
from app.db import run_in_transaction
from app.domain.apikey import service as apikey_service
from app.domain.apikey.schemas import ApiKeyCreated, Principal, Scope, Tier
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent

KEYS = "/api/v1/keys"


def assert_ceiling_refusal(response: httpx.Response, beyond: dict[str, Any]) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == "key_ceiling_exceeded"
    assert body["status"] == 403
    assert body["type"].endswith("/key_ceiling_exceeded")
    assert body["beyond"] == beyond
    assert body["param"] == next(iter(beyond))
    assert body["request_id"] == response.headers["Request-Id"]
    assert "secret" not in body
    return body


async def audit_rows(
    sessionmaker: async_sessionmaker[AsyncSession], owner_id: str
) -> list[dict[str, Any]]:
    """The owner's audit records as committed (read in a session of their own)."""
    async with sessionmaker() as session:
        rows = await session.execute(
            text(
                "SELECT event, subject_type, subject_id, key_id, request_id, agent_id, data "
                "FROM audit_records WHERE owner_id = :owner ORDER BY seq"
            ),
            {"owner": owner_id},
        )
        return [dict(row._mapping) for row in rows]


async def key_ids(sessionmaker: async_sessionmaker[AsyncSession], owner_id: str) -> set[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT id FROM api_keys WHERE owner_id = :owner"), {"owner": owner_id}
        )
        return {row.id for row in rows}


async def agent_key_with_keys_write(
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> tuple[ApiKeyCreated, str, str]:
    """A key restricted to one agent that also holds ``keys:write`` (keys created before
    agent keys were limited to their two scopes can), its agent, and another agent."""
    owner = await make_key()
    mine = (await create_agent(client, bearer(owner)))["agent"]["agent_id"]
    other = (await create_agent(client, bearer(owner)))["agent"]["agent_id"]
    key = await make_key(owner=owner.owner_id, agent_id=mine)
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE api_keys SET scopes = array_append(scopes, 'keys:write') WHERE id = :id"),
            {"id": key.key_id},
        )
        await session.commit()
    return key, mine, other


async def test_free_keys_write_key_cannot_mint_an_enterprise_key_with_every_scope(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    caller = await make_key(scopes=[Scope.keys_write], tier=Tier.free)
    every_scope = sorted(scope.value for scope in Scope)
    response = await client.post(
        KEYS, json={"scopes": every_scope, "tier": "enterprise"}, headers=bearer(caller)
    )
    lacking = [scope for scope in every_scope if scope != "keys:write"]
    body = assert_ceiling_refusal(response, {"scopes": lacking, "tier": "enterprise"})
    assert ", ".join(lacking) in body["detail"]
    assert "tier enterprise" in body["detail"]
    assert await key_ids(sessionmaker, caller.owner_id) == {caller.key_id}
    # The refusal is committed although the response is an error.
    [record] = await audit_rows(sessionmaker, caller.owner_id)
    assert record["event"] == "api_key_refused"
    assert record["subject_type"] == "api_key"
    assert record["subject_id"] == caller.key_id
    assert record["key_id"] == caller.key_id
    assert record["request_id"] == response.headers["Request-Id"]
    assert record["data"]["code"] == "key_ceiling_exceeded"
    assert record["data"]["beyond"] == {"scopes": lacking, "tier": "enterprise"}
    assert record["data"]["requested"]["scopes"] == every_scope
    assert record["data"]["reason"] == body["detail"]


async def test_sequence_scope_needs_a_key_holding_it(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    owner_key = await make_key()
    assert Scope.sequence not in owner_key.scopes
    refused = await client.post(KEYS, json={"scopes": ["sequence"]}, headers=bearer(owner_key))
    body = assert_ceiling_refusal(refused, {"scopes": ["sequence"]})
    assert "scopes sequence" in body["detail"]
    operator = await make_key(owner=owner_key.owner_id, scopes=list(Scope))
    created = await client.post(KEYS, json={"scopes": ["sequence"]}, headers=bearer(operator))
    assert created.status_code == 201, created.text
    assert created.json()["scopes"] == ["sequence"]


async def test_narrower_scopes_are_granted_and_enforced(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    caller = await make_key(scopes=[Scope.keys_write, Scope.agents_read, Scope.agents_write])
    created = await client.post(KEYS, json={"scopes": ["agents:read"]}, headers=bearer(caller))
    assert created.status_code == 201, created.text
    assert created.json()["scopes"] == ["agents:read"]
    narrow = {"X-API-Key": created.json()["secret"]}
    assert (await client.get("/api/v1/agents", headers=narrow)).status_code == 200
    assert (await client.post(KEYS, json={}, headers=narrow)).status_code == 403


async def test_default_scopes_are_those_of_the_defaults_the_caller_holds(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    caller = await make_key(scopes=[Scope.keys_write, Scope.agents_read, Scope.sequence])
    created = await client.post(KEYS, json={"name": "ci"}, headers=bearer(caller))
    assert created.status_code == 201, created.text
    # sequence is never a default, even for a key that holds it.
    assert created.json()["scopes"] == ["agents:read", "keys:write"]


async def issue_as(
    sessionmaker: async_sessionmaker[AsyncSession], caller: ApiKeyCreated, **fields: Any
) -> apikey_service.KeyIssue:
    """``create_key_as`` for ``caller``, committed (refusals keep their audit record)."""

    async def work(session: AsyncSession) -> apikey_service.KeyIssue:
        principal = await apikey_service.authenticate(session, caller.secret, Mode.sandbox)
        return await apikey_service.create_key_as(session, principal, mode=Mode.sandbox, **fields)

    return await run_in_transaction(sessionmaker, work)


async def test_agent_key_creates_keys_for_its_own_agent_only(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    caller, mine, other = await agent_key_with_keys_write(client, make_key, sessionmaker)
    # Over HTTP an agent key never reaches POST /keys, whatever its scopes (owner keys
    # only: test_key_kinds); the ceiling still binds every caller of the service.
    over_http = await client.post(KEYS, json={"agent_id": other}, headers=bearer(caller))
    assert over_http.status_code == 403, over_http.text
    assert over_http.json()["code"] == "agent_key_not_allowed"
    refused = await issue_as(sessionmaker, caller, agent_id=other)
    assert refused.created is None
    assert refused.refusal is not None
    assert refused.refusal.code == "key_ceiling_exceeded"
    assert refused.refusal.beyond == {"agent_id": other}
    assert other in refused.refusal.detail
    assert mine in refused.refusal.detail
    [record] = [
        row
        for row in await audit_rows(sessionmaker, caller.owner_id)
        if row["event"] == "api_key_refused"
    ]
    assert record["agent_id"] == mine
    assert record["data"]["beyond"] == {"agent_id": other}
    # Omitted, the agent is the caller's: never an owner-wide key.
    inherited = (await issue_as(sessionmaker, caller)).created
    assert inherited is not None
    assert inherited.agent_id == mine
    assert inherited.scopes == ["payments:write", "wallet:read"]
    same = (await issue_as(sessionmaker, caller, agent_id=mine, scopes=[Scope.wallet_read])).created
    assert same is not None
    assert same.agent_id == mine
    assert same.scopes == ["wallet:read"]


async def test_owner_key_may_restrict_a_new_key_to_any_of_its_agents(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    owner = await make_key()
    agent = (await create_agent(client, bearer(owner)))["agent"]["agent_id"]
    created = await client.post(KEYS, json={"agent_id": agent}, headers=bearer(owner))
    assert created.status_code == 201, created.text
    assert created.json()["agent_id"] == agent


async def test_tier_cannot_rise_and_defaults_below_the_callers(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    free = await make_key(tier=Tier.free)
    for higher in ("standard", "enterprise"):
        refused = await client.post(KEYS, json={"tier": higher}, headers=bearer(free))
        body = assert_ceiling_refusal(refused, {"tier": higher})
        assert f"tier {higher}" in body["detail"]
        assert "this key's tier is free" in body["detail"]
    omitted = await client.post(KEYS, json={}, headers=bearer(free))
    assert omitted.status_code == 201, omitted.text
    assert omitted.json()["tier"] == "free"
    same = await client.post(KEYS, json={"tier": "free"}, headers=bearer(free))
    assert same.json()["tier"] == "free"
    enterprise = await make_key(tier=Tier.enterprise)
    default = await client.post(KEYS, json={}, headers=bearer(enterprise))
    assert default.json()["tier"] == "standard"
    for lower_or_same in ("free", "standard", "enterprise"):
        created = await client.post(KEYS, json={"tier": lower_or_same}, headers=bearer(enterprise))
        assert created.status_code == 201, created.text
        assert created.json()["tier"] == lower_or_same


async def test_expiry_no_later_than_the_callers(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    caller_expiry = datetime.now(UTC) + timedelta(days=1)
    caller = await make_key(expires_at=caller_expiry)
    later = (caller_expiry + timedelta(days=1)).isoformat()
    refused = await client.post(KEYS, json={"expires_at": later}, headers=bearer(caller))
    body = assert_ceiling_refusal(refused, {"expires_at": later})
    assert "expires_at" in body["detail"]
    # Omitted (or null), the expiry is the caller's.
    for body_sent in ({}, {"expires_at": None}):
        inherited = await client.post(KEYS, json=body_sent, headers=bearer(caller))
        assert inherited.status_code == 201, inherited.text
        assert datetime.fromisoformat(inherited.json()["expires_at"]) == caller_expiry
    sooner = caller_expiry - timedelta(hours=1)
    created = await client.post(
        KEYS, json={"expires_at": sooner.isoformat()}, headers=bearer(caller)
    )
    assert created.status_code == 201, created.text
    assert datetime.fromisoformat(created.json()["expires_at"]) == sooner


async def test_key_that_never_expires_may_create_any_expiry(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    caller = await make_key()
    never = await client.post(KEYS, json={}, headers=bearer(caller))
    assert never.json()["expires_at"] is None
    far = datetime(2999, 1, 1, tzinfo=UTC)
    created = await client.post(KEYS, json={"expires_at": far.isoformat()}, headers=bearer(caller))
    assert datetime.fromisoformat(created.json()["expires_at"]) == far


async def test_naive_expires_at_is_read_as_utc(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    caller = await make_key()
    created = await client.post(
        KEYS, json={"expires_at": "2099-01-02T03:04:05"}, headers=bearer(caller)
    )
    assert created.status_code == 201, created.text
    assert datetime.fromisoformat(created.json()["expires_at"]) == datetime(
        2099, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    past = await client.post(
        KEYS, json={"expires_at": "2000-01-01T00:00:00"}, headers=bearer(caller)
    )
    assert past.status_code == 422, past.text
    assert past.json()["param"] == "expires_at"
    # Against a caller's expiry too: compared as UTC, never a 500.
    expiring = await make_key(expires_at=datetime.now(UTC) + timedelta(days=1))
    naive_later = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None).isoformat()
    refused = await client.post(KEYS, json={"expires_at": naive_later}, headers=bearer(expiring))
    assert_ceiling_refusal(refused, {"expires_at": naive_later + "+00:00"})


async def test_refusal_names_every_field_beyond_in_request_order(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    caller, _, other = await agent_key_with_keys_write(client, make_key, sessionmaker)
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE api_keys SET tier = 'free', expires_at = now() + interval '1 day' "
                "WHERE id = :id"
            ),
            {"id": caller.key_id},
        )
        await session.commit()
    later = datetime.now(UTC) + timedelta(days=30)
    issue = await issue_as(
        sessionmaker,
        caller,
        expires_at=later,
        tier=Tier.enterprise,
        agent_id=other,
        scopes=[Scope.audit_read, Scope.wallet_read],
    )
    assert issue.refusal is not None
    assert issue.refusal.beyond == {
        "scopes": ["audit:read"],
        "agent_id": other,
        "tier": "enterprise",
        "expires_at": later.isoformat(),
    }
    detail = issue.refusal.detail
    positions = [detail.index(part) for part in ("scopes", "agent_id", "tier", "expires_at")]
    assert positions == sorted(positions)
    assert "wallet:read" not in detail


async def test_creation_and_revocation_are_audited(
    client: httpx.AsyncClient, make_key: MakeKey, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    caller = await make_key()
    created = await client.post(
        KEYS, json={"name": "ci", "scopes": ["agents:read"]}, headers=bearer(caller)
    )
    new_id = created.json()["key_id"]
    first = await client.delete(f"{KEYS}/{new_id}", headers=bearer(caller))
    again = await client.delete(f"{KEYS}/{new_id}", headers=bearer(caller))
    assert first.status_code == again.status_code == 200
    rows = await audit_rows(sessionmaker, caller.owner_id)
    assert [(row["event"], row["subject_id"]) for row in rows] == [
        ("api_key_created", new_id),
        ("api_key_revoked", new_id),
    ]
    made, revoked = rows
    assert made["key_id"] == revoked["key_id"] == caller.key_id
    assert made["request_id"] == created.headers["Request-Id"]
    assert revoked["request_id"] == first.headers["Request-Id"]
    assert made["data"] == {
        "name": "ci",
        "scopes": ["agents:read"],
        "tier": "standard",
        "expires_at": None,
    }
    # The owner reads them through the API as well.
    listed = (await client.get("/api/v1/audit", headers=bearer(caller))).json()["data"]
    assert [record["event"] for record in listed] == ["api_key_revoked", "api_key_created"]


async def test_keys_without_a_caller_have_no_ceiling(make_key: MakeKey) -> None:
    # The CLI and the sandbox bootstrap create an owner's first keys.
    key = await make_key(scopes=list(Scope), tier=Tier.enterprise)
    assert set(key.scopes) == {scope.value for scope in Scope}
    assert key.tier is Tier.enterprise
    # A time without a zone is what this checks.
    naive = await make_key(expires_at=datetime(2099, 1, 1))  # noqa: DTZ001
    assert naive.expires_at == datetime(2099, 1, 1, tzinfo=UTC)


def test_within_ceiling_fills_defaults_below_the_caller() -> None:
    expiry = datetime(2099, 1, 1, tzinfo=UTC)
    caller = Principal(
        key_id="key_x",
        owner_id="owner_x",
        mode="test",
        scopes=frozenset({Scope.keys_write.value, Scope.wallet_read.value}),
        agent_id="agent_a",
        tier=Tier.free,
        expires_at=expiry,
    )
    grant = apikey_service.within_ceiling(
        caller, agent_id=None, scopes=None, tier=None, expires_at=None
    )
    assert grant.beyond == {}
    assert (grant.agent_id, grant.scopes, grant.tier, grant.expires_at) == (
        "agent_a",
        frozenset({Scope.wallet_read}),
        Tier.free,
        expiry,
    )
    refused = apikey_service.within_ceiling(
        caller,
        agent_id="agent_b",
        scopes=[Scope.payments_write],
        tier=Tier.standard,
        expires_at=expiry + timedelta(seconds=1),
    )
    assert list(refused.beyond) == ["scopes", "agent_id", "tier", "expires_at"]
