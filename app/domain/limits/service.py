"""Spending limits, checked against counters read under the payer wallet's row lock, in
the same transaction as the posting, so no concurrency can overshoot them.

Limits count the amount paid (fees excluded), as ``spent_total`` does. Windows are
calendar day, week (from Monday) and month in the configured time zone.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.limits import repository
from app.kit.money import format_amount
from app.kit.time import window_starts

WARNING_RATIO = (4, 5)  # 80 %
_WINDOW_LIMITS = {"day": "limit_daily", "week": "limit_weekly", "month": "limit_monthly"}
_NAMES = {
    "per_tx": "per-transaction",
    "total": "total",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
}


@dataclass(frozen=True, slots=True)
class LimitDecision:
    #: The limit that refuses the payment ("per_tx", "total", "day", "week", "month").
    exceeded: str | None = None
    message: str | None = None
    #: Limits this payment brings to 80 % or more for the first time in their window.
    warnings: list[dict[str, Any]] = field(default_factory=list)
    windows: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def carried_spent(wallet: Row[Any], windows: dict[str, date]) -> dict[str, int] | None:
    """The window counters the payer's lock statement read with the wallet, if it read
    them for ``windows`` and they are current (``counters_fresh``: the wallet row, which
    every counter write updates in the same transaction, had not changed since the
    statement's snapshot); else None, and the caller reads them under the lock."""
    if not getattr(wallet, "counters_fresh", False):
        return None
    if any(getattr(wallet, f"window_{period}") != windows[period] for period in windows):
        return None
    return {period: int(getattr(wallet, f"spent_{period}") or 0) for period in windows}


async def check(
    session: AsyncSession, wallet: Row[Any], amount: int, *, now: datetime, tz: ZoneInfo
) -> LimitDecision:
    """Decide whether ``wallet`` (locked by the caller) may spend ``amount`` now."""
    currency = wallet.currency
    windows = window_starts(now, tz)
    has_window_limit = any(
        getattr(wallet, column) is not None for column in _WINDOW_LIMITS.values()
    )
    spent: dict[str, int] = {}
    if has_window_limit:
        carried = carried_spent(wallet, windows)
        spent = (
            carried
            if carried is not None
            else await repository.spent_in_windows(session, wallet.id, windows)
        )
    usage: list[tuple[str, int | None, int]] = [
        ("per_tx", wallet.limit_per_tx, 0),
        ("total", wallet.limit_total, wallet.spent_total),
        *(
            (period, getattr(wallet, column), spent.get(period, 0))
            for period, column in _WINDOW_LIMITS.items()
        ),
    ]
    warnings = []
    for name, limit, used in usage:
        if limit is None:
            continue
        if used + amount > limit:
            remaining = max(limit - used, 0)
            return LimitDecision(
                exceeded=name,
                message=(
                    f"Amount {format_amount(amount, currency)} exceeds the {_NAMES[name]} "
                    f"limit of {format_amount(limit, currency)}"
                    + (
                        ""
                        if name == "per_tx"
                        else f" (remaining {format_amount(remaining, currency)})"
                    )
                ),
                windows=windows,
                detail={
                    "limit": name,
                    "limit_amount": format_amount(limit, currency),
                    "remaining": format_amount(remaining, currency),
                },
            )
        threshold = limit * WARNING_RATIO[0]
        if (
            name != "per_tx"
            and used * WARNING_RATIO[1] < threshold <= (used + amount) * WARNING_RATIO[1]
        ):
            warnings.append(
                {
                    "limit": name,
                    "limit_amount": format_amount(limit, currency),
                    "spent": format_amount(used + amount, currency),
                }
            )
    return LimitDecision(warnings=warnings, windows=windows)


@dataclass(frozen=True, slots=True)
class LimitState:
    """One configured limit of a wallet: minor units, and when its window starts again
    (None for ``per_tx`` and ``total``, which never reset)."""

    limit: int
    used: int
    resets_at: datetime | None

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


#: The wallet response's name of each limit, in the order it lists them.
STATE_NAMES: dict[str, str] = {
    "per_tx": "per_tx",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "total": "total",
}


def next_window_starts(now: datetime, tz: ZoneInfo) -> dict[str, datetime]:
    """When the day, week (Monday) and month windows holding ``now`` end: the local
    midnight in ``tz`` that starts the next one (``window_starts``' calendar)."""
    starts = window_starts(now, tz)
    following = {
        "day": starts["day"] + timedelta(days=1),
        "week": starts["week"] + timedelta(days=7),
        "month": (starts["month"] + timedelta(days=32)).replace(day=1),
    }
    # Through UTC and back: on a day whose midnight the zone skips (a DST change at 00:00)
    # the window starts at the first local time that exists, written as the zone reads it.
    return {
        period: datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).astimezone(tz)
        for period, day in following.items()
    }


async def state(
    session: AsyncSession, wallet: Row[Any], *, now: datetime, tz: ZoneInfo
) -> dict[str, LimitState]:
    """Each configured limit of ``wallet`` at ``now``: its amount, what is used of it and
    when it resets, from the counters the payment pipeline locks and writes (``spent_total``
    and the window counters), so that ``remaining`` is exactly what the next payment may
    spend as far as that limit goes (the per-transaction limit: its amount). Keys:
    ``STATE_NAMES`` values, only for limits that are set. Reads the window counters in one
    statement when a window limit is set."""
    windows = window_starts(now, tz)
    spent: dict[str, int] = {}
    if any(getattr(wallet, column) is not None for column in _WINDOW_LIMITS.values()):
        spent = await repository.spent_in_windows(session, wallet.id, windows)
    resets = next_window_starts(now, tz)
    found: dict[str, LimitState] = {}
    for name, label in STATE_NAMES.items():
        if name == "per_tx":
            limit, used, resets_at = wallet.limit_per_tx, 0, None
        elif name == "total":
            limit, used, resets_at = wallet.limit_total, wallet.spent_total, None
        else:
            limit, used = getattr(wallet, _WINDOW_LIMITS[name]), spent.get(name, 0)
            resets_at = resets[name]
        if limit is not None:
            found[label] = LimitState(limit=limit, used=used, resets_at=resets_at)
    return found


def spend_params(wallet: Row[Any], amount: int, decision: LimitDecision) -> dict[str, Any]:
    """``record_spend`` as the parameters of ``repository.spend_ctes``, for a statement of
    the payment path that counts the spend in its own round trip."""
    return repository.spend_params(wallet.id, decision.windows, amount)


def windows_of(now: datetime, tz: ZoneInfo) -> dict[str, date]:
    """The windows ``check`` counts a payment at ``now`` in (for the payer's lock
    statement to read their counters)."""
    return window_starts(now, tz)


async def release_spend(
    session: AsyncSession,
    wallet_id: str,
    amount: int,
    *,
    spent_at: datetime,
    tz: ZoneInfo,
    risk_payments: int = 0,
    risk_volume: int = 0,
) -> None:
    """Credit back ``amount`` spent at ``spent_at`` (a refund, a smaller capture, a void):
    to ``spent_total`` and to the windows of that moment, never below zero. A hold's
    release also takes what did not move out of the risk counters (``risk_payments`` 1
    and ``risk_volume`` its amount for a void; the uncaptured part's volume for a smaller
    capture); a refund's does not (the payment happened)."""
    if amount > 0:
        await repository.remove_spend(
            session,
            wallet_id,
            window_starts(spent_at, tz),
            amount,
            risk_payments=risk_payments,
            risk_volume=risk_volume,
        )
