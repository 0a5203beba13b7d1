from datetime import datetime

from pydantic import BaseModel, Field, StrictInt

from app.kit.schemas import RequestSchema


class ClockAdvance(RequestSchema):
    seconds: StrictInt = Field(
        ge=1,
        le=31_536_000,
        description="How far to move the clock forward, in seconds (1 to one year per call).",
        examples=[86_400],
    )


class ClockRead(BaseModel):
    """The owner's sandbox clock."""

    now: datetime = Field(description="Purser's now for this owner (ISO 8601, UTC).")
    offset_seconds: int = Field(description="How far it runs ahead of the server's clock.")
    server_now: datetime
    holds_expired: int = Field(default=0, description="Holds this call expired.")
    payment_requests_expired: int = Field(
        default=0, description="Payment requests this call expired."
    )
