"""Payment requests (invoices): pending -> paid | cancelled | expired.

A requester agent asks a payer agent (of any owner) for an amount. Only the payer's owner
can pay it and only the requester's owner can cancel it. Paying locks the request row,
so of several concurrent payers exactly one is charged; the others find it paid (409).
Expiry is checked when paying and applied by a periodic job.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.agent import repository as agent_repository
from app.domain.agent.errors import AgentNotFound
from app.domain.apikey.schemas import Principal
from app.domain.event import service as event_service
from app.domain.limits import service as limits_service
from app.domain.payment import service as payment_service
from app.domain.payment.service import CallContext, PaymentOutcome
from app.domain.payment_request import repository
from app.domain.payment_request.errors import PaymentRequestNotFound, RequestNotPayable
from app.domain.payment_request.schemas import PaymentRequestCreate, PaymentRequestRead
from app.domain.wallet import repository as wallet_repository
from app.errors import ValidationFailed
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, to_minor


def read_request(row: Row[Any]) -> PaymentRequestRead:
    return PaymentRequestRead(
        request_id=row.id,
        requester_agent_id=row.requester_agent_id,
        payer_agent_id=row.payer_agent_id,
        amount=format_amount(row.amount, row.currency),
        currency=row.currency,
        description=row.description,
        status=row.status,
        created_at=row.created_at,
        expires_at=row.expires_at,
        resolved_at=row.resolved_at,
        tx_id=row.tx_id,
    )


def _sees(principal: Principal, row: Row[Any]) -> bool:
    return principal.agent_id is None or principal.agent_id in (
        row.requester_agent_id,
        row.payer_agent_id,
    )


async def create(
    session: AsyncSession, payload: PaymentRequestCreate, context: CallContext
) -> PaymentRequestRead:
    principal = context.principal
    amount = Money(to_minor(payload.amount, payload.currency, param="amount"), payload.currency)
    requester = None
    if principal.sees_agent(payload.requester_agent_id):
        requester = await agent_repository.get_agent(
            session, principal.owner_id, payload.requester_agent_id
        )
    if requester is None:
        raise AgentNotFound(
            f"Agent {payload.requester_agent_id} not found", param="requester_agent_id"
        )
    payer = await agent_repository.get_agent_any_owner(session, payload.payer_agent_id)
    if payer is None:
        raise AgentNotFound(f"Agent {payload.payer_agent_id} not found", param="payer_agent_id")
    if payer.id == requester.id:
        raise ValidationFailed(
            "an agent cannot request payment from itself", param="payer_agent_id"
        )
    row = await repository.insert_request(
        session,
        {
            "id": new_id("preq"),
            "requester_owner_id": principal.owner_id,
            "requester_agent_id": requester.id,
            "payer_owner_id": payer.owner_id,
            "payer_agent_id": payer.id,
            "amount": amount.minor,
            "currency": amount.currency,
            "description": payload.description,
            "status": "pending",
            "expires_at": context.now + timedelta(hours=payload.expires_in_hours),
            "created_at": context.now,
        },
    )
    request = read_request(row)
    data = {"payment_request": request.model_dump(mode="json")}
    owners = {row.requester_owner_id, row.payer_owner_id}
    await event_service.emit(
        session, [event_service.event(owner, "invoice.created", data) for owner in sorted(owners)]
    )
    return request


async def get(session: AsyncSession, request_id: str, principal: Principal) -> PaymentRequestRead:
    row = await repository.get_request(session, principal.owner_id, request_id)
    if row is None or not _sees(principal, row):
        raise PaymentRequestNotFound(f"Payment request {request_id} not found")
    return read_request(row)


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    *,
    role: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> list[PaymentRequestRead]:
    """Requests the caller sent or must pay, newest first, after ``cursor``.

    Raises ``PaymentRequestNotFound`` (404, ``param`` ``cursor``) for a cursor the caller
    may not see, exactly as for one that does not exist."""
    before = None
    if cursor is not None:
        before = await repository.get_request(session, principal.owner_id, cursor)
        # An agent key sees only the requests naming its agent: a cursor among its
        # owner's other requests must not tell it that they exist.
        if before is None or not _sees(principal, before):
            raise PaymentRequestNotFound(f"Payment request {cursor} not found", param="cursor")
    rows = await repository.list_requests(
        session,
        principal.owner_id,
        role=role,
        status=status,
        limit=limit,
        before=before,
        agent_id=principal.agent_id,
    )
    return [read_request(row) for row in rows]


async def pay(session: AsyncSession, request_id: str, context: CallContext) -> PaymentOutcome:
    """Charge the payer for the request, exactly once.

    Raises, recording nothing, ``PaymentRequestNotFound`` (404: unknown, or not the
    caller's to pay), ``RequestNotPayable`` (409: no longer pending, or expired) and
    ``AgentNotFound`` (404). Once the payer's wallet is locked, the payment pipeline's
    refusals (``currency_mismatch``, state, limits, balance) are recorded as a failed
    transaction naming the request (``request_id_paid``) and returned in the outcome; the
    request stays pending."""
    principal = context.principal
    row = await repository.get_request(session, principal.owner_id, request_id, lock_as_payer=True)
    if row is None or not principal.sees_agent(row.payer_agent_id):
        raise PaymentRequestNotFound(f"Payment request {request_id} not found")
    if row.status != "pending":
        raise RequestNotPayable(f"Payment request {request_id} is {row.status}")
    if row.expires_at <= context.now:
        raise RequestNotPayable(f"Payment request {request_id} has expired")
    # The payer's lock and the requester's wallet: one round trip.
    wallet, payee = await wallet_repository.lock_agent_wallet_with_payee(
        session,
        owner_id=principal.owner_id,
        agent_id=row.payer_agent_id,
        payee_owner_id=row.requester_owner_id,
        windows=limits_service.windows_of(context.now, context.tz),
        now=context.now,
        payee_agent_id=row.requester_agent_id,
    )
    if wallet is None:
        raise AgentNotFound(f"Agent {row.payer_agent_id} not found", param="agent_id")
    assert payee is not None
    outcome = await payment_service.charge(
        session,
        wallet,
        payee,
        Money(row.amount, row.currency),
        context,
        purpose=row.description,
        to_agent_id=row.requester_agent_id,
        request_id_paid=row.id,
    )
    if outcome.refusal is None:
        paid = await repository.resolve_pending(
            session, row.id, status="paid", now=context.now, tx_id=outcome.tx_id
        )
        assert paid is not None  # the row lock above makes this the only payer
        data = {"payment_request": read_request(paid).model_dump(mode="json")}
        owners = {row.requester_owner_id, row.payer_owner_id}
        await event_service.emit(
            session, [event_service.event(owner, "invoice.paid", data) for owner in sorted(owners)]
        )
    return outcome


async def cancel(
    session: AsyncSession, request_id: str, principal: Principal, now: datetime
) -> PaymentRequestRead:
    row = await repository.resolve_pending(
        session, request_id, status="cancelled", now=now, requester_owner_id=principal.owner_id
    )
    if row is not None and principal.sees_agent(row.requester_agent_id):
        return read_request(row)
    current = await repository.get_request(session, principal.owner_id, request_id)
    if (
        current is None
        or current.requester_owner_id != principal.owner_id
        or not _sees(principal, current)
    ):
        raise PaymentRequestNotFound(f"Payment request {request_id} not found")
    raise RequestNotPayable(
        f"Payment request {request_id} is {current.status}; only pending requests can be cancelled"
    )


async def expire_due(session: AsyncSession, now: datetime, owner_id: str | None = None) -> int:
    """Expire the requests due at their requester's now (``repository.expire_due``)."""
    return await repository.expire_due(session, now, owner_id)
