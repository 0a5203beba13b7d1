"""Idempotency keys, stored in PostgreSQL per owner, mode, method and path, committed in
the same transaction as the effect they protect. The mode is the session's (its
connection's): an owner's sandbox and live requests never share a key's record.

- same key, same body: the stored response is replayed byte for byte;
- same key, another body: ``IdempotencyKeyReused`` (422);
- same key while the first request still runs: ``IdempotencyKeyInUse`` (409), decided
  without waiting by a transaction-scoped advisory lock on the key;
- same key from a caller that could not have made the first request (an agent key
  resending an owner key's or another agent's request, or a key without a scope the first
  one used): ``IdempotencyKeyForbidden`` (403), checked before anything else about the
  record, so such a caller learns nothing of the stored response;
- responses with status 5xx are never stored (their transaction rolled back anyway).
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.idempotency import repository
from app.domain.idempotency.errors import (
    IdempotencyKeyForbidden,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from app.domain.records import service as records_service

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Authority:
    """Who made a request, as far as replaying its response goes: the key, the agent the
    key is restricted to (``None``: an owner-wide key) and the scopes that mattered (those
    of the route's rule the key held)."""

    key_id: str | None
    agent_id: str | None
    scopes: frozenset[str]

    def covers(self, original: "Authority") -> bool:
        """Whether a caller with this authority could have made ``original``'s request: an
        owner-wide key acts for every agent of its owner, an agent key for its own agent
        only (never for an owner-wide request, which may name any agent); and it holds
        every scope the original used."""
        return (self.agent_id is None or self.agent_id == original.agent_id) and (
            original.scopes <= self.scopes
        )


def fingerprint(body: bytes) -> str:
    """SHA-256 of the request body, as canonical JSON when it is JSON (key order and
    spacing do not matter) and as raw bytes otherwise."""
    try:
        canonical = json.dumps(
            json.loads(body or b"null"), sort_keys=True, separators=(",", ":")
        ).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def check_key(key: str) -> None:
    """Raises ``InvalidIdempotencyKey`` (400) unless ``key`` is 1 to 255 printable ASCII."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise InvalidIdempotencyKey(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            param="Idempotency-Key",
        )


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """What a request claims: its method, path and ``Idempotency-Key`` (the owner is its
    API key's). ``begin`` checks the key's grammar."""

    method: str
    path: str
    key: str

    def params(self) -> dict[str, str]:
        """The parameters of ``repository.claim_sql``."""
        return {"method": self.method, "path": self.path, "key": self.key}


def claimed(row: Row[Any] | None) -> bool:
    """Whether ``row`` carries a claim's outcome (``repository.claim_sql`` ran and found
    something or tried the lock)."""
    return row is not None and (row.claim_locked is not None or row.claim_fingerprint is not None)


async def begin(
    session: AsyncSession,
    *,
    owner_id: str,
    method: str,
    path: str,
    key: str,
    body: bytes,
    authority: Authority,
    claim: Row[Any] | None = None,
) -> StoredResponse | None:
    """Claim the key for this request; return the stored response if it already ran.

    ``claim`` is the outcome of this very claim when the statement that read the caller's
    API key made it (``apikey`` ``authenticate``): then no round trip of its own.
    Raises ``InvalidIdempotencyKey`` (400), ``IdempotencyKeyInUse`` (409),
    ``IdempotencyKeyForbidden`` (403: ``authority`` does not cover the stored request's)
    and ``IdempotencyKeyReused`` (422: another body), in that order."""
    check_key(key)
    row = claim
    if row is None or not claimed(row):
        row = await repository.get_or_lock(session, owner_id, method, path, key)
    if row.claim_fingerprint is None:
        if not row.claim_locked:
            raise IdempotencyKeyInUse(
                "A request with this Idempotency-Key is still being processed; retry shortly",
                param="Idempotency-Key",
            )
        return None
    # Records written before authorities were stored have no key: they are treated as an
    # owner-wide key's, which only owner keys may replay.
    original = Authority(row.claim_key_id, row.claim_agent_id, frozenset(row.claim_scopes))
    if not authority.covers(original):
        raise IdempotencyKeyForbidden(
            "This Idempotency-Key was used by a request this API key could not have made; "
            "send another key",
            param="Idempotency-Key",
        )
    if row.claim_fingerprint != fingerprint(body):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body",
            param="Idempotency-Key",
        )
    return StoredResponse(row.claim_status_code, row.claim_content_type, bytes(row.claim_body))


async def complete(
    session: AsyncSession,
    *,
    owner_id: str,
    method: str,
    path: str,
    key: str,
    body: bytes,
    authority: Authority,
    response: StoredResponse,
    now: datetime,
    retention: timedelta,
) -> None:
    """Store the response, and who made the request, in the request's transaction (never
    a 5xx)."""
    if response.status_code >= 500:
        return
    # Written at the commit, in the one statement of the use case's audit rows and events.
    await records_service.defer_idempotency(
        session,
        {
            "owner_id": owner_id,
            "method": method,
            "path": path,
            "key": key,
            "fingerprint": fingerprint(body),
            "key_id": authority.key_id,
            "agent_id": authority.agent_id,
            "scopes": sorted(authority.scopes),
            "status_code": response.status_code,
            "content_type": response.content_type,
            "body": response.body,
            "expires_at": now + retention,
        },
    )


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    return await repository.delete_expired(session, now)
