from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StringConstraints
from pydantic.json_schema import SkipJsonSchema

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
    """Fields left out are unchanged; ``description`` and ``category`` may be cleared with
    ``null``, the others may not (``422``; OpenAPI does not list null for them)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | SkipJsonSchema[None] = (
        None
    )
    description: str | None = Field(default=None, max_length=2000)
    price: AmountText | SkipJsonSchema[None] = None
    category: str | None = Field(default=None, max_length=50)
    in_stock: StrictBool | SkipJsonSchema[None] = None


class ProductRead(BaseModel):
    product_id: str
    name: str
    description: str | None
    price: str
    currency: str
    category: str | None
    in_stock: bool
    merchant_id: str
