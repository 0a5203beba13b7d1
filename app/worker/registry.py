"""Every periodic job, in one place. Each runs in its own transaction and is safe to run
in several processes at once (the jobs take their own locks)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.audit import service as audit_service
from app.domain.hold import service as hold_service
from app.domain.idempotency import service as idempotency_service
from app.domain.payment.service import system_context
from app.domain.payment_request import service as payment_request_service
from app.domain.risk import service as risk_service
from app.kit.time import utc_now


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Callable[[AsyncSession], Awaitable[int]]


async def _purge_idempotency(session: AsyncSession) -> int:
    return await idempotency_service.purge_expired(session, utc_now())


async def _expire_holds(session: AsyncSession) -> int:
    context = system_context(utc_now(), get_settings().limits_zone)
    return await hold_service.expire_due(session, context)


async def _expire_payment_requests(session: AsyncSession) -> int:
    return await payment_request_service.expire_due(session, utc_now())


async def _prune_risk_buckets(session: AsyncSession) -> int:
    return await risk_service.prune(session, utc_now())


JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("audit.seal", 1.0, audit_service.seal),
    PeriodicJob("holds.expire", 5.0, _expire_holds),
    PeriodicJob("payment_requests.expire", 30.0, _expire_payment_requests),
    PeriodicJob("idempotency.purge", 3600.0, _purge_idempotency),
    PeriodicJob("risk.prune", 600.0, _prune_risk_buckets),
)
