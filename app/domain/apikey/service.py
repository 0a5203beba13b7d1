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
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Mode
from app.domain.apikey import repository
from app.domain.apikey.errors import InsufficientScope, InvalidApiKey
from app.domain.apikey.schemas import (
    AGENT_SCOPES,
    OWNER_DEFAULT_SCOPES,
    ApiKeyCreated,
    ApiKeyRead,
    Principal,
    Scope,
    Tier,
)
from app.errors import NotFound, ValidationFailed

PREFIXES: Final = {Mode.sandbox: "sk_test_", Mode.live: "sk_live_"}
_KEY_PATTERN: Final = re.compile(r"sk_(test|live)_([0-9a-f]{16})_([0-9a-f]{64})")
# Compared against when the key id is unknown, so that path costs the same.
_NO_SUCH_HASH: Final = hashlib.sha256(b"no such key").hexdigest()


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


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
    """Issue a key; the returned ``secret`` is the only time the full key exists."""
    if not owner_id or len(owner_id) > 64:
        raise ValidationFailed("owner_id must be 1 to 64 characters", param="owner_id")
    allowed = AGENT_SCOPES if agent_id else OWNER_DEFAULT_SCOPES | {Scope.sequence}
    if scopes is None:
        chosen = AGENT_SCOPES if agent_id else OWNER_DEFAULT_SCOPES
    else:
        chosen = frozenset(scopes)
        if not chosen <= allowed:
            extra = ", ".join(sorted(chosen - allowed))
            raise ValidationFailed(f"scopes: {extra} cannot be granted to this key", param="scopes")
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ValidationFailed("expires_at must be in the future", param="expires_at")
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


async def authenticate(session: AsyncSession, presented: str | None, mode: Mode) -> Principal:
    """Resolve a presented key to its principal, or raise ``InvalidApiKey``."""
    match = _KEY_PATTERN.fullmatch(presented or "")
    if match is None:
        raise InvalidApiKey()
    key_mode, key_part, secret = match.groups()
    row = await repository.get_key(session, f"key_{key_part}")
    matches = hmac.compare_digest(_hash(secret), row.secret_hash if row else _NO_SUCH_HASH)
    if (
        row is None
        or not matches
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= datetime.now(UTC))
        or row.mode != mode.value
        or PREFIXES[mode] != f"sk_{key_mode}_"
    ):
        raise InvalidApiKey()
    return Principal(
        key_id=row.id,
        owner_id=row.owner_id,
        mode=row.mode,
        scopes=frozenset(row.scopes),
        agent_id=row.agent_id,
        tier=Tier(row.tier),
        expires_at=row.expires_at,
    )


def require_scope(principal: Principal, scope: Scope) -> None:
    if scope not in principal.scopes:
        raise InsufficientScope(f"this API key lacks the {scope.value} scope")


async def list_keys(session: AsyncSession, owner_id: str) -> list[ApiKeyRead]:
    return [_read(row) for row in await repository.list_keys(session, owner_id)]


async def revoke_key(session: AsyncSession, key_id: str, *, owner_id: str | None) -> ApiKeyRead:
    """Revoke a key (idempotent). ``owner_id=None`` is the operator's CLI."""
    row = await repository.revoke_key(session, key_id, owner_id)
    if row is None:
        raise ApiKeyNotFound(f"API key {key_id} not found")
    return _read(row)


async def any_key_exists(session: AsyncSession) -> bool:
    return await repository.any_key_exists(session)
