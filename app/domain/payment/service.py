"""Payments: the one policy pipeline every outflow passes.

In order, inside one database transaction: resolve the price (amount, or the catalog price
of a product) and the payee (named, or the product's merchant); lock the payer's wallet
row (the caller's own agent); payee checks (a product is paid only to its merchant, in
stock, in its currency; wallet currencies; not the payer's own wallet); fee; state checks
(agent active, wallet not frozen); limits against locked counters; the ledger entry
(payer -> payee + fee revenue). Once payer and payee are known, every attempt, completed
or refused, leaves a transaction row, audit records and outbox events in the same
transaction: a refusal is recorded and returned, never rolled away. Before that, a request
that is malformed (422) or names an unknown agent, merchant, wallet or product (404)
raises and records nothing.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.agent import service as agent_service
from app.domain.agent.errors import AgentNotFound
from app.domain.apikey.schemas import Principal, Tier
from app.domain.audit import service as audit_service
from app.domain.catalog import service as catalog_service
from app.domain.event import service as event_service
from app.domain.fee import service as fee_service
from app.domain.ledger import service as ledger
from app.domain.ledger.errors import INSUFFICIENT_FUNDS_TEXT, InsufficientFunds
from app.domain.ledger.schemas import Leg
from app.domain.limits import service as limits_service
from app.domain.merchant.errors import MerchantNotFound
from app.domain.payment import repository
from app.domain.payment.errors import (
    AgentFlagged,
    AgentInactive,
    CurrencyMismatch,
    InsufficientBalance,
    InvalidPayment,
    LimitExceeded,
    OwnWalletPayment,
    PaymentRefused,
    ProductMerchantMismatch,
    ProductOutOfStock,
    RecipientNotAuthorized,
    RecipientNotFound,
    RiskDenied,
    TransactionNotFound,
    WalletFrozen,
)
from app.domain.payment.schemas import (
    PaymentCreate,
    PaymentEstimate,
    PaymentResult,
    TransactionRead,
)
from app.domain.risk import service as risk_service
from app.domain.risk.rules import Assessment, Decision, RiskRules
from app.domain.wallet import repository as wallet_repository
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, scale_of, to_minor
from app.kit.pagination import Page
from app.models.ledger import AccountKind, EntryKind

DEFAULT_CURRENCY = "USDC"


@dataclass(slots=True)
class PolicyTrace:
    """What the pipeline decided on the way, noted for a dry run's answer (``dry_run``):
    the paying (or credited) wallet, the amount and fee, the limits' decision and the risk
    assessment. Filled by the steps that know each; None where a step did not run."""

    wallet_id: str | None = None
    amount: Money | None = None
    fee: Money | None = None
    risk: Assessment | None = None


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who asked and when: recorded with every attempt. ``trace`` is set for a dry run
    (``Dry-Run: true``): the steps note what they decided in it."""

    principal: Principal
    request_id: str | None
    now: datetime
    tz: ZoneInfo
    risk_rules: RiskRules = field(default_factory=RiskRules)
    trace: PolicyTrace | None = None

    def note(
        self,
        *,
        wallet_id: str | None = None,
        amount: Money | None = None,
        fee: Money | None = None,
        risk: Assessment | None = None,
    ) -> None:
        """Note what a step decided, for a dry run's answer (nothing without ``trace``)."""
        if self.trace is None:
            return
        for name, value in (
            ("wallet_id", wallet_id),
            ("amount", amount),
            ("fee", fee),
            ("risk", risk),
        ):
            if value is not None:
                setattr(self.trace, name, value)


def system_context(now: datetime, tz: ZoneInfo) -> CallContext:
    """The context of a periodic job: no key, no request; audit records name ``system``."""
    return CallContext(
        principal=Principal(
            key_id="system",
            owner_id="",
            mode="",
            scopes=frozenset(),
            agent_id=None,
            tier=Tier.standard,
        ),
        request_id=None,
        now=now,
        tz=tz,
    )


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    result: PaymentResult
    #: Set when the payment was refused (and recorded as failed).
    refusal: PaymentRefused | None = None
    tx_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Payee:
    wallet: Row[Any]
    merchant_id: str | None
    agent_id: str | None


def transaction_event_data(transaction: TransactionRead) -> dict[str, Any]:
    """Event data as the API reference's payload shows it (``id``, ``total``), plus every
    field of the transaction."""
    fields = transaction.model_dump(mode="json")
    return {"transaction": {"id": transaction.tx_id, "total": transaction.total_cost, **fields}}


