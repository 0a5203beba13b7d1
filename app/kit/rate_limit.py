"""Request budgets on the ``limits`` library: in process memory by default, in Redis when
configured so that several API processes share one budget.

Two kinds of budget live here:

- per-key request budgets by tier (``RateLimiter.hit``), counted after authentication;
- failed-authentication budgets (``RateLimiter.refusal``, ``failed``, ``succeeded``),
  counted per client address and per claimed key id, checked *before* the database is
  asked about a key. The rules, and why a correct secret keeps working while its key id
  is being attacked, are in ``RateLimiter.refusal``.
"""

import asyncio
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from functools import cache
from typing import Final

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

logger = logging.getLogger("purser.rate_limit")

#: Requests per minute and per day, by tier (the API reference's table).
TIER_LIMITS: Final[dict[str, tuple[str, ...]]] = {
    "free": ("60/minute", "1000/day"),
    "standard": ("300/minute", "10000/day"),
    "enterprise": ("1000/minute",),
}

#: How long a key id counts as *known* after it last authenticated (see ``refusal``).
KNOWN_KEY_SECONDS: Final = 15 * 60
#: A process marks a known key id in the store at most this often, so a busy key costs
#: one store write a minute rather than one per request.
_MARK_EVERY_SECONDS: Final = 60.0
#: Most key ids a process remembers having marked (the memo is only an optimisation).
_MARKED_MEMO_SIZE: Final = 10_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    """Epoch seconds when the minute window resets."""

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


@dataclass(frozen=True, slots=True)
class FailureBudget:
    """Failed authentications allowed per minute (a fixed window opened by the first
    failure): per client address, and per claimed key id."""

    per_address: RateLimitItem
    per_key_id: RateLimitItem


@cache
def failure_budget(per_address: int, per_key_id: int) -> FailureBudget:
    """The budget of ``PURSER_AUTH_FAILURES_PER_ADDRESS`` / ``..._PER_KEY_ID`` failures a
    minute (built once per pair of values)."""
    return FailureBudget(RateLimitItemPerMinute(per_address), RateLimitItemPerMinute(per_key_id))


def client_bucket(host: str | None) -> str:
    """The address a failure budget is kept for: an IPv4 address as it is; an IPv6 address
    by its /64, since one client usually holds a whole /64 (RFC 4291 §2.5.1 interface ids)
    and could otherwise draw 2^64 budgets; an IPv4-mapped IPv6 address as its IPv4 address;
    anything else (a unix socket, no address) as ``unknown``, one shared budget."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        uri = f"async+{redis_url}" if redis_url else "async+memory://"
        storage = storage_from_string(uri)
        assert isinstance(storage, Storage)
        self._storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        self._items: dict[str, list[RateLimitItem]] = {
            tier: [parse(text) for text in texts] for tier, texts in TIER_LIMITS.items()
        }
        self._known = RateLimitItemPerMinute(1, KNOWN_KEY_SECONDS // 60)
        # key id -> time.monotonic() of this process's last mark of it.
        self._marked: dict[str, float] = {}

    async def hit(self, key_id: str, tier: str) -> Decision:
        """Count one request of ``key_id``. If the store is unreachable the request is let
        through (and logged): an outage of the limiter must not stop payments."""
        items = self._items[tier]
        minute = items[0]
        try:
            for item in items:
                if not await self._limiter.hit(item, key_id):
                    reset, _ = await self._limiter.get_window_stats(item, key_id)
                    return Decision(False, item.amount, 0, int(reset))
            reset, remaining = await self._limiter.get_window_stats(minute, key_id)
        except Exception:
            logger.exception("rate-limit store unavailable; request allowed")
            return Decision(True, minute.amount, minute.amount, int(time.time()) + 60)
        return Decision(True, minute.amount, max(int(remaining), 0), int(reset))

    # --- Failed authentication ---------------------------------------------------------

    @staticmethod
    def _address_key(budget: FailureBudget, address: str) -> str:
        return budget.per_address.key_for("auth-failures", "address", address)

    @staticmethod
    def _key_id_key(budget: FailureBudget, key_id: str) -> str:
        return budget.per_key_id.key_for("auth-failures", "key", key_id)

    def _known_key(self, key_id: str) -> str:
        return self._known.key_for("auth-known", key_id)

    async def refusal(self, address: str, key_id: str | None, budget: FailureBudget) -> int | None:
        """Whether an attempt to authenticate must be refused before the database is asked
        about its key: the seconds to wait (``Retry-After``), or ``None`` to go on.

        ``address`` is a ``client_bucket``; ``key_id`` the key id the presented key claims
        (``None`` when its key id part is malformed). The rules:

        - *Address spent* (``budget.per_address`` failures this minute): refused, unless
          ``key_id`` is a known key (one that authenticated within ``KNOWN_KEY_SECONDS``).
          The failures are that address's own, but an address can be shared (a NAT, a
          proxy): a working key of a neighbour keeps working while a broken client next to
          it loops on a revoked key; unknown key ids never reach the database.
        - *Key id spent* (``budget.per_key_id`` failures this minute, from anywhere):
          refused only from an address that has failures of its own this minute. Key ids
          are not secret, so anyone can spend a key id's budget; refusing that key id
          everywhere would let them lock its owner out. A correct secret from a clean
          address still gets its one database lookup and works; an address that has failed
          once pays no further lookup for that key id.

        An unreachable store refuses nothing (logged), as for ``hit``.
        """
        address_key = self._address_key(budget, address)
        try:
            if key_id is None:
                address_failures, key_failures = await self._storage.get(address_key), 0
            else:
                address_failures, key_failures = await asyncio.gather(
                    self._storage.get(address_key),
                    self._storage.get(self._key_id_key(budget, key_id)),
                )
            if address_failures >= budget.per_address.amount and not (
                key_id is not None and await self._storage.get(self._known_key(key_id)) > 0
            ):
                return await self._retry_after(address_key)
            key_spent = key_failures >= budget.per_key_id.amount
            if key_id is not None and key_spent and address_failures > 0:
                return await self._retry_after(address_key, self._key_id_key(budget, key_id))
        except Exception:
            logger.exception("rate-limit store unavailable; authentication not throttled")
        return None

    async def failed(self, address: str, key_id: str | None, budget: FailureBudget) -> None:
        """Count one failed authentication against ``address`` and, if the presented key's
        key id part was well-formed, against ``key_id``."""
        counts = [
            self._storage.incr(self._address_key(budget, address), budget.per_address.get_expiry())
        ]
        if key_id is not None:
            counts.append(
                self._storage.incr(self._key_id_key(budget, key_id), budget.per_key_id.get_expiry())
            )
        try:
            await asyncio.gather(*counts)
        except Exception:
            logger.exception("rate-limit store unavailable; failed authentication not counted")

    async def succeeded(self, key_id: str) -> None:
        """Mark ``key_id`` as known (it authenticated): see ``refusal``."""
        now = time.monotonic()
        last = self._marked.get(key_id)
        if last is not None and now - last < _MARK_EVERY_SECONDS:
            return
        try:
            await self._storage.incr(self._known_key(key_id), self._known.get_expiry())
        except Exception:
            logger.exception("rate-limit store unavailable; key not marked as known")
            return
        if len(self._marked) >= _MARKED_MEMO_SIZE:
            self._marked.clear()
        self._marked[key_id] = now

    async def _retry_after(self, *keys: str) -> int:
        """Whole seconds until the first of ``keys``' windows closes (at least 1)."""
        resets = await asyncio.gather(*(self._storage.get_expiry(key) for key in keys))
        return max(1, math.ceil(min(resets) - time.time()))
