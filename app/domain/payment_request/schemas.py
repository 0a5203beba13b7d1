from datetime import datetime

from pydantic import BaseModel, Field, StrictInt

from app.kit.money import AmountText
from app.kit.schemas import CurrencyText, IdText, RequestSchema


class PaymentRequestCreate(RequestSchema):
    requester_agent_id: IdText = Field(description="Your agent, to be paid.")
    payer_agent_id: IdText = Field(description="The agent asked to pay (any owner's).")
    amount: AmountText
    currency: CurrencyText = "USDC"
    description: str | None = Field(default=None, max_length=1000)
    expires_in_hours: StrictInt = Field(default=24, ge=1, le=168)


class PaymentRequestRead(BaseModel):
    request_id: str
    requester_agent_id: str
    payer_agent_id: str
    amount: str
    currency: str
    description: str | None
    status: str = Field(description="pending, paid, cancelled or expired")
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None = Field(
        default=None, description="When it was paid, cancelled or expired; null while pending."
    )
    tx_id: str | None = None
