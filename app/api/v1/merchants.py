from typing import Annotated

from fastapi import APIRouter, status
from fastapi.responses import Response

from app.api.deps import AccessRoute, PageDep, SessionDep, scoped
from app.api.idempotency import IdempotencyDep
from app.api.problems import AUTH_ERRORS, NOT_FOUND
from app.domain.apikey.schemas import Principal, Scope
from app.domain.merchant import service as merchant_service
from app.domain.merchant.schemas import MerchantCreate, MerchantRead
from app.domain.wallet import service as wallet_service
from app.domain.wallet.schemas import MerchantWalletRead

router = APIRouter(
    prefix="/merchants", tags=["merchants"], responses=AUTH_ERRORS, route_class=AccessRoute
)
Reader = Annotated[Principal, scoped(Scope.merchants_read)]
Writer = Annotated[Principal, scoped(Scope.merchants_write)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MerchantRead)
async def create_merchant(
    payload: MerchantCreate, principal: Writer, session: SessionDep, idempotency: IdempotencyDep
) -> Response:
    """Register a merchant, with its own ledger wallet, to receive payments."""
    replay = await idempotency.replay()
    if replay is not None:
        return replay
    created = await merchant_service.create(session, principal.owner_id, payload)
    return await idempotency.respond(created, status_code=status.HTTP_201_CREATED)


@router.get("", response_model=list[MerchantRead])
async def list_merchants(
    principal: Reader, session: SessionDep, page: PageDep
) -> list[MerchantRead]:
    return await merchant_service.list_merchants(session, principal.owner_id, page)


@router.get("/{merchant_id}", response_model=MerchantRead, responses=NOT_FOUND)
async def get_merchant(merchant_id: str, principal: Reader, session: SessionDep) -> MerchantRead:
    return await merchant_service.get(session, principal.owner_id, merchant_id)


@router.get("/{merchant_id}/wallet", response_model=MerchantWalletRead, responses=NOT_FOUND)
async def get_merchant_wallet(
    merchant_id: str, principal: Reader, session: SessionDep
) -> MerchantWalletRead:
    return await wallet_service.get_merchant_wallet(session, principal.owner_id, merchant_id)