def read_transaction(row: Row[Any]) -> TransactionRead:
    currency = row.currency
    return TransactionRead(
        tx_id=row.id,
        from_wallet=row.from_wallet_id,
        to_wallet=row.to_wallet_id,
        amount=format_amount(row.amount, currency),
        fee=format_amount(row.fee, currency),
        total_cost=format_amount(row.amount + row.fee, currency),
        currency=currency,
        purpose=row.purpose,
        status=row.status,
        error_message=row.error_message,
        created_at=row.created_at,
        completed_at=row.completed_at,
        agent_id=row.agent_id,
        merchant_id=row.merchant_id,
        recipient_agent_id=row.to_agent_id,
        product_id=row.product_id,
        refunded_amount=format_amount(row.refunded_amount, currency),
        risk=row.risk,
    )


@dataclass(frozen=True, slots=True)
class _Order:
    """A payment request resolved, its payer's wallet locked: what is paid to whom, and a
    refusal already found (recorded with the attempt)."""

    payer: Row[Any]
    payee: _Payee
    amount: Money
    product_id: str | None
    refusal: PaymentRefused | None


async def lock_payer_and_payee(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    merchant_id: str | None,
    wallet_id: str | None,
    windows: dict[str, Any],
    now: datetime,
) -> tuple[_Payee, Row[Any]]:
    """The wallet of merchant ``merchant_id``, or wallet ``wallet_id`` (exactly one is
    given), and the paying agent's wallet locked (as ``lock_payer``) with its spend
    counters of ``windows`` (``limits_service.windows_of``), in one round trip.
    Raises ``MerchantNotFound`` / ``RecipientNotFound`` (404), then ``AgentNotFound``
    (404) unless the caller may pay for ``agent_id``."""
    payer, wallet = await wallet_repository.lock_agent_wallet_with_payee(
        session,
        owner_id=principal.owner_id,
        agent_id=agent_id if principal.sees_agent(agent_id) else None,
        payee_owner_id=principal.owner_id,
        windows=windows,
        now=now,
        payee_merchant_id=merchant_id,
        payee_wallet_id=None if merchant_id is not None else wallet_id or "",
    )
    if merchant_id is not None:
        # Every merchant has exactly one wallet, opened with it.
        if wallet is None:
            raise MerchantNotFound(f"Merchant {merchant_id} not found", param="merchant_id")
        payee = _Payee(wallet, merchant_id, None)
    else:
        if wallet is None:
            raise RecipientNotFound(f"Wallet {wallet_id} not found", param="recipient_wallet_id")
        payee = _Payee(wallet, wallet.merchant_id, wallet.agent_id)
    if payer is None:
        raise AgentNotFound(f"Agent {agent_id} not found", param="agent_id")
    return payee, payer


async def _resolve(
    session: AsyncSession, context: CallContext, payload: PaymentCreate, windows: dict[str, Any]
) -> _Order:
    """Price and payee of ``payload``, and the payer's wallet locked: the product (if
    any), then the payee's wallet with the payer's lock (one round trip). Without a
    product: ``amount`` (+ ``currency``, default USDC) to exactly one of
    ``merchant_id`` / ``recipient_wallet_id``. With ``product_id``: its catalog price to its
    merchant, or to the one payee named; a named payee that is not the product's merchant,
    an out-of-stock product or a ``currency`` other than the product's is returned as the
    order's refusal. Raises ``InvalidPayment`` (422, also from ``to_minor``) for malformed
    requests, ``ProductNotFound``, ``MerchantNotFound``, ``RecipientNotFound``,
    ``AgentNotFound`` (404)."""
    principal = context.principal
    owner_id = principal.owner_id
    if payload.merchant_id is not None and payload.recipient_wallet_id is not None:
        raise InvalidPayment(
            "give one of merchant_id and recipient_wallet_id, not both", param="merchant_id"
        )
    if payload.product_id is None:
        if payload.merchant_id is None and payload.recipient_wallet_id is None:
            raise InvalidPayment(
                "give merchant_id or recipient_wallet_id (or a product_id: its merchant is paid)",
                param="merchant_id",
            )
        if payload.amount is None:
            raise InvalidPayment("amount is required (or a product_id)", param="amount")
        currency = payload.currency or DEFAULT_CURRENCY
        amount = Money(to_minor(payload.amount, currency, param="amount"), currency)
        payee, payer = await lock_payer_and_payee(
            session,
            principal,
            payload.agent_id,
            payload.merchant_id,
            payload.recipient_wallet_id,
            windows,
            context.now,
        )
        return _Order(payer, payee, amount, None, None)
    if payload.amount is not None:
        raise InvalidPayment(
            "give either amount or product_id: a product is paid at its catalog price",
            param="amount",
        )
    product = await catalog_service.get_row(session, owner_id, payload.product_id)
    merchant_id = payload.merchant_id
    if merchant_id is None and payload.recipient_wallet_id is None:
        merchant_id = product.merchant_id
    # A named payee is looked up as named (404 if unknown), then compared with the
    # product's merchant: the same single lookup as when it matches.
    payee, payer = await lock_payer_and_payee(
        session,
        principal,
        payload.agent_id,
        merchant_id,
        payload.recipient_wallet_id,
        windows,
        context.now,
    )
    return _Order(
        payer,
        payee,
        Money(product.price, product.currency),
        product.id,
        _product_refusal(product, payee, payload),
    )


