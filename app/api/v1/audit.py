from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AccessRoute, SessionDep, scoped
from app.api.problems import AUTH_ERRORS
from app.domain.apikey.schemas import Principal, Scope
from app.domain.audit import service as audit_service
from app.domain.audit.schemas import AuditPage
from app.kit.schemas import STORABLE_TEXT_PATTERN

router = APIRouter(prefix="/audit", tags=["audit"], responses=AUTH_ERRORS, route_class=AccessRoute)


@router.get("", response_model=AuditPage)
async def list_audit_records(
    principal: Annotated[Principal, scoped(Scope.audit_read)],
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=STORABLE_TEXT_PATTERN,
            description="`next_cursor` of the previous page",
        ),
    ] = None,
) -> AuditPage:
    """The owner's audit records of the key's mode (sandbox or live), newest first. `seq`
    numbers the owner's own records of that mode (1, 2, 3… in chain order, without gaps)
    and is given with the record's place in the hash chain, within about a second
    (`sealed`); records not sealed yet lead the first page with `seq` null. `next_cursor`
    continues with the sealed records numbered below the page's last."""
    return await audit_service.list_for_owner(
        session, principal.owner_id, limit=limit, cursor=cursor
    )
