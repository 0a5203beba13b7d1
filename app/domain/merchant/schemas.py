from datetime import datetime

from pydantic import BaseModel, Field

from app.kit.schemas import CurrencyText, RequestSchema


class MerchantCreate(RequestSchema):
    name: str = Field(min_length=2, max_length=100, examples=["TechStore Electronics"])
    description: str | None = Field(default=None, max_length=1000)
    category: str | None = Field(default=None, max_length=50, examples=["electronics"])
    currency: CurrencyText = Field(default="USDC", description="Currency of the merchant's wallet.")


class MerchantRead(BaseModel):
    merchant_id: str
    name: str
    wallet_id: str
    description: str | None
    category: str | None
    is_active: bool
    created_at: datetime
