"""API keys: issue, authenticate, list, revoke.

A key reads ``sk_test_<key part>_<secret>`` (``sk_live_`` in live mode): 16 hex digits
naming the key (its id is ``key_<key part>``), then 64 hex digits of secret. Hex cannot
contain the ``_`` separator, so every key parses one way. Only SHA-256 of the secret is
stored: the secret has 256 bits of entropy, so a fast hash is enough, and comparison is
constant-time.
"""

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Mode
from app.domain.agent import service as agent_service
from app.domain.apikey import repository
from app.domain.apikey.errors import InsufficientScope, InvalidApiKey, KeyCeilingExceeded
from app.domain.apikey.schemas import (
    AGENT_SCOPES,
    OWNER_DEFAULT_SCOPES,
    ApiKeyCreated,
    ApiKeyRead,
    Principal,
    Scope,
    Tier,
)
from app.domain.audit import service as audit_service
from app.domain.idempotency.service import KeyClaim, claimed
from app.errors import NotFound, ValidationFailed

PREFIXES: Final = {Mode.sandbox: "sk_test_", Mode.live: "sk_live_"}
_KEY_PATTERN: Final = re.compile(r"sk_(test|live)_([0-9a-f]{16})_([0-9a-f]{64})")
# Compared against when the key id is unknown, so that path costs the same.
_NO_SUCH_HASH: Final = hashlib.sha256(b"no such key").hexdigest()


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


#: Longest a process may reuse a key row it read (seconds): a revocation, an expiry or
#: any other change to a key takes effect within this time in every process.
MAX_CACHE_SECONDS: Final = 1.0

#: key id -> (read at, monotonic seconds; the row). Only keys that exist are kept: an
#: unknown key id is asked again every time, so a key created a moment ago always works.
_key_rows: dict[str, tuple[float, Row[Any]]] = {}


async def _key_row(
    session: AsyncSession,
    key_id: str,
    cache_seconds: float,
    claim: tuple[str, KeyClaim] | None = None,
) -> Row[Any] | None:
    """The key's row: from this process's cache if read less than ``cache_seconds`` (at
    most ``MAX_CACHE_SECONDS``) ago, else one query — which, given ``claim`` (the
    presented secret's hash and the request's idempotency claim), also makes the claim."""
    now = time.monotonic()
    if cache_seconds > 0:
        cached = _key_rows.get(key_id)
        if cached is not None and now - cached[0] < min(cache_seconds, MAX_CACHE_SECONDS):
            return cached[1]
    if claim is None:
        row = await repository.get_key(session, key_id)
    else:
        secret_hash, key_claim = claim
        row = await repository.get_key_claiming(session, key_id, secret_hash, key_claim.params())
    if row is None:
        _key_rows.pop(key_id, None)
    elif cache_seconds > 0:
        if len(_key_rows) >= 10_000:
            # Bounded: entries older than the longest lifetime are dead anyway.
            for stale in [k for k, (at, _) in _key_rows.items() if now - at >= MAX_CACHE_SECONDS]:
                del _key_rows[stale]
            if len(_key_rows) >= 10_000:
                _key_rows.clear()
        _key_rows[key_id] = (now, row)
    return row


