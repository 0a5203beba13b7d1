"""Refunds of completed payments: partial or full, never more than was paid in total.

The payment row is locked for the refund, so concurrent refunds of one payment see each
other's totals; the CHECK ``refunded_amount <= amount`` holds it in the database too.
Money goes back from the payee's wallet to the payer's; the fee is kept unless
``PURSER_REFUND_FEE_POLICY=return``, which returns it with the refund that completes
the payment's refund. Spending limits are credited back for the refunded amount.
"""

from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import service as audit_service
from app.domain.event import service as event_service
from app.domain.ledger import service as ledger
from app.domain.ledger.errors import InsufficientFunds
from app.domain.ledger.schemas import Leg
from app.domain.limits import service as limits_service
from app.domain.payment import repository as payment_repository
from app.domain.payment.errors import TransactionNotFound
from app.domain.payment.service import AuditBatch, CallContext
from app.domain.refund import repository
from app.domain.refund.errors import NotRefundable, RefundExceedsPayment, RefundInsufficientFunds
from app.domain.refund.schemas import RefundCreate, RefundRead
from app.domain.wallet import repository as wallet_repository
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, to_minor
from app.models.ledger import AccountKind, EntryKind

REFUNDABLE_STATUSES = frozenset({"completed", "partially_refunded"})


def _read(row: Row[Any]) -> RefundRead:
    return RefundRead(
        refund_id=row.id,
        tx_id=row.tx_id,
        amount=format_amount(row.amount, row.currency),
        fee_returned=format_amount(row.fee_returned, row.currency),
        currency=row.currency,
        reason=row.reason,
        created_at=row.created_at,
    )


async def refund(
    session: AsyncSession,
    tx_id: str,
    payload: RefundCreate,
    context: CallContext,
    *,
    return_fee: bool,
) -> RefundRead:
    owner_id = context.principal.owner_id
    tx = await repository.lock_transaction(session, owner_id, tx_id)
    if tx is None or not context.principal.sees_agent(tx.agent_id):
        raise TransactionNotFound(f"Transaction {tx_id} not found")
    if tx.status not in REFUNDABLE_STATUSES:
        raise NotRefundable(f"Transaction {tx_id} is {tx.status} and cannot be refunded")
    left = tx.amount - tx.refunded_amount
    amount = left if payload.amount is None else to_minor(payload.amount, tx.currency)
    if amount > left:
        raise RefundExceedsPayment(
            f"refund of {format_amount(amount, tx.currency)} exceeds the "
            f"{format_amount(left, tx.currency)} left to refund",
            param="amount",
        )
    completes = amount == left
    fee_returned = tx.fee if (return_fee and completes) else 0
    payer = await wallet_repository.get_wallet_by_id(
        session, owner_id=owner_id, wallet_id=tx.from_wallet_id
    )
    # The payee may be another owner's agent (a paid payment request): the payment
    # established it, so its wallet is read by id.
    payee = await wallet_repository.get_wallet_any_owner(session, tx.to_wallet_id)
    assert payer is not None
    assert payee is not None
    context.note(wallet_id=payer.id, amount=Money(amount, tx.currency))
    if payee.owner_id != owner_id:
        # The money would come out of another owner's wallet: only that owner may give
        # it back, and refunds across owners are not offered.
        raise NotRefundable(
            f"Transaction {tx_id} paid another owner's agent; it cannot be refunded from here"
        )
    legs = [
        Leg(payee.available_account_id, Money(-amount, tx.currency)),
        Leg(payer.available_account_id, Money(amount + fee_returned, tx.currency)),
    ]
    if fee_returned:
        fee_account = await ledger.system_account_id(session, AccountKind.fee_revenue, tx.currency)
        legs.append(Leg(fee_account, Money(-fee_returned, tx.currency)))
    refund_id = new_id("re")
    # The payer's wallet row first, its balance rows after (in post_entry): the order every
    # payment of this agent takes its locks in, so the two never wait on each other in a
    # cycle. A refused entry raises and rolls this back too.
    await limits_service.release_spend(
        session, payer.id, amount, spent_at=tx.spent_at, tz=context.tz
    )
    try:
        entry = await ledger.post_entry(
            session,
            kind=EntryKind.refund,
            legs=legs,
            reference=f"refund:{refund_id}",
            description=payload.reason,
        )
    except InsufficientFunds:
        raise RefundInsufficientFunds(
            "the payee's wallet does not hold enough to refund this amount", param="amount"
        ) from None
    await repository.add_refunded(
        session, tx.id, amount, "refunded" if completes else "partially_refunded"
    )
    row = await repository.insert_refund(
        session,
        {
            "id": refund_id,
            "owner_id": owner_id,
            "tx_id": tx.id,
            "amount": amount,
            "fee_returned": fee_returned,
            "currency": tx.currency,
            "reason": payload.reason,
            "entry_id": entry.id,
            "key_id": context.principal.key_id,
            "request_id": context.request_id,
        },
    )
    refund_read = _read(row)
    audit = AuditBatch(owner_id, tx.id, tx.agent_id, Money(amount, tx.currency), context)
    audit.add("refund_completed", {"refund_id": refund_id, "fee_returned": fee_returned})
    await audit_service.append(session, audit.records)
    await event_service.emit(
        session,
        [
            event_service.event(
                owner_id, "payment.refunded", {"refund": refund_read.model_dump(mode="json")}
            )
        ],
    )
    return refund_read


async def list_for_transaction(
    session: AsyncSession, tx_id: str, context: CallContext
) -> list[RefundRead]:
    tx = await payment_repository.get_transaction(session, context.principal.owner_id, tx_id)
    if tx is None or not context.principal.sees_agent(tx.agent_id):
        raise TransactionNotFound(f"Transaction {tx_id} not found")
    rows = await repository.list_for_transaction(session, context.principal.owner_id, tx_id)
    return [_read(row) for row in rows]
