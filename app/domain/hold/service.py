"""Holds: authorise now, capture (all or part) or void later; expire if left alone.

pending -> captured | voided | expired, each exactly once (a conditional UPDATE from
``pending``). Authorisation runs the payment pipeline's policy (state checks, limits,
which count the held amount from that moment) and reserves amount + fee in the ledger
(available -> held), so held funds cannot be spent twice.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import service as audit_service
from app.domain.event import service as event_service
from app.domain.fee import service as fee_service
from app.domain.hold import repository
from app.domain.hold.schemas import HoldCreate, HoldRead
from app.domain.ledger import service as ledger
from app.domain.ledger.errors import (
    CaptureExceedsHold,
    HoldNotFound,
    HoldNotPending,
    InsufficientFunds,
)
from app.domain.ledger.schemas import Leg
from app.domain.limits import service as limits_service
from app.domain.payment import repository as payment_repository
from app.domain.payment import service as payment_service
from app.domain.payment.errors import AgentFlaggedHold, InsufficientBalance, PaymentRefused
from app.domain.payment.service import AuditBatch, CallContext
from app.domain.risk import service as risk_service
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, to_minor
from app.kit.pagination import Page
from app.models.ledger import AccountKind


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    hold: HoldRead | None
    refusal: PaymentRefused | None = None
    #: The failed transaction a refused capture recorded.
    tx_id: str | None = None


def read_hold(row: Row[Any]) -> HoldRead:
    currency = row.currency
    return HoldRead(
        hold_id=row.id,
        agent_id=row.agent_id,
        merchant_id=row.merchant_id,
        wallet_id=row.wallet_id,
        amount=format_amount(row.amount, currency),
        fee=format_amount(row.fee, currency),
        currency=currency,
        purpose=row.purpose,
        status=row.status,
        captured_amount=None
        if row.captured_amount is None
        else format_amount(row.captured_amount, currency),
        capture_tx_id=row.capture_tx_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        resolved_at=row.resolved_at,
    )


async def authorize(
    session: AsyncSession, payload: HoldCreate, context: CallContext
) -> HoldOutcome:
    """Reserve ``payload.amount`` + fee of the agent's wallet for a merchant.

    Raises, recording nothing, for a malformed amount (422) or an unknown merchant or agent
    (404). Once the payer's wallet is locked, a refusal (``currency_mismatch`` 400, state
    403, limits or balance 400) is returned in ``HoldOutcome.refusal`` and recorded as
    audit ``hold_requested`` + ``hold_failed`` (and ``limit.exceeded`` for limits)."""
    owner_id = context.principal.owner_id
    amount = Money(to_minor(payload.amount, payload.currency, param="amount"), payload.currency)
    payee, wallet = await payment_service.lock_payer_and_payee(
        session,
        context.principal,
        payload.agent_id,
        payload.merchant_id,
        None,
        limits_service.windows_of(context.now, context.tz),
        context.now,
    )
    merchant_wallet = payee.wallet
    fee = await fee_service.fee_for(session, amount)
    context.note(wallet_id=wallet.id, amount=amount, fee=fee)
    hold_id = new_id("hold")
    audit = AuditBatch(owner_id, hold_id, wallet.agent_id, amount, context, subject_type="hold")
    events: list[dict[str, Any]] = []
    # Payer and payee are known from here on: a refusal is recorded, as a payment's is.
    refusal = payment_service.payee_refusal(wallet, merchant_wallet, amount)
    policy = payment_service.PolicyOutcome(refusal)
    if refusal is None:
        policy = await payment_service.check_policy(
            session, wallet, merchant_wallet, amount, context, subject_id=hold_id, events=events
        )
        refusal = policy.refusal
    decision = policy.limits
    audit.add(
        "hold_requested",
        {
            "merchant_id": payload.merchant_id,
            "fee": fee.minor,
            "risk": None if policy.risk is None else policy.risk.as_record(),
        },
    )
    row = None
    if refusal is None:
        assert decision is not None
        try:
            placed = await ledger.place_hold(
                session,
                available_account_id=wallet.available_account_id,
                held_account_id=wallet.held_account_id,
                amount=Money(amount.minor + fee.minor, amount.currency),
                reference=f"hold:{hold_id}",
            )
        except InsufficientFunds as error:
            refusal = InsufficientBalance(error.detail)
        else:
            await payment_repository.count_outflow(
                session,
                payment_repository.outflow_params(
                    limits_service.spend_params(wallet, amount.minor, decision),
                    payee_wallet_id=merchant_wallet.id,
                    at=context.now,
                ),
            )
            row = await repository.insert_hold(
                session,
                {
                    "id": hold_id,
                    "owner_id": owner_id,
                    "agent_id": wallet.agent_id,
                    "wallet_id": wallet.id,
                    "merchant_id": payload.merchant_id,
                    "amount": amount.minor,
                    "fee": fee.minor,
                    "currency": amount.currency,
                    "purpose": payload.purpose,
                    "status": "pending",
                    "ledger_hold_id": placed.id,
                    "expires_at": context.now + timedelta(minutes=payload.expires_in_minutes),
                    "authorized_at": context.now,
                    "created_at": context.now,
                },
            )
            audit.add("hold_authorized", {"ledger_hold_id": placed.id})
            events.append(event_service.event(owner_id, "hold.created", {"hold": _data(row)}))
            events.extend(payment_service.warning_events(owner_id, wallet, decision))
    if refusal is not None:
        audit.add("hold_failed", {"code": refusal.code, "reason": refusal.detail})
        await risk_service.count_refusal(session, wallet.id)
    await audit_service.append(session, audit.records)
    await event_service.emit(session, events)
    return HoldOutcome(None if row is None else read_hold(row), refusal)


def _data(row: Row[Any]) -> dict[str, Any]:
    return read_hold(row).model_dump(mode="json")


async def _claim(
    session: AsyncSession, hold_id: str, status: str, context: CallContext, **values: Any
) -> Row[Any]:
    owner_id = context.principal.owner_id
    row = await repository.resolve_pending(
        session,
        hold_id,
        owner_id=owner_id,
        status=status,
        now=context.now,
        not_expired=True,
        values=values,
    )
    if row is not None and context.principal.sees_agent(row.agent_id):
        return row
    current = await repository.get_hold(session, owner_id, hold_id)
    if current is None or not context.principal.sees_agent(current.agent_id):
        raise HoldNotFound(f"Hold {hold_id} not found")
    if current.status == "pending":
        raise HoldNotPending(f"Hold {hold_id} has expired")
    raise HoldNotPending(f"Hold {hold_id} is already {current.status}")


async def capture(
    session: AsyncSession, hold_id: str, amount: Any, context: CallContext
) -> HoldOutcome:
    """Pay the merchant out of the hold (all, or a smaller amount: the rest is released):
    a completed ``capture`` transaction, events ``hold.captured`` and ``payment.completed``
    (the transaction, as a payment's).

    Raises ``HoldNotFound`` (404), ``AgentFlaggedHold`` (403), ``CaptureExceedsHold`` (422)
    and ``HoldNotPending`` (409), recording nothing. A frozen agent's capture
    (``app.domain.freeze``) is refused, recorded as a failed ``capture`` transaction with
    audit ``hold_capture_failed``, and returned in ``HoldOutcome.refusal`` (403
    ``wallet_frozen``); the hold stays pending."""
    owner_id = context.principal.owner_id
    # The hold with the merchant's wallet it pays, the payer's wallet locked: one round trip.
    current = await repository.get_hold_with_payee(session, owner_id, hold_id)
    if current is None or not context.principal.sees_agent(current.agent_id):
        raise HoldNotFound(f"Hold {hold_id} not found")
    if current.agent_is_flagged:
        # A flagged agent moves no money (seed 003): void the hold, or unflag first.
        raise AgentFlaggedHold(f"Agent {current.agent_id} is flagged: its holds cannot be captured")
    captured = current.amount if amount is None else to_minor(amount, current.currency)
    if captured > current.amount:
        raise CaptureExceedsHold(
            f"amount {format_amount(captured, current.currency)} exceeds the hold of "
            f"{format_amount(current.amount, current.currency)}",
            param="amount",
        )
    tx_id = new_id("tx")
    values = {
        "id": tx_id,
        "owner_id": owner_id,
        "kind": "capture",
        "agent_id": current.agent_id,
        "from_wallet_id": current.wallet_id,
        "to_wallet_id": current.payee_wallet_id,
        "merchant_id": current.merchant_id,
        "amount": captured,
        "currency": current.currency,
        "purpose": current.purpose,
        "key_id": context.principal.key_id,
        "request_id": context.request_id,
        "hold_id": current.id,
        "created_at": context.now,
    }
    context.note(wallet_id=current.payer_wallet_id, amount=Money(captured, current.currency))
    frozen = payment_service.frozen_wallet_refusal(
        current.payer_wallet_id,
        current.agent_id,
        is_active=current.payer_is_active,
        owner_frozen=current.payer_owner_frozen,
    )
    if frozen is not None:
        if current.status != "pending" or current.expires_at <= context.now:
            # Not capturable whatever the freeze: the same answer as for anyone else.
            await _claim(session, hold_id, "captured", context)
        await payment_repository.insert_transaction(
            session,
            {
                **values,
                "fee": 0,
                "status": "failed",
                "error_code": frozen.code,
                "error_message": frozen.detail,
            },
        )
        audit = AuditBatch(
            owner_id,
            hold_id,
            current.agent_id,
            Money(captured, current.currency),
            context,
            subject_type="hold",
        )
        audit.add("hold_capture_failed", {"tx_id": tx_id, "code": frozen.code})
        await audit_service.append(session, audit.records)
        return HoldOutcome(None, frozen, tx_id)
    row = await _claim(
        session, hold_id, "captured", context, captured_amount=captured, capture_tx_id=tx_id
    )
    money = Money(captured, row.currency)
    fee = await fee_service.fee_for(session, money)
    context.note(fee=fee)
    assert current.payee_wallet_id is not None
    legs = [Leg(current.payee_account_id, money)]
    if fee.minor:
        fee_account = await ledger.system_account_id(session, AccountKind.fee_revenue, row.currency)
        legs.append(Leg(fee_account, fee))
    # Wallet row before balance rows, as a payment takes them (see ``_release``).
    await limits_service.release_spend(
        session,
        row.wallet_id,
        row.amount - captured,
        spent_at=row.authorized_at,
        tz=context.tz,
        risk_volume=row.amount - captured,
    )
    ledger_hold = await ledger.capture_hold(session, row.ledger_hold_id, legs=legs)
    transaction = await payment_repository.insert_transaction(
        session,
        {
            **values,
            "fee": fee.minor,
            "status": "completed",
            "entry_id": ledger_hold.resolve_entry_id,
            "completed_at": context.now,
        },
    )
    audit = AuditBatch(owner_id, hold_id, row.agent_id, money, context, subject_type="hold")
    audit.add("hold_captured", {"tx_id": tx_id, "fee": fee.minor})
    await audit_service.append(session, audit.records)
    completed = payment_service.transaction_event_data(
        payment_service.read_transaction(transaction)
    )
    await event_service.emit(
        session,
        [
            event_service.event(owner_id, "hold.captured", {"hold": _data(row)}),
            # Spending like any payment's: a subscriber to the seed's event list sees it.
            event_service.event(owner_id, "payment.completed", completed),
        ],
    )
    return HoldOutcome(read_hold(row))


async def void(session: AsyncSession, hold_id: str, context: CallContext) -> HoldRead:
    """Release the whole hold back to the wallet."""
    row = await _claim(session, hold_id, "voided", context)
    await _release(session, row, "voided", context)
    return read_hold(row)


async def void_pending(
    session: AsyncSession, context: CallContext, agent_ids: list[str] | None
) -> list[str]:
    """Void every pending hold (expired or not) of the caller's owner's agents
    ``agent_ids`` (all agents with None), as ``void`` does one: a freeze's
    ``release_holds``. Returns the ids of the holds voided."""
    owner_id = context.principal.owner_id
    voided = []
    for pending in await repository.pending_of(session, owner_id, agent_ids):
        row = await repository.resolve_pending(
            session,
            pending.id,
            owner_id=owner_id,
            status="voided",
            now=context.now,
            not_expired=False,
        )
        if row is not None:
            await _release(session, row, "voided", context)
            voided.append(row.id)
    return voided


async def _release(
    session: AsyncSession, row: Row[Any], outcome: str, context: CallContext
) -> None:
    # The wallet row (the counters) before the balance rows (the ledger): the order every
    # payment of this agent takes its locks in, so the two never wait on each other in a
    # cycle. A ledger error raises and rolls the counters back too.
    await limits_service.release_spend(
        session,
        row.wallet_id,
        row.amount,
        spent_at=row.authorized_at,
        tz=context.tz,
        risk_payments=1,
        risk_volume=row.amount,
    )
    await ledger.void_hold(session, row.ledger_hold_id)
    audit = AuditBatch(
        row.owner_id,
        row.id,
        row.agent_id,
        Money(row.amount, row.currency),
        context,
        subject_type="hold",
    )
    audit.add(f"hold_{outcome}", {})
    await audit_service.append(session, audit.records)
    await event_service.emit(
        session, [event_service.event(row.owner_id, f"hold.{outcome}", {"hold": _data(row)})]
    )


async def expire_due(
    session: AsyncSession, context: CallContext, *, batch: int = 100, owner_id: str | None = None
) -> int:
    """Release holds whose time is up at their owner's now (``context.now``, the server's,
    plus the owner's test clock offset), every owner's or ``owner_id``'s: the periodic job,
    and a test clock's advance. Returns how many."""
    expired = 0
    for due in await repository.due_for_expiry(session, context.now, batch, owner_id=owner_id):
        row = await repository.resolve_pending(
            session, due.id, owner_id=None, status="expired", now=due.owner_now, not_expired=False
        )
        if row is not None:
            await _release(session, row, "expired", context)
            expired += 1
    return expired


async def get(session: AsyncSession, hold_id: str, context: CallContext) -> HoldRead:
    row = await repository.get_hold(session, context.principal.owner_id, hold_id)
    if row is None or not context.principal.sees_agent(row.agent_id):
        raise HoldNotFound(f"Hold {hold_id} not found")
    return read_hold(row)


async def list_for_agent(
    session: AsyncSession, owner_id: str, agent_id: str, page: Page
) -> list[HoldRead]:
    rows = await repository.list_for_agent(
        session, owner_id, agent_id, limit=page.limit, offset=page.offset
    )
    return [read_hold(row) for row in rows]
