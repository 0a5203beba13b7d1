from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.event import service as event_service
from app.domain.merchant import repository
from app.domain.merchant.errors import MerchantNotFound
from app.domain.merchant.schemas import MerchantCreate, MerchantRead
from app.domain.wallet import service as wallet_service
from app.kit.ids import new_id
from app.kit.money import scale_of
from app.kit.pagination import Page


def _read(row: Row[Any]) -> MerchantRead:
    return MerchantRead(
        merchant_id=row.id,
        name=row.name,
        wallet_id=row.wallet_id,
        description=row.description,
        category=row.category,
        is_active=row.is_active,
        created_at=row.created_at,
    )


async def create(session: AsyncSession, owner_id: str, payload: MerchantCreate) -> MerchantRead:
    """Register a merchant with its own ledger wallet."""
    scale_of(payload.currency)
    merchant_id = new_id("merchant")
    await repository.insert_merchant(
        session,
        {
            "id": merchant_id,
            "owner_id": owner_id,
            "name": payload.name,
            "description": payload.description,
            "category": payload.category,
        },
    )
    await wallet_service.open_merchant_wallet(
        session, owner_id=owner_id, merchant_id=merchant_id, currency=payload.currency
    )
    merchant = await get(session, owner_id, merchant_id)
    await event_service.emit(
        session,
        [
            event_service.event(
                owner_id, "merchant.created", {"merchant": merchant.model_dump(mode="json")}
            )
        ],
    )
    return merchant


async def get(session: AsyncSession, owner_id: str, merchant_id: str) -> MerchantRead:
    row = await repository.get_merchant(session, owner_id, merchant_id)
    if row is None:
        raise MerchantNotFound(f"Merchant {merchant_id} not found")
    return _read(row)


async def list_merchants(session: AsyncSession, owner_id: str, page: Page) -> list[MerchantRead]:
    rows = await repository.list_merchants(session, owner_id, limit=page.limit, offset=page.offset)
    return [_read(row) for row in rows]
