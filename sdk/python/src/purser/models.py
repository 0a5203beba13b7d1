"""Response models. Amounts are ``Decimal``; unknown fields are kept, never an error."""

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
    pass


class Wallet(PurserModel):
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


class Product(PurserModel):
    product_id: str
    name: str
    description: str | None = None
    price: Decimal
    currency: str
    category: str | None = None
    in_stock: bool = True
    merchant_id: str


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
    risk: dict[str, Any] | None = None


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
    tx_id: str | None = None


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
    secret: str


class RiskScore(PurserModel):
    score: float
    level: str
    factors: list[Any]
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