def _product_refusal(
    product: Row[Any], payee: _Payee, payload: PaymentCreate
) -> PaymentRefused | None:
    """Why ``product`` cannot be paid to ``payee`` as ``payload`` asks, or None."""
    if payee.wallet.merchant_id != product.merchant_id:
        if payload.merchant_id is not None:
            return ProductMerchantMismatch(
                f"product {product.id} is sold by merchant {product.merchant_id}, "
                f"not {payload.merchant_id}",
                param="merchant_id",
            )
        return ProductMerchantMismatch(
            f"product {product.id} is sold by merchant {product.merchant_id}; wallet "
            f"{payee.wallet.id} is not that merchant's",
            param="recipient_wallet_id",
        )
    if not product.in_stock:
        return ProductOutOfStock(f"Product {product.id} is out of stock", param="product_id")
    if payload.currency is not None and payload.currency != product.currency:
        return CurrencyMismatch(
            f"product {product.id} is priced in {product.currency}", param="currency"
        )
    return None


def payee_refusal(wallet: Row[Any], payee_wallet: Row[Any], amount: Money) -> PaymentRefused | None:
    """Why the payer's ``wallet`` cannot pay ``amount`` to ``payee_wallet``, or None:
    ``OwnWalletPayment`` (422) or ``CurrencyMismatch`` (400). Returned, not raised: the
    caller records it."""
    if payee_wallet.id == wallet.id:
        return OwnWalletPayment("an agent cannot pay its own wallet", param="recipient_wallet_id")
    for side, currency in (("agent's wallet", wallet.currency), ("payee", payee_wallet.currency)):
        if currency != amount.currency:
            return CurrencyMismatch(
                f"the {side} holds {currency}, not {amount.currency}", param="currency"
            )
    return None


def freeze_refusal(wallet: Row[Any]) -> WalletFrozen | None:
    """403 ``wallet_frozen`` if the agent's wallet row (locked by the caller, so the flags
    are the last committed) is frozen, by its agent's freeze or the owner's
    (``app.domain.freeze``); else None."""
    return frozen_wallet_refusal(
        wallet.id, wallet.agent_id, is_active=wallet.is_active, owner_frozen=wallet.owner_frozen
    )


def frozen_wallet_refusal(
    wallet_id: str, agent_id: str, *, is_active: bool, owner_frozen: bool
) -> WalletFrozen | None:
    """``freeze_refusal`` from the two flags of wallet ``wallet_id``."""
    if owner_frozen and not is_active:
        return WalletFrozen(
            f"Wallet {wallet_id} is frozen: agent {agent_id} is frozen, and the owner froze "
            "all its agents (POST /freeze)"
        )
    if owner_frozen:
        return WalletFrozen(
            f"Wallet {wallet_id} is frozen: the owner froze all its agents (POST /freeze)"
        )
    if not is_active:
        return WalletFrozen(f"Wallet {wallet_id} is frozen (agent {agent_id} frozen)")
    return None


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """What the policy steps decided: a refusal (or None), the limits' decision (when they
    were reached) and the risk assessment (when risk was scored)."""

    refusal: PaymentRefused | None
    limits: limits_service.LimitDecision | None = None
    risk: Assessment | None = None


