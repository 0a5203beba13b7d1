from decimal import Decimal

from pydantic import BaseModel, Field


class ProductCreate(BaseModel):
    merchant_id: str
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    price: Decimal = Field(examples=["49.99"])
    currency: str = "USDC"
    category: str | None = Field(default=None, max_length=50)
    in_stock: bool = True


class ProductUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    price: Decimal | None = None
    category: str | None = Field(default=None, max_length=50)
    in_stock: bool | None = None


class ProductRead(BaseModel):
    product_id: str
    name: str
    description: str | None
    price: str
    currency: str
    category: str | None
    in_stock: bool
    merchant_id: str
