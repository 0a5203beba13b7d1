"""Time: an injectable clock and calendar windows in a configured time zone."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def window_starts(now: datetime, tz: ZoneInfo) -> dict[str, date]:
    """First day of the current calendar day, week (Monday) and month in ``tz``."""
    local = now.astimezone(tz).date()
    return {
        "day": local,
        "week": local - timedelta(days=local.weekday()),
        "month": local.replace(day=1),
    }
