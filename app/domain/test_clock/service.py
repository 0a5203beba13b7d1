"""The sandbox test clock: each owner moves Purser's notion of time for its own sandbox,
so that limit windows roll, holds and payment requests expire and velocity windows slide
on demand.

A request's now is the server's clock plus the owner's offset, read with the API key
(``apikey.repository``: no statement of its own); the expiry jobs compare each row with
its owner's now (``repository.offset_of``). Live mode has no test clock (404).
"""

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import service as audit_service
from app.domain.hold import service as hold_service
from app.domain.payment.service import CallContext
from app.domain.payment_request import service as request_service
from app.domain.test_clock import repository
from app.domain.test_clock.errors import ClockOutOfRange
from app.domain.test_clock.schemas import ClockRead


def owner_now(server_now: datetime, offset_seconds: int) -> datetime:
    """The owner's now: the server's clock moved ``offset_seconds`` ahead."""
    return server_now + timedelta(seconds=offset_seconds)


async def read(session: AsyncSession, owner_id: str, server_now: datetime) -> ClockRead:
    offset = await repository.offset_seconds(session, owner_id)
    return ClockRead(
        now=owner_now(server_now, offset), offset_seconds=offset, server_now=server_now
    )


async def advance(
    session: AsyncSession, context: CallContext, seconds: int, server_now: datetime
) -> ClockRead:
    """Move the caller's owner's sandbox clock ``seconds`` ahead, then expire what is due
    at the new now (the owner's holds and payment requests), as the periodic jobs would
    at their next run. Audit ``test_clock_advanced``. Raises ``ClockOutOfRange`` (422)
    past ``repository.MAX_OFFSET`` in total."""
    owner_id = context.principal.owner_id
    offset = await repository.advance(session, owner_id, seconds)
    if offset is None:
        raise ClockOutOfRange(
            f"the clock may run at most {repository.MAX_OFFSET.days} days ahead",
            param="seconds",
        )
    now = owner_now(server_now, offset)
    # The jobs' own code, at the server's now: each row is compared with its owner's now.
    at_server_time = replace(context, now=server_now, trace=None)
    holds = await hold_service.expire_due(session, at_server_time, owner_id=owner_id)
    requests = await request_service.expire_due(session, server_now, owner_id=owner_id)
    await audit_service.append(
        session,
        [
            audit_service.record(
                owner_id=owner_id,
                event="test_clock_advanced",
                subject_type="owner",
                subject_id=owner_id,
                key_id=context.principal.key_id,
                request_id=context.request_id,
                data={"seconds": seconds, "offset_seconds": offset},
            )
        ],
    )
    return ClockRead(
        now=now,
        offset_seconds=offset,
        server_now=server_now,
        holds_expired=holds,
        payment_requests_expired=requests,
    )
