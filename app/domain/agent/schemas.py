from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field, field_validator

from app.domain.wallet.schemas import WalletRead


class AgentCreate(BaseModel):
    name: str = Field(min_length=3, max_length=50, examples=["shopping_agent_1"])
    owner_id: str | None = Field(
        default=None, description="Optional; must equal the API key's owner when given."
    )
    description: str | None = Field(default=None, max_length=1000)
    initial_balance: Decimal = Field(
        default=Decimal(0), description="Sandbox only: funded from the owner's deposit account."
    )
    limit_per_tx: Decimal | None = None
    limit_total: Decimal | None = None
    limit_daily: Decimal | None = None
    limit_weekly: Decimal | None = None
    limit_monthly: Decimal | None = None
    currency: str = Field(default="USDC", description="The wallet's currency.")

    @field_validator("name")
    @classmethod
    def name_is_not_blank(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("name must have at least 3 non-blank characters")
        return value.strip()


class AgentUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=3, max_length=50)
    description: str | None = Field(default=None, max_length=1000)
    is_active: bool | None = None


class AgentRead(BaseModel):
    agent_id: str
    name: str
    owner_id: str
    description: str | None
    wallet_id: str | None
    is_active: bool
    created_at: datetime


class AgentCreated(BaseModel):
    agent: AgentRead
    wallet: WalletRead
