from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StringConstraints

from app.domain.wallet.schemas import WalletRead
from app.kit.money import AmountOrZeroText, AmountText
from app.kit.schemas import CurrencyText, IdText, RequestSchema

#: An agent's name as OpenAPI states it: three or more characters once the surrounding
#: whitespace, which is dropped, is gone.
NAME_PATTERN: Final = r"^\s*[^\s\x00][^\x00]+[^\s\x00]\s*$"


def _not_blank(value: str) -> str:
    if len(value.strip()) < 3:
        raise ValueError("name must have at least 3 non-blank characters")
    return value.strip()


AgentName = Annotated[
    str, StringConstraints(min_length=3, max_length=50), AfterValidator(_not_blank)
]


class AgentCreate(RequestSchema):
    name: AgentName = Field(
        examples=["shopping_agent_1"], json_schema_extra={"pattern": NAME_PATTERN}
    )
    owner_id: IdText | None = Field(
        default=None, description="Optional; must equal the API key's owner when given."
    )
    description: str | None = Field(default=None, max_length=1000)
    initial_balance: AmountOrZeroText = Field(
        default=Decimal(0), description="Sandbox only: funded from the owner's deposit account."
    )
    limit_per_tx: AmountText | None = None
    limit_total: AmountText | None = None
    limit_daily: AmountText | None = None
    limit_weekly: AmountText | None = None
    limit_monthly: AmountText | None = None
    currency: CurrencyText = Field(default="USDC", description="The wallet's currency.")


class AgentUpdate(RequestSchema):
    name: AgentName | None = Field(default=None, json_schema_extra={"pattern": NAME_PATTERN})
    description: str | None = Field(default=None, max_length=1000)
    is_active: StrictBool | None = None
    enforce_authorized_services: StrictBool | None = Field(
        default=None,
        description="On: the agent may pay only its authorized services "
        "(`/risk/agents/{id}/authorize`); others are refused with 403 "
        "`merchant_not_authorized`",
    )


class AgentRead(BaseModel):
    agent_id: str
    name: str
    owner_id: str
    description: str | None
    wallet_id: str | None
    is_active: bool
    enforce_authorized_services: bool = False
    created_at: datetime


class AgentCreated(BaseModel):
    agent: AgentRead
    wallet: WalletRead
