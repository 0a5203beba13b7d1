from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.domain.wallet.schemas import LimitStateRead
from app.kit.money import AmountText
from app.kit.schemas import CurrencyText, IdText, RequestSchema


class PaymentCreate(RequestSchema):
    agent_id: IdText = Field(examples=["agent_a1b2c3d4e5f6g7h8"])
    merchant_id: IdText | None = Field(
        default=None,
        description="Pay this merchant. Optional with `product_id` (its merchant is paid); "
        "if given it must be the product's merchant, else 422 `product_merchant_mismatch`.",
    )
    recipient_wallet_id: IdText | None = Field(
        default=None,
        description="… or this wallet. With `product_id` it must be the product's "
        "merchant's wallet, else 422 `product_merchant_mismatch`.",
    )
    amount: AmountText | None = Field(
        default=None, description="Decimal string; omit when paying a product_id."
    )
    currency: CurrencyText | None = Field(
        default=None, description="Default USDC (or the product's)."
    )
    purpose: str | None = Field(default=None, max_length=500)
    product_id: IdText | None = Field(
        default=None, description="Pay the catalog price of this in-stock product to its merchant."
    )


class RiskFactor(BaseModel):
    name: str
    points: int
    reason: str


class RiskRecord(BaseModel):
    decision: str = Field(description="allow, review or deny")
    score: int
    level: str = Field(description="low, medium, high or critical")
    factors: list[RiskFactor]


class TransactionRead(BaseModel):
    tx_id: str
    from_wallet: str
    to_wallet: str
    amount: str
    fee: str
    total_cost: str
    currency: str
    purpose: str | None
    status: str = Field(description="completed, failed, partially_refunded or refunded")
    error_message: str | None
    created_at: datetime
    completed_at: datetime | None
    agent_id: str
    merchant_id: str | None
    recipient_agent_id: str | None
    product_id: str | None
    refunded_amount: str = "0.00"
    risk: RiskRecord | None = Field(
        default=None, description="The risk decision of the attempt, when risk was scored"
    )


class PaymentResult(BaseModel):
    success: bool
    transaction: TransactionRead | None
    error: str | None


class PaymentEstimate(BaseModel):
    amount: str
    fee: str
    total: str
    currency: str


class DryRunReason(BaseModel):
    code: str = Field(examples=["limit_exceeded"])
    message: str = Field(
        examples=["Amount 60.00 exceeds the daily limit of 100.00 (remaining 50.00)"]
    )


class DryRunResult(BaseModel):
    """What the call would do, from the whole pipeline run and rolled back: nothing was
    written. Amounts are decimal strings in the wallet's currency."""

    dry_run: bool = Field(default=True, description="Always true: nothing was written.")
    decision: str = Field(description="`allow` or `deny`.", examples=["allow"])
    status_code: int = Field(description="The status the real call would answer.")
    reasons: list[DryRunReason] = Field(
        description="Why it would be refused (the refusal's `code` and message); empty "
        "when allowed."
    )
    wallet_id: str | None = Field(description="The wallet the call debits (or credits).")
    amount: str | None
    fee: str | None = Field(description="The fee the call would charge; null where none.")
    currency: str | None
    projected_balance: str | None = Field(
        description="The wallet's available balance after the call (unchanged if denied)."
    )
    projected_held_balance: str | None
    limits: dict[str, LimitStateRead] = Field(
        description="Each configured limit as it would stand after the call "
        "(`used`, `remaining` projected; unchanged if denied)."
    )
    risk: dict[str, Any] | None = Field(
        description="The risk assessment: `decision`, `score`, `level`, `factors`; null "
        "where risk was not scored (a refusal before it, a refund, a capture)."
    )