async def check_policy(
    session: AsyncSession,
    wallet: Row[Any],
    payee_wallet: Row[Any],
    amount: Money,
    context: CallContext,
    *,
    subject_id: str,
    events: list[dict[str, Any]],
) -> PolicyOutcome:
    """The policy steps every outflow of ``amount`` from the locked ``wallet`` to
    ``payee_wallet`` takes, in this order (DESIGN.md step 4): state (agent active, wallet
    not frozen, agent not flagged), risk (scored; the authorized services enforced; a
    ``deny`` refuses; ``review`` and ``deny`` emit ``risk.alert``), then limits against
    locked counters. Refusals are returned, with the events they emit added to ``events``."""
    owner_id = context.principal.owner_id
    if not wallet.agent_is_active:
        return PolicyOutcome(AgentInactive(f"Agent {wallet.agent_id} is inactive"))
    frozen = freeze_refusal(wallet)
    if frozen is not None:
        return PolicyOutcome(frozen)
    if wallet.agent_is_flagged:
        return PolicyOutcome(
            AgentFlagged(f"Agent {wallet.agent_id} is flagged: {wallet.agent_flag_reason}")
        )
    risk, authorized = await risk_service.assess_attempt(
        session, wallet, payee_wallet, amount, context.now, context.risk_rules
    )
    context.note(risk=risk)
    if wallet.agent_enforces_services and not authorized:
        return PolicyOutcome(
            RecipientNotAuthorized(
                f"Agent {wallet.agent_id} may pay only its authorized services; "
                f"{payee_wallet.merchant_id or payee_wallet.id} is not one of them"
            ),
            risk=risk,
        )
    if risk.decision is not Decision.allow:
        alert = risk_service.alert_data(wallet, subject_id, amount, risk)
        events.append(event_service.event(owner_id, "risk.alert", alert))
    if risk.decision is Decision.deny:
        return PolicyOutcome(
            RiskDenied(
                f"Risk score {risk.score} reaches the block score "
                f"{context.risk_rules.block_score}: "
                + "; ".join(factor.reason for factor in risk.factors)
            ),
            risk=risk,
        )
    decision = await limits_service.check(
        session, wallet, amount.minor, now=context.now, tz=context.tz
    )
    if decision.exceeded is None:
        return PolicyOutcome(None, decision, risk)
    events.append(
        event_service.event(
            owner_id,
            "limit.exceeded",
            {
                "agent_id": wallet.agent_id,
                "wallet_id": wallet.id,
                "subject_id": subject_id,
                "amount": str(amount),
                "currency": amount.currency,
                **decision.detail,
            },
        )
    )
    return PolicyOutcome(LimitExceeded(decision.message or "limit exceeded"), decision, risk)


async def inflow_refusal(
    session: AsyncSession, context: CallContext, agent_id: str, amount: Money
) -> PaymentRefused | None:
    """The policy steps an inflow to an agent's wallet takes (a funding): the agent's
    state and flag, then risk on the amount and the agent's history (recipient factors do
    not apply: the wallet is the agent's own); limits count outflows only. Raises
    ``AgentNotFound`` (404)."""
    principal = context.principal
    # The agent's wallet locked as a payer's, read as its own payee: one round trip.
    payer, _ = await wallet_repository.lock_agent_wallet_with_payee(
        session,
        owner_id=principal.owner_id,
        agent_id=agent_id if principal.sees_agent(agent_id) else None,
        payee_owner_id=principal.owner_id,
        windows=limits_service.windows_of(context.now, context.tz),
        now=context.now,
        payee_agent_id=agent_id,
    )
    if payer is None:
        raise AgentNotFound(f"Agent {agent_id} not found", param="agent_id")
    if not payer.agent_is_active:
        return AgentInactive(f"Agent {agent_id} is inactive")
    frozen = freeze_refusal(payer)
    if frozen is not None:
        return frozen
    if payer.agent_is_flagged:
        return AgentFlagged(f"Agent {agent_id} is flagged: {payer.agent_flag_reason}")
    risk = await risk_service.assess_inflow(session, payer, amount, context.now, context.risk_rules)
    context.note(wallet_id=payer.id, amount=amount, risk=risk)
    if risk.decision is Decision.deny:
        return RiskDenied(
            f"Risk score {risk.score} reaches the block score {context.risk_rules.block_score}: "
            + "; ".join(factor.reason for factor in risk.factors)
        )
    return None


def warning_events(
    owner_id: str, wallet: Row[Any], decision: limits_service.LimitDecision
) -> list[dict[str, Any]]:
    return [
        event_service.event(
            owner_id,
            "limit.warning",
            {"agent_id": wallet.agent_id, "wallet_id": wallet.id, **warning},
        )
        for warning in decision.warnings
    ]


