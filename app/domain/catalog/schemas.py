from pydantic import BaseModel, Field, StrictBool

from app.kit.money import AmountText
from app.kit.schemas import CurrencyText, IdText, RequestSchema


class ProductCreate(RequestSchema):
    merchant_id: IdText
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    price: AmountText
    currency: CurrencyText = "USDC"
    category: str | None = Field(default=None, max_length=50)
    in_stock: StrictBool = True


class ProductUpdate(RequestSchema):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    price: AmountText | None = None
    category: str | None = Field(default=None, max_length=50)
    in_stock: StrictBool | None = None


class ProductRead(BaseModel):
    product_id: str
    name: str
    description: str | None
    price: str
    currency: str
    category: str | None
    in_stock: bool
    merchant_id: str
