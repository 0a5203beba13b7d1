from typing import Annotated, Any

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from app.api.deps import AccessRoute, SessionDep, SettingsDep, scoped
from app.api.problems import AUTH_ERRORS, NOT_FOUND, PROBLEM_JSON, Problem, problem_members
from app.api.request_context import request_id_var
from app.domain.apikey import service as apikey_service
from app.domain.apikey.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Principal, Scope

router = APIRouter(
    prefix="/keys", tags=["api keys"], responses=AUTH_ERRORS, route_class=AccessRoute
)
KeysPrincipal = Annotated[Principal, scoped(Scope.keys_write)]

CEILING: dict[int | str, dict[str, Any]] = {
    403: {
        "model": Problem,
        "description": "The key lacks `keys:write`, or asked for a key beyond its own powers: "
        "`key_ceiling_exceeded`, with `beyond` naming each field past the ceiling "
        "(recorded as `api_key_refused` in the audit trail).",
    },
    **NOT_FOUND,
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated, responses=CEILING
)
async def create_key(
    payload: ApiKeyCreate, principal: KeysPrincipal, session: SessionDep, settings: SettingsDep
) -> ApiKeyCreated | JSONResponse:
    """Issue a key for the caller's owner (optionally restricted to one of its agents).
    The `secret` in the response is the full key, shown only this once.

    A key creates keys only within its own powers: scopes it holds, its own agent if it is
    restricted to one, a tier no higher and an expiry no later than its own. Omitted
    fields stay within them: the default scopes the caller holds, the caller's agent, the
    lower of `standard` and the caller's tier, the caller's expiry. `expires_at` without a
    time zone is read as UTC."""
    # Only a tier the client named is checked against the ceiling; an omitted one is
    # chosen below it.
    tier = payload.tier if "tier" in payload.model_fields_set else None
    issue = await apikey_service.create_key_as(
        session,
        principal,
        mode=settings.mode,
        name=payload.name,
        agent_id=payload.agent_id,
        scopes=payload.scopes,
        tier=tier,
        expires_at=payload.expires_at,
        request_id=request_id_var.get(),
    )
    if issue.refusal is not None:
        # Returned, not raised: the session commits the refusal's audit record.
        body = {**problem_members(issue.refusal), "beyond": issue.refusal.beyond}
        return JSONResponse(body, status_code=issue.refusal.status_code, media_type=PROBLEM_JSON)
    assert issue.created is not None
    return issue.created


@router.get("", response_model=list[ApiKeyRead])
async def list_keys(principal: KeysPrincipal, session: SessionDep) -> list[ApiKeyRead]:
    """The owner's keys of the calling key's mode (never their secrets)."""
    return await apikey_service.list_keys(session, principal.owner_id, mode=principal.mode)


@router.delete("/{key_id}", response_model=ApiKeyRead, responses=NOT_FOUND)
async def revoke_key(key_id: str, principal: KeysPrincipal, session: SessionDep) -> ApiKeyRead:
    """Revoke a key of the calling key's mode: it stops working at once. Revoking twice is
    harmless. A key of the other mode is not found."""
    return await apikey_service.revoke_key_as(
        session, principal, key_id, request_id=request_id_var.get()
    )
