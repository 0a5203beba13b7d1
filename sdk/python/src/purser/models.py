"""Response models. Wallet-API amounts (``"15.99"`` on the wire) are ``Decimal``; the
Sequence gateway speaks integer cents (``balance_cents: 150000``) and display text
(``balance: "$1,500.00"``), exactly as its documents do, so those stay ``int`` and ``str``.
Unknown fields are kept (``model.model_extra``), never an error."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict


class PurserModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=False)


class Agent(PurserModel):
    agent_id: str
    name: str
    owner_id: str
    description: str | None = None
    wallet_id: str | None = None
    is_active: bool = True
    enforce_authorized_services: bool = False
    created_at: datetime | None = None


class VirtualCard(PurserModel):
    card_id: str
    masked_number: str
    is_active: bool = True


class LimitState(PurserModel):
    """A configured limit as it stands: ``used`` in the current window (lifetime for
    ``total``), ``remaining`` for the next payment, ``resets_at`` when the window starts
    again (``None`` for ``per_tx`` and ``total``)."""

    limit: Decimal
    used: Decimal
    remaining: Decimal
    resets_at: datetime | None = None


class Wallet(PurserModel):
    """``balance`` is available now, ``held_balance`` reserved by pending holds; ``limits``
    gives each configured limit (``per_tx``, ``daily``, ``weekly``, ``monthly``, ``total``)
    as it stands; ``frozen``: the wallet moves no money."""

    wallet_id: str
    agent_id: str
    balance: Decimal
    held_balance: Decimal = Decimal(0)
    currency: str
    limit_per_tx: Decimal | None = None
    limit_total: Decimal | None = None
    limit_daily: Decimal | None = None
    limit_weekly: Decimal | None = None
    limit_monthly: Decimal | None = None
    spent_total: Decimal = Decimal(0)
    remaining_limit: Decimal | None = None
    limits: dict[str, LimitState] = {}
    frozen: bool = False
    #: What holds the wallet frozen: ``agent``, ``owner``, both, or none.
    frozen_by: list[str] = []
    virtual_card: VirtualCard | None = None
    is_active: bool = True
    created_at: datetime | None = None


class AgentCreated(PurserModel):
    agent: Agent
    wallet: Wallet


class Merchant(PurserModel):
    merchant_id: str
    name: str
    wallet_id: str
    description: str | None = None
    category: str | None = None
    is_active: bool = True
    created_at: datetime | None = None


class MerchantWallet(PurserModel):
    wallet_id: str
    merchant_id: str
    balance: Decimal
    currency: str
    is_active: bool = True
    created_at: datetime | None = None


class Product(PurserModel):
    product_id: str
    name: str
    description: str | None = None
    price: Decimal
    currency: str
    category: str | None = None
    in_stock: bool = True
    merchant_id: str


class RiskFactor(PurserModel):
    """One rule that scored: its name (``velocity_hour``, ``large_amount``…), its points
    and why."""

    name: str
    points: int
    reason: str


class RiskRecord(PurserModel):
    """The risk decision stored with a payment: ``allow``, ``review`` or ``deny``."""

    decision: str
    score: int
    level: str
    factors: list[RiskFactor]


class Transaction(PurserModel):
    tx_id: str
    from_wallet: str
    to_wallet: str
    amount: Decimal
    fee: Decimal
    total_cost: Decimal
    currency: str
    purpose: str | None = None
    status: str
    error_message: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    agent_id: str
    merchant_id: str | None = None
    recipient_agent_id: str | None = None
    product_id: str | None = None
    refunded_amount: Decimal = Decimal(0)
    risk: RiskRecord | None = None


class PaymentResult(PurserModel):
    success: bool
    transaction: Transaction | None = None
    error: str | None = None


class PaymentEstimate(PurserModel):
    amount: Decimal
    fee: Decimal
    total: Decimal
    currency: str


class Hold(PurserModel):
    hold_id: str
    agent_id: str
    merchant_id: str
    wallet_id: str
    amount: Decimal
    fee: Decimal
    currency: str
    purpose: str | None = None
    status: str
    captured_amount: Decimal | None = None
    capture_tx_id: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    resolved_at: datetime | None = None


class Refund(PurserModel):
    refund_id: str
    tx_id: str
    amount: Decimal
    fee_returned: Decimal = Decimal(0)
    currency: str
    reason: str | None = None
    status: str | None = None
    created_at: datetime | None = None


class PaymentRequest(PurserModel):
    request_id: str
    requester_agent_id: str
    payer_agent_id: str
    amount: Decimal
    currency: str
    description: str | None = None
    status: str
    created_at: datetime | None = None
    expires_at: datetime | None = None
    #: When it was paid, cancelled or expired; ``None`` while pending.
    resolved_at: datetime | None = None
    tx_id: str | None = None


class DryRunReason(PurserModel):
    """Why a dry run would be refused: the refusal's ``code`` (``limit_exceeded``,
    ``insufficient_funds``, ``wallet_frozen``…) and its message."""

    code: str
    message: str


class DryRunResult(PurserModel):
    """What a call would do (``Dry-Run: true``): the server ran it through the whole
    pipeline and rolled it back, writing nothing. ``decision`` is ``allow`` or ``deny``;
    ``status_code`` the status the real call would answer (``deny``: the refusal's, e.g.
    400 or 403; ``allow``: 200, 201 for a hold or refund, 202 for a Sequence transfer or a
    wallet funding); ``reasons`` the refusal's code and message (empty when allowed).
    ``fee`` and the projected balances are ``Decimal`` in ``currency`` (a denied call
    projects the wallet as it is; a funding's ``projected_balance`` is the wallet's once
    credited); ``limits`` each configured limit as it would stand after the call (for a
    Sequence transfer or funding, ``sequence_per_transfer`` and ``sequence_daily``, in
    dollars); ``risk`` the assessment (``None`` where risk is not scored: a refusal before
    it, a capture, a refund, a Sequence transfer)."""

    dry_run: bool = True
    decision: str
    status_code: int
    reasons: list[DryRunReason] = []
    wallet_id: str | None = None
    amount: Decimal | None = None
    fee: Decimal | None = None
    currency: str | None = None
    projected_balance: Decimal | None = None
    projected_held_balance: Decimal | None = None
    limits: dict[str, LimitState] = {}
    risk: RiskRecord | None = None


class Webhook(PurserModel):
    subscription_id: str
    url: str
    events: list[str]
    description: str | None = None
    is_active: bool = True
    disabled_reason: str | None = None
    total_deliveries: int = 0
    successful_deliveries: int = 0
    failed_deliveries: int = 0
    created_at: datetime | None = None


class WebhookCreated(Webhook):
    """A subscription with its ``whsec_…`` signing secret: shown at creation and on
    ``rotate_webhook_secret`` only."""

    secret: str


class EventType(PurserModel):
    type: str
    description: str


class TestDelivery(PurserModel):
    """An event queued for one subscription (``test_webhook``, ``replay_webhook_delivery``)."""

    __test__ = False  # not a pytest test class, whatever its name

    event_id: str
    status: str | None = None


class DeliveryAttempt(PurserModel):
    """One attempt to deliver an event: ``status_code`` (``None`` when nothing answered),
    ``latency_ms``, ``error``, ``next_retry_at``; ``delivery_status`` is the event's."""

    event_id: str
    event_type: str
    attempt: int
    status_code: int | None = None
    latency_ms: int
    error: str | None = None
    next_retry_at: datetime | None = None
    attempted_at: datetime
    delivery_status: str


