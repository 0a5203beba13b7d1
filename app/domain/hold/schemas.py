from datetime import datetime

from pydantic import BaseModel, Field, StrictInt

from app.kit.money import AmountText
from app.kit.schemas import CurrencyText, IdText, RequestSchema


class HoldCreate(RequestSchema):
    agent_id: IdText
    merchant_id: IdText
    amount: AmountText
    currency: CurrencyText = "USDC"
    expires_in_minutes: StrictInt = Field(default=30, ge=5, le=1440)
    purpose: str | None = Field(default=None, max_length=500)


class HoldCapture(RequestSchema):
    amount: AmountText | None = Field(
        default=None, description="At most the held amount; the rest is released. Default: all."
    )


class HoldRead(BaseModel):
    hold_id: str
    agent_id: str
    merchant_id: str
    wallet_id: str
    amount: str
    fee: str = Field(description="Fee reserved with the amount (that of a full capture).")
    currency: str
    purpose: str | None
    status: str = Field(description="pending, captured, voided or expired")
    captured_amount: str | None
    capture_tx_id: str | None
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None
