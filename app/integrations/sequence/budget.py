"""The request budget of one Sequence API key, shared by every coroutine using that key.

Sequence allows 100 requests a minute per key (§5) and the spec leaves open whether it
counts them in a fixed window or a token bucket (§15.2). A budget of *at most N requests in
any rolling 60 s* stays under both: no fixed window and no bucket of 100 ever sees more
than N. The default N is 95, a little under the limit as §12.4 asks, so a few requests of
another process (a CLI check, a colleague's script) do not tip the key into 429s.

Each request reserves the earliest instant at which it keeps the budget, then sleeps
until then. The reservation is computed without awaiting, so coroutines of one event loop
never race, and no asyncio primitive is kept: one budget can serve clients on different
event loops (tests, CLI commands) in the same process.
"""

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Callable
from typing import Final

#: Requests a budget allows per rolling window by default: a little under Sequence's 100.
DEFAULT_PER_MINUTE: Final = 95
_WINDOW_SECONDS: Final = 60.0


class RequestBudget:
    """At most ``per_minute`` grants in any rolling ``window`` seconds (60 by default).

    ``acquire`` returns once the caller may send one request; callers beyond the budget
    wait, in the order they asked. ``clock`` is a monotonic clock in seconds.
    """

    def __init__(
        self,
        per_minute: int = DEFAULT_PER_MINUTE,
        *,
        window: float = _WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._window = window
        self._clock = clock
        # The instants of the last ``per_minute`` grants, oldest first (some may lie in the
        # future: reservations of callers still sleeping).
        self._grants: deque[float] = deque(maxlen=per_minute)

    def reserve(self) -> float:
        """Reserve the next grant; return how many seconds the caller must wait for it."""
        now = self._clock()
        at = now
        if len(self._grants) == self.per_minute:
            # The grant that falls out of the window once this one is made.
            at = max(now, self._grants[0] + self._window)
        self._grants.append(at)
        return at - now

    async def acquire(self) -> None:
        """Wait until one more request keeps within the budget."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


# One budget per (key, rate) in the process: every client built with the same key shares
# it, which is what keeps several clients of one key under Sequence's per-key limit.
_BUDGETS: dict[tuple[str, int], RequestBudget] = {}


def budget_for(api_key: str, per_minute: int = DEFAULT_PER_MINUTE) -> RequestBudget:
    """The process-wide budget of ``api_key`` at ``per_minute`` requests a minute.

    Keyed by a SHA-256 of the key, so the registry holds no secret.
    """
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()
    budget = _BUDGETS.get((fingerprint, per_minute))
    if budget is None:
        budget = _BUDGETS[(fingerprint, per_minute)] = RequestBudget(per_minute)
    return budget