def forget_key(key_id: str) -> None:
    """Drop ``key_id`` from this process's cache (its revocation here applies at once)."""
    _key_rows.pop(key_id, None)


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A principal, and the outcome of the idempotency claim made with its key's lookup
    (``None``: none was made)."""

    principal: Principal
    claim: Row[Any] | None = None


def _read(row: Row[Any]) -> ApiKeyRead:
    return ApiKeyRead(
        key_id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        agent_id=row.agent_id,
        scopes=sorted(row.scopes),
        tier=Tier(row.tier),
        mode=row.mode,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _as_utc(moment: datetime | None) -> datetime | None:
    # A time without a zone is read as UTC (documented): comparing it with an aware time
    # would fail, and guessing the server's zone would make the expiry depend on where
    # Purser runs.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _check_request(owner_id: str, expires_at: datetime | None) -> None:
    if not owner_id or len(owner_id) > 64:
        raise ValidationFailed("owner_id must be 1 to 64 characters", param="owner_id")
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ValidationFailed("expires_at must be in the future", param="expires_at")


def _default_scopes(agent_id: str | None) -> frozenset[Scope]:
    return AGENT_SCOPES if agent_id else OWNER_DEFAULT_SCOPES


async def _insert(
    session: AsyncSession,
    *,
    owner_id: str,
    mode: Mode,
    name: str,
    agent_id: str | None,
    scopes: frozenset[Scope] | None,
    tier: Tier,
    expires_at: datetime | None,
) -> ApiKeyCreated:
    allowed = AGENT_SCOPES if agent_id else OWNER_DEFAULT_SCOPES | {Scope.sequence}
    if scopes is None:
        chosen = _default_scopes(agent_id)
    else:
        chosen = scopes
        if not chosen <= allowed:
            extra = ", ".join(sorted(chosen - allowed))
            raise ValidationFailed(f"scopes: {extra} cannot be granted to this key", param="scopes")
    key_part = secrets.token_hex(8)
    secret = secrets.token_hex(32)
    row = await repository.insert_key(
        session,
        {
            "id": f"key_{key_part}",
            "owner_id": owner_id,
            "name": name,
            "mode": mode.value,
            "secret_hash": _hash(secret),
            "scopes": sorted(chosen),
            "agent_id": agent_id,
            "tier": tier.value,
            "expires_at": expires_at,
        },
    )
    full_key = f"{PREFIXES[mode]}{key_part}_{secret}"
    return ApiKeyCreated(**_read(row).model_dump(), secret=full_key)


async def create_key(
    session: AsyncSession,
    *,
    owner_id: str,
    mode: Mode,
    name: str = "api key",
    agent_id: str | None = None,
    scopes: list[Scope] | None = None,
    tier: Tier = Tier.standard,
    expires_at: datetime | None = None,
) -> ApiKeyCreated:
    """Issue a key without a calling key: the operator's CLI and the sandbox bootstrap,
    which create an owner's first keys. No ceiling applies (see ``create_key_as``).

    ``scopes=None`` gives the defaults (every owner scope but ``sequence``; an agent key
    ``wallet:read`` and ``payments:write``); ``expires_at`` without a time zone is UTC.
    Returns the key with its ``secret``, the only time the full key exists. Raises
    ``ValidationFailed`` (422) for a bad ``owner_id``, a past ``expires_at`` or scopes this
    kind of key cannot hold.
    """
    expires_at = _as_utc(expires_at)
    _check_request(owner_id, expires_at)
    return await _insert(
        session,
        owner_id=owner_id,
        mode=mode,
        name=name,
        agent_id=agent_id,
        scopes=None if scopes is None else frozenset(scopes),
        tier=tier,
        expires_at=expires_at,
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """A key request resolved against the calling key's ceiling: defaults filled in, and
    ``beyond`` naming each field that asks for more than the caller holds (empty when the
    request fits)."""

    agent_id: str | None
    scopes: frozenset[Scope]
    tier: Tier
    expires_at: datetime | None
    beyond: dict[str, Any]


#: Lowest first.
TIER_ORDER: Final = (Tier.free, Tier.standard, Tier.enterprise)
#: The tier of a new key when none is named (lowered to the calling key's).
DEFAULT_TIER: Final = Tier.standard
# The request's fields, in the order refusals name them.
_FIELDS: Final[tuple[str, ...]] = ("scopes", "agent_id", "tier", "expires_at")
# Longest requested agent id echoed in refusals and audit data: real ids are 40 at most.
_ECHO_LIMIT: Final = 64


def within_ceiling(
    caller: Principal,
    *,
    agent_id: str | None,
    scopes: list[Scope] | None,
    tier: Tier | None,
    expires_at: datetime | None,
) -> Grant:
    """Resolve a request for a new key against ``caller``'s own powers.

    Omitted fields never exceed the ceiling: ``agent_id`` is the caller's agent (if it is
    restricted to one); ``scopes`` the default set intersected with the caller's scopes;
    ``tier`` the caller's if lower than ``standard``, else ``standard``; ``expires_at`` the
    caller's expiry. Named fields beyond it land in ``Grant.beyond`` (``{"scopes": [the
    scopes the caller lacks], "agent_id": another agent than the caller's, "tier": a
    higher tier, "expires_at": a later expiry, ISO 8601}``). ``expires_at`` must be aware.
    """
    beyond: dict[str, Any] = {}
    effective_agent = agent_id
    if caller.agent_id is not None:
        if agent_id is None:
            effective_agent = caller.agent_id
        elif agent_id != caller.agent_id:
            beyond["agent_id"] = agent_id[:_ECHO_LIMIT]
    if scopes is None:
        chosen = frozenset(s for s in _default_scopes(effective_agent) if s in caller.scopes)
    else:
        chosen = frozenset(scopes)
        lacking = sorted(s.value for s in chosen if s not in caller.scopes)
        if lacking:
            beyond["scopes"] = lacking
    ceiling_tier = caller.tier
    if tier is None:
        chosen_tier = min(DEFAULT_TIER, ceiling_tier, key=TIER_ORDER.index)
    else:
        chosen_tier = tier
        if TIER_ORDER.index(tier) > TIER_ORDER.index(ceiling_tier):
            beyond["tier"] = tier.value
    chosen_expiry = expires_at
    if caller.expires_at is not None:
        if expires_at is None:
            chosen_expiry = caller.expires_at
        elif expires_at > caller.expires_at:
            beyond["expires_at"] = expires_at.isoformat()
    # One stable order (that of the request's fields) for the detail and ``param``.
    ordered = {field: beyond[field] for field in _FIELDS if field in beyond}
    return Grant(effective_agent, chosen, chosen_tier, chosen_expiry, ordered)


def _describe(caller: Principal, beyond: dict[str, Any]) -> str:
    parts = []
    if "scopes" in beyond:
        parts.append(f"scopes {', '.join(beyond['scopes'])} (not held by this key)")
    if "agent_id" in beyond:
        parts.append(f"agent_id {beyond['agent_id']} (this key is restricted to {caller.agent_id})")
    if "tier" in beyond:
        parts.append(f"tier {beyond['tier']} (this key's tier is {caller.tier.value})")
    if "expires_at" in beyond:
        assert caller.expires_at is not None
        parts.append(
            f"expires_at {beyond['expires_at']} "
            f"(this key expires at {caller.expires_at.isoformat()})"
        )
    return "A key can only create keys within its own powers; beyond them: " + "; ".join(parts)


def _key_record(
    caller: Principal,
    request_id: str | None,
    *,
    event: str,
    subject_id: str,
    agent_id: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """An audit record of a key event done by ``caller``'s key."""
    return audit_service.record(
        owner_id=caller.owner_id,
        event=event,
        subject_type="api_key",
        subject_id=subject_id,
        key_id=caller.key_id,
        request_id=request_id,
        agent_id=agent_id,
        data=data,
    )