class RiskScore(PurserModel):
    """``score`` from 0 to 100; ``level`` low, medium, high or critical."""

    score: float
    level: str
    factors: list[RiskFactor]
    details: dict[str, Any]
    is_acceptable: bool


class RiskProfile(PurserModel):
    agent_id: str
    current_score: float
    current_level: str
    total_transactions: int
    failed_transactions: int
    total_volume: Decimal
    is_flagged: bool
    flag_reason: str | None = None
    authorized_services: list[str]


class FlagState(PurserModel):
    agent_id: str
    is_flagged: bool
    flag_reason: str | None = None
    flagged_at: datetime | None = None


class AuthorizedServices(PurserModel):
    agent_id: str
    services: list[str]


class FreezeResult(PurserModel):
    """What a freeze or unfreeze changed. ``scope`` ``agent`` (``agent_id`` is the agent)
    or ``owner`` (every agent of the owner; ``agent_id`` is ``None``); ``frozen`` the state
    after the call (for an agent: whether it moves no money, held by ``frozen_by``:
    ``agent``, ``owner`` or both); ``changed`` ``False`` when that state did not change;
    ``agent_ids`` the agents whose state changed (each got an event); ``holds_released``
    the holds voided (``release_holds=True``, owner keys only)."""

    scope: str
    agent_id: str | None = None
    frozen: bool
    frozen_by: list[str] = []
    changed: bool
    agent_ids: list[str] = []
    holds_released: list[str] = []


