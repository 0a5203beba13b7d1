from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api.deps import PrincipalDep, SessionDep, SettingsDep, scoped
from app.api.idempotency import IdempotencyDep
from app.api.problems import AUTH_ERRORS, NOT_FOUND, PROBLEM_JSON, Problem, problem_members
from app.api.request_context import request_id_var
from app.domain.apikey.errors import InsufficientScope
from app.domain.apikey.schemas import Principal, Scope
from app.domain.payment import service as payment_service
from app.domain.payment.schemas import (
    PaymentCreate,
    PaymentEstimate,
    PaymentResult,
    TransactionRead,
)

router = APIRouter(prefix="/payments", tags=["payments"], responses=AUTH_ERRORS)
Payer = Annotated[Principal, scoped(Scope.payments_write)]

REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Refused: insufficient balance or a spending limit (recorded as a "
        "failed transaction). Body: `{success: false, transaction: null, error}` plus "
        "problem-details members and `tx_id`."
    },
    403: {"description": "Refused: agent inactive or wallet frozen (recorded)."},
    409: {"model": Problem, "description": "Idempotency key in use, or product out of stock"},
    **NOT_FOUND,
}


@router.post("", response_model=PaymentResult, responses=REFUSALS)
async def create_payment(
    payload: PaymentCreate,
    principal: Payer,
    session: SessionDep,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Pay a merchant (`merchant_id`) or another wallet (`recipient_wallet_id`) from an
    agent's wallet: `amount` (decimal string, `currency` default USDC), or `product_id` to
    pay its catalog price. A flat fee of the currency's fee schedule goes to fee revenue
    in the same ledger entry. Send an `Idempotency-Key` to make retries safe."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    outcome = await payment_service.create(
        session,
        payload,
        payment_service.CallContext(
            principal=principal,
            request_id=request_id_var.get(),
            now=request.app.state.clock(),
            tz=settings.limits_zone,
        ),
    )
    if outcome.refusal is None:
        return await idempotency.respond(outcome.result)
    body = {
        **outcome.result.model_dump(mode="json"),
        **problem_members(outcome.refusal),
        "tx_id": outcome.tx_id,
    }
    return await idempotency.respond(
        body, status_code=outcome.refusal.status_code, media_type=PROBLEM_JSON
    )


@router.get("/estimate", response_model=PaymentEstimate)
async def estimate_payment(
    principal: PrincipalDep,
    session: SessionDep,
    amount: Annotated[Decimal, Query(description="Amount to pay", examples=["15.99"])],
    currency: Annotated[str, Query(description="Currency")] = "USDC",
) -> PaymentEstimate:
    """Total cost of a payment, fee included: the same fee code a payment runs."""
    return await payment_service.estimate(session, amount, currency)


@router.get("/{tx_id}", response_model=TransactionRead, responses=NOT_FOUND)
async def get_transaction(
    tx_id: str, principal: PrincipalDep, session: SessionDep
) -> TransactionRead:
    if not {Scope.payments_read, Scope.wallet_read} & principal.scopes:
        raise InsufficientScope("this API key lacks the payments:read scope")
    return await payment_service.get(session, principal, tx_id)
