from datetime import datetime
from typing import Final

from pydantic import BaseModel, Field

#: Every event type Purser emits (``webhook.test`` only through ``/test``).
EVENT_TYPES: Final[dict[str, str]] = {
    "payment.initiated": "Payment started",
    "payment.completed": "Payment successful",
    "payment.failed": "Payment failed",
    "payment.refunded": "Payment refunded (in part or in full)",
    "wallet.created": "New wallet created",
    "wallet.funded": "Funds added to wallet",
    "limit.exceeded": "Spending limit hit",
    "limit.warning": "Approaching limit (80%)",
    "risk.alert": "High risk detected",
    "hold.created": "Funds reserved",
    "hold.captured": "Hold captured",
    "hold.voided": "Hold released",
    "hold.expired": "Hold expired and released",
    "invoice.created": "Payment request created",
    "invoice.paid": "Payment request paid",
    "agent.created": "Agent created",
    "agent.updated": "Agent changed",
    "merchant.created": "Merchant registered",
}


class WebhookCreate(BaseModel):
    url: str = Field(max_length=2000, examples=["https://your-app.com/webhooks/sardis"])
    events: list[str] = Field(min_length=1, examples=[["payment.completed", "payment.failed"]])
    description: str | None = Field(default=None, max_length=500)


class WebhookUpdate(BaseModel):
    url: str | None = Field(default=None, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1)
    description: str | None = Field(default=None, max_length=500)
    is_active: bool | None = None


class WebhookRead(BaseModel):
    subscription_id: str
    url: str
    events: list[str]
    description: str | None
    is_active: bool
    disabled_reason: str | None
    total_deliveries: int
    successful_deliveries: int
    failed_deliveries: int
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="`whsec_…` signing secret. Shown only once.")


class EventType(BaseModel):
    type: str
    description: str


class DeliveryAttemptRead(BaseModel):
    event_id: str
    event_type: str
    attempt: int
    status_code: int | None
    latency_ms: int
    error: str | None
    next_retry_at: datetime | None
    attempted_at: datetime
    delivery_status: str


class TestDelivery(BaseModel):
    event_id: str
    status: str = "queued"
