"""The sandbox test clock (``app.domain.test_clock``); absent in live mode."""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import AccessRoute, SessionDep, SettingsDep, authenticated, scoped
from app.api.idempotency import IdempotencyDep
from app.api.outcomes import call_context
from app.api.problems import AUTH_ERRORS, Problem
from app.config import Mode, Settings
from app.domain.apikey.schemas import Principal, Scope
from app.domain.test_clock import service as clock_service
from app.domain.test_clock.errors import TestClockUnavailable
from app.domain.test_clock.schemas import ClockAdvance, ClockRead

router = APIRouter(
    prefix="/test/clock", tags=["test clock"], responses=AUTH_ERRORS, route_class=AccessRoute
)
SANDBOX_ONLY: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Live mode: there is no test clock"}
}


def _sandbox_only(settings: Settings) -> None:
    if settings.mode is not Mode.sandbox:
        raise TestClockUnavailable("There is no test clock in live mode")


@router.get("", response_model=ClockRead, responses=SANDBOX_ONLY)
async def get_clock(
    principal: Annotated[Principal, authenticated()],
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ClockRead:
    """The owner's sandbox now, and how far it runs ahead of the server's clock."""
    _sandbox_only(settings)
    return await clock_service.read(session, principal.owner_id, request.app.state.clock())


@router.post(
    "/advance",
    response_model=ClockRead,
    responses={
        **SANDBOX_ONLY,
        422: {
            "model": Problem,
            "description": "`seconds` out of range, or the clock would "
            "run more than ten years ahead (`clock_out_of_range`)",
        },
    },
)
async def advance_clock(
    payload: ClockAdvance,
    principal: Annotated[Principal, scoped(Scope.agents_write)],
    session: SessionDep,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Move the owner's sandbox clock forward by `seconds`: every request of the owner's
    keys then runs at the new now (limit windows roll, velocity windows slide, holds and
    payment requests expire), in every process. What is due at the new now expires in
    this call, as the periodic jobs would at their next run. Other owners' clocks do not
    move. Send an `Idempotency-Key`: a retry replays the first answer, never moves the
    clock twice."""
    _sandbox_only(settings)
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    moved = await clock_service.advance(
        session, call_context(request, principal), payload.seconds, request.app.state.clock()
    )
    return await idempotency.respond(moved)