async def create(
    session: AsyncSession, payload: PaymentCreate, context: CallContext
) -> PaymentOutcome:
    """Run a payment through the pipeline.

    Raises, recording nothing, for requests that are malformed (422: ``InvalidPayment``,
    unknown currency, bad amount) or name an unknown agent, product, merchant or wallet
    (404). Once the payer's wallet is locked, returns a refusal recorded as a failed
    transaction (``PaymentOutcome.refusal``): ``product_merchant_mismatch`` (422),
    ``product_out_of_stock`` (409), ``currency_mismatch`` (400), own wallet
    (422 ``invalid_payment``), then state, limits and balance."""
    if payload.currency is not None:
        scale_of(payload.currency)
    # Resolve payee and price, and lock the payer (one round trip with the payee's lookup:
    # the lock is then held from the same moment as before, with one trip less under it).
    windows = limits_service.windows_of(context.now, context.tz)
    order = await _resolve(session, context, payload, windows)
    return await charge(
        session,
        order.payer,
        order.payee.wallet,
        order.amount,
        context,
        purpose=payload.purpose,
        merchant_id=order.payee.merchant_id,
        to_agent_id=order.payee.agent_id,
        product_id=order.product_id,
        refusal=order.refusal,
    )


async def charge(
    session: AsyncSession,
    wallet: Row[Any],
    payee_wallet: Row[Any],
    amount: Money,
    context: CallContext,
    *,
    purpose: str | None,
    merchant_id: str | None = None,
    to_agent_id: str | None = None,
    product_id: str | None = None,
    request_id_paid: str | None = None,
    refusal: PaymentRefused | None = None,
) -> PaymentOutcome:
    """Checks, policy, ledger entry and records for a payment of ``amount`` from a locked
    payer ``wallet`` to ``payee_wallet``.

    ``refusal`` is one the caller found before locking the payer; it, or a
    ``payee_refusal``, skips policy and ledger. Every refusal is recorded (failed
    transaction row with the fee it would have cost, audit ``payment_requested`` +
    ``payment_failed``, events ``payment.initiated`` + ``payment.failed``) and returned in
    the outcome, never raised, so that the caller's commit keeps the record."""
    if refusal is None:
        refusal = payee_refusal(wallet, payee_wallet, amount)
    principal = context.principal
    owner_id = principal.owner_id
    agent_id = wallet.agent_id
    fee = await fee_service.fee_for(session, amount)
    context.note(wallet_id=wallet.id, amount=amount, fee=fee)
    tx_id = new_id("tx")
    audit = AuditBatch(owner_id, tx_id, agent_id, amount, context)
    audit.add("payment_requested", {"fee": fee.minor, "to_wallet": payee_wallet.id})
    events: list[dict[str, Any]] = []
    policy = PolicyOutcome(refusal)
    if refusal is None:
        policy = await check_policy(
            session, wallet, payee_wallet, amount, context, subject_id=tx_id, events=events
        )
        refusal = policy.refusal
    decision = policy.limits
    values = {
        "id": tx_id,
        "owner_id": owner_id,
        "agent_id": agent_id,
        "from_wallet_id": wallet.id,
        "to_wallet_id": payee_wallet.id,
        "merchant_id": merchant_id,
        "to_agent_id": to_agent_id,
        "product_id": product_id,
        "amount": amount.minor,
        "fee": fee.minor,
        "currency": amount.currency,
        "purpose": purpose,
        "key_id": principal.key_id,
        "request_id": context.request_id,
        "request_id_paid": request_id_paid,
        "risk": None if policy.risk is None else policy.risk.as_record(),
        "created_at": context.now,
    }
    if refusal is None:
        assert decision is not None
        # The ledger entry, the spend it counts against the limits and the transaction
        # row, in one round trip: a refusal by the ledger is recorded by the same statement.
        legs = [
            Leg(wallet.available_account_id, Money(-(amount.minor + fee.minor), amount.currency)),
            Leg(payee_wallet.available_account_id, amount),
        ]
        if fee.minor:
            fee_account = await ledger.system_account_id(
                session, AccountKind.fee_revenue, amount.currency
            )
            legs.append(Leg(fee_account, fee))
        planned = ledger.plan_entry(
            kind=EntryKind.payment, legs=legs, reference=f"payment:{tx_id}", description=purpose
        )
        row = await repository.post_and_record(
            session,
            {**values, "completed_at": context.now},
            entry=planned.params,
            outflow=repository.outflow_params(
                limits_service.spend_params(wallet, amount.minor, decision),
                payee_wallet_id=payee_wallet.id,
                at=context.now,
            ),
            refusal={
                "refusal_code": InsufficientBalance.code,
                "refusal_text": INSUFFICIENT_FUNDS_TEXT,
                "need": format_amount(amount.minor + fee.minor, amount.currency),
                "scale": scale_of(amount.currency),
            },
        )
        try:
            ledger.posted(planned, row.entry_outcome, row.entry_account_id, row.entry_available)
        except InsufficientFunds:
            # The row holds the refusal, its message written with the ledger's figures.
            refusal = InsufficientBalance(row.error_message)
    else:
        row = await repository.record_refusal(
            session, values, error_code=refusal.code, error_message=refusal.detail
        )
    transaction = read_transaction(row)
    initiated = transaction_event_data(transaction)
    initiated["transaction"]["status"] = "initiated"
    events.insert(0, event_service.event(owner_id, "payment.initiated", initiated))
    if refusal is None:
        assert decision is not None
        audit.add("payment_completed", {"fee": fee.minor, "entry_id": row.entry_id})
        events.append(
            event_service.event(owner_id, "payment.completed", transaction_event_data(transaction))
        )
        events.extend(warning_events(owner_id, wallet, decision))
    else:
        audit.add("payment_failed", {"code": refusal.code, "reason": refusal.detail})
        events.append(
            event_service.event(owner_id, "payment.failed", transaction_event_data(transaction))
        )
    await audit_service.append(session, audit.records)
    await event_service.emit(session, events)
    if refusal is not None:
        return PaymentOutcome(
            PaymentResult(success=False, transaction=None, error=refusal.detail), refusal, tx_id
        )
    return PaymentOutcome(
        PaymentResult(success=True, transaction=transaction, error=None), None, tx_id
    )


