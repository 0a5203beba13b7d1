"""The product catalog of an owner's merchants. Prices are minor units of their currency."""

from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.catalog import repository
from app.domain.catalog.errors import ProductNotFound
from app.domain.catalog.schemas import ProductCreate, ProductRead, ProductUpdate
from app.domain.merchant import service as merchant_service
from app.errors import ValidationFailed
from app.kit.ids import new_id
from app.kit.money import CURRENCY_SCALES, MAX_AMOUNT_UNITS, format_amount, to_minor
from app.kit.pagination import Page


def _read(row: Row[Any]) -> ProductRead:
    return ProductRead(
        product_id=row.id,
        name=row.name,
        description=row.description,
        price=format_amount(row.price, row.currency),
        currency=row.currency,
        category=row.category,
        in_stock=row.in_stock,
        merchant_id=row.merchant_id,
    )


def _ceilings(max_price: Decimal) -> dict[str, int]:
    """``price <= max_price`` per currency, in minor units (a filter may be finer than a
    currency's scale; it is floored, which keeps the comparison exact)."""
    if not max_price.is_finite() or max_price < 0:
        raise ValidationFailed("max_price must be a non-negative number", param="max_price")
    # No price exceeds the maximum amount: a higher ceiling is that maximum (and stays
    # within BIGINT).
    max_price = min(max_price, Decimal(MAX_AMOUNT_UNITS))
    return {
        currency: int(max_price.scaleb(scale).to_integral_value(ROUND_FLOOR))
        for currency, scale in CURRENCY_SCALES.items()
    }


async def list_products(
    session: AsyncSession,
    owner_id: str,
    *,
    category: str | None,
    max_price: Decimal | None,
    in_stock_only: bool,
    page: Page,
) -> list[ProductRead]:
    rows = await repository.list_products(
        session,
        owner_id,
        category=category,
        max_price_by_currency=None if max_price is None else _ceilings(max_price),
        in_stock_only=in_stock_only,
        limit=page.limit,
        offset=page.offset,
    )
    return [_read(row) for row in rows]


async def get_row(
    session: AsyncSession, owner_id: str, product_id: str, *, for_update: bool = False
) -> Row[Any]:
    row = await repository.get_product(session, owner_id, product_id, for_update=for_update)
    if row is None:
        raise ProductNotFound(f"Product {product_id} not found")
    return row


async def get(session: AsyncSession, owner_id: str, product_id: str) -> ProductRead:
    return _read(await get_row(session, owner_id, product_id))


async def create(session: AsyncSession, owner_id: str, payload: ProductCreate) -> ProductRead:
    """Add a product to one of the owner's merchants."""
    await merchant_service.get(session, owner_id, payload.merchant_id)
    row = await repository.insert_product(
        session,
        {
            "id": new_id("prod"),
            "owner_id": owner_id,
            "merchant_id": payload.merchant_id,
            "name": payload.name,
            "description": payload.description,
            "price": to_minor(payload.price, payload.currency, param="price"),
            "currency": payload.currency,
            "category": payload.category,
            "in_stock": payload.in_stock,
        },
    )
    return _read(row)


async def update(
    session: AsyncSession, owner_id: str, product_id: str, payload: ProductUpdate
) -> ProductRead:
    row = await get_row(session, owner_id, product_id, for_update=True)
    changes = payload.model_dump(include=payload.model_fields_set)
    for field in ("name", "price", "in_stock"):
        if field in changes and changes[field] is None:
            raise ValidationFailed(f"{field} cannot be null", param=field)
    if "price" in changes:
        changes["price"] = to_minor(changes["price"], row.currency, param="price")
    if changes:
        row = await repository.update_product(session, product_id, changes)
    return _read(row)
