"""Every periodic job, in one place. Each runs in its own transaction and is safe to run
in several processes at once (the jobs take their own locks)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import service as audit_service
from app.domain.idempotency import service as idempotency_service
from app.kit.time import utc_now


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Callable[[AsyncSession], Awaitable[int]]


async def _purge_idempotency(session: AsyncSession) -> int:
    return await idempotency_service.purge_expired(session, utc_now())


JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("audit.seal", 1.0, audit_service.seal),
    PeriodicJob("idempotency.purge", 3600.0, _purge_idempotency),
)
