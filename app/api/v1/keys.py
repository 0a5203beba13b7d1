from typing import Annotated

from fastapi import APIRouter, status

from app.api.deps import SessionDep, SettingsDep, scoped
from app.api.problems import AUTH_ERRORS, NOT_FOUND
from app.domain.agent import service as agent_service
from app.domain.apikey import service as apikey_service
from app.domain.apikey.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Principal, Scope

router = APIRouter(prefix="/keys", tags=["api keys"], responses=AUTH_ERRORS)
KeysPrincipal = Annotated[Principal, scoped(Scope.keys_write)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated, responses=NOT_FOUND
)
async def create_key(
    payload: ApiKeyCreate, principal: KeysPrincipal, session: SessionDep, settings: SettingsDep
) -> ApiKeyCreated:
    """Issue a key for the caller's owner (optionally restricted to one of its agents).
    The `secret` in the response is the full key, shown only this once."""
    if payload.agent_id is not None:
        await agent_service.get(session, principal, payload.agent_id)
    return await apikey_service.create_key(
        session,
        owner_id=principal.owner_id,
        mode=settings.mode,
        name=payload.name,
        agent_id=payload.agent_id,
        scopes=payload.scopes,
        tier=payload.tier,
        expires_at=payload.expires_at,
    )


@router.get("", response_model=list[ApiKeyRead])
async def list_keys(principal: KeysPrincipal, session: SessionDep) -> list[ApiKeyRead]:
    """The owner's keys (never their secrets)."""
    return await apikey_service.list_keys(session, principal.owner_id)


@router.delete("/{key_id}", response_model=ApiKeyRead, responses=NOT_FOUND)
async def revoke_key(key_id: str, principal: KeysPrincipal, session: SessionDep) -> ApiKeyRead:
    """Revoke a key: it stops working at once. Revoking twice is harmless."""
    return await apikey_service.revoke_key(session, key_id, owner_id=principal.owner_id)