# -- the journal: signed amounts ("-15.99" is money out of the account) --------------------


class AccountOwner(PurserModel):
    """Whose account a posting names: ``type`` ``agent``, ``merchant``, ``fee`` (fee
    revenue), ``deposit`` (the owner's sandbox deposit) or ``rail`` (Sequence); ``id`` and
    ``wallet_id`` of an agent or merchant (``None`` for the platform's accounts); ``name``
    when the key may read it (else ``None``), a label for the platform's accounts."""

    type: str
    id: str | None = None
    name: str | None = None
    wallet_id: str | None = None


class Posting(PurserModel):
    """One account's side of a journal entry: ``account`` is the account's kind
    (``wallet_available``, ``wallet_held``, ``merchant``, ``fee_revenue``,
    ``owner_deposit``, ``rail_clearing``); ``amount`` is signed, positive into it."""

    account: str
    owner: AccountOwner
    amount: Decimal
    currency: str


class EntryReference(PurserModel):
    """What an entry records: ``type`` ``payment`` (``id`` the tx_id), ``payment_request``
    (``id`` the request, ``tx_id`` its payment), ``hold``, ``capture`` / ``void`` (``id``
    the hold; a capture's ``tx_id``), ``refund`` (``id`` the refund, ``tx_id`` the payment
    refunded), ``funding`` (``transfer_id`` Sequence's), ``initial_balance`` (``id`` the
    wallet) or ``other`` (``id`` the raw reference)."""

    type: str
    id: str
    tx_id: str | None = None
    transfer_id: str | None = None


class WalletEntry(PurserModel):
    """One posting of a wallet account (``account`` ``available`` or ``held``), newest
    first in a listing: ``amount`` signed (negative is money out), ``balance_after`` the
    account's balance right after it (the newest one's is the wallet's ``balance``, or
    ``held_balance`` for ``held``), the entry's other postings (``counterparties``) and
    what it records (``reference``). ``kind``: ``payment``, ``funding``, ``hold``,
    ``capture``, ``void``, ``refund``, ``transfer`` or ``adjustment``."""

    entry_id: str
    kind: str
    account: str
    amount: Decimal
    balance_after: Decimal
    currency: str
    counterparties: list[Posting] = []
    reference: EntryReference | None = None
    description: str | None = None
    created_at: datetime


class JournalEntry(PurserModel):
    """A journal entry with every posting (they sum to zero per currency)."""

    entry_id: str
    kind: str
    reference: EntryReference | None = None
    description: str | None = None
    postings: list[Posting]
    created_at: datetime


class TestClock(PurserModel):
    """The owner's sandbox clock: ``now`` (Purser's now for every request of the owner's
    keys), ``offset_seconds`` ahead of the server's clock (``server_now``); after an
    advance, how many holds and payment requests it expired."""

    __test__ = False  # not a pytest test class, whatever its name

    now: datetime
    offset_seconds: int
    server_now: datetime
    holds_expired: int = 0
    payment_requests_expired: int = 0


