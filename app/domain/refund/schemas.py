from datetime import datetime

from pydantic import BaseModel, Field

from app.kit.money import AmountText
from app.kit.schemas import RequestSchema


class RefundCreate(RequestSchema):
    amount: AmountText | None = Field(
        default=None, description="Part of the payment to refund; default: all that is left."
    )
    reason: str | None = Field(default=None, max_length=500)


class RefundRead(BaseModel):
    refund_id: str
    tx_id: str
    amount: str
    fee_returned: str
    currency: str
    reason: str | None
    status: str = "succeeded"
    created_at: datetime
