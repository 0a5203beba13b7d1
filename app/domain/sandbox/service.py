"""First start of an empty sandbox: one owner key, printed once, and a demo catalog."""

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Mode
from app.domain.apikey import service as apikey_service
from app.domain.apikey.schemas import ApiKeyCreated
from app.domain.catalog import service as catalog_service
from app.domain.catalog.schemas import ProductCreate
from app.domain.merchant import service as merchant_service
from app.domain.merchant.schemas import MerchantCreate
from app.domain.sandbox import repository
from app.kit.ids import new_id

DEMO_CATALOG: dict[tuple[str, str, str], list[tuple[str, str, str, bool]]] = {
    ("TechStore Electronics", "Electronics and gadgets retailer", "electronics"): [
        ("Wireless Bluetooth Headphones", "Noise-cancelling over-ear headphones", "49.99", True),
        ("USB-C Charging Cable", "2 m braided cable", "12.50", True),
        ("Mechanical Keyboard", "Tenkeyless, hot-swappable switches", "89.00", False),
    ],
    ("CloudCompute Services", "Compute and API credits", "software"): [
        ("API Credits (1,000 calls)", "Prepaid API calls", "5.00", True),
        ("GPU Hour", "One hour of a shared GPU", "2.75", True),
        ("Storage 100 GB / month", "Object storage", "3.20", True),
    ],
}


async def bootstrap(session: AsyncSession, mode: Mode) -> ApiKeyCreated | None:
    """In an empty sandbox database create one owner key and the demo catalog; return the
    key (to print once) or ``None`` when there is nothing to do."""
    if mode is not Mode.sandbox:
        return None
    await repository.lock_bootstrap(session)
    if await apikey_service.any_key_exists(session):
        return None
    owner_id = new_id("owner", 6)
    key = await apikey_service.create_key(
        session, owner_id=owner_id, mode=mode, name="sandbox bootstrap key"
    )
    await seed_demo(session, owner_id)
    return key


async def seed_demo(session: AsyncSession, owner_id: str) -> None:
    """The demo merchants and catalog of a sandbox owner (``DEMO_CATALOG``)."""
    for (name, description, category), products in DEMO_CATALOG.items():
        merchant = await merchant_service.create(
            session,
            owner_id,
            MerchantCreate(name=name, description=description, category=category),
        )
        for product_name, product_description, price, in_stock in products:
            await catalog_service.create(
                session,
                owner_id,
                ProductCreate(
                    merchant_id=merchant.merchant_id,
                    name=product_name,
                    description=product_description,
                    price=Decimal(price),
                    category=category,
                    in_stock=in_stock,
                ),
            )
