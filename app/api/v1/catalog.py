from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import Response

from app.api.deps import AccessRoute, PageDep, SessionDep, scoped
from app.api.idempotency import IdempotencyDep
from app.api.problems import AUTH_ERRORS, NOT_FOUND
from app.domain.apikey.schemas import Principal, Scope
from app.domain.catalog import service as catalog_service
from app.domain.catalog.schemas import ProductCreate, ProductRead, ProductUpdate
from app.kit.money import AmountBoundText
from app.kit.schemas import STORABLE_TEXT_PATTERN

router = APIRouter(
    prefix="/catalog", tags=["catalog"], responses=AUTH_ERRORS, route_class=AccessRoute
)
Reader = Annotated[Principal, scoped(Scope.catalog_read)]
Writer = Annotated[Principal, scoped(Scope.catalog_write)]


@router.get("/products", response_model=list[ProductRead])
async def list_products(
    principal: Reader,
    session: SessionDep,
    page: PageDep,
    category: Annotated[
        str | None,
        Query(max_length=50, pattern=STORABLE_TEXT_PATTERN, description="Filter by category"),
    ] = None,
    max_price: Annotated[AmountBoundText | None, Query(description="Maximum price")] = None,
    in_stock_only: Annotated[bool, Query(description="Only in-stock items")] = True,
) -> list[ProductRead]:
    """Browse the products of the owner's merchants."""
    return await catalog_service.list_products(
        session,
        principal.owner_id,
        category=category,
        max_price=max_price,
        in_stock_only=in_stock_only,
        page=page,
    )


@router.get("/products/{product_id}", response_model=ProductRead, responses=NOT_FOUND)
async def get_product(product_id: str, principal: Reader, session: SessionDep) -> ProductRead:
    return await catalog_service.get(session, principal.owner_id, product_id)


@router.post(
    "/products",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductRead,
    responses=NOT_FOUND,
)
async def create_product(
    payload: ProductCreate, principal: Writer, session: SessionDep, idempotency: IdempotencyDep
) -> Response:
    """Add a product to one of the owner's merchants."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    created = await catalog_service.create(session, principal.owner_id, payload)
    return await idempotency.respond(created, status_code=status.HTTP_201_CREATED)


@router.patch("/products/{product_id}", response_model=ProductRead, responses=NOT_FOUND)
async def update_product(
    product_id: str, payload: ProductUpdate, principal: Writer, session: SessionDep
) -> ProductRead:
    return await catalog_service.update(session, principal.owner_id, product_id, payload)
