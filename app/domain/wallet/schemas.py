from datetime import datetime

from pydantic import BaseModel, Field

from app.kit.money import AmountText
from app.kit.schemas import RequestSchema


class VirtualCardRead(BaseModel):
    card_id: str
    masked_number: str = Field(examples=["**** **** **** 5678"])
    is_active: bool


class LimitStateRead(BaseModel):
    """A configured limit as it stands: decimal strings in the wallet's currency."""

    limit: str = Field(examples=["100.00"])
    used: str = Field(
        description="Counted in the current window (lifetime for `total`; always 0 for "
        "`per_tx`). Payments count their amount, fees excluded; pending holds count.",
        examples=["42.50"],
    )
    remaining: str = Field(
        description="What the next payment may spend as far as this limit goes.",
        examples=["57.50"],
    )
    resets_at: datetime | None = Field(
        description="When the window starts again (ISO 8601, in the limits time zone's "
        "calendar: `PURSER_LIMITS_TIMEZONE`); null for `per_tx` and `total`."
    )


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
        description="limit_total - spent_total: the lifetime figure the API reference "
        "defines; null if no total limit. `limits` gives each window."
    )
    limits: dict[str, LimitStateRead] = Field(
        default_factory=dict,
        description="Each configured limit (`per_tx`, `daily`, `weekly`, `monthly`, "
        "`total`) as it stands now, from the counters the payment pipeline locks.",
    )
    frozen: bool = Field(
        default=False,
        description="The wallet moves no money: its agent is frozen, or all the owner's "
        "agents are (`POST /freeze`).",
    )
    frozen_by: list[str] = Field(
        default_factory=list,
        description="What holds it frozen: `agent` (`POST /agents/{id}/freeze`), `owner` "
        "(`POST /freeze`), both, or none.",
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
