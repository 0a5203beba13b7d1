"""Per-key request budgets by tier, on the ``limits`` library: in process memory by
default, in Redis when configured so that several API processes share one budget."""

import logging
import time
from dataclasses import dataclass
from typing import Final

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

logger = logging.getLogger("purser.rate_limit")

#: Requests per minute and per day, by tier (the API reference's table).
TIER_LIMITS: Final[dict[str, tuple[str, ...]]] = {
    "free": ("60/minute", "1000/day"),
    "standard": ("300/minute", "10000/day"),
    "enterprise": ("1000/minute",),
}


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


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        uri = f"async+{redis_url}" if redis_url else "async+memory://"
        self._limiter = FixedWindowRateLimiter(storage_from_string(uri))
        self._items: dict[str, list[RateLimitItem]] = {
            tier: [parse(text) for text in texts] for tier, texts in TIER_LIMITS.items()
        }

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
