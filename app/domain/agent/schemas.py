from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field, StrictBool, field_validator

from app.domain.wallet.schemas import WalletRead
from app.kit.money import AmountText
from app.kit.schemas import CurrencyText, IdText, RequestSchema


class AgentCreate(RequestSchema):
    name: str = Field(min_length=3, max_length=50, examples=["shopping_agent_1"])
    owner_id: IdText | None = Field(
        default=None, description="Optional; must equal the API key's owner when given."
    )
    description: str | None = Field(default=None, max_length=1000)
    initial_balance: AmountText = Field(
        default=Decimal(0), description="Sandbox only: funded from the owner's deposit account."
    )
    limit_per_tx: AmountText | None = None
    limit_total: AmountText | None = None
    limit_daily: AmountText | None = None
    limit_weekly: AmountText | None = None
    limit_monthly: AmountText | None = None
    currency: CurrencyText = Field(default="USDC", description="The wallet's currency.")

    @field_validator("name")
    @classmethod
    def name_is_not_blank(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("name must have at least 3 non-blank characters")
        return value.strip()


class AgentUpdate(RequestSchema):
    name: str | None = Field(default=None, min_length=3, max_length=50)
    description: str | None = Field(default=None, max_length=1000)
    is_active: StrictBool | None = None


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
