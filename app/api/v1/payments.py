from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from app.api.deps import (
    DRY_RUN,
    AccessRoute,
    PaymentReaderDep,
    SessionDep,
    SettingsDep,
    authenticated,
    scoped,
)
from app.api.idempotency import IdempotencyDep
from app.api.outcomes import call_context, respond
from app.api.problems import AUTH_ERRORS, NOT_FOUND, Problem
from app.domain.apikey.schemas import Principal, Scope
from app.domain.payment import service as payment_service
from app.domain.payment.schemas import (
    DryRunResult,
    PaymentCreate,
    PaymentEstimate,
    PaymentResult,
    TransactionRead,
)
from app.domain.payment.service import PaymentOutcome
from app.domain.refund import service as refund_service
from app.domain.refund.schemas import RefundCreate, RefundRead
from app.kit.money import AmountText
from app.kit.schemas import CurrencyText

router = APIRouter(
    prefix="/payments", tags=["payments"], responses=AUTH_ERRORS, route_class=AccessRoute
)
Payer = Annotated[Principal, scoped(Scope.payments_write, agent_keys=True)]
#: A refund moves money back from the payee and credits the payer's limits: the owner's
#: decision, never the paying agent's (it could otherwise spend and take it back).
Refunder = Annotated[Principal, scoped(Scope.payments_write)]

REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Refused: insufficient balance, a spending limit or a currency "
        "mismatch (recorded as a failed transaction). Body: `{success: false, transaction: "
        "null, error}` plus problem-details members and `tx_id`."
    },
    403: {
        "description": "Refused (recorded): `agent_inactive`, `wallet_frozen`, `agent_flagged`, "
        "`merchant_not_authorized` or `risk_denied`."
    },
    409: {
        "model": Problem,
        "description": "Product out of stock (recorded, refusal shape), or idempotency key in use.",
    },
    422: {
        "model": Problem,
        "description": "`product_merchant_mismatch`, or paying its own wallet (recorded, "
        "refusal shape); other 422s are malformed requests (`param` names the field).",
    },
    **NOT_FOUND,
}


@router.post("", response_model=PaymentResult, responses=REFUSALS, dependencies=[DRY_RUN])
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
    in the same ledger entry. Send an `Idempotency-Key` to make retries safe.

    `Dry-Run: true` runs the same call through the whole pipeline and rolls it back:
    200 with the decision (`allow` | `deny`), reasons, fee, projected balance, each limit
    as it would stand, and the risk score (`DryRunResult`), writing nothing."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    outcome = await payment_service.create(session, payload, call_context(request, principal))
    return await respond_payment(idempotency, outcome)


async def respond_payment(idempotency: IdempotencyDep, outcome: PaymentOutcome) -> Response:
    """``{success, transaction, error}``; a refusal adds problem details and its ``tx_id``."""
    return await respond(
        idempotency,
        outcome.result,
        outcome.refusal,
        refused_body={**outcome.result.model_dump(mode="json"), "tx_id": outcome.tx_id},
    )


@router.get("/estimate", response_model=PaymentEstimate)
async def estimate_payment(
    principal: Annotated[Principal, authenticated(agent_keys=True)],
    session: SessionDep,
    amount: Annotated[AmountText, Query(description="Amount to pay")],
    currency: Annotated[CurrencyText, Query(description="Currency")] = "USDC",
) -> PaymentEstimate:
    """Total cost of a payment, fee included: the same fee code a payment runs."""
    return await payment_service.estimate(session, amount, currency)


@router.post(
    "/{tx_id}/refund",
    status_code=status.HTTP_201_CREATED,
    response_model=RefundRead,
    responses={
        200: {"model": DryRunResult, "description": "`Dry-Run: true`: the decision"},
        409: {"model": Problem, "description": "Not refundable, or more than is left"},
        **NOT_FOUND,
    },
    dependencies=[DRY_RUN],
)
async def refund_payment(
    tx_id: str,
    principal: Refunder,
    session: SessionDep,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
    request: Request,
    payload: RefundCreate | None = None,
) -> Response:
    """Refund a completed payment, in full (no `amount`) or in part. The refunds of a
    payment never add up to more than it; the fee is kept (`PURSER_REFUND_FEE_POLICY`).
    `Dry-Run: true`: the same call, rolled back; 200 with the projected balance."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    refund = await refund_service.refund(
        session,
        tx_id,
        payload or RefundCreate(),
        call_context(request, principal),
        return_fee=settings.refund_fee_policy == "return",
    )
    return await respond(
        idempotency, refund, None, refused_body={}, status_code=status.HTTP_201_CREATED
    )


@router.get("/{tx_id}/refunds", response_model=list[RefundRead], responses=NOT_FOUND)
async def list_refunds(
    tx_id: str, principal: PaymentReaderDep, session: SessionDep, request: Request
) -> list[RefundRead]:
    return await refund_service.list_for_transaction(
        session, tx_id, call_context(request, principal)
    )


@router.get("/{tx_id}", response_model=TransactionRead, responses=NOT_FOUND)
async def get_transaction(
    tx_id: str, principal: PaymentReaderDep, session: SessionDep
) -> TransactionRead:
    return await payment_service.get(session, principal, tx_id)