@dataclass(frozen=True, slots=True)
class KeyIssue:
    """What ``create_key_as`` did: exactly one of ``created`` and ``refusal`` is set."""

    created: ApiKeyCreated | None
    refusal: KeyCeilingExceeded | None


async def create_key_as(
    session: AsyncSession,
    caller: Principal,
    *,
    mode: Mode,
    name: str = "api key",
    agent_id: str | None = None,
    scopes: list[Scope] | None = None,
    tier: Tier | None = None,
    expires_at: datetime | None = None,
    request_id: str | None = None,
) -> KeyIssue:
    """Issue a key for ``caller``'s owner, within ``caller``'s own powers (``within_ceiling``
    gives the defaults and the rules).

    A request beyond the ceiling is not raised but returned as ``KeyIssue.refusal``
    (``KeyCeilingExceeded``, 403) with an ``api_key_refused`` audit record written in
    ``session``, so that committing the session keeps the record. A created key gets an
    ``api_key_created`` record. ``expires_at`` without a time zone is UTC. Raises
    ``ValidationFailed`` (422) for a past ``expires_at`` or scopes the kind of key cannot
    hold, ``AgentNotFound`` (404) for an agent the caller does not see.
    """
    expires_at = _as_utc(expires_at)
    _check_request(caller.owner_id, expires_at)
    grant = within_ceiling(
        caller, agent_id=agent_id, scopes=scopes, tier=tier, expires_at=expires_at
    )
    if grant.beyond:
        refusal = KeyCeilingExceeded(_describe(caller, grant.beyond), beyond=grant.beyond)
        requested = {
            "name": name,
            "agent_id": None if agent_id is None else agent_id[:_ECHO_LIMIT],
            "scopes": None if scopes is None else sorted({s.value for s in scopes}),
            "tier": None if tier is None else tier.value,
            "expires_at": None if expires_at is None else expires_at.isoformat(),
        }
        # The subject is the key that asked: no key was created.
        record = _key_record(
            caller,
            request_id,
            event="api_key_refused",
            subject_id=caller.key_id,
            agent_id=caller.agent_id,
            data={
                "code": refusal.code,
                "reason": refusal.detail,
                "beyond": grant.beyond,
                "requested": requested,
            },
        )
        await audit_service.append(session, [record])
        return KeyIssue(None, refusal)
    if grant.agent_id is not None:
        await agent_service.get(session, caller, grant.agent_id)
    created = await _insert(
        session,
        owner_id=caller.owner_id,
        mode=mode,
        name=name,
        agent_id=grant.agent_id,
        scopes=grant.scopes,
        tier=grant.tier,
        expires_at=grant.expires_at,
    )
    record = _key_record(
        caller,
        request_id,
        event="api_key_created",
        subject_id=created.key_id,
        agent_id=created.agent_id,
        data={
            "name": created.name,
            "scopes": created.scopes,
            "tier": created.tier.value,
            "expires_at": None if created.expires_at is None else created.expires_at.isoformat(),
        },
    )
    await audit_service.append(session, [record])
    return KeyIssue(created, None)


