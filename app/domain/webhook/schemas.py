from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, Field, StrictBool, StringConstraints, WithJsonSchema

from app.kit.schemas import RequestSchema

#: Every event type Purser emits (``webhook.test`` only through ``/test``).
EVENT_TYPES: Final[dict[str, str]] = {
    "payment.initiated": "Payment started",
    "payment.completed": "Payment successful",
    "payment.failed": "Payment failed",
    "payment.refunded": "Payment refunded (in part or in full)",
    "wallet.created": "New wallet created",
    "wallet.funded": "Funds added to wallet",
    "wallet.funding_failed": "A funding from a rail failed: nothing credited",
    "limit.exceeded": "Spending limit hit",
    "limit.warning": "Approaching limit (80%)",
    "risk.alert": "High risk detected",
    "agent.flagged": "Agent flagged: it moves no money until unflagged",
    "agent.unflagged": "Agent unflagged",
    "service.authorized": "Merchant or wallet authorized for an agent",
    "service.revoked": "Authorization of a merchant or wallet revoked",
    "hold.created": "Funds reserved",
    "hold.captured": "Hold captured",
    "hold.voided": "Hold released",
    "hold.expired": "Hold expired and released",
    "invoice.created": "Payment request created",
    "invoice.paid": "Payment request paid",
    "agent.created": "Agent created",
    "agent.updated": "Agent changed",
    "agent.frozen": "Agent frozen: its wallet moves no money until unfrozen",
    "agent.unfrozen": "Agent unfrozen",
    "merchant.created": "Merchant registered",
}


#: Longest event type name accepted in a subscription (the longest known is far shorter).
MAX_EVENT_TYPE_LENGTH: Final = 64
#: An event type: any short text parses, the service refuses an unknown one with
#: ``422 unknown_event_type``; OpenAPI lists the known ones.
EventTypeText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_EVENT_TYPE_LENGTH),
    WithJsonSchema({"type": "string", "enum": list(EVENT_TYPES)}),
]
#: What OpenAPI states of a webhook URL: an absolute http(s) URL in printable ASCII (RFC
#: 3986). The service checks the rest (host, port range, public addresses in live mode)
#: and refuses with ``422 invalid_webhook_url``.
URL_PATTERN: Final = r"^https?://[!-~]+$"


class WebhookCreate(RequestSchema):
    url: str = Field(
        max_length=2000,
        examples=["https://your-app.com/webhooks/sardis"],
        json_schema_extra={"pattern": URL_PATTERN},
    )
    events: list[EventTypeText] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        examples=[["payment.completed", "payment.failed"]],
    )
    description: str | None = Field(default=None, max_length=500)


class WebhookUpdate(RequestSchema):
    url: str | None = Field(
        default=None, max_length=2000, json_schema_extra={"pattern": URL_PATTERN}
    )
    events: list[EventTypeText] | None = Field(
        default=None, min_length=1, max_length=len(EVENT_TYPES)
    )
    description: str | None = Field(default=None, max_length=500)
    is_active: StrictBool | None = None


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