class AuditRecord(PurserModel):
    seq: int | None = None
    event: str
    key_id: str | None = None
    request_id: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    agent_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    data: dict[str, Any] | None = None
    created_at: datetime | None = None
    sealed: bool | None = None


class AuditPage(PurserModel):
    data: list[AuditRecord]
    next_cursor: str | None = None


class Health(PurserModel):
    status: str


class Readiness(PurserModel):
    status: str
    database: str


class ApiKey(PurserModel):
    """An API key without its secret. ``agent_id`` set: a key restricted to that agent."""

    key_id: str
    name: str
    owner_id: str
    agent_id: str | None = None
    scopes: list[str]
    tier: str
    mode: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKey):
    """A new key; ``secret`` (``sk_test_…``) is the whole key, shown only this once."""

    secret: str


# -- the Sequence gateway: cents as integers, balances also as "$1,500.00" -----------------


class Pod(PurserModel):
    id: str
    name: str
    organization_id: str | None = None
    balance_cents: int | None = None
    balance: str | None = None


class TotalBalance(PurserModel):
    total_balance_cents: int
    total_balance: str
    pod_count: int


class TransferSummary(PurserModel):
    """A Sequence transfer: ``amount_cents``, ``amount`` as "$50.00", ``status`` as
    Sequence reports it (``COMPLETE``, ``PENDING``…)."""

    id: str
    status: str
    amount_cents: int
    amount: str
    direction: str | None = None
    activity_type: str | None = None
    source: dict[str, Any] | None = None
    destination: dict[str, Any] | None = None
    error_reason: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None


class PodDetail(Pod):
    description: str | None = None
    goal_amount_cents: int | None = None
    available_balance_cents: int | None = None
    balance_last_updated_at: datetime | None = None
    recent_transfers: list[TransferSummary] = []


class SequenceAccount(PurserModel):
    """A pod, a port (income source) or an external account."""

    id: str
    name: str
    type: str
    institution: str | None = None
    external_account_type: str | None = None
    balance_cents: int | None = None
    balance: str | None = None


class SequenceAccounts(PurserModel):
    pods: list[SequenceAccount]
    ports: list[SequenceAccount]
    accounts: list[SequenceAccount]


class ActivitySummary(PurserModel):
    transfer_count: int
    rule_executions: int
    total_incoming_cents: int
    total_incoming: str
    period_start: datetime | None = None


class ActivityPage(PurserModel):
    transfers: list[TransferSummary]
    has_next_page: bool
    end_cursor: str | None = None


class TransferResult(PurserModel):
    """``status`` ``completed`` (``transfer_id`` is Sequence's id) or ``pending`` (Sequence
    is still working; a poller settles it); ``id`` is Purser's ``seqt_…`` id."""

    status: str
    transfer_id: str | None = None
    id: str
    amount_cents: int
    source_id: str
    destination_id: str
    sequence_status: str | None = None
    error: str | None = None


class SequenceConnection(PurserModel):
    """Which Sequence organisation the owner's gateway talks to: ``owner`` (its own key,
    shown by ``key_hint`` only), ``default``, ``sandbox`` or ``none``."""

    source: str
    key_hint: str | None = None
    base_url: str | None = None
    updated_at: datetime | None = None


class SequenceLimits(PurserModel):
    """Per-transfer and daily limits of the owner's Sequence transfers, in cents."""

    max_transfer_cents: int
    max_daily_transfer_cents: int
    used_today_cents: int
    remaining_today_cents: int


class Funding(PurserModel):
    """A wallet funding from a Sequence pod: ``pending``, then ``completed`` (the wallet was
    credited ``amount``, once) or ``failed`` (nothing credited, ``error`` says why)."""

    funding_id: str
    agent_id: str
    wallet_id: str
    status: str
    amount: Decimal
    currency: str
    pod_id: str
    transfer_id: str | None = None
    error: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
