from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.test_clock import repository as test_clock_repository
from app.models.base import current_mode
from app.models.payment_flow import PaymentRequest

_requests = cast(Table, PaymentRequest.__table__)


async def insert_request(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    statement = insert(_requests).values(**values).returning(_requests)
    row: Row[Any] = (await session.execute(statement)).one()
    return row


def _visible(owner_id: str) -> ColumnElement[bool]:
    return or_(_requests.c.requester_owner_id == owner_id, _requests.c.payer_owner_id == owner_id)


def _this_mode() -> ColumnElement[bool]:
    """Requests of the connection's mode only: one of the other mode answers like one
    that does not exist, and its agents are never paid from here."""
    return _requests.c.mode == current_mode()


async def get_request(
    session: AsyncSession, owner_id: str, request_id: str, *, lock_as_payer: bool = False
) -> Row[Any] | None:
    statement = select(_requests).where(_requests.c.id == request_id, _this_mode())
    if lock_as_payer:
        # Paying locks the request: concurrent payers queue here and find it paid.
        statement = statement.where(_requests.c.payer_owner_id == owner_id).with_for_update(
            key_share=True
        )
    else:
        statement = statement.where(_visible(owner_id))
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def list_requests(
    session: AsyncSession,
    owner_id: str,
    *,
    role: str | None,
    status: str | None,
    limit: int,
    before: Row[Any] | None,
    agent_id: str | None = None,
) -> Sequence[Row[Any]]:
    """Up to ``limit`` requests ``owner_id`` sent (``role="requester"``), must pay
    (``"payer"``) or either, newest first, older than ``before``; with ``agent_id`` (an
    agent key's), only those naming that agent on either side. The agent filter is in the
    query, before the LIMIT, so an agent key's pages are as full as they can be."""
    if role == "payer":
        condition = _requests.c.payer_owner_id == owner_id
    elif role == "requester":
        condition = _requests.c.requester_owner_id == owner_id
    else:
        condition = _visible(owner_id)
    statement = select(_requests).where(condition, _this_mode())
    if agent_id is not None:
        statement = statement.where(
            or_(_requests.c.requester_agent_id == agent_id, _requests.c.payer_agent_id == agent_id)
        )
    if status is not None:
        statement = statement.where(_requests.c.status == status)
    if before is not None:
        statement = statement.where(
            tuple_(_requests.c.created_at, _requests.c.id) < tuple_(before.created_at, before.id)
        )
    statement = statement.order_by(_requests.c.created_at.desc(), _requests.c.id.desc()).limit(
        limit
    )
    rows: Sequence[Row[Any]] = (await session.execute(statement)).all()
    return rows


async def resolve_pending(
    session: AsyncSession,
    request_id: str,
    *,
    status: str,
    now: datetime,
    requester_owner_id: str | None = None,
    tx_id: str | None = None,
) -> Row[Any] | None:
    conditions = [_requests.c.id == request_id, _requests.c.status == "pending", _this_mode()]
    if requester_owner_id is not None:
        conditions.append(_requests.c.requester_owner_id == requester_owner_id)
    statement = (
        update(_requests)
        .where(*conditions)
        .values(status=status, resolved_at=now, tx_id=tx_id)
        .returning(_requests)
    )
    row: Row[Any] | None = (await session.execute(statement)).one_or_none()
    return row


async def expire_due(session: AsyncSession, now: datetime, owner_id: str | None = None) -> int:
    """Expire pending requests past their expiry at the requester's now (``now``, the
    server's, plus the requester's test clock offset: the requester set the expiry), every
    requester's or ``owner_id``'s."""
    statement = (
        update(_requests)
        .where(
            _requests.c.status == "pending",
            _requests.c.expires_at
            <= test_clock_repository.owner_now(now, _requests.c.requester_owner_id),
            _this_mode(),
            *(() if owner_id is None else (_requests.c.requester_owner_id == owner_id,)),
        )
        .values(
            status="expired",
            resolved_at=test_clock_repository.owner_now(now, _requests.c.requester_owner_id),
        )
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
