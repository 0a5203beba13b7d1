from typing import Annotated, Any

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from app.api.deps import DRY_RUN, AccessRoute, PaymentReaderDep, SessionDep, scoped
from app.api.idempotency import IdempotencyDep
from app.api.outcomes import call_context, respond
from app.api.problems import AUTH_ERRORS, NOT_FOUND, Problem
from app.domain.apikey.schemas import Principal, Scope
from app.domain.hold import service as hold_service
from app.domain.hold.schemas import HoldCapture, HoldCreate, HoldRead
from app.domain.payment.schemas import DryRunResult

router = APIRouter(
    prefix="/payments/holds", tags=["holds"], responses=AUTH_ERRORS, route_class=AccessRoute
)
#: Placing a hold authorises a payment from the agent's wallet: agent keys may, for their
#: own agent. Capturing pays the merchant and voiding releases the merchant's guarantee:
#: both are the owner's decisions, never the paying agent's.
Payer = Annotated[Principal, scoped(Scope.payments_write, agent_keys=True)]
Settler = Annotated[Principal, scoped(Scope.payments_write)]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The hold is no longer pending"}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=HoldRead,
    responses={
        400: {"description": "Refused: balance, limit or currency (recorded in the audit trail)"},
        403: {
            "description": "Refused: agent inactive, wallet frozen, agent flagged, payee not "
            "an authorized service, or risk denied"
        },
        **NOT_FOUND,
        200: {"model": DryRunResult, "description": "`Dry-Run: true`: the decision"},
    },
    dependencies=[DRY_RUN],
)
async def create_hold(
    payload: HoldCreate,
    principal: Payer,
    session: SessionDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Reserve `amount` (plus its fee) of an agent's wallet for a merchant, for
    `expires_in_minutes` (5 to 1440, default 30). It counts against the agent's limits now.
    `Dry-Run: true`: the same call, rolled back; 200 with the decision (`DryRunResult`)."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    outcome = await hold_service.authorize(session, payload, call_context(request, principal))
    return await respond(
        idempotency,
        outcome.hold,
        outcome.refusal,
        refused_body={"hold": None, "error": outcome.refusal.detail if outcome.refusal else None},
        status_code=status.HTTP_201_CREATED,
    )


@router.get("/{hold_id}", response_model=HoldRead, responses=NOT_FOUND)
async def get_hold(
    hold_id: str, principal: PaymentReaderDep, session: SessionDep, request: Request
) -> HoldRead:
    return await hold_service.get(session, hold_id, call_context(request, principal))


@router.post(
    "/{hold_id}/capture",
    response_model=HoldRead,
    responses={
        403: {
            "model": Problem,
            "description": "`agent_flagged`, or `wallet_frozen` (recorded as a failed capture "
            "transaction; the hold stays pending)",
        },
        **NOT_FOUND,
        **CONFLICT,
    },
    dependencies=[DRY_RUN],
)
async def capture_hold(
    hold_id: str,
    principal: Settler,
    session: SessionDep,
    idempotency: IdempotencyDep,
    request: Request,
    payload: HoldCapture | None = None,
) -> Response:
    """Pay the merchant from the hold: all of it, or `amount` (the rest is released). The
    capture is a completed transaction: events `hold.captured` and `payment.completed`.
    `Dry-Run: true`: the same call, rolled back; 200 with the decision (`DryRunResult`)."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    outcome = await hold_service.capture(
        session, hold_id, payload.amount if payload else None, call_context(request, principal)
    )
    return await respond(
        idempotency,
        outcome.hold,
        outcome.refusal,
        refused_body={
            "hold": None,
            "error": outcome.refusal.detail if outcome.refusal else None,
            "tx_id": outcome.tx_id,
        },
    )


@router.post("/{hold_id}/void", response_model=HoldRead, responses={**NOT_FOUND, **CONFLICT})
async def void_hold(
    hold_id: str,
    principal: Settler,
    session: SessionDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Release the whole hold back to the agent's wallet."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    hold = await hold_service.void(session, hold_id, call_context(request, principal))
    return await idempotency.respond(hold)
