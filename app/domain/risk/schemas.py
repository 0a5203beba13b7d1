from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.domain.payment.schemas import RiskFactor
from app.kit.schemas import IdText, RequestSchema


class RiskScore(BaseModel):
    """Seed 003 "Get Risk Score": the agent scored alone, now."""

    score: float = Field(description="0 to 100: the capped sum of the factors' points")
    level: str = Field(description="low (< 25), medium (< 50), high (< 75) or critical")
    factors: list[RiskFactor]
    details: dict[str, Any] = Field(description="The history the rules read")
    is_acceptable: bool = Field(description="score < 75")


class RiskProfile(BaseModel):
    """Seed 003 "Get Risk Profile": totals from the agent's stored transactions."""

    agent_id: str
    current_score: float
    current_level: str
    total_transactions: int = Field(description="Payments the agent made, refused ones too")
    failed_transactions: int
    total_volume: str = Field(description="Amount of its payments not refused (decimal text)")
    is_flagged: bool
    flag_reason: str | None
    authorized_services: list[str]


class ServiceAuthorize(RequestSchema):
    service_id: IdText = Field(description="A merchant_… or wallet_… id of the owner's")


class AuthorizedServices(BaseModel):
    agent_id: str
    services: list[str]


class FlagCreate(RequestSchema):
    reason: str = Field(min_length=1, max_length=500)


class FlagState(BaseModel):
    agent_id: str
    is_flagged: bool
    flag_reason: str | None
    flagged_at: datetime | None
