from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import current_mode
from app.models.catalog import Product

_products = cast(Table, Product.__table__)


async def insert_product(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    statement = insert(_products).values(**values).returning(_products)
    row: Row[Any] = (await session.execute(statement)).one()
    return row


async def get_product(
    session: AsyncSession, owner_id: str, product_id: str, *, for_update: bool = False
) -> Row[Any] | None:
    statement = select(_products).where(
        _products.c.owner_id == owner_id,
        _products.c.id == product_id,
        _products.c.mode == current_mode(),
    )
    if for_update:
        statement = statement.with_for_update()
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def list_products(
    session: AsyncSession,
    owner_id: str,
    *,
    category: str | None,
    max_price_by_currency: dict[str, int] | None,
    in_stock_only: bool,
    limit: int,
    offset: int,
) -> Sequence[Row[Any]]:
    conditions: list[ColumnElement[bool]] = [
        _products.c.owner_id == owner_id,
        _products.c.mode == current_mode(),
    ]
    if category is not None:
        conditions.append(_products.c.category == category)
    if in_stock_only:
        conditions.append(_products.c.in_stock.is_(True))
    if max_price_by_currency is not None:
        conditions.append(
            or_(
                *(
                    and_(_products.c.currency == currency, _products.c.price <= ceiling)
                    for currency, ceiling in max_price_by_currency.items()
                )
            )
        )
    statement = (
        select(_products)
        .where(*conditions)
        .order_by(_products.c.created_at, _products.c.id)
        .limit(limit)
        .offset(offset)
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


async def update_product(
    session: AsyncSession, product_id: str, values: dict[str, Any]
) -> Row[Any]:
    statement = (
        update(_products)
        .where(_products.c.id == product_id)
        .values(**values, updated_at=func.now())
        .returning(_products)
    )
    row: Row[Any] = (await session.execute(statement)).one()
    return row
