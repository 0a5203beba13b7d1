from datetime import datetime

from pydantic import BaseModel, Field

from app.kit.money import AmountText
from app.kit.schemas import RequestSchema


class VirtualCardRead(BaseModel):
    card_id: str
    masked_number: str = Field(examples=["**** **** **** 5678"])
    is_active: bool


class WalletRead(BaseModel):
    """An agent's wallet. Amounts are decimal strings in the wallet's currency."""

    wallet_id: str
    agent_id: str
    balance: str = Field(description="Available to spend now.", examples=["100.00"])
    held_balance: str = Field(description="Reserved by pending holds.", examples=["0.00"])
    currency: str
    limit_per_tx: str | None
    limit_total: str | None
    limit_daily: str | None = None
    limit_weekly: str | None = None
    limit_monthly: str | None = None
    spent_total: str
    remaining_limit: str | None = Field(
        description="limit_total - spent_total; null if no total limit."
    )
    virtual_card: VirtualCardRead | None
    is_active: bool
    created_at: datetime


class MerchantWalletRead(BaseModel):
    wallet_id: str
    merchant_id: str
    balance: str
    currency: str
    is_active: bool
    created_at: datetime


class WalletLimitsUpdate(RequestSchema):
    """Fields left out are unchanged; ``null`` removes a limit."""

    limit_per_tx: AmountText | None = None
    limit_total: AmountText | None = None
    limit_daily: AmountText | None = None
    limit_weekly: AmountText | None = None
    limit_monthly: AmountText | None = None