async def authenticate(
    session: AsyncSession, presented: str | None, mode: Mode, *, cache_seconds: float = 0.0
) -> Principal:
    """Resolve a presented key to its principal, or raise ``InvalidApiKey``.

    ``cache_seconds`` > 0 lets this process reuse the key's row for that long (at most
    ``MAX_CACHE_SECONDS``): a request then costs no query. The secret's hash, revocation,
    expiry and mode are checked on every request, cached row or not."""
    found = await authenticate_claiming(session, presented, mode, cache_seconds=cache_seconds)
    return found.principal


async def authenticate_claiming(
    session: AsyncSession,
    presented: str | None,
    mode: Mode,
    *,
    cache_seconds: float = 0.0,
    claim: KeyClaim | None = None,
) -> Authenticated:
    """``authenticate``, and, given ``claim`` (the request's idempotency key), its claim
    for the key's owner made by the statement that reads the key (none when the row comes
    from the cache, or the key is refused); ``Authenticated.claim`` carries the outcome for
    ``idempotency`` ``begin``, which makes the claim itself when there is none."""
    if not presented:
        raise InvalidApiKey(missing=True)
    match = _KEY_PATTERN.fullmatch(presented)
    if match is None:
        raise InvalidApiKey()
    key_mode, key_part, secret = match.groups()
    secret_hash = _hash(secret)
    row = await _key_row(
        session,
        f"key_{key_part}",
        cache_seconds,
        None if claim is None else (secret_hash, claim),
    )
    matches = hmac.compare_digest(secret_hash, row.secret_hash if row else _NO_SUCH_HASH)
    if (
        row is None
        or not matches
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= datetime.now(UTC))
        or row.mode != mode.value
        or PREFIXES[mode] != f"sk_{key_mode}_"
    ):
        raise InvalidApiKey()
    principal = Principal(
        key_id=row.id,
        owner_id=row.owner_id,
        mode=row.mode,
        scopes=frozenset(row.scopes),
        agent_id=row.agent_id,
        tier=Tier(row.tier),
        expires_at=row.expires_at,
        clock_offset_seconds=int(getattr(row, "clock_offset_seconds", 0) or 0),
    )
    return Authenticated(principal, row if claim is not None and claimed(row) else None)


def require_scope(principal: Principal, scope: Scope) -> None:
    if scope not in principal.scopes:
        raise InsufficientScope(f"this API key lacks the {scope.value} scope")


async def list_keys(
    session: AsyncSession, owner_id: str | None, *, mode: str | None = None
) -> list[ApiKeyRead]:
    """The owner's keys; of ``mode`` only if given (a key lists its own mode's keys: the
    other mode's are none of its business). ``mode=None`` and ``owner_id=None`` (every
    owner's keys) are the operator's CLI."""
    return [_read(row) for row in await repository.list_keys(session, owner_id, mode)]


async def revoke_key(session: AsyncSession, key_id: str, *, owner_id: str | None) -> ApiKeyRead:
    """Revoke a key (idempotent). ``owner_id=None`` is the operator's CLI.

    Raises ``ApiKeyNotFound`` (404) for an unknown key or another owner's."""
    row = await repository.revoke_key(session, key_id, owner_id)
    forget_key(key_id)
    if row is None:
        raise ApiKeyNotFound(f"API key {key_id} not found")
    return _read(row)


async def revoke_key_as(
    session: AsyncSession, caller: Principal, key_id: str, *, request_id: str | None = None
) -> ApiKeyRead:
    """Revoke one of ``caller``'s owner's keys of the caller's mode (idempotent); the
    revocation itself, not a repeat, gets an ``api_key_revoked`` audit record. Raises
    ``ApiKeyNotFound`` (404), also for a key of the other mode: a live key cannot switch
    off the sandbox, nor the reverse."""
    row = await repository.revoke_key(session, key_id, caller.owner_id, caller.mode)
    forget_key(key_id)
    if row is None:
        raise ApiKeyNotFound(f"API key {key_id} not found")
    if row.revoked_now:
        record = _key_record(
            caller,
            request_id,
            event="api_key_revoked",
            subject_id=row.id,
            agent_id=row.agent_id,
            data={"name": row.name},
        )
        await audit_service.append(session, [record])
    return _read(row)


async def any_key_exists(session: AsyncSession) -> bool:
    return await repository.any_key_exists(session)