class AuditBatch:
    """Audit records of one subject, appended together at the end of the use case."""

    def __init__(
        self,
        owner_id: str,
        subject_id: str,
        agent_id: str,
        amount: Money,
        context: CallContext,
        subject_type: str = "transaction",
    ) -> None:
        self.records: list[dict[str, Any]] = []
        self._common: dict[str, Any] = {
            "owner_id": owner_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "key_id": context.principal.key_id,
            "request_id": context.request_id,
            "agent_id": agent_id,
            "amount": amount.minor,
            "currency": amount.currency,
        }

    def add(self, event: str, data: dict[str, Any]) -> None:
        self.records.append(audit_service.record(event=event, data=data, **self._common))


async def estimate(session: AsyncSession, amount: Any, currency: str) -> PaymentEstimate:
    """What a payment of ``amount`` costs: the same fee code the payment runs."""
    money = Money(to_minor(amount, currency, param="amount"), currency)
    fee = await fee_service.fee_for(session, money)
    return PaymentEstimate(
        amount=str(money),
        fee=str(fee),
        total=format_amount(money.minor + fee.minor, currency),
        currency=currency,
    )


async def get(session: AsyncSession, principal: Principal, tx_id: str) -> TransactionRead:
    row = await repository.get_transaction(session, principal.owner_id, tx_id)
    if row is None or not (
        principal.sees_agent(row.agent_id)
        or (row.to_agent_id and principal.sees_agent(row.to_agent_id))
    ):
        raise TransactionNotFound(f"Transaction {tx_id} not found")
    return read_transaction(row)


async def list_for_agent(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    page: Page,
    starting_after: str | None,
) -> list[TransactionRead]:
    """The agent's payments (made or received), newest first, after ``starting_after``.

    Raises ``AgentNotFound`` (404) for an agent the caller does not see, and
    ``TransactionNotFound`` (404, ``param`` ``starting_after``) for a cursor that is not
    one of this agent's transactions."""
    await agent_service.get(session, principal, agent_id)
    anchor = None
    if starting_after is not None:
        anchor = await repository.get_transaction(session, principal.owner_id, starting_after)
        # A cursor must be an item of this very listing: another agent's transaction (one
        # an agent key may not see) answers exactly like one that does not exist.
        if anchor is None or agent_id not in (anchor.agent_id, anchor.to_agent_id):
            raise TransactionNotFound(
                f"Transaction {starting_after} not found", param="starting_after"
            )
    rows = await repository.list_for_agent(
        session,
        principal.owner_id,
        agent_id,
        limit=page.limit,
        offset=page.offset,
        starting_after=anchor,
    )
    return [read_transaction(row) for row in rows]
