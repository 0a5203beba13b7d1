from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from app.api.deps import DRY_RUN, AccessRoute, SessionDep, authenticated, scoped
from app.api.idempotency import IdempotencyDep
from app.api.outcomes import call_context, owner_now
from app.api.problems import AUTH_ERRORS, NOT_FOUND, Problem
from app.api.v1.payments import respond_payment
from app.domain.apikey.schemas import Principal, Scope
from app.domain.payment.schemas import PaymentResult
from app.domain.payment_request import service as request_service
from app.domain.payment_request.schemas import PaymentRequestCreate, PaymentRequestRead
from app.kit.schemas import MAX_ID_LENGTH, STORABLE_TEXT_PATTERN

router = APIRouter(
    prefix="/payments/request",
    tags=["payment requests"],
    responses=AUTH_ERRORS,
    route_class=AccessRoute,
)
#: Agent keys pay requests addressed to their agent and read those that name it; asking
#: for money and cancelling a request are the owner's.
Payer = Annotated[Principal, scoped(Scope.payments_write, agent_keys=True)]
Requester = Annotated[Principal, scoped(Scope.payments_write)]
Reader = Annotated[Principal, authenticated(agent_keys=True)]
NOT_PAYABLE: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "`request_not_payable`: not pending"}
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=PaymentRequestRead, responses=NOT_FOUND
)
async def create_payment_request(
    payload: PaymentRequestCreate,
    principal: Requester,
    session: SessionDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Ask another agent (of any owner) to pay one of your agents; expires after
    `expires_in_hours` (1 to 168, default 24)."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    created = await request_service.create(session, payload, call_context(request, principal))
    return await idempotency.respond(created, status_code=status.HTTP_201_CREATED)


@router.get("", response_model=list[PaymentRequestRead])
async def list_payment_requests(
    principal: Reader,
    session: SessionDep,
    status_: Annotated[
        Literal["pending", "paid", "cancelled", "expired"] | None, Query(alias="status")
    ] = None,
    role: Annotated[Literal["payer", "requester"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_ID_LENGTH,
            pattern=STORABLE_TEXT_PATTERN,
            description="A request_id: continue after it",
        ),
    ] = None,
) -> list[PaymentRequestRead]:
    """Requests you sent or must pay, newest first."""
    return await request_service.list_requests(
        session, principal, role=role, status=status_, limit=limit, cursor=cursor
    )


@router.get("/{request_id}", response_model=PaymentRequestRead, responses=NOT_FOUND)
async def get_payment_request(
    request_id: str, principal: Reader, session: SessionDep
) -> PaymentRequestRead:
    return await request_service.get(session, request_id, principal)


@router.post(
    "/{request_id}/pay",
    response_model=PaymentResult,
    responses={**NOT_FOUND, **NOT_PAYABLE},
    dependencies=[DRY_RUN],
)
async def pay_payment_request(
    request_id: str,
    principal: Payer,
    session: SessionDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Pay a pending request (same response as `POST /payments`), exactly once.
    `Dry-Run: true`: the same call, rolled back; 200 with the decision (`DryRunResult`)."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    outcome = await request_service.pay(session, request_id, call_context(request, principal))
    return await respond_payment(idempotency, outcome)


@router.delete(
    "/{request_id}", response_model=PaymentRequestRead, responses={**NOT_FOUND, **NOT_PAYABLE}
)
async def cancel_payment_request(
    request_id: str, principal: Requester, session: SessionDep, request: Request
) -> PaymentRequestRead:
    """Cancel a pending request (the requester's owner only)."""
    return await request_service.cancel(
        session, request_id, principal, owner_now(request, principal)
    )
